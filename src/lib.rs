//! p2pmedia: GStreamer HLS/DASH sources that fetch segments over HTTP and share them with
//! P2P Media Loader swarms.
//!
//! Layers: the pure core (`media`, `manifest`, `p2p`, `schedule`) takes inputs and time as
//! arguments and does no I/O; `net` and `engine` are the tokio shell; `element` is the
//! GStreamer glue.

pub mod abr;
pub mod element;
pub mod engine;
pub mod manifest;
pub mod media;
pub mod net;
pub mod p2p;
pub mod payload;
pub mod rng;
pub mod schedule;
pub mod swarm;

gst::plugin_define!(
    p2pmedia,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);

/**
 * plugin-p2pmedia:
 *
 * HLS and MPEG-DASH sources (`p2phlssrc`, `p2pdashsrc`) that fetch segments over HTTP and
 * share them with P2P Media Loader swarms (browsers running P2P Media Loader with hls.js or
 * Shaka Player, and other instances of these elements) over WebRTC data channels.
 *
 * Since: 0.1
 */
fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // One crypto backend (ring) for HTTPS and, later, WebRTC; ignore "already installed".
    let _ = rustls::crypto::ring::default_provider().install_default();
    element::register(plugin)
}
