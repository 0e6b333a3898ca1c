//! The hand-over point between the tokio engine and a GStreamer pad task: a queue of whole
//! segments bounded in media time. The engine awaits space asynchronously; the pad task
//! blocks on a condvar that flushing always interrupts.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

/// One media segment ready to go downstream, with its init section when one must precede it.
#[derive(Debug, Clone)]
pub struct Fragment {
    pub init: Option<Bytes>,
    pub data: Bytes,
    /// Start on the stream timeline: the PTS of the fragment's first buffer.
    pub start: Duration,
    pub duration: Duration,
    /// First fragment after a seek, a variant switch, a gap or EXT-X-DISCONTINUITY.
    pub discont: bool,
    /// Container (media) time minus `start`, in ns: DASH `presentationTimeOffset − Period@start`
    /// (the `tfdt` demuxers read is in media time), 0 for HLS.
    pub media_offset_ns: i64,
    /// Wall-clock time of the first sample, ns since the Unix epoch (HLS
    /// EXT-X-PROGRAM-DATE-TIME): a `GstReferenceTimestampMeta` on the fragment's buffers.
    pub program_date_time_ns: Option<i64>,
}

#[derive(Debug, Clone)]
pub enum OutputItem {
    Fragment(Fragment),
    Eos,
}

impl OutputItem {
    fn duration(&self) -> Duration {
        match self {
            OutputItem::Fragment(f) => f.duration,
            OutputItem::Eos => Duration::ZERO,
        }
    }

    fn size(&self) -> usize {
        match self {
            OutputItem::Fragment(f) => f.data.len() + f.init.as_ref().map_or(0, |i| i.len()),
            OutputItem::Eos => 0,
        }
    }
}

/// Byte cap besides the time cap: a playlist that lies about durations (tiny EXTINFs on big
/// segments) must not make us buffer without bound.
const MAX_QUEUED_BYTES: usize = 128 << 20;

/// Why a push did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale;

struct Inner {
    items: VecDeque<OutputItem>,
    queued: Duration,
    queued_bytes: usize,
    flushing: bool,
    /// Start of the fragment the pad task took last.
    position: Option<Duration>,
    /// End of the fragment the pad task took last: where a restarted feed resumes.
    taken_end: Option<Duration>,
    /// The feed restarted (a flush, a rendition switch) and the pad task has not taken its
    /// first item.
    restarted: bool,
    /// Start and duration of the fragment whose push last returned, and when it returned.
    pushed: Option<(Duration, Duration, Instant)>,
    /// Bumped on every flush: what the pad task took before is stale.
    generation: u64,
    /// Bumped on every flush and every restart: pushes from an older feed (a fetcher being
    /// aborted) are dropped.
    feed: u64,
}

pub struct OutputQueue {
    inner: Mutex<Inner>,
    available: Condvar,
    space: Notify,
    max_time: Duration,
}

impl OutputQueue {
    pub fn new(max_time: Duration) -> Self {
        OutputQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                queued: Duration::ZERO,
                queued_bytes: 0,
                flushing: true,
                position: None,
                taken_end: None,
                restarted: false,
                pushed: None,
                generation: 0,
                feed: 0,
            }),
            available: Condvar::new(),
            space: Notify::new(),
            max_time,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// What a fetch loop starting now feeds (see [`Self::push`]).
    pub fn feed(&self) -> u64 {
        self.lock().feed
    }

    /// Another fetch loop takes over without a flush downstream (a rendition switch): what is
    /// queued goes, the old loop's pushes are refused, the pad task goes on with the fragment
    /// it holds. Returns where the new loop must start so that nothing is played twice or
    /// skipped: the end of the fragment the pad task took last (else the playhead); None, and
    /// nothing changed, before a fetch loop said where it starts.
    pub fn restart(&self) -> Option<Duration> {
        let mut inner = self.lock();
        let from = inner.taken_end.or(inner.position)?;
        inner.items.clear();
        inner.queued = Duration::ZERO;
        inner.queued_bytes = 0;
        inner.feed += 1;
        inner.restarted = true;
        drop(inner);
        self.space.notify_waiters();
        Some(from)
    }

    /// Waits until the queue holds less than `max_time` (one item always fits), then queues.
    /// `feed`: what [`Self::feed`] was when the fetch loop started.
    pub async fn push(&self, feed: u64, item: OutputItem) -> Result<(), Stale> {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.feed != feed {
                    return Err(Stale);
                }
                let room = inner.queued < self.max_time && inner.queued_bytes < MAX_QUEUED_BYTES;
                if !inner.flushing && (inner.items.is_empty() || room) {
                    inner.queued += item.duration();
                    inner.queued_bytes += item.size();
                    inner.items.push_back(item);
                    self.available.notify_all();
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Queues `item` only if there is room now (`mode=seeder`: downstream must never hold
    /// the fetching back). Ok(false): dropped, no room or not started.
    pub fn try_push(&self, feed: u64, item: OutputItem) -> Result<bool, Stale> {
        let mut inner = self.lock();
        if inner.feed != feed {
            return Err(Stale);
        }
        let room = inner.queued < self.max_time && inner.queued_bytes < MAX_QUEUED_BYTES;
        if inner.flushing || !(inner.items.is_empty() || room) {
            return Ok(false);
        }
        inner.queued += item.duration();
        inner.queued_bytes += item.size();
        inner.items.push_back(item);
        self.available.notify_all();
        Ok(true)
    }

    /// Blocks the pad task until an item arrives; `None` once flushing. With the item: whether
    /// it is the first after a flush or a restart (maybe another rendition).
    pub fn pop_blocking(&self) -> Option<(OutputItem, bool)> {
        let mut inner = self.lock();
        loop {
            if inner.flushing {
                return None;
            }
            if let Some(item) = inner.items.pop_front() {
                inner.queued = inner.queued.saturating_sub(item.duration());
                inner.queued_bytes = inner.queued_bytes.saturating_sub(item.size());
                if let OutputItem::Fragment(f) = &item {
                    inner.position = Some(f.start);
                    inner.taken_end = Some(f.start + f.duration);
                }
                let restarted = std::mem::take(&mut inner.restarted);
                drop(inner);
                self.space.notify_waiters();
                return Some((item, restarted));
            }
            inner = self
                .available
                .wait(inner)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Flushing drops what is queued, wakes the pad task and invalidates in-flight pushes.
    pub fn set_flushing(&self, flushing: bool) {
        let mut inner = self.lock();
        inner.flushing = flushing;
        if flushing {
            inner.items.clear();
            inner.queued = Duration::ZERO;
            inner.queued_bytes = 0;
            inner.generation += 1;
            inner.feed += 1;
            inner.pushed = None;
            inner.position = None;
            inner.taken_end = None;
            inner.restarted = true;
        }
        drop(inner);
        self.available.notify_all();
        self.space.notify_waiters();
    }

    /// A fetch loop of this feed starts at `start`: the playhead until output flows
    /// (else a seek would leave the pre-seek position in place, and the requested segment
    /// would look far away and never urgent).
    pub fn set_start(&self, feed: u64, start: Duration) {
        let mut inner = self.lock();
        if inner.feed == feed && inner.pushed.is_none() {
            inner.position = Some(start);
        }
    }

    /// The pad task pushed a fragment taken in `generation` and downstream took it.
    pub fn mark_pushed(&self, generation: u64, start: Duration, duration: Duration) {
        let mut inner = self.lock();
        // A push that returns after a flush began must not bring back the old position.
        if inner.generation == generation && !inner.flushing {
            inner.pushed = Some((start, duration, Instant::now()));
        }
    }

    /// The playhead for P2P scheduling: the start of the fragment whose push last returned
    /// plus the time since (a synchronising sink returns when playback reaches that start),
    /// at most to its end; before any push returned, the start of the fragment taken last.
    /// Without a synchronising sink downstream this runs ahead of playback, which only makes
    /// segments urgent early. (The start of the fragment taken last alone is up to one segment
    /// ahead and frozen between segments: a segment never looked urgent, and playback stalled.)
    pub fn position(&self) -> Option<Duration> {
        let inner = self.lock();
        match inner.pushed {
            Some((start, duration, at)) => Some(start + at.elapsed().min(duration)),
            None => inner.position,
        }
    }

    pub fn buffered_time(&self) -> Duration {
        self.lock().queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn frag(secs: u64) -> OutputItem {
        OutputItem::Fragment(Fragment {
            init: None,
            data: Bytes::from_static(b"x"),
            start: Duration::ZERO,
            duration: Duration::from_secs(secs),
            discont: false,
            media_offset_ns: 0,
            program_date_time_ns: None,
        })
    }

    #[test]
    fn bounded_by_time_and_flush_interrupts() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let q = Arc::new(OutputQueue::new(Duration::from_secs(4)));
        q.set_flushing(false);
        let g = q.feed();
        rt.block_on(async {
            q.push(g, frag(2)).await.unwrap();
            q.push(g, frag(2)).await.unwrap();
            // Full: the third push must wait for the consumer.
            let blocked = tokio::time::timeout(Duration::from_millis(50), q.push(g, frag(2))).await;
            assert!(blocked.is_err());
        });
        assert_eq!(q.buffered_time(), Duration::from_secs(4));
        assert!(q.pop_blocking().is_some());
        rt.block_on(async { q.push(g, frag(2)).await.unwrap() });

        let q2 = q.clone();
        let t = std::thread::spawn(move || while q2.pop_blocking().is_some() {});
        q.set_flushing(true);
        t.join().unwrap();
        assert_eq!(rt.block_on(q.push(g, frag(1))), Err(Stale));
    }

    #[test]
    fn try_push_never_waits() {
        let q = OutputQueue::new(Duration::from_secs(4));
        let g = q.feed();
        // Not started (flushing): dropped, not an error.
        assert_eq!(q.try_push(g, frag(2)), Ok(false));
        q.set_flushing(false);
        let g = q.feed();
        assert_eq!(q.try_push(g, frag(2)), Ok(true));
        assert_eq!(q.try_push(g, frag(2)), Ok(true));
        assert_eq!(q.try_push(g, frag(2)), Ok(false));
        assert!(q.pop_blocking().is_some());
        assert_eq!(q.try_push(g, frag(2)), Ok(true));
        q.set_flushing(true);
        assert_eq!(q.try_push(g, frag(2)), Err(Stale));
    }

    #[test]
    fn a_restart_drops_the_queue_and_resumes_after_what_was_taken() {
        let at = |start: u64| {
            OutputItem::Fragment(Fragment {
                init: None,
                data: Bytes::from_static(b"x"),
                start: Duration::from_secs(start),
                duration: Duration::from_secs(2),
                discont: false,
                media_offset_ns: 0,
                program_date_time_ns: None,
            })
        };
        let q = OutputQueue::new(Duration::from_secs(30));
        q.set_flushing(false);
        let (g, old) = (q.generation(), q.feed());
        for start in [0, 2, 4] {
            assert_eq!(q.try_push(old, at(start)), Ok(true));
        }
        assert!(matches!(q.pop_blocking(), Some((_, false))));
        assert_eq!(q.restart(), Some(Duration::from_secs(2)));
        assert_eq!(q.buffered_time(), Duration::ZERO);
        assert_eq!(
            q.try_push(old, at(4)),
            Err(Stale),
            "the old loop is refused"
        );
        // The pad task's generation is untouched: the fragment it holds is still pushed.
        assert_eq!(q.generation(), g);
        let new = q.feed();
        assert_eq!(q.try_push(new, at(2)), Ok(true));
        assert_eq!(q.try_push(new, at(4)), Ok(true));
        match q.pop_blocking() {
            Some((OutputItem::Fragment(f), true)) => assert_eq!(f.start, Duration::from_secs(2)),
            _ => panic!("the new feed's first fragment, marked as restarted"),
        }
        assert!(matches!(q.pop_blocking(), Some((_, false))));
    }

    #[test]
    fn playhead_follows_pushes_seeks_and_flushes() {
        let q = OutputQueue::new(Duration::from_secs(30));
        q.set_flushing(false);
        let (g, f) = (q.generation(), q.feed());
        assert_eq!(q.position(), None);
        q.set_start(f, Duration::from_secs(10));
        assert_eq!(q.position(), Some(Duration::from_secs(10)));
        q.mark_pushed(g, Duration::from_secs(12), Duration::from_secs(2));
        let p = q.position().unwrap();
        assert!(
            p >= Duration::from_secs(12) && p <= Duration::from_secs(14),
            "{p:?}"
        );
        // A seek: the old playhead must not survive it, nor a push that returns late.
        q.set_flushing(true);
        assert_eq!(q.position(), None);
        q.set_flushing(false);
        q.mark_pushed(g, Duration::from_secs(14), Duration::from_secs(2));
        assert_eq!(q.position(), None);
        q.set_start(q.feed(), Duration::from_secs(80));
        assert_eq!(q.position(), Some(Duration::from_secs(80)));
    }
}
