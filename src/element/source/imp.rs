//! The machinery `p2phlssrc` and `p2pdashsrc` share (abstract base class `P2pMediaSrc`):
//! the engine (tokio) fetches whole segments into one bounded queue per output stream; one pad
//! task per stream pushes them downstream the way the legacy hlsdemux/dashdemux feed their
//! demuxers (container bytes, TIME segment, PTS on segment starts, DISCONT at discontinuities).
//! Subclasses only say which protocol they play and which URI schemes they handle.

use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use url::Url;

use crate::element::settings::{self, Mode, Settings};
use crate::engine::output::{Fragment, OutputItem, OutputQueue};
use crate::engine::p2p::{P2pEvent, SegmentCheck};
use crate::engine::session::{Engine, EngineEvents, StreamSpec};
use crate::engine::task;
use crate::engine::{EngineError, ErrorKind, Protocol};
use crate::media::MediaType;

/// The reference of the wall-clock `GstReferenceTimestampMeta` on output buffers.
static UNIX_TIMESTAMP_CAPS: LazyLock<gst::Caps> =
    LazyLock::new(|| gst::Caps::new_empty_simple("timestamp/x-unix"));

/// What a subclass tells the base in `constructed()`.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    pub protocol: Protocol,
    /// The element's own debug category.
    pub cat: gst::DebugCategory,
    /// `p2phls+` / `p2pdash+`: our URI form is this prefix before an http(s) URL.
    pub scheme_prefix: &'static str,
}

/// What a pad task still has to send before the next buffer.
#[derive(Default)]
struct PadState {
    stream_start_sent: bool,
    /// The stream the pad last announced (in its stream-start, or by tags at a switch).
    announced: Option<gst::Stream>,
    caps: Option<gst::Caps>,
    pending_segment: Option<gst::Event>,
    /// Another rendition from the next buffer on: its caps (typefound again), the current
    /// SEGMENT again, and its tags (language, name) as a stream-scoped TAG event.
    resend_segment: bool,
    pending_tags: Option<gst::TagList>,
    /// The last SEGMENT pushed, and the media-time offset it maps (see `Fragment`).
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    media_offset_ns: i64,
}

struct Output {
    pad: gst::Pad,
    queue: Arc<OutputQueue>,
    /// What the pad carries: one of `choices`.
    stream: gst::Stream,
    /// The renditions an application may select on this pad (`select-streams`), each its
    /// own stream of the collection; just `stream` when there is no alternative.
    choices: Vec<gst::Stream>,
    pad_state: Arc<Mutex<PadState>>,
}

#[derive(Default)]
struct State {
    engine: Option<Arc<Engine>>,
    /// Bumped per start so late callbacks from a stopped engine are ignored.
    session: u64,
    outputs: Vec<Output>,
    group_id: Option<gst::GroupId>,
    segment: gst::FormattedSegment<gst::ClockTime>,
    last_seek: Option<gst::Seqnum>,
    /// Every stream of every output, as posted when the pads were added.
    collection: Option<gst::StreamCollection>,
    /// The `stats-interval` ticker, stopped with the session.
    stats_task: Option<tokio::task::JoinHandle<()>>,
}

/// How long READY→PAUSED waits for the first manifest's outcome. An ERROR posted while the
/// application is still inside `set_state(PAUSED)` can be lost to it: gst-launch-1.0 (1.22)
/// quits its main loop from a bus sync handler, and a quit before the loop runs does nothing,
/// so it hangs. A failure known within this time fails the state change instead, which every
/// application sees; a later one is posted when the application is long past `set_state`.
/// Short, as it may delay `set_state` by that much; and clear of the first HTTP retry (250 ms
/// backoff), so that a `retries=1` failure does not land just after the window closes.
const STARTUP_SETTLE: Duration = Duration::from_millis(150);

/// The READY→PAUSED in progress: engine errors are held until it ends (see `STARTUP_SETTLE`).
#[derive(Default)]
struct Startup {
    /// The session being started; `None` once the state change is over.
    session: Option<u64>,
    /// The first manifest's outcome is known (streams ready, or failed).
    settled: bool,
    held: Option<EngineError>,
}

#[derive(Default)]
pub struct P2pMediaSrc {
    kind: OnceLock<Kind>,
    settings: Mutex<Settings>,
    state: Mutex<State>,
    flow: Mutex<gst_base::UniqueFlowCombiner>,
    /// Serialises exposing pads (engine thread) with stopping (state change).
    pads: Mutex<()>,
    startup: Mutex<Startup>,
    startup_cond: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Routes engine callbacks (tokio threads) to the element, if it and the session still exist.
struct Events {
    element: glib::WeakRef<super::P2pMediaSrc>,
    session: u64,
}

impl EngineEvents for Events {
    fn validate_segment(&self, check: &SegmentCheck<'_>, data: &[u8]) -> bool {
        let Some(element) = self.element.upgrade() else {
            return true;
        };
        // Copying every segment into a GBytes costs a memcpy per segment: only for a listener.
        let id = <P2pMediaSrc as ObjectImpl>::signals()[0].signal_id();
        if !glib::signal::signal_has_handler_pending(&element, id, None, false) {
            return true;
        }
        let bytes = glib::Bytes::from(data);
        element.emit_by_name::<bool>(
            "validate-segment",
            &[
                &check.url,
                &check.id,
                &(if check.from_peer { "p2p" } else { "http" }),
                &bytes,
            ],
        )
    }

    fn p2p_event(&self, event: P2pEvent) {
        let Some(element) = self.element.upgrade() else {
            return;
        };
        let s = match event {
            P2pEvent::PeerConnected {
                info_hash,
                peer_id,
                role,
                setup,
            } => gst::Structure::builder("p2pmedia-peer-connected")
                .field("info-hash", info_hash)
                .field("peer-id", peer_id)
                .field("role", role.as_str())
                .field("setup-ms", setup.as_secs_f64() * 1e3)
                .build(),
            P2pEvent::PeerClosed { info_hash, peer_id } => {
                gst::Structure::builder("p2pmedia-peer-closed")
                    .field("info-hash", info_hash)
                    .field("peer-id", peer_id)
                    .build()
            }
            P2pEvent::SegmentRejected {
                info_hash,
                id,
                peer_id,
                reason,
            } => gst::Structure::builder("p2pmedia-segment-rejected")
                .field("info-hash", info_hash)
                .field("segment-id", id)
                .field("source", if peer_id.is_some() { "p2p" } else { "http" })
                .field("peer-id", peer_id.unwrap_or_default())
                .field("reason", reason)
                .build(),
            P2pEvent::SwarmFailed { info_hash, reason } => {
                gst::element_warning!(
                    element,
                    gst::CoreError::Failed,
                    ("P2P switched off for swarm {info_hash}: {reason}"),
                    ["playback goes on over HTTP"]
                );
                return;
            }
            P2pEvent::SegmentLoaded {
                info_hash,
                id,
                bytes,
                peer_id,
            } => gst::Structure::builder("p2pmedia-segment-loaded")
                .field("info-hash", info_hash)
                .field("segment-id", id)
                .field("bytes", bytes)
                .field("source", if peer_id.is_some() { "p2p" } else { "http" })
                .field("peer-id", peer_id.unwrap_or_default())
                .build(),
        };
        let _ = element.post_message(gst::message::Element::builder(s).src(&element).build());
    }

    fn streams_ready(&self, streams: Vec<StreamSpec>, start: Duration) {
        if let Some(element) = self.element.upgrade() {
            element.imp().settle_startup(self.session, None);
            element.imp().add_outputs(self.session, streams, start);
        }
    }

    fn warning(&self, warning: EngineError) {
        let Some(element) = self.element.upgrade() else {
            return;
        };
        if lock(&element.imp().state).session != self.session {
            return;
        }
        let msg = warning.message.as_str();
        let dbg = warning.debug.as_str();
        gst::element_warning!(element, gst::StreamError::Failed, ("{msg}"), ["{dbg}"]);
    }

    fn error(&self, error: EngineError) {
        let Some(element) = self.element.upgrade() else {
            return;
        };
        if lock(&element.imp().state).session != self.session {
            return;
        }
        let imp = element.imp();
        if let Some(error) = imp.settle_startup(self.session, Some(error)) {
            imp.post_engine_error(&error);
        }
    }
}

impl P2pMediaSrc {
    /// Called once by the subclass, from `constructed()`.
    pub fn set_kind(&self, kind: Kind) {
        let _ = self.kind.set(kind);
    }

    fn kind(&self) -> Kind {
        *self
            .kind
            .get()
            .expect("subclass sets its kind in constructed()")
    }

    fn cat(&self) -> gst::DebugCategory {
        self.kind().cat
    }

    /// The engine knows how the first manifest went. An error during READY→PAUSED of this
    /// session is kept for `finish_startup` (returned `None`); otherwise it is handed back.
    fn settle_startup(&self, session: u64, error: Option<EngineError>) -> Option<EngineError> {
        let mut startup = lock(&self.startup);
        if startup.session != Some(session) {
            return error;
        }
        startup.settled = true;
        if let Some(e) = error {
            gst::debug!(
                self.cat(),
                imp = self,
                "Failed while starting, holding the error for the state change: {}",
                e.message
            );
            startup.held.get_or_insert(e);
        }
        self.startup_cond.notify_all();
        None
    }

    /// Ends READY→PAUSED: waits (at most `STARTUP_SETTLE`) for the first manifest's outcome,
    /// then lets later errors through. Returns the error that fails the state change, if any.
    fn finish_startup(&self) -> Option<EngineError> {
        let deadline = Instant::now() + STARTUP_SETTLE;
        let mut startup = lock(&self.startup);
        while !startup.settled {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                gst::debug!(
                    self.cat(),
                    imp = self,
                    "Manifest not there after {STARTUP_SETTLE:?}: going on asynchronously"
                );
                break;
            }
            startup = self
                .startup_cond
                .wait_timeout(startup, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        let held = startup.held.take();
        *startup = Startup::default();
        held
    }

    fn post_engine_error(&self, error: &EngineError) {
        let element = self.obj();
        gst::error!(self.cat(), imp = self, "{}", error.message);
        let msg = error.message.as_str();
        let dbg = error.debug.as_str();
        match error.kind {
            ErrorKind::NotFound => {
                gst::element_error!(element, gst::ResourceError::NotFound, ("{msg}"), ["{dbg}"])
            }
            ErrorKind::Read => {
                gst::element_error!(element, gst::ResourceError::Read, ("{msg}"), ["{dbg}"])
            }
            ErrorKind::Settings => {
                gst::element_error!(element, gst::ResourceError::Settings, ("{msg}"), ["{dbg}"])
            }
            ErrorKind::Format => {
                gst::element_error!(element, gst::StreamError::Demux, ("{msg}"), ["{dbg}"])
            }
            ErrorKind::Internal => {
                gst::element_error!(element, gst::CoreError::Failed, ("{msg}"), ["{dbg}"])
            }
            ErrorKind::Unsupported => {
                gst::element_error!(
                    element,
                    gst::StreamError::NotImplemented,
                    ("{msg}"),
                    ["{dbg}"]
                )
            }
        }
    }

    fn start(&self) -> Result<(), gst::StateChangeError> {
        let settings = lock(&self.settings).clone();
        let Some(location) = settings.location.clone() else {
            gst::element_imp_error!(
                self,
                gst::ResourceError::NotFound,
                ("No URL set (location property)")
            );
            return Err(gst::StateChangeError);
        };
        let url = self.parse_location(&location).map_err(|e| {
            gst::element_imp_error!(
                self,
                gst::ResourceError::NotFound,
                ("Invalid location {location}: {e}")
            );
            gst::StateChangeError
        })?;
        if let Err(e) = settings.seeder().and(settings.segment_hashes()) {
            gst::element_imp_error!(self, gst::ResourceError::Settings, ("{e}"));
            return Err(gst::StateChangeError);
        }
        if settings.p2p_enabled && settings.compat.is_empty() {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Settings,
                ("compat names no family: pml-2.3, pml-2.2 or pml-0.6 (several with +)")
            );
            return Err(gst::StateChangeError);
        }
        if settings.mode == Mode::Seeder && !(settings.p2p_enabled && settings.p2p_upload) {
            gst::element_imp_error!(
                self,
                gst::ResourceError::Settings,
                ("mode=seeder needs p2p-enabled=true and p2p-upload=true: it is there to serve peers")
            );
            return Err(gst::StateChangeError);
        }
        let session = {
            let mut state = lock(&self.state);
            state.session += 1;
            state.session
        };
        *lock(&self.startup) = Startup {
            session: Some(session),
            ..Default::default()
        };
        let events = Arc::new(Events {
            element: self.obj().downgrade(),
            session,
        });
        let protocol = self.kind().protocol;
        // No element lock while an error is posted: a bus sync handler may call back in.
        let engine =
            Engine::start(protocol, url, settings.engine_config(), events).map_err(|e| {
                gst::element_imp_error!(self, gst::ResourceError::Settings, ("{}", e.message));
                gst::StateChangeError
            })?;
        let mut state = lock(&self.state);
        if state.session != session {
            // Stopped meanwhile (a concurrent state change): this engine is not wanted.
            return Err(gst::StateChangeError);
        }
        gst::debug!(
            self.cat(),
            imp = self,
            "Started session {} for {location}",
            state.session
        );
        state.engine = Some(engine);
        if settings.stats_interval > 0 {
            let weak = self.obj().downgrade();
            let session = state.session;
            let period = Duration::from_millis(settings.stats_interval as u64);
            state.stats_task = Some(task::spawn_logged("stats", async move {
                let mut tick = tokio::time::interval(period);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(element) = weak.upgrade() else {
                        return;
                    };
                    let imp = element.imp();
                    if lock(&imp.state).session != session {
                        return;
                    }
                    let _ = element.post_message(
                        gst::message::Element::builder(imp.stats())
                            .src(&element)
                            .build(),
                    );
                }
            }));
        }
        state.group_id = Some(gst::GroupId::next());
        state.last_seek = None;
        state.collection = None;
        Ok(())
    }

    /// Stops the engine and every pad task; pads are removed after deactivation.
    fn stop(&self) -> Vec<gst::Pad> {
        let _pads = lock(&self.pads);
        let (engine, outputs) = {
            let mut state = lock(&self.state);
            state.session += 1;
            if let Some(t) = state.stats_task.take() {
                t.abort();
            }
            (state.engine.take(), std::mem::take(&mut state.outputs))
        };
        for o in &outputs {
            o.queue.set_flushing(true);
        }
        if let Some(engine) = engine {
            engine.stop();
        }
        for o in &outputs {
            let _ = o.pad.stop_task();
        }
        lock(&self.flow).clear();
        outputs.into_iter().map(|o| o.pad).collect()
    }

    /// After `stop()`: the stopped session's pads go.
    fn remove_pads(&self, pads: Vec<gst::Pad>) {
        for pad in pads {
            let _ = pad.set_active(false);
            let _ = self.obj().remove_pad(&pad);
        }
    }

    fn add_outputs(&self, session: u64, specs: Vec<StreamSpec>, start: Duration) {
        let element = self.obj();
        let templ = element.pad_template("src_%u").expect("template registered");
        // Held while pads are exposed and tasks started (stop() takes it too): a stop racing
        // with this would otherwise miss pads added after it looked, and leave them behind.
        let pads_guard = lock(&self.pads);
        let mut state = lock(&self.state);
        if state.session != session {
            return;
        }
        let start = gst::ClockTime::from_nseconds(start.as_nanos() as u64);
        let mut segment = gst::FormattedSegment::<gst::ClockTime>::new();
        segment.set_start(start);
        segment.set_time(start);
        segment.set_position(start);
        state.segment = segment.clone();

        let mut new_pads = Vec::new();
        let mut streams = Vec::new();
        for (i, spec) in specs.into_iter().enumerate() {
            let name = format!("src_{i}");
            let pad = gst::Pad::builder_from_template(&templ)
                .name(name.as_str())
                .event_function(|pad, parent, event| {
                    P2pMediaSrc::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_event(pad, event),
                    )
                })
                .query_function(|pad, parent, query| {
                    P2pMediaSrc::catch_panic_pad_function(
                        parent,
                        || false,
                        |imp| imp.src_query(pad, query),
                    )
                })
                .build();
            let stream_type = match spec.stream_type {
                MediaType::Video => gst::StreamType::VIDEO,
                MediaType::Audio => gst::StreamType::AUDIO,
                MediaType::Subtitles | MediaType::ClosedCaptions => gst::StreamType::TEXT,
            };
            // One id per pad (its hash part may be random), the renditions' under it.
            let pad_id = pad
                .create_stream_id(&*element, Some(name.as_str()))
                .to_string();
            // SELECT: what plays by default (STREAMS_SELECTED tells what plays after a switch).
            let make = |id: String, language: Option<&str>, title: Option<&str>, on: bool| {
                let flags = if on {
                    gst::StreamFlags::SELECT
                } else {
                    gst::StreamFlags::empty()
                };
                let stream = gst::Stream::new(Some(&id), None, stream_type, flags);
                let mut tags = gst::TagList::new();
                if let Some(lang) = language {
                    tags.make_mut()
                        .add::<gst::tags::LanguageCode>(&lang, gst::TagMergeMode::Replace);
                }
                if let Some(title) = title {
                    tags.make_mut()
                        .add::<gst::tags::Title>(&title, gst::TagMergeMode::Replace);
                }
                if tags.n_tags() > 0 {
                    stream.set_tags(Some(&tags));
                }
                stream
            };
            let (choices, playing) = if spec.choices.is_empty() {
                (vec![make(pad_id, spec.language.as_deref(), None, true)], 0)
            } else {
                // Stable ids per alternative, whichever plays first.
                let choices: Vec<gst::Stream> = spec
                    .choices
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        make(
                            format!("{pad_id}/{k}"),
                            c.language.as_deref(),
                            c.name.as_deref(),
                            k == spec.chosen,
                        )
                    })
                    .collect();
                let playing = spec.chosen.min(choices.len() - 1);
                (choices, playing)
            };
            let stream = choices[playing].clone();
            streams.extend(choices.iter().cloned());
            let pad_state = PadState {
                pending_segment: Some(gst::event::Segment::new(&segment)),
                ..Default::default()
            };
            new_pads.push(pad.clone());
            state.outputs.push(Output {
                pad,
                queue: spec.queue,
                stream,
                choices,
                pad_state: Arc::new(Mutex::new(pad_state)),
            });
        }
        let collection = gst::StreamCollection::builder(None)
            .streams(streams)
            .build();
        state.collection = Some(collection.clone());
        let starts: Vec<_> = state
            .outputs
            .iter()
            .map(|o| (o.pad.clone(), o.queue.clone(), o.pad_state.clone()))
            .collect();
        drop(state);

        for pad in &new_pads {
            let _ = pad.set_active(true);
            lock(&self.flow).add_pad(pad);
            if element.add_pad(pad).is_err() {
                gst::warning!(self.cat(), imp = self, "Could not add pad {}", pad.name());
            }
        }
        element.no_more_pads();
        drop(pads_guard);
        let _ = element.post_message(
            gst::message::StreamCollection::builder(&collection)
                .src(&*element)
                .build(),
        );
        let pads_guard = lock(&self.pads);
        if lock(&self.state).session != session {
            gst::debug!(self.cat(), imp = self, "Stopped while exposing pads");
            return;
        }
        let mut failed = Vec::new();
        for (pad, queue, pad_state) in starts {
            queue.set_flushing(false);
            if !self.try_start_task(&pad, queue, pad_state) {
                failed.push(pad);
            }
        }
        drop(pads_guard);
        for pad in failed {
            self.task_failed(&pad);
        }
    }

    fn start_task(&self, pad: &gst::Pad, queue: Arc<OutputQueue>, pad_state: Arc<Mutex<PadState>>) {
        if !self.try_start_task(pad, queue, pad_state) {
            self.task_failed(pad);
        }
    }

    fn task_failed(&self, pad: &gst::Pad) {
        gst::element_imp_error!(
            self,
            gst::CoreError::Failed,
            ("Could not start the streaming task of {}", pad.name())
        );
    }

    fn try_start_task(
        &self,
        pad: &gst::Pad,
        queue: Arc<OutputQueue>,
        pad_state: Arc<Mutex<PadState>>,
    ) -> bool {
        let element = self.obj().downgrade();
        let task_pad = pad.clone();
        let res = pad.start_task(move || {
            let Some(element) = element.upgrade() else {
                let _ = task_pad.pause_task();
                return;
            };
            element.imp().pad_loop(&task_pad, &queue, &pad_state);
        });
        res.is_ok()
    }

    /// One iteration of a pad task: wait for the next segment and push it.
    fn pad_loop(&self, pad: &gst::Pad, queue: &OutputQueue, pad_state: &Mutex<PadState>) {
        let generation = queue.generation();
        let Some((item, restarted)) = queue.pop_blocking() else {
            gst::debug!(self.cat(), obj = pad, "Flushing, pausing task");
            let _ = pad.pause_task();
            return;
        };
        if restarted {
            // The first item after a flush or a selection: announce what the engine plays now
            // if the pad announced another stream.
            let now = self.follow_selection(pad);
            let mut ps = lock(pad_state);
            if ps.stream_start_sent && now.is_some() && ps.announced != now {
                // The pad's stream-start stays: a new one (another stream id) mid-stream makes
                // decodebin3 (1.22) stop the audio behind qtdemux. The pad tells the change
                // with tags; STREAMS_SELECTED names the stream.
                ps.caps = None;
                ps.resend_segment = true;
                // Empty if it has none: the old language must not stay.
                ps.pending_tags = Some(now.as_ref().and_then(|s| s.tags()).unwrap_or_default());
                ps.announced = now;
            }
        }
        match item {
            OutputItem::Eos => {
                if !self.send_sticky(pad, pad_state, queue, generation, None) {
                    return;
                }
                gst::debug!(self.cat(), obj = pad, "End of stream");
                pad.push_event(gst::event::Eos::new());
                if queue.generation() == generation {
                    let _ = pad.pause_task();
                }
            }
            OutputItem::Fragment(fragment) => {
                let first = fragment.init.as_ref().unwrap_or(&fragment.data).clone();
                if !self.send_sticky(pad, pad_state, queue, generation, Some(&first))
                    || !self.remap_segment(pad, pad_state, queue, generation, &fragment)
                {
                    return;
                }
                let (start, duration) = (fragment.start, fragment.duration);
                let res = self.push_fragment(pad, queue, generation, fragment);
                if queue.generation() != generation {
                    // A seek (maybe from downstream, on this very thread) flushed and
                    // restarted this task meanwhile: pausing now would stall the new one.
                    gst::debug!(self.cat(), obj = pad, "Flushed while pushing: {res:?}");
                    return;
                }
                let combined = lock(&self.flow).update_pad_flow(pad, res);
                match combined {
                    // Downstream took it: with a synchronising sink, playback is at its start now.
                    Ok(_) => queue.mark_pushed(generation, start, duration),
                    Err(gst::FlowError::Flushing) | Err(gst::FlowError::Eos) => {
                        gst::debug!(self.cat(), obj = pad, "Pausing task: {combined:?}");
                        let _ = pad.pause_task();
                    }
                    Err(err) => {
                        gst::element_imp_error!(
                            self,
                            gst::StreamError::Failed,
                            ("Internal data stream error"),
                            ["streaming stopped, reason {err:?}"]
                        );
                        pad.push_event(gst::event::Eos::new());
                        let _ = pad.pause_task();
                    }
                }
            }
        }
    }

    /// Stream-start, caps (typefound on the data, as hlsdemux does) and segment. No
    /// stream-collection event: our streams are containers, and decodebin3 would take an
    /// upstream collection as final and leave the demuxed elementary streams unlinked.
    /// Events are pushed with no lock held: a downstream handler may seek from this thread
    /// (and the seek takes these locks). False if a flush made the rest stale.
    fn send_sticky(
        &self,
        pad: &gst::Pad,
        pad_state: &Mutex<PadState>,
        queue: &OutputQueue,
        generation: u64,
        data: Option<&bytes::Bytes>,
    ) -> bool {
        let (stream, group_id) = {
            let state = lock(&self.state);
            let stream = state
                .outputs
                .iter()
                .find(|o| &o.pad == pad)
                .map(|o| o.stream.clone());
            (stream, state.group_id)
        };
        let mut events = Vec::with_capacity(3);
        let mut ps = lock(pad_state);
        if !ps.stream_start_sent {
            let stream_id = stream
                .as_ref()
                .and_then(|s| s.stream_id())
                .map(|s| s.to_string())
                .unwrap_or_else(|| pad.name().to_string());
            let mut ev = gst::event::StreamStart::builder(&stream_id);
            if let Some(g) = group_id {
                ev = ev.group_id(g);
            }
            if let Some(s) = &stream {
                ev = ev.stream(s.clone());
            }
            events.push(ev.build());
            ps.stream_start_sent = true;
            ps.announced = stream;
        }
        if let Some(data) = data.filter(|_| ps.caps.is_none()) {
            match gst_base::type_find_helper_for_data(Some(&*self.obj()), data) {
                Ok((caps, _)) => {
                    gst::debug!(self.cat(), obj = pad, "Typefound {caps}");
                    events.push(gst::event::Caps::new(&caps));
                    ps.caps = Some(caps);
                }
                Err(_) => gst::debug!(
                    self.cat(),
                    obj = pad,
                    "Typefinding failed, leaving it to downstream"
                ),
            }
        }
        if let Some(ev) = ps.pending_segment.take() {
            if let gst::EventView::Segment(seg) = ev.view() {
                ps.segment = seg.segment().downcast_ref::<gst::ClockTime>().cloned();
                ps.media_offset_ns = 0;
            }
            events.push(ev);
            ps.resend_segment = false;
        } else if std::mem::take(&mut ps.resend_segment) {
            // The same mapping (media offset included) on the new stream.
            if let Some(seg) = &ps.segment {
                events.push(gst::event::Segment::new(seg));
            }
        }
        if let Some(tags) = ps.pending_tags.take() {
            events.push(gst::event::Tag::new(tags));
        }
        drop(ps);
        for ev in events {
            if queue.generation() != generation {
                // Flushed before all went out: what this pad announced is not known, so the
                // first item after the flush announces again (see `pad_loop`).
                let mut ps = lock(pad_state);
                ps.caps = None;
                ps.announced = None;
                return false;
            }
            pad.push_event(ev);
        }
        queue.generation() == generation
    }

    /// fMP4 demuxers timestamp from the fragments' own decode times (`tfdt`), in media time.
    /// When that differs from the presentation timeline by a new offset (a DASH Period whose
    /// timestamps restart, presentationTimeOffset), a new SEGMENT maps media time `start` to
    /// presentation time `time` and keeps the running time continuous, as dashdemux does.
    /// False if a flush made the fragment stale.
    fn remap_segment(
        &self,
        pad: &gst::Pad,
        pad_state: &Mutex<PadState>,
        queue: &OutputQueue,
        generation: u64,
        f: &Fragment,
    ) -> bool {
        let mut ps = lock(pad_state);
        if f.media_offset_ns == ps.media_offset_ns {
            return true;
        }
        let Some(cur) = ps.segment.clone() else {
            return true;
        };
        // Presentation time from which the new mapping applies: the fragment's start, or the
        // current segment's start if that is later (a seek target inside the fragment).
        let (old, new) = (ps.media_offset_ns, f.media_offset_ns);
        let cur_start = cur.start().map_or(0, |t| t.nseconds() as i64) - old;
        let from = (f.start.as_nanos() as i64).max(cur_start);
        let at = |ns: i64| gst::ClockTime::from_nseconds(ns.max(0) as u64);
        let running = cur
            .to_running_time(at(from + old))
            .unwrap_or(cur.base().unwrap_or_default());
        let mut seg = cur.clone();
        seg.set_start(at(from + new));
        seg.set_position(at(from + new));
        seg.set_time(at(from));
        seg.set_base(running);
        seg.set_stop(cur.stop().map(|s| at(s.nseconds() as i64 - old + new)));
        gst::debug!(
            self.cat(),
            obj = pad,
            "Media offset {} ns: {seg:?}",
            f.media_offset_ns
        );
        ps.media_offset_ns = f.media_offset_ns;
        ps.segment = Some(seg.clone());
        drop(ps);
        if queue.generation() != generation {
            return false;
        }
        pad.push_event(gst::event::Segment::new(&seg));
        queue.generation() == generation
    }

    fn push_fragment(
        &self,
        pad: &gst::Pad,
        queue: &OutputQueue,
        generation: u64,
        f: Fragment,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        // In the SEGMENT's (media) timeline.
        let pts = gst::ClockTime::from_nseconds(
            (f.start.as_nanos() as i64 + f.media_offset_ns).max(0) as u64,
        );
        let mut buffers = Vec::with_capacity(2);
        if let Some(init) = f.init {
            buffers.push(gst::Buffer::from_slice(init));
        }
        buffers.push(gst::Buffer::from_slice(f.data));
        // The wall clock of the fragment's first sample, for media servers that align live
        // streams to it (caps `timestamp/x-unix`, as GStreamer's NTP/PTP and RTSP sources use).
        let wall = f
            .program_date_time_ns
            .and_then(|t| u64::try_from(t).ok())
            .map(gst::ClockTime::from_nseconds);
        // Like adaptivedemux: the fragment timestamp on its first buffer only.
        for (i, mut buffer) in buffers.into_iter().enumerate() {
            let b = buffer.get_mut().expect("new buffer is writable");
            if let Some(wall) = wall {
                gst::ReferenceTimestampMeta::add(
                    b,
                    &UNIX_TIMESTAMP_CAPS,
                    wall,
                    gst::ClockTime::from_nseconds(f.duration.as_nanos() as u64),
                );
            }
            if i == 0 {
                b.set_pts(pts);
                if f.discont {
                    b.set_flags(gst::BufferFlags::DISCONT);
                }
            }
            // After a flush (a seek from downstream) the rest of this fragment is stale.
            if queue.generation() != generation {
                return Err(gst::FlowError::Flushing);
            }
            pad.push(buffer)?;
        }
        Ok(gst::FlowSuccess::Ok)
    }

    fn src_event(&self, pad: &gst::Pad, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::Seek(seek) => self.handle_seek(seek),
            gst::EventView::SelectStreams(ev) => self.handle_select_streams(ev),
            _ => gst::Pad::event_default(pad, Some(&*self.obj()), event),
        }
    }

    /// The pad's stream becomes the alternative the engine plays now (the selected one, or the
    /// old one if its playlist could not be had), and is returned; None for a pad without
    /// alternatives.
    fn follow_selection(&self, pad: &gst::Pad) -> Option<gst::Stream> {
        let (engine, i) = {
            let state = lock(&self.state);
            let i = state.outputs.iter().position(|o| o.pad == *pad)?;
            (state.engine.clone()?, i)
        };
        // No element lock held while the engine's are taken.
        let k = engine.chosen(i)?;
        let mut state = lock(&self.state);
        let o = state.outputs.get_mut(i)?;
        o.stream = o.choices.get(k)?.clone();
        Some(o.stream.clone())
    }

    /// `select-streams` (from the application through `gst_element_send_event`, or from
    /// downstream): each pad with alternatives to choose among plays the one the event lists,
    /// continuing where the other stopped (its swarm follows), and STREAMS_SELECTED is posted
    /// with the event's seqnum. Every pad plays on (a pad none of whose streams is listed
    /// keeps its own: outputs are not removed). False if the event names none of our streams
    /// or a switch was refused (`Engine::select`; STREAMS_SELECTED then names what plays).
    fn handle_select_streams(&self, ev: &gst::event::SelectStreams) -> bool {
        let wanted: Vec<String> = ev.streams().into_iter().map(|s| s.to_string()).collect();
        let seqnum = ev.seqnum();
        let listed = |s: &gst::Stream| {
            s.stream_id()
                .is_some_and(|id| wanted.iter().any(|w| w.as_str() == id.as_str()))
        };
        // Per output: what it plays now, and the alternative listed for it, if any.
        let (engine, collection, outputs) = {
            let state = lock(&self.state);
            let Some(engine) = state.engine.clone() else {
                return false;
            };
            if !state.outputs.iter().flat_map(|o| &o.choices).any(listed) {
                gst::debug!(
                    self.cat(),
                    imp = self,
                    "select-streams names none of ours: {wanted:?}"
                );
                return false;
            }
            let outputs: Vec<(Vec<gst::Stream>, Option<usize>)> = state
                .outputs
                .iter()
                .map(|o| (o.choices.clone(), o.choices.iter().position(listed)))
                .collect();
            (engine, state.collection.clone(), outputs)
        };
        // The pads announce the new streams themselves, once data of them flows
        // (`follow_selection`).
        let mut refused = false;
        for (i, (_, listed)) in outputs.iter().enumerate() {
            let Some(k) = *listed else {
                continue;
            };
            // Without alternatives (None) the one stream listed plays already.
            if engine.requested(i).is_none_or(|r| r == k) {
                continue;
            }
            match engine.select(i, k) {
                Some(from) => gst::info!(
                    self.cat(),
                    imp = self,
                    "select-streams: output {i} plays alternative {k} from {from:?}"
                ),
                None => {
                    gst::warning!(
                        self.cat(),
                        imp = self,
                        "select-streams: output {i} cannot switch to alternative {k} now"
                    );
                    refused = true;
                }
            }
        }
        // What each output plays or is switching to, refused or not.
        let selected: Vec<gst::Stream> = outputs
            .iter()
            .enumerate()
            .map(|(i, (choices, _))| {
                choices[engine.requested(i).unwrap_or(0).min(choices.len() - 1)].clone()
            })
            .collect();
        if let Some(collection) = collection {
            let element = self.obj();
            let _ = element.post_message(
                gst::message::StreamsSelected::builder(&collection)
                    .streams(selected)
                    .src(&*element)
                    .seqnum(seqnum)
                    .build(),
            );
        }
        !refused
    }

    fn handle_seek(&self, seek: &gst::event::Seek) -> bool {
        let (rate, flags, start_type, start, stop_type, stop) = seek.get();
        let seqnum = seek.seqnum();
        if rate <= 0.0 {
            gst::warning!(self.cat(), imp = self, "Reverse playback is not supported");
            return false;
        }
        let (gst::GenericFormattedValue::Time(start), gst::GenericFormattedValue::Time(stop)) =
            (start, stop)
        else {
            gst::debug!(self.cat(), imp = self, "Only TIME seeks are supported");
            return false;
        };
        let (engine, mut segment, outputs) = {
            let mut state = lock(&self.state);
            // Every sink forwards the same seek: act on it once.
            if state.last_seek == Some(seqnum) {
                return true;
            }
            let Some(engine) = state.engine.clone() else {
                return false;
            };
            let outputs: Vec<_> = state
                .outputs
                .iter()
                .map(|o| (o.pad.clone(), o.queue.clone(), o.pad_state.clone()))
                .collect();
            if outputs.is_empty() {
                return false;
            }
            state.last_seek = Some(seqnum);
            (engine, state.segment.clone(), outputs)
        };
        let Some(p) = engine.presentation() else {
            return false;
        };
        if segment
            .do_seek(rate, flags, start_type, start, stop_type, stop)
            .is_none()
        {
            return false;
        }
        let range = (
            gst::ClockTime::from_nseconds(p.seek_range.0.as_nanos() as u64),
            gst::ClockTime::from_nseconds(p.seek_range.1.as_nanos() as u64),
        );
        // Past the end of a VOD goes to EOS, as with hlsdemux; live stays inside its window.
        let mut target = segment.start().unwrap_or(range.0).max(range.0);
        if p.live {
            target = target.min(range.1);
        }
        // Key units are segment starts (each begins with a keyframe): snap like hlsdemux.
        if flags.intersects(
            gst::SeekFlags::KEY_UNIT | gst::SeekFlags::SNAP_BEFORE | gst::SeekFlags::SNAP_AFTER,
        ) {
            let t = Duration::from_nanos(target.nseconds());
            if let Some((seg_start, seg_end)) = engine.segment_bounds(t) {
                let after = flags.contains(gst::SeekFlags::SNAP_AFTER);
                let before = flags.contains(gst::SeekFlags::SNAP_BEFORE);
                let snapped = if after && before {
                    if t - seg_start <= seg_end - t {
                        seg_start
                    } else {
                        seg_end
                    }
                } else if after && t > seg_start {
                    seg_end.min(Duration::from_nanos(range.1.nseconds()))
                } else {
                    seg_start
                };
                target = gst::ClockTime::from_nseconds(snapped.as_nanos() as u64);
            }
        }
        if !flags.contains(gst::SeekFlags::FLUSH) {
            gst::warning!(self.cat(), imp = self, "Only flushing seeks are supported");
            return false;
        }
        gst::debug!(
            self.cat(),
            imp = self,
            "Seeking to {target} (seqnum {seqnum:?})"
        );

        for (pad, _, _) in &outputs {
            pad.push_event(gst::event::FlushStart::builder().seqnum(seqnum).build());
        }
        for (_, queue, _) in &outputs {
            queue.set_flushing(true);
        }
        engine.stop();
        for (pad, _, _) in &outputs {
            let _ = pad.pause_task();
        }
        if !engine.seek(Duration::from_nanos(target.nseconds())) {
            gst::warning!(
                self.cat(),
                imp = self,
                "Seek target {target} not in the seekable range"
            );
        }
        segment.set_start(target);
        segment.set_time(target);
        segment.set_position(target);
        lock(&self.state).segment = segment.clone();
        lock(&self.flow).reset();
        for (pad, queue, pad_state) in outputs {
            pad.push_event(gst::event::FlushStop::builder(true).seqnum(seqnum).build());
            lock(&pad_state).pending_segment = Some(
                gst::event::Segment::builder(&segment)
                    .seqnum(seqnum)
                    .build(),
            );
            queue.set_flushing(false);
            self.start_task(&pad, queue, pad_state);
        }
        true
    }

    fn src_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        let presentation = lock(&self.state)
            .engine
            .as_ref()
            .and_then(|e| e.presentation());
        match query.view_mut() {
            gst::QueryViewMut::Duration(q) if q.format() == gst::Format::Time => {
                let Some(d) = presentation.and_then(|p| p.duration) else {
                    return false;
                };
                q.set(gst::ClockTime::from_nseconds(d.as_nanos() as u64));
                true
            }
            gst::QueryViewMut::Seeking(q) if q.format() == gst::Format::Time => {
                match presentation {
                    Some(p) => q.set(
                        true,
                        gst::ClockTime::from_nseconds(p.seek_range.0.as_nanos() as u64),
                        gst::ClockTime::from_nseconds(p.seek_range.1.as_nanos() as u64),
                    ),
                    None => q.set(false, gst::ClockTime::ZERO, gst::ClockTime::NONE),
                }
                true
            }
            gst::QueryViewMut::Uri(q) => {
                q.set_uri(self.uri().as_deref());
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    /// Our URI form of `location` (`p2phls+http://…`).
    pub fn uri(&self) -> Option<String> {
        let prefix = self.kind().scheme_prefix;
        lock(&self.settings)
            .location
            .as_ref()
            .map(|l| format!("{prefix}{l}"))
    }

    /// URIHandler: only our own schemes (plain http(s) stays with souphttpsrc).
    pub fn set_uri(&self, uri: &str) -> Result<(), glib::Error> {
        let prefix = self.kind().scheme_prefix;
        let url = self
            .parse_location(uri)
            .map_err(|e| glib::Error::new(gst::URIError::BadUri, &e))?;
        if !uri.starts_with(prefix) {
            return Err(glib::Error::new(
                gst::URIError::UnsupportedProtocol,
                &format!("expected {prefix}http(s)://"),
            ));
        }
        lock(&self.settings).location = Some(url.to_string());
        Ok(())
    }

    /// Accepts the plain http(s) URL, or our URI form with the scheme prefix.
    fn parse_location(&self, location: &str) -> Result<Url, String> {
        let plain = location
            .strip_prefix(self.kind().scheme_prefix)
            .unwrap_or(location);
        let url = Url::parse(plain).map_err(|e| e.to_string())?;
        match url.scheme() {
            "http" | "https" => Ok(url),
            other => Err(format!(
                "unsupported scheme {other:?} (expected http or https)"
            )),
        }
    }

    fn stats(&self) -> gst::Structure {
        // Settings first, never under the state lock.
        let mode = lock(&self.settings).mode;
        let state = lock(&self.state);
        let engine = state.engine.as_ref();
        let stats = engine.map(|e| e.stats().snapshot()).unwrap_or_default();
        let buffered = state
            .outputs
            .first()
            .map(|o| o.queue.buffered_time())
            .unwrap_or_default();
        let hub = engine.and_then(|e| e.hub());
        let swarms = gst::Array::new(hub.map(|h| h.swarms()).unwrap_or_default().into_iter().map(
            |s| {
                gst::Structure::builder("swarm")
                    .field("info-hash", s.info_hash)
                    .field("type", s.stream_type.as_str())
                    .field("peers", s.peers as u32)
                    .field("store-bytes", s.store_bytes)
                    .field("upload-bytes", s.upload_bytes)
                    .field("http-segments", s.http_segments)
                    .field("served-segments", s.served_segments)
                    .build()
                    .to_send_value()
            },
        ));
        let trackers = gst::Array::new(
            hub.map(|h| h.trackers())
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    gst::Structure::builder("tracker")
                        .field("url", t.url)
                        .field("state", t.state.as_str())
                        .field_if_some("last-error", t.last_error)
                        .field("peers-seen", t.peers_seen as u32)
                        .build()
                        .to_send_value()
                }),
        );
        gst::Structure::builder("p2pmedia-stats")
            .field(
                "mode",
                if mode == Mode::Seeder {
                    "seeder"
                } else {
                    "player"
                },
            )
            .field("seeded-segments", stats.seeded_segments)
            .field("served-segments", stats.served_segments)
            .field("http-bytes", stats.http_bytes)
            .field("http-segments", stats.http_segments)
            .field("p2p-bytes", stats.p2p_bytes)
            .field("p2p-upload-bytes", stats.p2p_upload_bytes)
            .field("p2p-segments", stats.p2p_segments)
            .field("p2p-longest-stall-ms", stats.p2p_longest_stall_ms)
            .field("peers", hub.map_or(0, |h| h.peers()) as u32)
            .field(
                "trackers-connected",
                hub.map_or(0, |h| h.trackers_connected()) as u32,
            )
            .field("trackers", trackers)
            .field("swarms", swarms)
            .field("variant-bitrate", stats.variant_bitrate)
            .field("bandwidth", stats.bandwidth)
            .field("buffered-time", buffered.as_nanos() as u64)
            .build()
    }
}

#[glib::object_subclass]
impl ObjectSubclass for P2pMediaSrc {
    const NAME: &'static str = "GstP2pMediaSrc";
    const ABSTRACT: bool = true;
    type Type = super::P2pMediaSrc;
    type ParentType = gst::Element;
}

impl ObjectImpl for P2pMediaSrc {
    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            // Any handler returning FALSE vetoes the segment: it is neither used nor shared,
            // and is fetched again from the origin.
            vec![glib::subclass::Signal::builder("validate-segment")
                .param_types([
                    String::static_type(),
                    u64::static_type(),
                    String::static_type(),
                    glib::Bytes::static_type(),
                ])
                .return_type::<bool>()
                .accumulator(|_hint, _acc, value| {
                    let ok = value.get::<bool>().unwrap_or(true);
                    if ok {
                        std::ops::ControlFlow::Continue(true.to_value())
                    } else {
                        std::ops::ControlFlow::Break(false.to_value())
                    }
                })
                .class_handler(|_| Some(true.to_value()))
                .build()]
        });
        SIGNALS.as_ref()
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(settings::properties);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = lock(&self.settings);
        if pspec.name() == "location" {
            let location: Option<String> = value.get().expect("type checked upstream");
            let prefix = self.kind().scheme_prefix;
            if let Some(l) = &location {
                if let Err(e) = self.parse_location(l) {
                    gst::warning!(self.cat(), imp = self, "Ignoring invalid location {l}: {e}");
                    return;
                }
            }
            settings.location = location.map(|l| l.strip_prefix(prefix).unwrap_or(&l).to_string());
            return;
        }
        if !settings.set(value, pspec) {
            gst::warning!(self.cat(), imp = self, "Unknown property {}", pspec.name());
        }
        let abr = settings.abr();
        drop(settings);
        if let Some(engine) = lock(&self.state).engine.as_ref() {
            engine.set_abr(abr);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "stats" => self.stats().to_value(),
            "current-bandwidth" => {
                let engine = lock(&self.state).engine.clone();
                let bps = engine.map(|e| e.stats().snapshot().bandwidth).unwrap_or(0);
                (bps.min(u32::MAX as u64) as u32).to_value()
            }
            _ => lock(&self.settings)
                .get(pspec)
                .unwrap_or_else(|| pspec.default_value().clone()),
        }
    }
}

impl GstObjectImpl for P2pMediaSrc {}

impl ElementImpl for P2pMediaSrc {
    /// A source has no sink pad to send upstream events to: `select-streams` from the
    /// application lands here (seeks go to a source pad, as the default does).
    fn send_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::SelectStreams(ev) = event.view() {
            return self.handle_select_streams(ev);
        }
        self.parent_send_event(event)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            vec![gst::PadTemplate::new(
                "src_%u",
                gst::PadDirection::Src,
                gst::PadPresence::Sometimes,
                &gst::Caps::new_any(),
            )
            .expect("valid template")]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::ReadyToPaused {
            if let Err(e) = self.start() {
                *lock(&self.startup) = Startup::default();
                return Err(e);
            }
            // Posted before returning, so the application's `set_state` fails after it.
            if let Some(error) = self.finish_startup() {
                self.post_engine_error(&error);
                self.remove_pads(self.stop());
                return Err(gst::StateChangeError);
            }
        }
        let mut removed = Vec::new();
        if transition == gst::StateChange::PausedToReady {
            removed = self.stop();
        }
        let res = self.parent_change_state(transition);
        self.remove_pads(removed);
        if transition == gst::StateChange::ReadyToPaused && res.is_err() {
            self.remove_pads(self.stop());
        }
        res
    }
}
