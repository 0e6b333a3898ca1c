//! `p2pdashsrc`: MPEG-DASH on the shared source machinery (`element::source`).

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
