//! Shared pieces of the integration tests: ffmpeg fixtures, the HTTP origin with fault
//! injection, and the playback harness.
//!
//! ```ignore
//! let o = Origin::serve_dir(&fixtures().root);
//! o.set_fault("seq/seg101.ts", Fault::Status { status: 503, times: 2 });
//! let reference = Player::playbin(o.url(SEQ_MEDIA)).run(); // legacy hlsdemux
//! let out = Player::playbin(p2p_uri(&o.url(SEQ_MEDIA))).prop("retries", 3i32).run();
//! assert_same_output(&reference, &out);
//! assert_eq!(o.requests("seq/seg101.ts"), 4);
//! ```
#![allow(dead_code)]

pub mod aquatic;
pub mod dash_fixtures;
pub mod evil;
pub mod fixtures;
pub mod launch;
pub mod llhls;
pub mod origin;
pub mod playback;
pub mod tracker;

use std::sync::{mpsc, Once};
use std::time::Duration;

/// Hard cap for one test, enforced by [`guard`].
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Initialise GStreamer and register the plugin statically (no GST_PLUGIN_PATH needed).
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstp2pmedia::plugin_register_static().expect("register p2pmedia plugin");
    });
}

/// Is the element under test registered (the lead may not have landed it yet)?
pub fn have_element() -> bool {
    init();
    gst::ElementFactory::find("p2phlssrc").is_some()
}

/// Is `p2pdashsrc` registered? It is looked up by name at runtime, so the DASH tests compile
/// before it exists.
pub fn have_dash_element() -> bool {
    init();
    gst::ElementFactory::find("p2pdashsrc").is_some()
}

/// Fail (never skip) when `p2pdashsrc` is missing, with a message saying so rather than
/// playbin's "no URI handler" further down.
pub fn require_dash_element() {
    assert!(
        have_dash_element(),
        "p2pdashsrc is not registered by the p2pmedia plugin"
    );
}

/// Run `f` on its own thread and fail the test if it takes longer than `limit`; a panic in
/// `f` fails the test with its own message. A stuck body is abandoned, not killed: the
/// process exits when the test binary finishes.
pub fn guard_for<F: FnOnce() + Send + 'static>(limit: Duration, f: F) {
    // Tests may build GStreamer objects (structures, caps) before any pipeline.
    init();
    let name = std::thread::current().name().unwrap_or("test").to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(r);
        })
        .unwrap();
    match rx.recv_timeout(limit) {
        Ok(Ok(())) => {}
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("watchdog: {name} exceeded {limit:?}"),
    }
}

/// [`guard_for`] with [`TEST_LIMIT`].
pub fn guard<F: FnOnce() + Send + 'static>(f: F) {
    guard_for(TEST_LIMIT, f)
}
