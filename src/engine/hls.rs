//! HLS session: fetches the master playlist, picks the streams to output, and runs one
//! fetch loop per output stream (main variant with ABR, alternate audio rendition).
//! Every decision about playlists is delegated to the pure `manifest::hls` module.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::task::JoinHandle;
use url::Url;

use super::output::{Fragment, OutputItem, OutputQueue};
use super::runtime::RUNTIME;
use super::stats::Stats;
use super::{EngineConfig, EngineError, ErrorKind};
use crate::abr::{self, BandwidthEstimator};
use crate::manifest::hls::{self as m3u8, Playlist};
use crate::manifest::ManifestError;
use crate::media::{
    Aes128Key, MasterPlaylist, MediaPlaylist, Rendition, Resource, Segment, StreamType, Variant,
};
use crate::net::http::{Fetched, HttpClient, HttpError};
use crate::payload::decrypt::aes128_cbc_decrypt;
use crate::payload::sniff::sniff;

/// What the element needs to expose one output stream.
pub struct StreamSpec {
    pub queue: Arc<OutputQueue>,
    pub stream_type: StreamType,
    /// CODECS of the variant, or the rendition's language/name, for tags and stream objects.
    pub codecs: Option<String>,
    pub language: Option<String>,
    pub name: Option<String>,
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
}

struct Shared {
    http: HttpClient,
    config: EngineConfig,
    events: Arc<dyn EngineEvents>,
    stats: Arc<Stats>,
    estimator: Mutex<BandwidthEstimator>,
    /// Wall-clock origin for estimator samples (the core takes time as input).
    epoch: std::time::Instant,
    keys: Mutex<HashMap<Url, Bytes>>,
    streams: Mutex<Vec<Arc<Mutex<StreamState>>>>,
    failed: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn fail(&self, error: EngineError) {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.events.error(error);
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn fetch(&self, resource: &Resource, segment: bool) -> Result<Fetched, HttpError> {
        let fetched = self.http.fetch(resource).await?;
        self.stats.add_http(fetched.data.len() as u64, segment);
        if segment {
            let mut est = lock(&self.estimator);
            est.record(
                abr::Source::Http,
                fetched.data.len() as u64,
                fetched.elapsed,
                self.now(),
            );
            if let Some(bps) = est.estimate_bps() {
                self.stats
                    .bandwidth
                    .store(bps, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(fetched)
    }

    async fn fetch_playlist(&self, url: &Url) -> Result<(Playlist, Url), EngineError> {
        let fetched = self
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

    async fn key(&self, url: &Url) -> Result<Bytes, EngineError> {
        if let Some(k) = lock(&self.keys).get(url) {
            return Ok(k.clone());
        }
        let fetched = self
            .fetch(
                &Resource {
                    url: url.clone(),
                    range: None,
                },
                false,
            )
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

fn http_error(e: HttpError) -> EngineError {
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
        let shared = Arc::new(Shared {
            http,
            config,
            events,
            stats: Arc::new(Stats::default()),
            estimator: Mutex::new(BandwidthEstimator::new()),
            epoch: std::time::Instant::now(),
            keys: Mutex::new(HashMap::new()),
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
        self.shared.stats.clone()
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
        if target < p.seek_range.0 || target > p.seek_range.1 {
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
                let variant = Variant {
                    uri: final_url.clone(),
                    bandwidth: 0,
                    average_bandwidth: None,
                    codecs: None,
                    resolution: None,
                    frame_rate: None,
                    video_range: None,
                    audio_group: None,
                    subtitles_group: None,
                };
                let state = self.new_stream(StreamType::Video, vec![variant], 0, Some(p));
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
            let est = lock(&self.shared.estimator).estimate_bps();
            abr::select_variant(&bandwidths, est, &self.shared.config.abr)
        };
        let mut streams =
            vec![self.new_stream(StreamType::Video, master.variants.clone(), first, None)];
        if let Some(audio) = pick_audio(&master, &master.variants[first]) {
            let variant = rendition_variant(audio);
            streams.push(self.new_stream(StreamType::Audio, vec![variant], 0, None));
        }
        self.run(streams).await
    }

    fn new_stream(
        &self,
        kind: StreamType,
        variants: Vec<Variant>,
        current: usize,
        playlist: Option<MediaPlaylist>,
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
        }))
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
                let v = &st.variants[st.current];
                StreamSpec {
                    queue: st.queue.clone(),
                    stream_type: st.kind,
                    codecs: v.codecs.clone(),
                    language: None,
                    name: None,
                }
            })
            .collect();
        {
            let st = lock(&streams[0]);
            self.shared.stats.variant_bitrate.store(
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
    Variant {
        uri: r.uri.clone().expect("filtered on uri"),
        bandwidth: 0,
        average_bandwidth: None,
        codecs: None,
        resolution: None,
        frame_rate: None,
        video_range: None,
        audio_group: None,
        subtitles_group: None,
    }
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
            Start::At(t) => playlist
                .segment_index_at(t)
                .unwrap_or(playlist.segments.len().saturating_sub(1)),
        };
        let mut next_seq = playlist
            .segments
            .get(first)
            .map(|s| s.sequence)
            .unwrap_or(playlist.media_sequence);
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
                let data = self.shared.fetch(&r, false).await.map_err(http_error)?.data;
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
            let data = self.fetch_segment(&segment).await?;
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

    /// Whole segment, decrypted and checked to be media. Retries bad data a few times.
    async fn fetch_segment(&self, segment: &Segment) -> Result<Bytes, EngineError> {
        let mut bad = 0;
        loop {
            let fetched = self
                .shared
                .fetch(&segment.resource, true)
                .await
                .map_err(http_error)?;
            let data = match &segment.key {
                Some(key) => {
                    self.decrypt(&fetched.data, key, segment.sequence, &segment.resource.url)
                        .await?
                }
                None => fetched.data,
            };
            if sniff(&data).is_some() {
                return Ok(data);
            }
            bad += 1;
            if bad > BAD_DATA_RETRIES {
                return Err(EngineError {
                    kind: ErrorKind::Format,
                    message: format!(
                        "{} is not a media segment (neither MPEG-TS, fMP4, packed audio nor WebVTT)",
                        fetched.final_url
                    ),
                    debug: format!("first bytes: {:?}", &data[..data.len().min(32)]),
                });
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn decrypt(
        &self,
        data: &[u8],
        key: &Aes128Key,
        sequence: u64,
        url: &Url,
    ) -> Result<Bytes, EngineError> {
        let k = self.shared.key(&key.uri).await?;
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
            let est = lock(&self.shared.estimator).estimate_bps();
            let want = abr::select_variant(&bw, est, &self.shared.config.abr);
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
