//! Access to the origin over HTTP, with the accounting every download needs: byte counters
//! for `stats` and throughput samples for ABR (P2P transfers report theirs here too).

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use url::Url;

use super::stats::Stats;
use super::{EngineError, ErrorKind};
use crate::abr::{self, BandwidthEstimator};
use crate::media::Resource;
use crate::net::http::{BodyKind, Fetched, HttpClient, HttpError};

tokio::task_local! {
    /// Segments the current task downloaded itself. A fetch loop counts its own origin
    /// downloads in this scope to log where each segment came from; the swarm's downloads run
    /// in tasks of their own, outside it.
    pub static DIRECT_SEGMENT_FETCHES: Cell<u32>;
}

pub struct Origin {
    http: HttpClient,
    pub stats: Arc<Stats>,
    estimator: Mutex<BandwidthEstimator>,
    /// Wall-clock origin: the pure core takes time as an input, this is where it is read.
    epoch: Instant,
    keys: Mutex<HashMap<Url, Bytes>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Origin {
    pub fn new(http: HttpClient) -> Self {
        Origin {
            http,
            stats: Arc::new(Stats::default()),
            estimator: Mutex::new(BandwidthEstimator::new()),
            epoch: Instant::now(),
            keys: Mutex::new(HashMap::new()),
        }
    }

    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub fn now_ms(&self) -> u64 {
        self.now().as_millis() as u64
    }

    /// Fetches a resource; `segment` marks media segments (counted, and sampled for ABR);
    /// anything else is capped as a manifest.
    pub async fn fetch(&self, resource: &Resource, segment: bool) -> Result<Fetched, HttpError> {
        self.fetch_with_progress(resource, segment, &|_| {}).await
    }

    /// Fetches a resource that is not a media segment; `kind` picks its body cap.
    pub async fn fetch_kind(
        &self,
        resource: &Resource,
        kind: BodyKind,
    ) -> Result<Fetched, HttpError> {
        let fetched = self.http.fetch(resource, kind).await?;
        self.stats.add_http(fetched.data.len() as u64, false);
        Ok(fetched)
    }

    /// [`fetch`](Self::fetch), reporting the body bytes received so far after every chunk.
    pub async fn fetch_with_progress(
        &self,
        resource: &Resource,
        segment: bool,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Fetched, HttpError> {
        let kind = if segment {
            BodyKind::Segment
        } else {
            BodyKind::Manifest
        };
        let fetched = self
            .http
            .fetch_with_progress(resource, kind, progress)
            .await?;
        self.stats.add_http(fetched.data.len() as u64, segment);
        if segment {
            // Outside a fetch loop's scope (the swarm's tasks) there is nothing to count.
            let _ = DIRECT_SEGMENT_FETCHES.try_with(|n| n.set(n.get() + 1));
            self.sample(
                abr::Source::Http,
                fetched.data.len() as u64,
                fetched.elapsed,
            );
        }
        Ok(fetched)
    }

    /// A throughput sample from any source (P2P downloads report here).
    pub fn sample(&self, source: abr::Source, bytes: u64, elapsed: Duration) {
        let mut est = lock(&self.estimator);
        est.record(source, bytes, elapsed, self.now());
        if let Some(bps) = est.estimate_bps() {
            self.stats.bandwidth.store(bps, Relaxed);
        }
    }

    pub fn estimate_bps(&self) -> Option<u64> {
        lock(&self.estimator).estimate_bps()
    }

    /// AES-128 key, fetched once per URL.
    pub async fn key(&self, url: &Url) -> Result<Bytes, EngineError> {
        if let Some(k) = lock(&self.keys).get(url) {
            return Ok(k.clone());
        }
        let resource = Resource {
            url: url.clone(),
            range: None,
        };
        let fetched = self
            .fetch_kind(&resource, BodyKind::Key)
            .await
            .map_err(|e| {
                let mut err = http_error(e);
                err.message = format!("Could not get the AES-128 key: {}", err.message);
                err
            })?;
        lock(&self.keys).insert(url.clone(), fetched.data.clone());
        Ok(fetched.data)
    }
}

pub fn http_error(e: HttpError) -> EngineError {
    let kind = match &e {
        HttpError::Config(_) => ErrorKind::Settings,
        e if e.is_not_found() => ErrorKind::NotFound,
        _ => ErrorKind::Read,
    };
    EngineError {
        kind,
        message: e.to_string(),
        debug: format!("{e:?}"),
    }
}
