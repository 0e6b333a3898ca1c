//! One tokio runtime for every element instance in the process, as gst-plugins-rs'
//! reqwesthttpsrc does: two worker threads are plenty for network I/O.

use std::sync::LazyLock;

pub static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("p2pmedia-io")
        .enable_all()
        .build()
        .expect("cannot start the p2pmedia tokio runtime")
});
