//! One tokio runtime for every element instance in the process, as gst-plugins-rs'
//! reqwesthttpsrc does: two worker threads are plenty for network I/O.

use std::sync::LazyLock;

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("p2pmedia-io")
        // Blocking-pool threads (name lookups, webrtc's socket setup) go soon after a burst
        // instead of idling 10 s each.
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .enable_all()
        .build()
        .expect("cannot start the p2pmedia tokio runtime")
});

/// Every task alive on the runtime, the engine's own (`task::live_tasks`) and those of the
/// network adapters and webrtc-rs: for leak checks.
pub fn runtime_tasks() -> usize {
    RUNTIME.metrics().num_alive_tasks()
}
