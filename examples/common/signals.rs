//! SIGINT/SIGTERM as a flag the examples poll from their main loop (glib 0.22 has no unix
//! signal sources): the handler only stores the signal number, which is async-signal-safe.

use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `on_signal` is an `extern "C" fn(c_int)` that only does an atomic store.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// The signal received, if any (0: none).
pub fn received() -> i32 {
    RECEIVED.load(Ordering::SeqCst)
}
