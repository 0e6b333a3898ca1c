//! `p2phlssrc`: HLS on the shared source machinery (`element::source`).

/**
 * SECTION:element-p2phlssrc
 * @see_also: p2pdashsrc, hlsdemux2, souphttpsrc
 *
 * `p2phlssrc` plays HLS: it fetches the master and media playlists and the segments over
 * HTTP(S), picks variants adaptively (the `hlsdemux2` properties `connection-speed`,
 * `bandwidth-target-ratio`, `min-bitrate`, `max-bitrate`, `start-bitrate`), decrypts AES-128
 * segments and pushes each stream's container bytes (MPEG-TS, fMP4, ...) downstream on
 * sometimes pads `src_%u`, one per output stream (the main variant, plus an alternate audio
 * rendition when the playlist has one): put `decodebin`, `tsdemux` or `qtdemux` after it.
 *
 * It also joins the swarms of browsers running P2P Media Loader 2.3.x (2.2.x with
 * `compat=pml-2.2`): it announces on WebTorrent trackers (`trackers`), opens WebRTC data
 * channels (`ice-servers`) and trades segments with browsers and other elements both ways.
 * With no peers it plays like plain HTTP; `p2p-enabled=false` turns P2P off. Lists are
 * arrays of strings, `trackers=<"ws://127.0.0.1:8000">`, the empty list `<>`.
 *
 * As a `GstURIHandler` it takes `p2phls+http://` and `p2phls+https://` URIs (the playlist URL
 * with `p2phls+` in front), so `playbin`, `playbin3` and `uridecodebin` pick it; `location`
 * takes the plain URL.
 *
 * Statistics: the `stats` property and the `p2pmedia-stats` element message (every
 * `stats-interval` ms) give the bytes and segments from the origin and from peers, the
 * peers and the swarms; `p2pmedia-peer-connected`, `p2pmedia-peer-closed` and
 * `p2pmedia-segment-loaded` element messages tell who delivered what. The
 * `validate-segment` signal lets an application veto a segment before it is used or shared.
 *
 * ## Example launch lines
 *
 * Each line below plays the stream `scripts/demo.sh --serve` serves (a local origin on port
 * 8080); the tracker line needs a WebTorrent tracker on port 8000 (`node tests/tracker/server.mjs
 * 8000`).
 *
 * With your own tracker, host ICE candidates only (nothing leaves the machine):
 * ```shell
 * gst-launch-1.0 p2phlssrc location=http://127.0.0.1:8080/master.m3u8 'trackers=<"ws://127.0.0.1:8000">' 'ice-servers=<>' ! decodebin ! videoconvert ! fakesink
 * ```
 *
 * Plain HTTP (no tracker traffic), at most 1 Mbit/s, decoding the MPEG-TS yourself:
 * ```shell
 * gst-launch-1.0 p2phlssrc location=http://127.0.0.1:8080/master.m3u8 p2p-enabled=false max-bitrate=1000000 ! tsdemux ! h264parse ! avdec_h264 ! fakesink
 * ```
 *
 * Through `playbin3` and the `p2phls+` URI scheme, on the default public trackers and STUN
 * servers:
 * ```shell
 * gst-launch-1.0 playbin3 uri=p2phls+http://127.0.0.1:8080/master.m3u8 video-sink=fakesink audio-sink=fakesink
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
        "p2phlssrc",
        gst::DebugColorFlags::empty(),
        Some("P2P HLS source"),
    )
});

#[derive(Default)]
pub struct HlsSrc;

#[glib::object_subclass]
impl ObjectSubclass for HlsSrc {
    const NAME: &'static str = "GstP2pHlsSrc";
    type Type = super::HlsSrc;
    type ParentType = crate::element::source::P2pMediaSrc;
    type Interfaces = (gst::URIHandler,);
}

impl ObjectImpl for HlsSrc {
    fn constructed(&self) {
        self.parent_constructed();
        self.base().imp().set_kind(Kind {
            protocol: Protocol::Hls,
            cat: *CAT,
            scheme_prefix: "p2phls+",
        });
    }
}

impl GstObjectImpl for HlsSrc {}

impl ElementImpl for HlsSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "P2P HLS Source",
                "Source/Network/Adaptive",
                "Plays HLS streams, fetching segments over HTTP and from P2P Media Loader peers",
                "p2pmedia developers",
            )
        });
        Some(&*META)
    }
}

impl P2pMediaSrcImpl for HlsSrc {}

impl URIHandlerImpl for HlsSrc {
    const URI_TYPE: gst::URIType = gst::URIType::Src;

    fn protocols() -> &'static [&'static str] {
        &["p2phls+http", "p2phls+https"]
    }

    fn uri(&self) -> Option<String> {
        self.base().imp().uri()
    }

    fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        self.base().imp().set_uri(uri)
    }
}
