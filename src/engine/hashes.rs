//! `segment-hashes-url`: the published SHA-256 of every segment (PeerTube's
//! `segments-sha256.json`), fetched at start and again when a live stream lists segments the
//! table does not have yet. The swarms get every new table (`subscribe`) and check each segment
//! from the origin or a peer against it; the fetch loop checks what it takes straight from the
//! origin (`payload::hashes` decides).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use url::Url;

use super::context::lock;
use super::origin::{http_error, Origin};
use super::{task, EngineError, ErrorKind, CAT};
use crate::media::Resource;
use crate::net::http::BodyKind;
use crate::payload::hashes::SegmentHashes;

/// PeerTube's validator re-fetches an unknown name up to 10 times, 500 ms apart.
const TRIES: u32 = 10;
const RETRY_WAIT: Duration = Duration::from_millis(500);
/// After a round that never found a segment, later rounds fetch once: a table that does not
/// list this stream at all must not cost a fetch every 500 ms.
const QUIET_AFTER_GIVING_UP: Duration = Duration::from_secs(30);

pub(crate) struct HashBook {
    url: Url,
    origin: Arc<Origin>,
    table: watch::Sender<Arc<SegmentHashes>>,
    refreshing: AtomicBool,
    gave_up_at: Mutex<Option<Instant>>,
}

impl HashBook {
    pub fn new(url: Url, origin: Arc<Origin>) -> Arc<Self> {
        Arc::new(HashBook {
            url,
            origin,
            table: watch::Sender::new(Arc::new(SegmentHashes::default())),
            refreshing: AtomicBool::new(false),
            gave_up_at: Mutex::new(None),
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<SegmentHashes>> {
        self.table.subscribe()
    }

    pub fn current(&self) -> Arc<SegmentHashes> {
        self.table.borrow().clone()
    }

    async fn fetch(&self) -> Result<Arc<SegmentHashes>, EngineError> {
        let resource = Resource {
            url: self.url.clone(),
            range: None,
        };
        let fetched = self
            .origin
            .fetch_kind(&resource, BodyKind::Manifest)
            .await
            .map_err(http_error)?;
        let table = SegmentHashes::parse(&fetched.data).map_err(|e| EngineError {
            kind: ErrorKind::Format,
            message: format!("segment-hashes-url {}: {e}", self.url),
            debug: String::new(),
        })?;
        let table = Arc::new(table);
        self.table.send_replace(table.clone());
        Ok(table)
    }

    /// The first table; without it the session does not start (the user asked for checks).
    pub async fn load(&self) -> Result<(), EngineError> {
        let t = self.fetch().await.map_err(|e| EngineError {
            message: format!("Cannot load segment-hashes-url {}: {}", self.url, e.message),
            ..e
        })?;
        gst::info!(
            CAT,
            "segment hashes: {} file(s) listed in {}",
            t.len(),
            self.url
        );
        Ok(())
    }

    /// A playlist lists `newest`: fetch the table again (in the background, never holding
    /// playback) until it lists it too. Until then a peer's copy of it cannot be checked and
    /// the origin's is used.
    pub fn want(self: &Arc<Self>, newest: &Resource) {
        if self.current().knows(newest) || self.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let quiet = lock(&self.gave_up_at).is_some_and(|t| t.elapsed() < QUIET_AFTER_GIVING_UP);
        let tries = if quiet { 1 } else { TRIES };
        let (book, newest) = (self.clone(), newest.clone());
        task::spawn_logged("segment hashes", async move {
            for i in 0..tries {
                if i > 0 {
                    tokio::time::sleep(RETRY_WAIT).await;
                }
                match book.fetch().await {
                    Ok(t) if t.knows(&newest) => {
                        *lock(&book.gave_up_at) = None;
                        book.refreshing.store(false, Ordering::Release);
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => gst::warning!(CAT, "segment hashes: {}", e.message),
                }
            }
            gst::warning!(
                CAT,
                "segment hashes: {} does not list {} (range {:?}); peers' copies of it are \
                 not used",
                book.url,
                newest.url,
                newest.range
            );
            *lock(&book.gave_up_at) = Some(Instant::now());
            book.refreshing.store(false, Ordering::Release);
        });
    }
}
