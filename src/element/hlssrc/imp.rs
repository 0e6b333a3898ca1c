//! `p2phlssrc`: HLS on the shared source machinery (`element::source`).

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
