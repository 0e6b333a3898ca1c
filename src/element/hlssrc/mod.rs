//! Registration of `p2phlssrc`.

use gst::glib;
use gst::prelude::*;

use super::source::P2pMediaSrc;

mod imp;

glib::wrapper! {
    pub struct HlsSrc(ObjectSubclass<imp::HlsSrc>)
        @extends P2pMediaSrc, gst::Element, gst::Object,
        @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Our own URI schemes, so a high rank never takes plain http:// away from souphttpsrc.
    gst::Element::register(
        Some(plugin),
        "p2phlssrc",
        gst::Rank::PRIMARY,
        HlsSrc::static_type(),
    )
}
