//! GStreamer glue: the elements and the properties they share.

pub mod hlssrc;
pub mod settings;

pub fn register(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    hlssrc::register(plugin)
}
