//! `p2pdashsrc`: MPEG-DASH on the shared source machinery (`element::source`).

/**
 * SECTION:element-p2pdashsrc
 * @see_also: p2phlssrc, dashdemux2
 *
 * `p2pdashsrc` plays MPEG-DASH: it fetches the MPD and the segments over HTTP(S) and outputs
 * one sometimes pad `src_%u` per selected adaptation set (video: the one with Role `main`,
 * else the first; audio: the same rule), each carrying its Representation's init segment
 * followed by its media segments (fMP4/CMAF) for `qtdemux` (`decodebin` picks it). It reads
 * SegmentTemplate (`$Number$`, `$Time$`, with or without SegmentTimeline), SegmentList and
 * SegmentBase MPDs, static and dynamic, with several Periods; ABR runs per adaptation set
 * over its Representations' `@bandwidth`.
 *
 * It joins the swarms of browsers running Shaka Player with `p2p-media-loader-shaka` and
 * trades segments with them over WebRTC data channels, exactly as `p2phlssrc` does with
 * P2P Media Loader's HLS swarms: same properties (lists are arrays of strings,
 * `trackers=<"ws://127.0.0.1:8000">`, the empty list `<>`), same `stats`, element messages and
 * `validate-segment` signal.
 *
 * As a `GstURIHandler` it takes `p2pdash+http://` and `p2pdash+https://` URIs (the MPD URL
 * with `p2pdash+` in front); `location` takes the plain URL.
 *
 * ## Example launch lines
 *
 * Each line below plays the stream `scripts/demo.sh --serve --dash` serves (a local origin
 * on port 8080); the tracker line needs a WebTorrent tracker on port 8000
 * (`node tests/tracker/server.mjs 8000`).
 *
 * With your own tracker, host ICE candidates only (nothing leaves the machine):
 * ```shell
 * gst-launch-1.0 p2pdashsrc location=http://127.0.0.1:8080/manifest.mpd 'trackers=<"ws://127.0.0.1:8000">' 'ice-servers=<>' ! decodebin ! videoconvert ! fakesink
 * ```
 *
 * Plain HTTP, video and audio pads decoded separately:
 * ```shell
 * gst-launch-1.0 p2pdashsrc location=http://127.0.0.1:8080/manifest.mpd p2p-enabled=false name=s s.src_0 ! qtdemux ! h264parse ! avdec_h264 ! fakesink s.src_1 ! qtdemux ! aacparse ! avdec_aac ! fakesink
 * ```
 *
 * Through `playbin3` and the `p2pdash+` URI scheme, on the default public trackers and STUN
 * servers:
 * ```shell
 * gst-launch-1.0 playbin3 uri=p2pdash+http://127.0.0.1:8080/manifest.mpd video-sink=fakesink audio-sink=fakesink
 * ```
 *
 * Since: 0.1
 */
use std::sync::LazyLock;

use gst::glib;
use gst::subclass::prelude::*;

use crate::element::source::{Kind, P2pMediaSrcImpl};
use crate::engine::Protocol;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "p2pdashsrc",
        gst::DebugColorFlags::empty(),
        Some("P2P DASH source"),
    )
});

#[derive(Default)]
pub struct DashSrc;

#[glib::object_subclass]
impl ObjectSubclass for DashSrc {
    const NAME: &'static str = "GstP2pDashSrc";
    type Type = super::DashSrc;
    type ParentType = crate::element::source::P2pMediaSrc;
    type Interfaces = (gst::URIHandler,);
}

impl ObjectImpl for DashSrc {
    fn constructed(&self) {
        self.parent_constructed();
        self.base().imp().set_kind(Kind {
            protocol: Protocol::Dash,
            cat: *CAT,
            scheme_prefix: "p2pdash+",
        });
    }
}

impl GstObjectImpl for DashSrc {}

impl ElementImpl for DashSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "P2P DASH Source",
                "Source/Network/Adaptive",
                "Plays MPEG-DASH streams, fetching segments over HTTP and from P2P Media Loader peers",
                "p2pmedia developers",
            )
        });
        Some(&*META)
    }
}

impl P2pMediaSrcImpl for DashSrc {}

impl URIHandlerImpl for DashSrc {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &["p2pdash+http", "p2pdash+https"]
    }

    fn uri(&self) -> Option<String> {
        self.base().imp().uri()
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        self.base().imp().set_uri(uri)
    }
}
