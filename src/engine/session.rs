//! One playback session, whatever the manifest format: the output streams, their fetch loops
//! (`fetcher.rs`), seeking, and the P2P swarm of each stream's current variant. What is
//! specific to HLS or DASH (which streams exist, how a media playlist is obtained and
//! refreshed) lives in the front-ends, `hls.rs` and `dash.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

use super::dash::DashFront;
use super::fetcher::{Fetcher, Refresh, Start};
use super::origin::{http_error, Origin};
use super::output::OutputQueue;
use super::p2p::{P2pEvent, P2pHub, P2pObserver, SegmentCheck, SegmentValidator, SwarmHandle};
use super::runtime::RUNTIME;
use super::stats::Stats;
use super::{EngineConfig, EngineError, ErrorKind, Protocol};
use crate::abr::AbrSettings;
use crate::media::{MediaPlaylist, Resource, StreamType, Variant};
use crate::net::http::HttpClient;
use crate::p2p::identity::{
    stream_swarm, swarm_id_from_url, Compat, StreamProperties, StreamType as P2pStreamType,
};

/// What the element needs to expose one output stream.
pub struct StreamSpec {
    pub queue: Arc<OutputQueue>,
    pub stream_type: StreamType,
    /// The rendition's / adaptation set's language, for the stream's tags.
    pub language: Option<String>,
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
    /// Peer and segment events of the P2P side.
    fn p2p_event(&self, _event: P2pEvent) {}
    /// The application's veto on a segment before it is stored and shared.
    fn validate_segment(&self, _check: &SegmentCheck<'_>, _data: &[u8]) -> bool {
        true
    }
}

/// One output stream as a front-end describes it before playback starts.
pub(super) struct NewStream {
    pub kind: StreamType,
    pub language: Option<String>,
    /// HLS: the master's variants; DASH: the adaptation set's representations.
    pub variants: Vec<Variant>,
    pub current: usize,
    /// A playlist the front-end already has for `current`.
    pub playlist: Option<MediaPlaylist>,
    /// Swarm identity of each variant (parallel to `variants`).
    pub swarms: Vec<(P2pStreamType, StreamProperties, usize)>,
    /// DASH: which track of the front-end this stream plays.
    pub track: usize,
}

/// What a front-end found in the manifest.
pub(super) struct Opened {
    /// Final URL of the manifest (after redirects): the swarm id's base.
    pub manifest_url: Url,
    /// The main stream first.
    pub streams: Vec<NewStream>,
    /// Where a live presentation starts, if the front-end knows better than "3 target
    /// durations from the end of the main playlist" (DASH: suggestedPresentationDelay).
    pub live_start: Option<Duration>,
}

/// Per output stream state shared between restarts of its fetch loop (seeks).
pub(super) struct StreamState {
    pub kind: StreamType,
    pub variants: Vec<Variant>,
    pub current: usize,
    pub track: usize,
    /// Last playlist fetched per variant index (VOD playlists never change, so they are reused).
    pub playlists: HashMap<usize, Arc<MediaPlaylist>>,
    pub queue: Arc<OutputQueue>,
    /// Info-hash of each variant's swarm (parallel to `variants`); empty without P2P.
    pub swarm_ids: Vec<(String, P2pStreamType)>,
    /// The swarm of the current variant, and the playlist it was last told about.
    pub swarm: Option<(SwarmHandle, Arc<MediaPlaylist>)>,
}

/// The manifest format's half of the session.
pub(super) enum Front {
    Hls,
    Dash(Box<DashFront>),
}

pub(super) struct Shared {
    pub origin: Arc<Origin>,
    pub hub: Option<Arc<P2pHub>>,
    pub front: Front,
    /// ABR limits can change while playing (hlsdemux2's properties are mutable in PLAYING).
    abr: Mutex<AbrSettings>,
    pub config: EngineConfig,
    events: Arc<dyn EngineEvents>,
    pub streams: Mutex<Vec<Arc<Mutex<StreamState>>>>,
    /// Timeline facts of the main stream, refreshed with its playlist.
    pub presentation: Mutex<Option<Presentation>>,
    failed: AtomicBool,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn abr(&self) -> AbrSettings {
        *lock(&self.abr)
    }

    pub fn fail(&self, error: EngineError) {
        if !self.failed.swap(true, Ordering::SeqCst) {
            self.events.error(error);
        }
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

    /// The media playlist of variant `index` of a stream, from its front-end.
    pub async fn load_playlist(
        &self,
        track: usize,
        variant: &Variant,
        index: usize,
    ) -> Result<MediaPlaylist, EngineError> {
        match &self.front {
            Front::Hls => super::hls::fetch_media_playlist(self, &variant.uri).await,
            Front::Dash(d) => d.playlist(self, track, index).await,
        }
    }

    /// Is this the main stream (the one whose timeline the element reports)?
    pub fn is_main(&self, stream: &Arc<Mutex<StreamState>>) -> bool {
        lock(&self.streams)
            .first()
            .is_some_and(|m| Arc::ptr_eq(m, stream))
    }

    /// A live variant's playlist loaded for an ABR switch, on the current one's timeline.
    pub fn align_switch(&self, current: &MediaPlaylist, new: MediaPlaylist) -> MediaPlaylist {
        match &self.front {
            Front::Hls => super::hls::align(current, new),
            // DASH times are presentation times already shared by every Representation.
            Front::Dash(_) => new,
        }
    }

    /// How long to wait before reloading a live playlist.
    pub fn reload_wait(&self, playlist: &MediaPlaylist, changed: bool) -> Duration {
        let wait = match &self.front {
            Front::Hls => playlist.reload_interval(changed),
            Front::Dash(d) => d.reload_wait(playlist),
        };
        wait.max(Duration::from_millis(250))
    }

    /// The refreshed playlist of a live stream's current variant; `None`: ask again later.
    pub async fn reload(
        &self,
        track: usize,
        index: usize,
        old: &MediaPlaylist,
        attempts: &mut u32,
    ) -> Result<Option<(MediaPlaylist, Refresh)>, EngineError> {
        match &self.front {
            Front::Hls => super::hls::reload(self, old, attempts).await,
            Front::Dash(d) => d
                .reload(self, track, index)
                .await
                .map(|p| Some((p, Refresh::Continued))),
        }
    }
}

/// A running session. Dropping it stops every task.
pub struct Engine {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    pub fn start(
        protocol: Protocol,
        location: Url,
        config: EngineConfig,
        events: Arc<dyn EngineEvents>,
    ) -> Result<Arc<Self>, EngineError> {
        let http = HttpClient::new(config.http.clone()).map_err(http_error)?;
        let origin = Arc::new(Origin::new(http));
        let hub = match config.p2p.as_ref().filter(|p| p.enabled) {
            Some(p2p) => Some(
                P2pHub::start(
                    p2p.clone(),
                    origin.clone(),
                    Some(observer(&events)),
                    Some(validator(&events)),
                )
                .map_err(|e| EngineError {
                    kind: ErrorKind::Settings,
                    message: format!("Cannot start P2P: {e}"),
                    debug: String::new(),
                })?,
            ),
            None => None,
        };
        let front = match protocol {
            Protocol::Hls => Front::Hls,
            Protocol::Dash => Front::Dash(Box::default()),
        };
        let shared = Arc::new(Shared {
            origin,
            hub,
            front,
            abr: Mutex::new(config.abr),
            config,
            events,
            streams: Mutex::new(Vec::new()),
            presentation: Mutex::new(None),
            failed: Default::default(),
        });
        let engine = Arc::new(Engine {
            shared,
            tasks: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&engine);
        let task = RUNTIME.spawn(async move {
            let Some(engine) = weak.upgrade() else { return };
            if let Err(e) = engine.open(location).await {
                engine.shared.fail(e);
            }
        });
        lock(&engine.tasks).push(task);
        Ok(engine)
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.shared.origin.stats.clone()
    }

    /// New ABR limits take effect at the next segment boundary.
    pub fn set_abr(&self, abr: AbrSettings) {
        *lock(&self.shared.abr) = abr;
    }

    pub fn hub(&self) -> Option<&Arc<P2pHub>> {
        self.shared.hub.as_ref()
    }

    pub fn presentation(&self) -> Option<Presentation> {
        *lock(&self.shared.presentation)
    }

    /// Aborts every fetch. Queues must have been set flushing by the caller.
    pub fn stop(&self) {
        for t in lock(&self.tasks).drain(..) {
            t.abort();
        }
    }

    /// Start and end of the main stream's segment holding `t`, for snapping seeks.
    pub fn segment_bounds(&self, t: Duration) -> Option<(Duration, Duration)> {
        let main = lock(&self.shared.streams).first().cloned()?;
        let st = lock(&main);
        let p = st.playlists.get(&st.current)?;
        let seg = &p.segments[p.segment_index_at(t)?];
        Some((seg.start, seg.end()))
    }

    /// Restarts every stream's fetch loop at the segment holding `target` (the caller has
    /// flushed the queues). Returns false if the target is outside the seekable range.
    pub fn seek(self: &Arc<Self>, target: Duration) -> bool {
        let Some(p) = self.presentation() else {
            return false;
        };
        if target < p.seek_range.0 || (p.live && target > p.seek_range.1) {
            return false;
        }
        self.stop();
        let streams = lock(&self.shared.streams).clone();
        let mut tasks = lock(&self.tasks);
        for s in streams {
            tasks.push(self.spawn_fetcher(s, Start::At(target)));
        }
        true
    }

    async fn open(self: &Arc<Self>, location: Url) -> Result<(), EngineError> {
        let opened = match &self.shared.front {
            Front::Hls => super::hls::open(&self.shared, &location).await?,
            Front::Dash(d) => d.open(&self.shared, &location).await?,
        };
        let swarm = self.shared.swarm_id(&opened.manifest_url);
        let states = opened
            .streams
            .into_iter()
            .map(|s| self.new_stream(s, &swarm))
            .collect();
        self.run(states, opened.live_start).await
    }

    fn new_stream(&self, s: NewStream, swarm: &str) -> (Arc<Mutex<StreamState>>, Option<String>) {
        let mut playlists = HashMap::new();
        if let Some(p) = s.playlist {
            playlists.insert(s.current, Arc::new(p));
        }
        let compat = self
            .shared
            .config
            .p2p
            .as_ref()
            .map_or(Compat::Pml23, |p| p.compat);
        let swarm_ids = match &self.shared.hub {
            Some(_) => s
                .swarms
                .iter()
                .map(|(kind, props, position)| {
                    (
                        stream_swarm(compat, swarm, *kind, props, *position).info_hash,
                        *kind,
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        let state = Arc::new(Mutex::new(StreamState {
            kind: s.kind,
            variants: s.variants,
            current: s.current,
            track: s.track,
            playlists,
            queue: Arc::new(OutputQueue::new(self.shared.config.max_buffering_time)),
            swarm_ids,
            swarm: None,
        }));
        (state, s.language)
    }

    /// Fetches every stream's first playlist, announces the streams, starts the fetch loops.
    async fn run(
        self: &Arc<Self>,
        streams: Vec<(Arc<Mutex<StreamState>>, Option<String>)>,
        live_start: Option<Duration>,
    ) -> Result<(), EngineError> {
        let mut main_playlist = None;
        for (s, _) in &streams {
            let (variant, current, track, have) = {
                let st = lock(s);
                (
                    st.variants[st.current].clone(),
                    st.current,
                    st.track,
                    st.playlists.get(&st.current).cloned(),
                )
            };
            let p = match have {
                Some(p) => p,
                None => {
                    let p = Arc::new(self.shared.load_playlist(track, &variant, current).await?);
                    lock(s).playlists.insert(current, p.clone());
                    p
                }
            };
            if main_playlist.is_none() {
                main_playlist = Some(p);
            }
        }
        let Some(main) = main_playlist else {
            return Ok(());
        };
        if main.segments.is_empty() && !main.is_live() {
            return Err(EngineError {
                kind: ErrorKind::Format,
                message: format!("{} lists no media segments", main.url),
                debug: String::new(),
            });
        }
        *lock(&self.shared.presentation) = Some(Presentation::of(&main));
        let begin = match (main.is_live(), live_start) {
            (false, _) => Start::At(Duration::ZERO),
            (true, Some(t)) => Start::At(t),
            (true, None) => Start::LiveEdge,
        };
        let start = match begin {
            Start::At(t) => main
                .segments
                .get(main.start_index_for(t))
                .map(|s| s.start)
                .unwrap_or(t),
            Start::LiveEdge => main
                .segments
                .get(main.live_start_index())
                .map(|s| s.start)
                .unwrap_or_default(),
        };
        let specs = streams
            .iter()
            .map(|(s, language)| {
                let st = lock(s);
                StreamSpec {
                    queue: st.queue.clone(),
                    stream_type: st.kind,
                    language: language.clone(),
                }
            })
            .collect();
        {
            let st = lock(&streams[0].0);
            self.shared
                .origin
                .stats
                .variant_bitrate
                .store(st.variants[st.current].bandwidth, Ordering::Relaxed);
        }
        let states: Vec<_> = streams.into_iter().map(|(s, _)| s).collect();
        *lock(&self.shared.streams) = states.clone();
        self.shared.events.streams_ready(specs, start);
        let mut tasks = lock(&self.tasks);
        for s in states {
            tasks.push(self.spawn_fetcher(s, begin));
        }
        Ok(())
    }

    fn spawn_fetcher(
        self: &Arc<Self>,
        stream: Arc<Mutex<StreamState>>,
        start: Start,
    ) -> JoinHandle<()> {
        let shared = self.shared.clone();
        RUNTIME.spawn(async move {
            let mut f = Fetcher::new(shared.clone(), stream);
            if let Err(e) = f.run(start).await {
                shared.fail(e);
            }
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
        if let Some(hub) = &self.shared.hub {
            hub.shutdown();
        }
    }
}

/// Forwards P2P events to the element without keeping it alive.
fn observer(events: &Arc<dyn EngineEvents>) -> P2pObserver {
    let weak = Arc::downgrade(events);
    Arc::new(move |ev| {
        if let Some(e) = weak.upgrade() {
            e.p2p_event(ev)
        }
    })
}

fn validator(events: &Arc<dyn EngineEvents>) -> SegmentValidator {
    let weak = Arc::downgrade(events);
    Arc::new(move |check, data| {
        weak.upgrade()
            .is_none_or(|e| e.validate_segment(check, data))
    })
}
