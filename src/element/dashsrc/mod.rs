//! Registration of `p2pdashsrc`.

use gst::glib;
use gst::prelude::*;

use super::source::P2pMediaSrc;

mod imp;

glib::wrapper! {
    pub struct DashSrc(ObjectSubclass<imp::DashSrc>)
        @extends P2pMediaSrc, gst::Element, gst::Object,
        @implements gst::URIHandler;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // Our own URI schemes, so a high rank never takes plain http:// away from souphttpsrc.
    gst::Element::register(
        Some(plugin),
        "p2pdashsrc",
        gst::Rank::PRIMARY,
        DashSrc::static_type(),
    )
}
