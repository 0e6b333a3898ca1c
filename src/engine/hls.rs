//! HLS session: fetches the master playlist, picks the streams to output, and runs one
//! fetch loop per output stream (main variant with ABR, alternate audio rendition).
//! Every decision about playlists is delegated to the pure `manifest::hls` module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use url::Url;

use super::origin::{http_error, Origin};
use super::output::{Fragment, OutputItem, OutputQueue};
use super::p2p::{
    LoadError, P2pEvent, P2pHub, P2pObserver, SegmentCheck, SegmentValidator, SwarmHandle,
};
use super::runtime::RUNTIME;
use super::stats::Stats;
use super::{EngineConfig, EngineError, ErrorKind};
use crate::abr::{self, AbrSettings};
use crate::manifest::hls::{self as m3u8, Playlist};
use crate::manifest::ManifestError;
use crate::media::{
    Aes128Key, MasterPlaylist, MediaPlaylist, Rendition, Resource, Segment, StreamType, Variant,
};
use crate::net::http::HttpClient;
use crate::p2p::hls_streams::{audio_track_position, audio_track_properties, level_properties};
use crate::p2p::identity::{
    stream_swarm, swarm_id_from_url, Compat, StreamProperties, StreamType as P2pStreamType,
};
use crate::payload::decrypt::aes128_cbc_decrypt;
use crate::payload::sniff::sniff;

/// What the element needs to expose one output stream.
pub struct StreamSpec {
    pub queue: Arc<OutputQueue>,
    pub stream_type: StreamType,
    /// The rendition's language, for the stream's tags.
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
    fn of(p: &MediaPlaylist) -> Self {
        let first = p.segments.first().map(|s| s.start).unwrap_or_default();
        let end = p.segments.last().map(|s| s.end()).unwrap_or_default();
        let live = p.is_live();
        Presentation {
            live,
            duration: (!live).then(|| p.duration()),
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

/// Per output stream state shared between restarts of its fetch loop (seeks).
struct StreamState {
    kind: StreamType,
    /// Main stream: the master's variants (sorted as in the master); renditions: one entry.
    variants: Vec<Variant>,
    current: usize,
    /// Last playlist fetched per variant index (VOD playlists never change, so they are reused).
    playlists: HashMap<usize, Arc<MediaPlaylist>>,
    queue: Arc<OutputQueue>,
    /// Info-hash of each variant's swarm (parallel to `variants`); empty without P2P.
    swarm_ids: Vec<(String, P2pStreamType)>,
    /// The swarm of the current variant, and the playlist it was last told about.
    swarm: Option<(SwarmHandle, Arc<MediaPlaylist>)>,
}

struct Shared {
    origin: Arc<Origin>,
    hub: Option<Arc<P2pHub>>,
    /// ABR limits can change while playing (hlsdemux2's properties are mutable in PLAYING).
    abr: Mutex<AbrSettings>,
    config: EngineConfig,
    events: Arc<dyn EngineEvents>,
    streams: Mutex<Vec<Arc<Mutex<StreamState>>>>,
    failed: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn abr(&self) -> AbrSettings {
        *lock(&self.abr)
    }

    fn fail(&self, error: EngineError) {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.events.error(error);
        }
    }

    async fn fetch_playlist(&self, url: &Url) -> Result<(Playlist, Url), EngineError> {
        let fetched = self
            .origin
            .fetch(
                &Resource {
                    url: url.clone(),
                    range: None,
                },
                false,
            )
            .await
            .map_err(http_error)?;
        let playlist = m3u8::parse(&fetched.data, &fetched.final_url)
            .map_err(|e| manifest_error(e, &fetched.final_url))?;
        Ok((playlist, fetched.final_url))
    }

    async fn fetch_media_playlist(&self, url: &Url) -> Result<MediaPlaylist, EngineError> {
        match self.fetch_playlist(url).await? {
            (Playlist::Media(p), _) => Ok(p),
            (Playlist::Master(_), final_url) => Err(EngineError {
                kind: ErrorKind::Format,
                message: format!("Expected a media playlist at {final_url}, got a master playlist"),
                debug: String::new(),
            }),
        }
    }
}

fn manifest_error(e: ManifestError, url: &Url) -> EngineError {
    let kind = match e {
        ManifestError::Unsupported(_) => ErrorKind::Unsupported,
        _ => ErrorKind::Format,
    };
    EngineError {
        kind,
        message: format!("Invalid playlist {url}: {e}"),
        debug: format!("{e:?}"),
    }
}

/// A running HLS session. Dropping it stops every task.
pub struct HlsEngine {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    presentation: Arc<Mutex<Option<Presentation>>>,
}

impl HlsEngine {
    pub fn start(
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
        let shared = Arc::new(Shared {
            origin,
            hub,
            abr: Mutex::new(config.abr),
            config,
            events,
            streams: Mutex::new(Vec::new()),
            failed: Default::default(),
        });
        let engine = Arc::new(HlsEngine {
            shared,
            tasks: Mutex::new(Vec::new()),
            presentation: Arc::new(Mutex::new(None)),
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
        *lock(&self.presentation)
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
        let (playlist, final_url) = self.shared.fetch_playlist(&location).await?;
        let master = match playlist {
            Playlist::Master(m) => m,
            // A lone media playlist: one variant of unknown bandwidth.
            Playlist::Media(p) => {
                let variant = Variant::with_uri(final_url.clone());
                let swarm = self.swarm_id(&final_url);
                let ids = vec![swarm_identity(
                    &swarm,
                    P2pStreamType::Main,
                    &level_properties(&variant),
                    0,
                    &self.shared,
                )];
                let state = self.new_stream(StreamType::Video, vec![variant], 0, Some(p), ids);
                return self.run(vec![state]).await;
            }
        };
        if master.variants.is_empty() {
            return Err(EngineError {
                kind: ErrorKind::Format,
                message: format!("Master playlist {final_url} lists no variant streams"),
                debug: String::new(),
            });
        }
        let bandwidths: Vec<u64> = master.variants.iter().map(|v| v.bandwidth).collect();
        let first = {
            let est = self.shared.origin.estimate_bps();
            abr::select_variant(&bandwidths, est, &self.shared.abr())
        };
        let swarm = self.swarm_id(&final_url);
        let ids = master
            .variants
            .iter()
            .enumerate()
            .map(|(i, v)| {
                swarm_identity(
                    &swarm,
                    P2pStreamType::Main,
                    &level_properties(v),
                    i,
                    &self.shared,
                )
            })
            .collect();
        let mut streams =
            vec![self.new_stream(StreamType::Video, master.variants.clone(), first, None, ids)];
        if let Some(audio) = pick_audio(&master, &master.variants[first]) {
            let variant = rendition_variant(audio);
            let props = audio_track_properties(&master, audio);
            let position = audio_track_position(&master, audio);
            let ids = vec![swarm_identity(
                &swarm,
                P2pStreamType::Secondary,
                &props,
                position,
                &self.shared,
            )];
            streams.push(self.new_stream(StreamType::Audio, vec![variant], 0, None, ids));
        }
        self.run(streams).await
    }

    fn new_stream(
        &self,
        kind: StreamType,
        variants: Vec<Variant>,
        current: usize,
        playlist: Option<MediaPlaylist>,
        swarm_ids: Vec<(String, P2pStreamType)>,
    ) -> Arc<Mutex<StreamState>> {
        let mut playlists = HashMap::new();
        if let Some(p) = playlist {
            playlists.insert(current, Arc::new(p));
        }
        Arc::new(Mutex::new(StreamState {
            kind,
            variants,
            current,
            playlists,
            queue: Arc::new(OutputQueue::new(self.shared.config.max_buffering_time)),
            swarm_ids: if self.shared.hub.is_some() {
                swarm_ids
            } else {
                Vec::new()
            },
            swarm: None,
        }))
    }

    /// PML's swarm id: the manifest's final URL without its query, unless configured.
    fn swarm_id(&self, final_url: &Url) -> String {
        let configured = self
            .shared
            .config
            .p2p
            .as_ref()
            .and_then(|p| p.swarm_id.as_deref());
        swarm_id_from_url(final_url, configured)
    }

    /// Fetches every stream's first playlist, announces the streams, starts the fetch loops.
    async fn run(
        self: &Arc<Self>,
        streams: Vec<Arc<Mutex<StreamState>>>,
    ) -> Result<(), EngineError> {
        let mut main_playlist = None;
        for s in &streams {
            let (uri, current, have) = {
                let st = lock(s);
                (
                    st.variants[st.current].uri.clone(),
                    st.current,
                    st.playlists.get(&st.current).cloned(),
                )
            };
            let p = match have {
                Some(p) => p,
                None => {
                    let p = Arc::new(self.shared.fetch_media_playlist(&uri).await?);
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
                message: format!("Playlist {} has no segments", main.url),
                debug: String::new(),
            });
        }
        self.update_presentation(&main);
        let start = if main.is_live() {
            main.segments
                .get(main.live_start_index())
                .map(|s| s.start)
                .unwrap_or_default()
        } else {
            Duration::ZERO
        };
        let specs = streams
            .iter()
            .map(|s| {
                let st = lock(s);
                StreamSpec {
                    queue: st.queue.clone(),
                    stream_type: st.kind,
                    language: None,
                }
            })
            .collect();
        {
            let st = lock(&streams[0]);
            self.shared.origin.stats.variant_bitrate.store(
                st.variants[st.current].bandwidth,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        *lock(&self.shared.streams) = streams.clone();
        self.shared.events.streams_ready(specs, start);
        let mut tasks = lock(&self.tasks);
        for s in streams {
            let begin = if main.is_live() {
                Start::LiveEdge
            } else {
                Start::At(Duration::ZERO)
            };
            tasks.push(self.spawn_fetcher(s, begin));
        }
        Ok(())
    }

    fn update_presentation(&self, p: &MediaPlaylist) {
        *lock(&self.presentation) = Some(Presentation::of(p));
    }

    fn spawn_fetcher(
        self: &Arc<Self>,
        stream: Arc<Mutex<StreamState>>,
        start: Start,
    ) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let presentation = self.presentation.clone();
        let generation = lock(&stream).queue.generation();
        RUNTIME.spawn(async move {
            let mut f = Fetcher {
                shared: shared.clone(),
                stream,
                generation,
                presentation,
            };
            if let Err(e) = f.run(start).await {
                shared.fail(e);
            }
        })
    }
}

impl Drop for HlsEngine {
    fn drop(&mut self) {
        self.stop();
        if let Some(hub) = &self.shared.hub {
            hub.shutdown();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// The playlist grew (or ended) on the same timeline.
    Continued,
    /// Its media sequence restarted: a new timeline after the old end.
    Rebased,
}

#[derive(Debug, Clone, Copy)]
enum Start {
    LiveEdge,
    At(Duration),
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

/// Info-hash and stream type of one stream's swarm, per the configured compat family.
fn swarm_identity(
    swarm: &str,
    kind: P2pStreamType,
    props: &StreamProperties,
    position: usize,
    shared: &Shared,
) -> (String, P2pStreamType) {
    let compat = shared
        .config
        .p2p
        .as_ref()
        .map_or(Compat::Pml23, |p| p.compat);
    (
        stream_swarm(compat, swarm, kind, props, position).info_hash,
        kind,
    )
}

/// The default rendition of the variant's audio group that has its own playlist.
fn pick_audio<'a>(master: &'a MasterPlaylist, variant: &Variant) -> Option<&'a Rendition> {
    let group = variant.audio_group.as_deref()?;
    let candidates: Vec<&Rendition> = master
        .renditions
        .iter()
        .filter(|r| r.stream_type == StreamType::Audio && r.group_id == group && r.uri.is_some())
        .collect();
    candidates
        .iter()
        .find(|r| r.default)
        .or_else(|| candidates.iter().find(|r| r.autoselect))
        .or_else(|| candidates.first())
        .copied()
}

fn rendition_variant(r: &Rendition) -> Variant {
    Variant::with_uri(r.uri.clone().expect("filtered on uri"))
}

/// How many times a segment whose bytes are not media (HTML error page, garbage) is fetched again.
const BAD_DATA_RETRIES: u32 = 2;

/// One run of one stream's fetch loop, from a start position until EOS, an error or abort.
struct Fetcher {
    shared: Arc<Shared>,
    stream: Arc<Mutex<StreamState>>,
    generation: u64,
    presentation: Arc<Mutex<Option<Presentation>>>,
}

impl Fetcher {
    fn playlist(&self) -> Arc<MediaPlaylist> {
        let st = lock(&self.stream);
        st.playlists[&st.current].clone()
    }

    async fn push(&self, item: OutputItem) -> bool {
        let queue = lock(&self.stream).queue.clone();
        queue.push(self.generation, item).await.is_ok()
    }

    async fn run(&mut self, start: Start) -> Result<(), EngineError> {
        let playlist = self.playlist();
        let first = match start {
            Start::LiveEdge => playlist.live_start_index(),
            Start::At(t) => playlist.segment_index_at(t).unwrap_or_else(|| {
                let end = playlist
                    .segments
                    .last()
                    .map(|s| s.end())
                    .unwrap_or_default();
                // Past the end: nothing left but EOS (or, live, the next segment to come).
                if t >= end {
                    playlist.segments.len()
                } else {
                    0
                }
            }),
        };
        let mut next_seq = match playlist.segments.get(first) {
            Some(s) => s.sequence,
            None => playlist
                .segments
                .last()
                .map_or(playlist.media_sequence, |s| s.sequence + 1),
        };
        let mut discont = true;
        let mut last_init: Option<Resource> = None;
        loop {
            let playlist = self.playlist();
            let Some(index) = playlist.find_sequence(next_seq).or_else(|| {
                // Fell out of a live window (we were too slow): resume at its oldest segment.
                playlist
                    .segments
                    .first()
                    .filter(|s| s.sequence > next_seq)
                    .map(|_| 0)
            }) else {
                if !playlist.is_live() {
                    self.push(OutputItem::Eos).await;
                    return Ok(());
                }
                if self.wait_for_refresh(&playlist).await? == Refresh::Rebased {
                    let p = self.playlist();
                    next_seq = p.segments.first().map_or(next_seq, |s| s.sequence);
                    discont = true;
                }
                continue;
            };
            let segment = playlist.segments[index].clone();
            if segment.sequence != next_seq {
                discont = true;
            }
            if segment.gap {
                next_seq = segment.sequence + 1;
                discont = true;
                continue;
            }
            // ABR decides at segment boundaries, and only the main stream has variants.
            if self.maybe_switch().await {
                let p = self.playlist();
                if let Some(i) = p.segment_index_at(segment.start + Duration::from_millis(1)) {
                    next_seq = p.segments[i].sequence;
                    discont = true;
                    last_init = None;
                    continue;
                }
            }
            let init = if segment.init.is_some() && (segment.init != last_init || discont) {
                let r = segment.init.clone().expect("checked");
                let data = self
                    .shared
                    .origin
                    .fetch(&r, false)
                    .await
                    .map_err(http_error)?
                    .data;
                last_init = Some(r);
                Some(match &segment.init_key {
                    Some(key) => {
                        self.decrypt(&data, key, segment.sequence, &segment.resource.url)
                            .await?
                    }
                    None => data,
                })
            } else {
                None
            };
            let data = self.fetch_segment(&playlist, index).await?;
            let fragment = Fragment {
                init,
                data,
                start: segment.start,
                duration: segment.duration,
                discont: discont || segment.discontinuity,
            };
            if !self.push(OutputItem::Fragment(fragment)).await {
                return Ok(()); // flushed: a seek restarts us
            }
            discont = false;
            next_seq = segment.sequence + 1;
        }
    }

    /// Whole segment, decrypted and checked to be media: through the swarm when P2P is on
    /// (store, peers or origin, as the scheduler decides), else — or if that fails or its
    /// bytes do not decode — straight from the origin, retrying bad data a few times.
    async fn fetch_segment(
        &self,
        playlist: &Arc<MediaPlaylist>,
        index: usize,
    ) -> Result<Bytes, EngineError> {
        let segment = &playlist.segments[index];
        if let Some(swarm) = self.swarm_for(playlist) {
            match swarm.load(segment.sequence).await {
                Ok(loaded) => match self.decode(segment, loaded.data).await {
                    Ok(data) => return Ok(data),
                    Err(_) if loaded.from_peer => {}
                    Err(e) => return Err(e),
                },
                Err(LoadError::Failed) | Err(LoadError::Gone) => {}
            }
        }
        let mut bad = 0;
        loop {
            let fetched = self
                .shared
                .origin
                .fetch(&segment.resource, true)
                .await
                .map_err(http_error)?;
            match self.decode(segment, fetched.data).await {
                Ok(data) => return Ok(data),
                Err(e) if e.kind != ErrorKind::Format => return Err(e),
                Err(e) => {
                    bad += 1;
                    if bad > BAD_DATA_RETRIES {
                        return Err(e);
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Decrypts if needed and checks the bytes are media.
    async fn decode(&self, segment: &Segment, data: Bytes) -> Result<Bytes, EngineError> {
        let data = match &segment.key {
            Some(key) => {
                self.decrypt(&data, key, segment.sequence, &segment.resource.url)
                    .await?
            }
            None => data,
        };
        if sniff(&data).is_some() {
            return Ok(data);
        }
        Err(EngineError {
            kind: ErrorKind::Format,
            message: format!(
                "{} is not a media segment (neither MPEG-TS, fMP4, packed audio nor WebVTT)",
                segment.resource.url
            ),
            debug: format!("first bytes: {:?}", &data[..data.len().min(32)]),
        })
    }

    /// The swarm of the stream's current variant, told about `playlist` if it changed.
    fn swarm_for(&self, playlist: &Arc<MediaPlaylist>) -> Option<SwarmHandle> {
        let hub = self.shared.hub.as_ref()?;
        let mut st = lock(&self.stream);
        let (hash, kind) = st.swarm_ids.get(st.current)?.clone();
        let handle = hub.swarm(&hash, kind, st.queue.clone())?;
        let fresh = match &st.swarm {
            Some((old, told)) if old.same_swarm(&handle) => !Arc::ptr_eq(told, playlist),
            _ => {
                if let Some((old, _)) = st.swarm.take() {
                    hub.release(&old);
                }
                true
            }
        };
        if fresh {
            handle.set_segments(playlist.clone());
            st.swarm = Some((handle.clone(), playlist.clone()));
        }
        Some(handle)
    }

    async fn decrypt(
        &self,
        data: &[u8],
        key: &Aes128Key,
        sequence: u64,
        url: &Url,
    ) -> Result<Bytes, EngineError> {
        let k = self.shared.origin.key(&key.uri).await?;
        aes128_cbc_decrypt(&k, &key.iv_for(sequence), data)
            .map(Bytes::from)
            .map_err(|e| EngineError {
                kind: ErrorKind::Format,
                message: format!("Could not decrypt {url}: {e}"),
                debug: String::new(),
            })
    }

    /// Picks the variant for the next segment; fetches its playlist if it changed.
    /// Returns true when the stream switched.
    async fn maybe_switch(&self) -> bool {
        let (bandwidths, current, uri, cached) = {
            let st = lock(&self.stream);
            if st.variants.len() < 2 {
                return false;
            }
            let bw: Vec<u64> = st.variants.iter().map(|v| v.bandwidth).collect();
            let est = self.shared.origin.estimate_bps();
            let want = abr::select_variant(&bw, est, &self.shared.abr());
            if want == st.current {
                return false;
            }
            let cached = st.playlists.get(&want).filter(|p| !p.is_live()).cloned();
            (bw, want, st.variants[want].uri.clone(), cached)
        };
        let playlist = match cached {
            Some(p) => p,
            // A variant we cannot load is skipped for now; the current one keeps playing.
            None => match self.shared.fetch_media_playlist(&uri).await {
                // Live variants share sequence numbers: anchor the new one on our timeline.
                Ok(p) if p.is_live() => Arc::new(m3u8::align(&self.playlist(), p)),
                Ok(p) => Arc::new(p),
                Err(_) => return false,
            },
        };
        let mut st = lock(&self.stream);
        st.playlists.insert(current, playlist);
        st.current = current;
        self.shared
            .origin
            .stats
            .variant_bitrate
            .store(bandwidths[current], std::sync::atomic::Ordering::Relaxed);
        true
    }

    /// Live: waits for the playlist to grow, reloading as RFC 8216 §6.3.4 asks.
    async fn wait_for_refresh(&self, old: &Arc<MediaPlaylist>) -> Result<Refresh, EngineError> {
        let mut wait = old.reload_interval(true).max(Duration::from_millis(250));
        let mut backwards = 0;
        loop {
            tokio::time::sleep(wait).await;
            let fresh = self.shared.fetch_media_playlist(&old.url).await?;
            let (updated, outcome) = match m3u8::update(old, fresh.clone()) {
                Ok(updated) => (updated, Refresh::Continued),
                // Usually a CDN edge serving a stale copy: ask again. If it persists, the
                // encoder restarted its numbering: continue on a new timeline after the old end.
                Err(ManifestError::SequenceWentBackwards { .. }) if backwards < 3 => {
                    backwards += 1;
                    continue;
                }
                Err(ManifestError::SequenceWentBackwards { .. }) => {
                    (m3u8::rebase(old, fresh), Refresh::Rebased)
                }
                Err(e) => return Err(manifest_error(e, &old.url)),
            };
            let grew = updated.segments.last().map(|s| s.sequence)
                != old.segments.last().map(|s| s.sequence)
                || updated.end_list != old.end_list;
            let updated = Arc::new(updated);
            {
                let mut st = lock(&self.stream);
                let cur = st.current;
                st.playlists.insert(cur, updated.clone());
                if st.kind == StreamType::Video {
                    *lock(&self.presentation) = Some(Presentation::of(&updated));
                }
            }
            if grew || outcome == Refresh::Rebased {
                return Ok(outcome);
            }
            wait = updated
                .reload_interval(false)
                .max(Duration::from_millis(250));
        }
    }
}
