//! What every part of a session shares: the origin, the P2P hub, the settings, the element's
//! callbacks and the output streams. The bottom of the engine: it knows no front-end, so the
//! front-ends, the fetch loop and the session can all build on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use url::Url;

use super::hashes::HashBook;
use super::origin::{http_error, Origin};
use super::output::OutputQueue;
use super::p2p::{P2pEvent, P2pHub, SegmentCheck};
use super::stream::{Choice, StreamState};
use super::{EngineConfig, EngineError, CAT};
use crate::abr::AbrSettings;
use crate::media::{MediaPlaylist, MediaType, Resource};
use crate::p2p::identity::swarm_id_from_url;

/// What the element needs to expose one output stream.
pub struct StreamSpec {
    pub queue: Arc<OutputQueue>,
    pub stream_type: MediaType,
    /// The rendition's / adaptation set's language, for the stream's tags.
    pub language: Option<String>,
    /// The alternatives an application may select on this output (`Engine::select`), and
    /// the one playing; empty when the output has no alternative.
    pub choices: Vec<Choice>,
    pub chosen: usize,
}

/// Timeline facts the element answers queries with.
#[derive(Debug, Clone, Copy)]
pub struct Presentation {
    pub live: bool,
    /// VOD: total duration.
    pub duration: Option<Duration>,
    /// Seekable range on the stream timeline (VOD: whole; live: the current window).
    pub seek_range: (Duration, Duration),
}

impl Presentation {
    pub(super) fn of(p: &MediaPlaylist) -> Self {
        let first = p.segments.first().map(|s| s.start).unwrap_or_default();
        let end = p.segments.last().map(|s| s.end()).unwrap_or_default();
        let live = p.is_live();
        Presentation {
            live,
            duration: (!live).then_some(end),
            seek_range: (first, end),
        }
    }
}

/// Callbacks into the GStreamer glue. Called from tokio threads.
pub trait EngineEvents: Send + Sync + 'static {
    /// Streams are known and their queues are about to be fed; `start` is the timeline
    /// position playback begins at.
    fn streams_ready(&self, streams: Vec<StreamSpec>, start: Duration);
    /// Playback cannot go on. Called at most once per session.
    fn error(&self, error: EngineError);
    /// Playback goes on but something is wrong (a frozen live playlist): a bus warning.
    fn warning(&self, _warning: EngineError) {}
    /// Peer and segment events of the P2P side.
    fn p2p_event(&self, _event: P2pEvent) {}
    /// The application's veto on a segment before it is stored and shared.
    fn validate_segment(&self, _check: &SegmentCheck<'_>, _data: &[u8]) -> bool {
        true
    }
}

/// The session context shared by the session, its front-end and every fetch loop.
pub(super) struct Shared {
    pub origin: Arc<Origin>,
    pub hub: Option<Arc<P2pHub>>,
    /// `segment-hashes-url`'s table, when set.
    pub hashes: Option<Arc<HashBook>>,
    /// ABR limits can change while playing (hlsdemux2's properties are mutable in PLAYING).
    abr: Mutex<AbrSettings>,
    pub config: EngineConfig,
    pub events: Arc<dyn EngineEvents>,
    pub streams: Mutex<Vec<Arc<Mutex<StreamState>>>>,
    /// Timeline facts of the main stream, refreshed with its playlist.
    pub presentation: Mutex<Option<Presentation>>,
    failed: AtomicBool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(
        origin: Arc<Origin>,
        hub: Option<Arc<P2pHub>>,
        hashes: Option<Arc<HashBook>>,
        config: EngineConfig,
        events: Arc<dyn EngineEvents>,
    ) -> Self {
        Shared {
            origin,
            hub,
            hashes,
            abr: Mutex::new(config.abr),
            config,
            events,
            streams: Mutex::new(Vec::new()),
            presentation: Mutex::new(None),
            failed: Default::default(),
        }
    }

    pub fn abr(&self) -> AbrSettings {
        *lock(&self.abr)
    }

    pub fn set_abr(&self, abr: AbrSettings) {
        *lock(&self.abr) = abr;
    }

    pub fn fail(&self, error: EngineError) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            gst::error!(CAT, "{:?}: {}", error.kind, error.message);
            if !error.debug.is_empty() {
                gst::debug!(CAT, "{}", error.debug);
            }
            self.events.error(error);
        } else {
            // Only the first error reaches the element; the others are its consequences.
            gst::debug!(CAT, "also failed: {}", error.message);
        }
    }

    /// A problem the user should see while playback goes on (a bus WARNING).
    pub fn warn(&self, warning: EngineError) {
        gst::warning!(CAT, "{:?}: {}", warning.kind, warning.message);
        self.events.warning(warning);
    }

    /// PML's swarm id: the manifest's final URL without its query, unless configured.
    pub fn swarm_id(&self, final_url: &Url) -> String {
        let configured = self.config.p2p.as_ref().and_then(|p| p.swarm_id.as_deref());
        swarm_id_from_url(final_url, configured)
    }

    /// A whole manifest (playlist, MPD) and its final URL after redirects.
    pub async fn fetch_manifest(&self, url: &Url) -> Result<(bytes::Bytes, Url), EngineError> {
        let resource = Resource {
            url: url.clone(),
            range: None,
        };
        let fetched = self
            .origin
            .fetch(&resource, false)
            .await
            .map_err(http_error)?;
        Ok((fetched.data, fetched.final_url))
    }

    /// Is this the main stream (the one whose timeline the element reports)?
    pub fn is_main(&self, stream: &Arc<Mutex<StreamState>>) -> bool {
        lock(&self.streams)
            .first()
            .is_some_and(|m| Arc::ptr_eq(m, stream))
    }
}
