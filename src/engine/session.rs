//! One playback session, whatever the manifest format: the output streams, their fetch loops
//! (`fetcher.rs`), seeking, and the P2P swarm of each stream's current variant. What is
//! specific to HLS or DASH (which streams exist, how a media playlist is obtained and
//! refreshed) lives in the front-ends, `hls.rs` and `dash.rs`, reached through `front.rs`.
//!
//! The top of the engine: it builds on the shared context (`context.rs`), the stream
//! vocabulary (`stream.rs`), the front-end dispatch and the fetch loop; none of them imports it.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use url::Url;

// The element names these through the session, where they have always been.
pub use super::context::{EngineEvents, Presentation, StreamSpec};
pub use super::stream::Choice;

use super::context::{lock, Shared};
use super::fetcher::{low_latency_start_of, Fetcher};
use super::front::Front;
use super::hashes::HashBook;
use super::origin::{http_error, Origin};
use super::output::OutputQueue;
use super::p2p::{P2pHub, P2pObserver, SegmentValidator, SwarmKey};
use super::seed;
use super::stats::Stats;
use super::stream::{Alternative, NewStream, StreamState, SwarmSpec};
use super::task;
use super::{EngineConfig, EngineError, ErrorKind, Protocol, CAT};
use crate::abr::{self, AbrSettings};
use crate::manifest::start::{start_point, Start};
use crate::net::http::HttpClient;
use crate::p2p::identity::{info_hash, stream_swarm, Compat, StreamSwarm};

/// A running session. Dropping it stops every task.
pub struct Engine {
    shared: Arc<Shared>,
    front: Arc<Front>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Each output stream's fetch loop (parallel to `Shared::streams`).
    loops: Mutex<Vec<JoinHandle<()>>>,
    /// `mode=seeder`'s variant followers: a seek restarts the fetch loops, not these.
    seeds: Mutex<Vec<JoinHandle<()>>>,
}

impl Engine {
    pub fn start(
        protocol: Protocol,
        location: Url,
        config: EngineConfig,
        events: Arc<dyn EngineEvents>,
    ) -> Result<Arc<Self>, EngineError> {
        let http = HttpClient::new(config.http.clone(), &location).map_err(http_error)?;
        let origin = Arc::new(Origin::new(http));
        let hashes = config
            .segment_hashes
            .clone()
            .map(|url| HashBook::new(url, origin.clone()));
        let hub = match config.p2p.as_ref().filter(|p| p.enabled) {
            Some(p2p) => Some(
                P2pHub::start(
                    p2p.clone(),
                    origin.clone(),
                    Some(observer(&events)),
                    Some(validator(&events)),
                    hashes.clone(),
                    protocol,
                )
                .map_err(|e| EngineError {
                    kind: ErrorKind::Settings,
                    message: format!("Cannot start P2P: {e}"),
                    debug: String::new(),
                })?,
            ),
            None => None,
        };
        gst::info!(
            CAT,
            "{protocol:?} session for {location}, P2P {}",
            if hub.is_some() { "on" } else { "off" }
        );
        let shared = Arc::new(Shared::new(origin, hub, hashes, config, events));
        let engine = Arc::new(Engine {
            shared,
            front: Arc::new(Front::new(protocol)),
            tasks: Mutex::new(Vec::new()),
            loops: Mutex::new(Vec::new()),
            seeds: Mutex::new(Vec::new()),
        });
        let weak = Arc::downgrade(&engine);
        let on_panic = panicked(&engine.shared, "opening the stream");
        let task = task::spawn(
            "open",
            async move {
                let Some(engine) = weak.upgrade() else { return };
                if let Err(e) = engine.open(location).await {
                    engine.shared.fail(e);
                }
            },
            on_panic,
        );
        lock(&engine.tasks).push(task);
        Ok(engine)
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.shared.origin.stats.clone()
    }

    /// New ABR limits take effect at the next segment boundary.
    pub fn set_abr(&self, abr: AbrSettings) {
        self.shared.set_abr(abr);
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
        for t in lock(&self.loops).drain(..) {
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
            gst::info!(
                CAT,
                "seek to {target:?} refused: outside {:?}",
                p.seek_range
            );
            return false;
        }
        gst::info!(CAT, "seek to {target:?}");
        self.stop();
        let streams = lock(&self.shared.streams).clone();
        let mut loops = lock(&self.loops);
        for s in streams {
            loops.push(self.spawn_fetcher(s, Start::At(target)));
        }
        true
    }

    /// Output `stream` plays alternative `choice` (of `StreamSpec::choices`: an HLS
    /// rendition, a DASH adaptation set) from where the other stopped: what its queue holds is
    /// dropped (not what was handed downstream), and its fetch loop restarts at the end of
    /// what was, on that alternative's playlist (the segment holding that point: when the
    /// alternatives' segments are aligned, as usual, nothing plays twice or is skipped), and
    /// joins its swarm. Returns that position, or None (nothing changed) if the output has no
    /// such choice, has it requested already, has not started, or belongs to a seeder (its
    /// followers follow the variants it started with). A playlist that cannot be loaded keeps
    /// the alternative that played, with a warning.
    pub fn select(self: &Arc<Self>, stream: usize, choice: usize) -> Option<Duration> {
        if self.shared.config.seeder.is_some() {
            return None;
        }
        let s = lock(&self.shared.streams).get(stream).cloned()?;
        let mut loops = lock(&self.loops);
        let slot = loops.get_mut(stream)?;
        let from = {
            let mut st = lock(&s);
            if choice >= st.alternatives.len() || choice == st.requested {
                return None;
            }
            // Before the new loop exists: it feeds the restarted queue, the old one no longer.
            let from = st.queue.restart()?;
            gst::info!(
                CAT,
                "{:?}: alternative {choice} selected instead of {} from {from:?}",
                st.kind,
                st.requested
            );
            st.requested = choice;
            from
        };
        slot.abort();
        *slot = self.spawn_fetcher(s, Start::At(from));
        Some(from)
    }

    /// The alternative output `stream` plays (see [`Self::select`]); None if it has none.
    pub fn chosen(&self, stream: usize) -> Option<usize> {
        self.alternative(stream, |st| st.chosen)
    }

    /// The alternative last selected on output `stream` (played once its playlist is
    /// loaded); None if it has none.
    pub fn requested(&self, stream: usize) -> Option<usize> {
        self.alternative(stream, |st| st.requested)
    }

    fn alternative(&self, stream: usize, which: fn(&StreamState) -> usize) -> Option<usize> {
        let s = lock(&self.shared.streams).get(stream).cloned()?;
        let st = lock(&s);
        (!st.alternatives.is_empty()).then(|| which(&st))
    }

    async fn open(self: &Arc<Self>, location: Url) -> Result<(), EngineError> {
        if let Some(book) = &self.shared.hashes {
            book.load().await?;
        }
        let opened = self.front.open(&self.shared, &location).await?;
        // 0.6 names the swarm after the URL hls.js asked for, 2.x after the final one.
        let swarms = SwarmIds {
            requested: self.shared.swarm_id(&location),
            fin: self.shared.swarm_id(&opened.manifest_url),
        };
        if self.shared.hub.is_some() {
            gst::debug!(
                CAT,
                "swarm id {} (requested URL: {})",
                swarms.fin,
                swarms.requested
            );
        }
        let states = opened
            .streams
            .into_iter()
            .map(|s| self.new_stream(s, &swarms))
            .collect();
        self.run(states, opened.live_start).await
    }

    fn new_stream(&self, s: NewStream, swarms: &SwarmIds) -> Built {
        let mut playlists = HashMap::new();
        let given = s.current;
        let (compat, bridge) = self
            .shared
            .config
            .p2p
            .as_ref()
            .map_or((Compat::Pml23, Vec::new()), |p| {
                (p.compat, p.bridge.clone())
            });
        // A seeder's output plays the highest seeded variant; the others are followed for
        // their swarms alone (`seed::follow`).
        let mut current = s.current;
        if let Some(&top) = seed::seeded(&self.shared, &bandwidths(&s.variants)).first() {
            current = top;
        }
        // Per variant, the family's swarm (none if the family shares no stream of this kind).
        let keys = |compat: Compat, specs: &[SwarmSpec]| -> Vec<SwarmKey> {
            if self.shared.hub.is_none() {
                return Vec::new();
            }
            let swarm = match compat.swarm_from_requested_url() {
                true => &swarms.requested,
                false => &swarms.fin,
            };
            specs
                .iter()
                .filter(|w| compat.shares(w.kind))
                .map_while(|w| {
                    // 0.6: `<master>+V<n>` by its own numbering; none known, no swarm.
                    let position = match compat {
                        Compat::Pml06 if !w.lone => w.v06_index?,
                        _ => w.position,
                    };
                    let sw = match (compat, w.lone) {
                        // 0.6 without a master: the playlist's own swarm id, no `+V<i>`.
                        (Compat::Pml06, true) => StreamSwarm {
                            stream_swarm_id: swarm.clone(),
                            info_hash: info_hash(compat, swarm),
                        },
                        _ => stream_swarm(compat, swarm, w.kind, &w.props, position),
                    };
                    Some(SwarmKey {
                        info_hash: sw.info_hash,
                        stream_swarm_id: sw.stream_swarm_id,
                        stream_type: w.kind,
                        compat,
                    })
                })
                .collect()
        };
        // The family's keys and, per variant, every bridged family's key for it (a family
        // sharing no stream of this kind adds none).
        let all_keys = |specs: &[SwarmSpec], variants: usize| {
            let bridged: Vec<Vec<SwarmKey>> = bridge.iter().map(|c| keys(*c, specs)).collect();
            let bridge_ids: Vec<Vec<SwarmKey>> = (0..variants)
                .map(|v| bridged.iter().filter_map(|k| k.get(v).cloned()).collect())
                .collect();
            (keys(compat, specs), bridge_ids)
        };
        let (swarm_ids, bridge_ids) = all_keys(&s.swarms, s.variants.len());
        let alternatives = s
            .alternatives
            .iter()
            .map(|a| {
                let (swarm_ids, bridge_ids) = all_keys(&a.swarms, a.variants.len());
                Alternative {
                    variants: a.variants.clone(),
                    swarm_ids,
                    bridge_ids,
                    track: a.track,
                }
            })
            .collect();
        if let Some(p) = s.playlist.filter(|_| given == current) {
            playlists.insert(current, Arc::new(p));
        }
        let state = Arc::new(Mutex::new(StreamState {
            kind: s.kind,
            variants: s.variants,
            current,
            track: s.track,
            alternatives,
            chosen: s.chosen,
            requested: s.chosen,
            playlists,
            queue: Arc::new(OutputQueue::new(self.shared.config.max_buffering_time)),
            swarm_ids,
            bridge_ids,
            mirrors: Vec::new(),
            swarm: None,
        }));
        Built {
            state,
            language: s.language,
            choices: s.alternatives.into_iter().map(|a| a.choice).collect(),
        }
    }

    /// Fetches every stream's first playlist, announces the streams, starts the fetch loops.
    async fn run(
        self: &Arc<Self>,
        streams: Vec<Built>,
        live_start: Option<Duration>,
    ) -> Result<(), EngineError> {
        let mut main_playlist = None;
        for Built { state: s, .. } in &streams {
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
                    let p = self
                        .front
                        .load_playlist(&self.shared, track, &variant, current)
                        .await?;
                    let p = Arc::new(p);
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
        // The same rule as each fetch loop's, so the start reported is where the main one begins.
        let begin = Start::initial(main.is_live(), live_start);
        let start = match begin {
            Start::LiveEdge => low_latency_start_of(&self.shared.config, &main)
                .map_or_else(|| start_point(&main, begin).position, |p| p.position),
            Start::At(_) => start_point(&main, begin).position,
        };
        gst::info!(
            CAT,
            "{} {} stream(s), {begin:?}: playback starts at {start:?}",
            if main.is_live() { "live" } else { "VOD" },
            streams.len()
        );
        let specs = streams
            .iter()
            .map(|b| {
                let st = lock(&b.state);
                StreamSpec {
                    queue: st.queue.clone(),
                    stream_type: st.kind,
                    language: b.language.clone(),
                    choices: b.choices.clone(),
                    chosen: st.chosen,
                }
            })
            .collect();
        {
            let st = lock(&streams[0].state);
            self.shared
                .origin
                .stats
                .variant_bitrate
                .store(st.variants[st.current].bandwidth, Ordering::Relaxed);
        }
        let states: Vec<_> = streams.into_iter().map(|b| b.state).collect();
        *lock(&self.shared.streams) = states.clone();
        self.shared.events.streams_ready(specs, start);
        let mut loops = lock(&self.loops);
        for s in states {
            let (current, seeded, loaded) = {
                let st = lock(&s);
                (
                    st.current,
                    seed::seeded(&self.shared, &bandwidths(&st.variants)),
                    st.playlists.get(&st.current).cloned(),
                )
            };
            for index in seeded {
                let (shared, front, stream) = (self.shared.clone(), self.front.clone(), s.clone());
                // The output's variant too: its fetch loop never tells a seeder's swarm.
                let initial = loaded.clone().filter(|_| index == current);
                lock(&self.seeds).push(task::spawn_logged(
                    "seed",
                    seed::follow(shared, front, stream, index, initial),
                ));
            }
            loops.push(self.spawn_fetcher(s, begin));
        }
        Ok(())
    }

    /// The fetch loop of `stream` from `start`, on the alternative last requested (loaded
    /// first if it is not the one playing: a selection, or a seek that interrupted one).
    fn spawn_fetcher(
        self: &Arc<Self>,
        stream: Arc<Mutex<StreamState>>,
        start: Start,
    ) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let front = self.front.clone();
        let on_panic = panicked(&self.shared, "the fetch loop");
        task::spawn(
            "fetch",
            async move {
                let pending = {
                    let st = lock(&stream);
                    (st.requested != st.chosen).then_some(st.requested)
                };
                if let Some(choice) = pending {
                    if let Err(e) = load_choice(&shared, &front, &stream, choice).await {
                        gst::warning!(CAT, "alternative {choice}: {}", e.message);
                        let mut st = lock(&stream);
                        // Unless another selection came meanwhile (this task is then aborted).
                        if st.requested == choice {
                            st.requested = st.chosen;
                        }
                        drop(st);
                        shared.warn(EngineError {
                            message: format!(
                                "Could not switch to the selected stream: {}",
                                e.message
                            ),
                            ..e
                        });
                    }
                }
                let mut f = Fetcher::new(shared.clone(), front, stream);
                if let Err(e) = f.run_stream(start).await {
                    shared.fail(e);
                }
            },
            on_panic,
        )
    }
}

fn bandwidths(variants: &[crate::media::Variant]) -> Vec<u64> {
    variants.iter().map(|v| v.bandwidth).collect()
}

/// Makes alternative `choice` the stream's current one, on the variant ABR picks, with its
/// playlist (a live one aligned with the one it replaces, as at an ABR switch).
async fn load_choice(
    shared: &Shared,
    front: &Front,
    stream: &Mutex<StreamState>,
    choice: usize,
) -> Result<(), EngineError> {
    let (alt, old) = {
        let st = lock(stream);
        (
            st.alternatives[choice].clone(),
            st.playlists.get(&st.current).cloned(),
        )
    };
    let bandwidths = bandwidths(&alt.variants);
    let current = abr::select_variant(&bandwidths, shared.origin.estimate_bps(), &shared.abr());
    let p = front
        .load_playlist(shared, alt.track, &alt.variants[current], current)
        .await?;
    let playlist = Arc::new(match old {
        Some(old) if p.is_live() => front.align_switch(&old, p),
        _ => p,
    });
    let mut st = lock(stream);
    // Another selection came while this loaded (this task is aborted at its next await): it
    // decides what plays.
    if st.requested != choice {
        return Ok(());
    }
    // The old alternative's swarms: released (they stay a while for their peers).
    if let Some(hub) = &shared.hub {
        if let Some((old, _)) = st.swarm.take() {
            hub.release(&old);
        }
        for old in std::mem::take(&mut st.mirrors) {
            hub.release(&old);
        }
    }
    // Playlists are by variant index: the old alternative's mean nothing now.
    st.playlists.clear();
    st.playlists.insert(current, playlist);
    st.variants = alt.variants;
    st.swarm_ids = alt.swarm_ids;
    st.bridge_ids = alt.bridge_ids;
    st.track = alt.track;
    st.current = current;
    st.chosen = choice;
    Ok(())
}

/// A panicked fetch task stops its stream for good: one clear element error, not a stall.
/// Weak, so a panic handler never keeps a stopped session alive.
fn panicked(shared: &Arc<Shared>, what: &'static str) -> impl FnOnce(String) + Send + 'static {
    let weak = Arc::downgrade(shared);
    move |msg| {
        if let Some(shared) = weak.upgrade() {
            shared.fail(EngineError {
                kind: ErrorKind::Internal,
                message: format!("Internal error in {what}: {msg}"),
                debug: "an engine task panicked".to_string(),
            });
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
        for t in lock(&self.seeds).drain(..) {
            t.abort();
        }
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

/// A stream's state, with what the element is told about it.
struct Built {
    state: Arc<Mutex<StreamState>>,
    language: Option<String>,
    choices: Vec<Choice>,
}

/// The master swarm id both ways: 0.6 names swarms after the URL the player asked for, 2.x
/// after the one it got the manifest from (both without their query, or `swarm-id`).
struct SwarmIds {
    requested: String,
    fin: String,
}
