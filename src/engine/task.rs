//! Every task the engine spawns goes through `spawn`: a panic inside one is caught and handed
//! to the spawner's handler (an element error for a fetch loop, P2P off for a swarm) instead of
//! vanishing into an unread `JoinHandle` as a silent stall. A process-wide count of live tasks
//! lets tests check that stopping leaks none.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::task::{Context, Poll};

use tokio::task::JoinHandle;

use super::runtime::RUNTIME;
use super::CAT;

static LIVE: AtomicUsize = AtomicUsize::new(0);
/// Per task name, for the log and for tests to say which kind leaked.
static BY_NAME: Mutex<BTreeMap<&'static str, usize>> = Mutex::new(BTreeMap::new());

/// Engine tasks spawned and not yet finished or dropped (aborted), in this process.
pub fn live_tasks() -> usize {
    LIVE.load(Ordering::SeqCst)
}

/// `live_tasks` by the name each was spawned under (names with none live left out).
pub fn live_tasks_by_name() -> Vec<(&'static str, usize)> {
    let by_name = BY_NAME.lock().unwrap_or_else(|e| e.into_inner());
    by_name
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| (*k, *n))
        .collect()
}

/// Counts a task from its spawn until its future is dropped, whichever way it ends.
struct Live(&'static str);

impl Live {
    fn new(name: &'static str) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        *BY_NAME
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default() += 1;
        Live(name)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
        if let Some(n) = BY_NAME
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(self.0)
        {
            *n = n.saturating_sub(1);
        }
    }
}

type OnPanic = Box<dyn FnOnce(String) + Send>;

struct Watched<F> {
    name: &'static str,
    // Boxed so `Watched` is Unpin and needs no unsafe pin projection.
    fut: Pin<Box<F>>,
    on_panic: Option<OnPanic>,
    _live: Live,
}

impl<F: Future<Output = ()>> Future for Watched<F> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let name = this.name;
        let fut = &mut this.fut;
        // The future is dropped right after a panic, never polled again: unwind safety holds.
        let polled = catch_unwind(AssertUnwindSafe(|| {
            failpoint(name);
            fut.as_mut().poll(cx)
        }));
        match polled {
            Ok(p) => p,
            Err(payload) => {
                let msg = panic_message(payload.as_ref());
                gst::error!(CAT, "engine task {name} panicked: {msg}");
                if let Some(f) = this.on_panic.take() {
                    f(msg);
                }
                Poll::Ready(())
            }
        }
    }
}

/// Spawns `fut` on the engine runtime; if it panics, `on_panic` gets the panic message (on a
/// runtime thread) and the task ends.
pub fn spawn<F>(
    name: &'static str,
    fut: F,
    on_panic: impl FnOnce(String) + Send + 'static,
) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    RUNTIME.spawn(Watched {
        name,
        fut: Box::pin(fut),
        on_panic: Some(Box::new(on_panic)),
        _live: Live::new(name),
    })
}

/// `spawn` for helper tasks whose panic needs no more than the log line: their owner notices
/// the missing answer through its own timeouts or closed channels.
pub fn spawn_logged<F>(name: &'static str, fut: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    spawn(name, fut, |_| {})
}

/// Helper tasks owned by one object (a swarm actor, the P2P hub): aborted with it, so none
/// outlives its session waiting on a timer or a peer.
#[derive(Default)]
pub struct Group(Mutex<Vec<JoinHandle<()>>>);

impl Group {
    /// `spawn_logged`, owned by the group.
    pub fn spawn_logged<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = spawn_logged(name, fut);
        let mut tasks = self.0.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }

    pub fn abort_all(&self) {
        for t in self.0.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.abort_all();
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string())
}

static ARMED: AtomicBool = AtomicBool::new(false);
static FAILPOINTS: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// For tests: the next poll of a task spawned under `name` panics (once per call). Costs one
/// atomic load per poll when nothing is armed.
#[doc(hidden)]
pub fn panic_next(name: &'static str) {
    FAILPOINTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(name);
    ARMED.store(true, Ordering::SeqCst);
}

fn failpoint(name: &'static str) {
    if !ARMED.load(Ordering::Relaxed) {
        return;
    }
    let hit = {
        let mut armed = FAILPOINTS.lock().unwrap_or_else(|e| e.into_inner());
        let hit = armed
            .iter()
            .position(|n| *n == name)
            .map(|i| armed.remove(i));
        ARMED.store(!armed.is_empty(), Ordering::SeqCst);
        hit.is_some()
    };
    if hit {
        panic!("failpoint {name}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_panic_reaches_the_handler_and_the_count_returns() {
        let (tx, rx) = mpsc::channel();
        let h = spawn("unit-panics", async { panic!("boom") }, move |m| {
            tx.send(m).unwrap()
        });
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)).unwrap(),
            "boom".to_string()
        );
        RUNTIME.block_on(h).unwrap();
        // Aborted tasks are counted out too.
        let h = spawn_logged("unit-sleeps", async {
            tokio::time::sleep(Duration::from_secs(60)).await
        });
        h.abort();
        let _ = RUNTIME.block_on(h);
        // By name: other tests may run engine tasks meanwhile.
        let left = live_tasks_by_name();
        assert!(
            !left.iter().any(|(n, _)| n.starts_with("unit-")),
            "{left:?}"
        );
    }
}
