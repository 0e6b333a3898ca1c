//! GStreamer glue: the elements, their shared base class and the properties they share.

pub mod dashsrc;
pub mod hlssrc;
pub mod settings;
pub mod source;

pub fn register(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    hlssrc::register(plugin)?;
    dashsrc::register(plugin)
}
