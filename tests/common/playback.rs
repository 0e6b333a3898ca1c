//! Play a URI through a real pipeline and record every decoded video frame and audio
//! buffer (timestamps included) with pad probes on `sync=false` fakesinks, plus the bus's
//! ERROR/WARNING messages, within a hard time bound.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// How the pipeline is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `playbin uri=…` (legacy hlsdemux for http://).
    Playbin,
    /// `playbin3 uri=…` (hlsdemux2 for http://).
    Playbin3,
    /// `uridecodebin3 uri=…` with a fakesink per decoded pad.
    UriDecodeBin3,
    /// `p2phlssrc location=… ! decodebin ! fakesink` per source pad, built by hand.
    SrcDecodebin,
}

/// `p2phls+http://…` for an `http://…` URL.
pub fn p2p_uri(http_url: &str) -> String {
    format!("p2phls+{http_url}")
}

/// `p2pdash+http://…` for an `http://…` URL.
pub fn p2p_dash_uri(http_url: &str) -> String {
    format!("p2pdash+{http_url}")
}

#[derive(Clone, Debug)]
pub struct BufInfo {
    pub pts: Option<gst::ClockTime>,
    pub duration: Option<gst::ClockTime>,
    /// PTS mapped through the last SEGMENT event (position in the stream).
    pub stream_time: Option<gst::ClockTime>,
    pub running_time: Option<gst::ClockTime>,
    /// Video width from the caps in force (a variant switch changes it).
    pub width: Option<i32>,
}

#[derive(Default)]
struct Track {
    segment: Option<gst::FormattedSegment<gst::ClockTime>>,
    bufs: Vec<BufInfo>,
    segments: Vec<gst::FormattedSegment<gst::ClockTime>>,
    flushes: usize,
    width: Option<i32>,
}

#[derive(Clone, Debug)]
pub struct BusError {
    pub resource: bool,
    pub stream: bool,
    pub domain: String,
    pub message: String,
    pub debug: String,
    pub src: String,
    /// Factory of the posting element ("" if not an element).
    pub src_factory: String,
}

impl BusError {
    fn from(e: &glib::Error, debug: Option<glib::GString>, src: Option<&gst::Object>) -> Self {
        BusError {
            resource: e.is::<gst::ResourceError>(),
            stream: e.is::<gst::StreamError>(),
            domain: e.domain().as_str().to_string(),
            message: e.message().to_string(),
            debug: debug.map(|d| d.to_string()).unwrap_or_default(),
            src: src.map(|s| s.path_string().to_string()).unwrap_or_default(),
            src_factory: src
                .and_then(|s| s.downcast_ref::<gst::Element>())
                .and_then(|e| e.factory())
                .map(|f| f.name().to_string())
                .unwrap_or_default(),
        }
    }
}

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}] {}: {} ({})",
            self.domain, self.src, self.message, self.debug
        )
    }
}

pub struct Outcome {
    pub mode: Mode,
    pub uri: String,
    pub video: Vec<BufInfo>,
    pub audio: Vec<BufInfo>,
    pub video_segments: Vec<gst::FormattedSegment<gst::ClockTime>>,
    pub errors: Vec<BusError>,
    pub warnings: Vec<BusError>,
    pub eos: bool,
    pub timed_out: bool,
    pub elapsed: Duration,
    /// The first p2phlssrc / hlsdemux / hlsdemux2 (p2pdashsrc / dashdemux) seen in the pipeline.
    pub adaptive: Option<gst::Element>,
    /// Names of the src pads that element added.
    pub adaptive_pads: Vec<String>,
    /// Wall time (since start) of every video frame, for live tests.
    pub video_arrivals: Vec<Duration>,
    /// p2phlssrc's `stats` and `current-bandwidth` at EOS/ERROR, before teardown.
    pub stats: Option<gst::Structure>,
    pub current_bandwidth: Option<u64>,
    /// Duration and seekability answered by the pipeline at the first preroll.
    pub duration: Option<gst::ClockTime>,
    pub seekable: Option<bool>,
}

impl Outcome {
    pub fn first_video_pts(&self) -> Option<gst::ClockTime> {
        self.video.first().and_then(|b| b.pts)
    }
    pub fn last_video_pts(&self) -> Option<gst::ClockTime> {
        self.video.last().and_then(|b| b.pts)
    }
    pub fn first_audio_pts(&self) -> Option<gst::ClockTime> {
        self.audio.first().and_then(|b| b.pts)
    }
    pub fn last_audio_pts(&self) -> Option<gst::ClockTime> {
        self.audio.last().and_then(|b| b.pts)
    }

    /// One line for assertion messages.
    pub fn summary(&self) -> String {
        format!(
            "{:?} {}: video={} [{:?}..{:?}] audio={} [{:?}..{:?}] eos={} timed_out={} {:.1}s errors={:?} pads={:?}",
            self.mode,
            self.uri,
            self.video.len(),
            self.first_video_pts(),
            self.last_video_pts(),
            self.audio.len(),
            self.first_audio_pts(),
            self.last_audio_pts(),
            self.eos,
            self.timed_out,
            self.elapsed.as_secs_f64(),
            self.errors.iter().map(|e| e.to_string()).collect::<Vec<_>>(),
            self.adaptive_pads,
        )
    }

    /// Played to EOS without an ERROR.
    pub fn assert_complete(&self) {
        assert!(
            self.eos && self.errors.is_empty() && !self.timed_out,
            "playback did not complete cleanly: {}",
            self.summary()
        );
    }

    /// Ended with an ERROR (not a timeout, not EOS-only).
    pub fn first_error(&self) -> &BusError {
        self.errors
            .first()
            .unwrap_or_else(|| panic!("expected an ERROR message: {}", self.summary()))
    }
}

type Tracks = Arc<Mutex<(Track, Track)>>;
type Adaptive = Arc<Mutex<(Option<gst::Element>, Vec<String>)>>;
/// Called once with the adaptive element when the Nth video frame reaches the sink.
type Hook = Box<dyn FnOnce(&gst::Element) + Send>;

/// What the probes and signal handlers of one run share.
#[derive(Clone)]
struct Ctx {
    tracks: Tracks,
    arrivals: Arc<Mutex<Vec<Duration>>>,
    start: Instant,
    adaptive: Adaptive,
    hooks: Arc<Mutex<Vec<(usize, Hook)>>>,
    /// Sinks synchronise to the clock (play in real time).
    sync: bool,
}

pub struct Player {
    mode: Mode,
    uri: String,
    timeout: Duration,
    props: Vec<(String, glib::SendValue)>,
    seeks: Vec<gst::ClockTime>,
    connection_speed: Option<u64>,
    hooks: Vec<(usize, Hook)>,
    sync: bool,
}

impl Player {
    /// For `Mode::SrcDecodebin`, `uri` is the element's `location` (plain http URL).
    pub fn new(mode: Mode, uri: impl Into<String>) -> Self {
        Player {
            mode,
            uri: uri.into(),
            timeout: Duration::from_secs(40),
            // These tests are about the HTTP path (P2P has its own suite): no tracker traffic,
            // which would also leave 127.0.0.1. `.prop("p2p-enabled", true)` overrides.
            props: vec![("p2p-enabled".to_string(), false.to_send_value())],
            seeks: Vec::new(),
            connection_speed: None,
            hooks: Vec::new(),
            sync: false,
        }
    }

    pub fn playbin(uri: impl Into<String>) -> Self {
        Self::new(Mode::Playbin, uri)
    }

    /// Hard bound for the whole run; hitting it ends playback with `timed_out`.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Set a property on p2phlssrc when it appears (ignored for other elements).
    pub fn prop(mut self, name: &str, value: impl glib::value::ToSendValue) -> Self {
        self.props.push((name.to_string(), value.to_send_value()));
        self
    }

    /// Preroll, then a flushing key-unit TIME seek to `t`, then play to the end; only what
    /// arrives after the (last) seek's flush is recorded. Called again, the seeks run one
    /// after the other, each once the previous one has prerolled.
    pub fn seek(mut self, t: gst::ClockTime) -> Self {
        self.seeks.push(t);
        self
    }

    /// playbin's `connection-speed` (kbit/s), passed down to the adaptive demuxer.
    pub fn connection_speed(mut self, kbps: u64) -> Self {
        self.connection_speed = Some(kbps);
        self
    }

    /// Run `f` on the adaptive element (p2phlssrc) when video frame `n` (1-based) reaches
    /// the sink, e.g. to change a bitrate limit mid-stream.
    pub fn at_video_frame(
        mut self,
        n: usize,
        f: impl FnOnce(&gst::Element) + Send + 'static,
    ) -> Self {
        self.hooks.push((n, Box::new(f)));
        self
    }

    /// Sinks that play in real time (the default consumes as fast as it can).
    pub fn realtime(mut self) -> Self {
        self.sync = true;
        self
    }

    pub fn run(self) -> Outcome {
        super::init();
        let start = Instant::now();
        let ctx = Ctx {
            tracks: Arc::default(),
            arrivals: Arc::default(),
            start,
            adaptive: Arc::default(),
            hooks: Arc::new(Mutex::new(self.hooks)),
            sync: self.sync,
        };
        let Ctx {
            tracks,
            arrivals,
            adaptive,
            ..
        } = ctx.clone();
        // SendValue is Send but not Sync; the signal closure must be both.
        let props = Arc::new(Mutex::new(self.props));

        let pipeline = gst::Pipeline::new();
        // Watch every element at any depth for the adaptive one (p2phlssrc inside
        // uridecodebin, hlsdemux inside decodebin) and configure it before it starts.
        {
            let adaptive = adaptive.clone();
            let props = props.clone();
            pipeline.connect_deep_element_added(move |_, _, elem| {
                watch_adaptive(elem, &adaptive, &props);
            });
        }

        let make_sink = |video: bool| -> gst::Element {
            let sink = gst::ElementFactory::make("fakesink")
                .property("sync", self.sync)
                .property("async", true)
                .build()
                .unwrap();
            probe_sink(&sink, video, &ctx);
            sink
        };

        match self.mode {
            Mode::Playbin | Mode::Playbin3 => {
                let name = if self.mode == Mode::Playbin {
                    "playbin"
                } else {
                    "playbin3"
                };
                let pb = gst::ElementFactory::make(name)
                    .property("uri", &self.uri)
                    .property("video-sink", make_sink(true))
                    .property("audio-sink", make_sink(false))
                    .build()
                    .unwrap();
                if let Some(kbps) = self.connection_speed {
                    pb.set_property("connection-speed", kbps);
                }
                // Playbin is itself a pipeline; wrap it so the code below is uniform.
                pipeline.add(&pb).unwrap();
            }
            Mode::UriDecodeBin3 => {
                let udb = gst::ElementFactory::make("uridecodebin3")
                    .property("uri", &self.uri)
                    .build()
                    .unwrap();
                pipeline.add(&udb).unwrap();
                let pl = pipeline.downgrade();
                let ctx = ctx.clone();
                udb.connect_pad_added(move |_, pad| {
                    if let Some(pl) = pl.upgrade() {
                        link_decoded_pad(&pl, pad, &ctx);
                    }
                });
            }
            Mode::SrcDecodebin => {
                let src = gst::ElementFactory::make("p2phlssrc")
                    .property("location", &self.uri)
                    .build()
                    .expect("p2phlssrc element (is the plugin registered?)");
                pipeline.add(&src).unwrap();
                let pl = pipeline.downgrade();
                let ctx = ctx.clone();
                src.connect_pad_added(move |_, pad| {
                    let Some(pl) = pl.upgrade() else { return };
                    let db = gst::ElementFactory::make("decodebin").build().unwrap();
                    pl.add(&db).unwrap();
                    let pl2 = pl.downgrade();
                    let ctx = ctx.clone();
                    db.connect_pad_added(move |_, dpad| {
                        if let Some(pl) = pl2.upgrade() {
                            link_decoded_pad(&pl, dpad, &ctx);
                        }
                    });
                    db.sync_state_with_parent().unwrap();
                    pad.link(&db.static_pad("sink").unwrap())
                        .expect("link p2phlssrc pad to decodebin");
                });
            }
        }

        let bus = pipeline.bus().unwrap();
        let deadline = start + self.timeout;
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut eos = false;
        let mut timed_out = false;
        let mut playing = false;
        let mut prerolled = false;
        let (mut duration, mut seekable) = (None, None);
        // Seeks still to send; each ASYNC_DONE (preroll) sends the next, then PLAYING.
        let mut seeks = self.seeks.clone().into_iter();
        let seeking = !self.seeks.is_empty();
        if seeking {
            let _ = pipeline.set_state(gst::State::Paused);
        } else {
            let _ = pipeline.set_state(gst::State::Playing);
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                timed_out = true;
                break;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64))
            else {
                continue;
            };
            use gst::MessageView;
            match msg.view() {
                MessageView::Eos(_) => {
                    eos = true;
                    break;
                }
                MessageView::Error(e) => {
                    errors.push(BusError::from(&e.error(), e.debug(), msg.src()));
                    break;
                }
                MessageView::Warning(w) => {
                    warnings.push(BusError::from(&w.error(), w.debug(), msg.src()));
                }
                MessageView::AsyncDone(_)
                    if !prerolled && msg.src() == Some(pipeline.upcast_ref()) =>
                {
                    prerolled = true;
                    duration = pipeline.query_duration::<gst::ClockTime>();
                    let mut q = gst::query::Seeking::new(gst::Format::Time);
                    if pipeline.query(&mut q) {
                        seekable = Some(q.result().0);
                    }
                    if seeking {
                        if let Some(t) = seeks.next() {
                            pipeline
                                .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, t)
                                .expect("seek");
                        }
                    }
                }
                // Each preroll (ASYNC_DONE) sends the next seek, then goes to PLAYING.
                MessageView::AsyncDone(_)
                    if seeking && !playing && msg.src() == Some(pipeline.upcast_ref()) =>
                {
                    match seeks.next() {
                        Some(t) => {
                            pipeline
                                .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, t)
                                .expect("seek");
                        }
                        None => {
                            let _ = pipeline.set_state(gst::State::Playing);
                            playing = true;
                        }
                    }
                }
                _ => {}
            }
        }
        // Collect further ERRORs for a moment, so tests can require exactly one.
        if !errors.is_empty() {
            let until = Instant::now() + Duration::from_millis(300);
            while let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
                if let gst::MessageView::Error(e) = msg.view() {
                    errors.push(BusError::from(&e.error(), e.debug(), msg.src()));
                }
                if Instant::now() >= until {
                    break;
                }
            }
        }
        // Read the element's counters before teardown (stopping may reset them).
        let (stats, current_bandwidth) = adaptive
            .lock()
            .unwrap()
            .0
            .as_ref()
            .map(read_stats)
            .unwrap_or_default();
        let _ = pipeline.set_state(gst::State::Null);
        let elapsed = start.elapsed();

        let (v, a) = std::mem::take(&mut *tracks.lock().unwrap());
        let (adaptive, adaptive_pads) = std::mem::take(&mut *adaptive.lock().unwrap());
        let video_arrivals = std::mem::take(&mut *arrivals.lock().unwrap());
        Outcome {
            mode: self.mode,
            uri: self.uri,
            video: v.bufs,
            audio: a.bufs,
            video_segments: v.segments,
            errors,
            warnings,
            eos,
            timed_out,
            elapsed,
            adaptive,
            adaptive_pads,
            video_arrivals,
            stats,
            current_bandwidth,
            duration,
            seekable,
        }
    }
}

fn read_stats(e: &gst::Element) -> (Option<gst::Structure>, Option<u64>) {
    let stats = e
        .find_property("stats")
        .map(|_| e.property::<gst::Structure>("stats"));
    let bw = e.find_property("current-bandwidth").and_then(|_| {
        e.property_value("current-bandwidth")
            .transform::<u64>()
            .ok()
            .and_then(|v| v.get::<u64>().ok())
    });
    (stats, bw)
}

/// A numeric field of a `stats` structure, whatever its integer type.
pub fn stat(stats: &gst::Structure, field: &str) -> u64 {
    stats
        .value(field)
        .unwrap_or_else(|_| panic!("stats has no {field}: {stats}"))
        .transform::<u64>()
        .unwrap_or_else(|_| panic!("stats {field} is not numeric: {stats}"))
        .get::<u64>()
        .unwrap()
}

fn watch_adaptive(
    elem: &gst::Element,
    adaptive: &Adaptive,
    props: &Arc<Mutex<Vec<(String, glib::SendValue)>>>,
) {
    let Some(factory) = elem.factory() else {
        return;
    };
    let name = factory.name();
    if !matches!(
        name.as_str(),
        "p2phlssrc" | "hlsdemux" | "hlsdemux2" | "p2pdashsrc" | "dashdemux" | "dashdemux2"
    ) {
        return;
    }
    if name.starts_with("p2p") {
        for (k, v) in props.lock().unwrap().iter() {
            elem.set_property_from_value(k, v);
        }
    }
    // Legacy decodebin tries hlsdemux2 (dashdemux2) first (higher rank) and falls back to hlsdemux, so
    // keep the first element that actually adds a pad.
    let adaptive = adaptive.clone();
    elem.connect_pad_added(move |e, pad| {
        let mut a = adaptive.lock().unwrap();
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        if a.0.is_none() {
            a.0 = Some(e.clone());
        }
        if a.0.as_ref() == Some(e) {
            a.1.push(pad.name().to_string());
        }
    });
}

/// Link a decoded pad to a new fakesink that records it as video or audio.
fn link_decoded_pad(pipeline: &gst::Pipeline, pad: &gst::Pad, ctx: &Ctx) {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let media = caps
        .structure(0)
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let video = media.starts_with("video/");
    if !video && !media.starts_with("audio/") {
        return;
    }
    link_fakesink(pipeline, pad, ctx.sync, |sink| probe_sink(sink, video, ctx));
}

/// Links `pad` to a new fakesink (`sync`: in real time) in `pipeline`, after `setup` (its
/// probes) has seen it.
fn link_fakesink(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    sync: bool,
    setup: impl FnOnce(&gst::Element),
) {
    let sink = gst::ElementFactory::make("fakesink")
        .property("sync", sync)
        .build()
        .unwrap();
    setup(&sink);
    pipeline.add(&sink).unwrap();
    sink.sync_state_with_parent().unwrap();
    pad.link(&sink.static_pad("sink").unwrap())
        .expect("link a source pad to a fakesink");
}

fn probe_sink(sink: &gst::Element, video: bool, ctx: &Ctx) {
    let ctx = ctx.clone();
    sink.static_pad("sink").unwrap().add_probe(
        // Flush events are not part of EVENT_DOWNSTREAM; ask for them explicitly.
        gst::PadProbeType::BUFFER
            | gst::PadProbeType::EVENT_DOWNSTREAM
            | gst::PadProbeType::EVENT_FLUSH,
        move |_, info| {
            let mut guard = ctx.tracks.lock().unwrap();
            let t = if video { &mut guard.0 } else { &mut guard.1 };
            match &info.data {
                Some(gst::PadProbeData::Buffer(b)) => {
                    let pts = b.pts();
                    let seg = t.segment.as_ref();
                    t.bufs.push(BufInfo {
                        pts,
                        duration: b.duration(),
                        stream_time: pts.and_then(|p| seg.and_then(|s| s.to_stream_time(p))),
                        running_time: pts.and_then(|p| seg.and_then(|s| s.to_running_time(p))),
                        width: t.width,
                    });
                    if video {
                        ctx.arrivals.lock().unwrap().push(ctx.start.elapsed());
                        let n = t.bufs.len();
                        drop(guard);
                        run_hooks(&ctx, n);
                    }
                }
                Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                    gst::EventView::Caps(c) => {
                        t.width = c
                            .caps()
                            .structure(0)
                            .and_then(|s| s.get::<i32>("width").ok());
                    }
                    gst::EventView::Segment(s) => {
                        if let Ok(seg) = s.segment().clone().downcast::<gst::ClockTime>() {
                            t.segments.push(seg.clone());
                            t.segment = Some(seg);
                        }
                    }
                    // A flushing seek: forget what came before it.
                    gst::EventView::FlushStop(_) => {
                        t.bufs.clear();
                        t.segments.clear();
                        t.flushes += 1;
                        if video {
                            ctx.arrivals.lock().unwrap().clear();
                        }
                    }
                    _ => {}
                },
                _ => {}
            }
            gst::PadProbeReturn::Ok
        },
    );
}

fn run_hooks(ctx: &Ctx, frame: usize) {
    let due: Vec<Hook> = {
        let mut hooks = ctx.hooks.lock().unwrap();
        let (due, keep): (Vec<_>, Vec<_>) = hooks.drain(..).partition(|(n, _)| *n <= frame);
        *hooks = keep;
        due.into_iter().map(|(_, h)| h).collect()
    };
    if due.is_empty() {
        return;
    }
    let elem = ctx.adaptive.lock().unwrap().0.clone();
    if let Some(elem) = elem {
        for h in due {
            h(&elem);
        }
    }
}

/// Largest audio PTS difference accepted between hlsdemux and p2phlssrc: one 90 kHz MPEG
/// tick. Both push identical bytes, but hlsdemux hands tsdemux small chunks and p2phlssrc
/// whole segments, so at some segment boundaries avdec_aac re-syncs to the PES PTS (90 kHz)
/// in one pipeline and keeps counting 1024-sample frames in the other: the same instant
/// rounded two ways, a few hundred ns apart. Video PTS must match exactly.
pub const AUDIO_PTS_TOLERANCE: gst::ClockTime = gst::ClockTime::from_nseconds(11_111);

fn close(a: Option<gst::ClockTime>, b: Option<gst::ClockTime>, tol: gst::ClockTime) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.absdiff(b) <= tol,
        (a, b) => a == b,
    }
}

/// The same stream through legacy hlsdemux (`playbin http://…`) and through p2phlssrc
/// (`playbin p2phls+http://…`) must give the same decoded output.
pub fn assert_same_output(reference: &Outcome, candidate: &Outcome) {
    reference.assert_complete();
    candidate.assert_complete();
    let ctx = format!(
        "\nreference: {}\ncandidate: {}",
        reference.summary(),
        candidate.summary()
    );
    assert_eq!(
        reference.video.len(),
        candidate.video.len(),
        "video frame counts differ{ctx}"
    );
    assert_eq!(
        reference.audio.len(),
        candidate.audio.len(),
        "audio buffer counts differ{ctx}"
    );
    assert_eq!(
        reference.first_video_pts(),
        candidate.first_video_pts(),
        "first video PTS differs{ctx}"
    );
    assert_eq!(
        reference.last_video_pts(),
        candidate.last_video_pts(),
        "last video PTS differs{ctx}"
    );
    assert!(
        close(
            reference.first_audio_pts(),
            candidate.first_audio_pts(),
            AUDIO_PTS_TOLERANCE
        ),
        "first audio PTS differs{ctx}"
    );
    assert!(
        close(
            reference.last_audio_pts(),
            candidate.last_audio_pts(),
            AUDIO_PTS_TOLERANCE
        ),
        "last audio PTS differs{ctx}"
    );
}

/// What p2phlssrc pushed on one pad, byte for byte.
pub struct RawPad {
    pub name: String,
    pub caps: Option<gst::Caps>,
    pub bytes: Vec<u8>,
    pub buffers: usize,
    /// Buffers flagged DISCONT.
    pub discont: usize,
    pub segment: Option<gst::Segment>,
    /// Per buffer: its `GstReferenceTimestampMeta` for `timestamp/x-unix` (wall clock), if any.
    pub unix_times: Vec<Option<gst::ClockTime>>,
}

pub struct RawOutcome {
    pub pads: Vec<RawPad>,
    pub errors: Vec<BusError>,
    pub eos: bool,
    pub timed_out: bool,
    pub source: gst::Element,
    /// `stats` at EOS/ERROR, before teardown.
    pub stats: gst::Structure,
}

/// `p2phlssrc location=… ! appsink` per pad: collect exactly what the element pushes.
pub fn capture_raw(
    location: &str,
    props: &[(&str, glib::SendValue)],
    timeout: Duration,
) -> RawOutcome {
    capture_raw_from("p2phlssrc", location, props, timeout)
}

/// [`capture_raw`] with another element (`p2pdashsrc`).
pub fn capture_raw_from(
    factory: &str,
    location: &str,
    props: &[(&str, glib::SendValue)],
    timeout: Duration,
) -> RawOutcome {
    super::init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make(factory)
        .property("location", location)
        .property("p2p-enabled", false)
        .build()
        .unwrap_or_else(|_| panic!("{factory} element"));
    for (k, v) in props {
        src.set_property_from_value(k, v);
    }
    pipeline.add(&src).unwrap();
    let pads: Arc<Mutex<Vec<RawPad>>> = Arc::default();
    {
        let pads = pads.clone();
        let pl = pipeline.downgrade();
        src.connect_pad_added(move |_, pad| {
            let Some(pl) = pl.upgrade() else { return };
            let idx = {
                let mut p = pads.lock().unwrap();
                p.push(RawPad {
                    name: pad.name().to_string(),
                    caps: None,
                    bytes: Vec::new(),
                    buffers: 0,
                    discont: 0,
                    segment: None,
                    unix_times: Vec::new(),
                });
                p.len() - 1
            };
            let pads = pads.clone();
            link_fakesink(&pl, pad, false, |sink| {
                sink.static_pad("sink").unwrap().add_probe(
                    gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                    move |_, info| {
                        let mut p = pads.lock().unwrap();
                        let rp = &mut p[idx];
                        match &info.data {
                            Some(gst::PadProbeData::Buffer(b)) => {
                                rp.buffers += 1;
                                rp.unix_times.push(
                                    b.iter_meta::<gst::ReferenceTimestampMeta>()
                                        .find(|m| {
                                            m.reference()
                                                .structure(0)
                                                .is_some_and(|s| s.name() == "timestamp/x-unix")
                                        })
                                        .map(|m| m.timestamp()),
                                );
                                if b.flags().contains(gst::BufferFlags::DISCONT) {
                                    rp.discont += 1;
                                }
                                rp.bytes
                                    .extend_from_slice(&b.map_readable().expect("readable buffer"));
                            }
                            Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                                gst::EventView::Caps(c) => rp.caps = Some(c.caps_owned()),
                                gst::EventView::Segment(s) => {
                                    rp.segment = Some(s.segment().clone())
                                }
                                _ => {}
                            },
                            _ => {}
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            });
        });
    }
    let bus = pipeline.bus().unwrap();
    let _ = pipeline.set_state(gst::State::Playing);
    let deadline = Instant::now() + timeout;
    let (mut eos, mut timed_out, mut errors) = (false, false, Vec::new());
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        let wait = (deadline - now).min(Duration::from_millis(100));
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(wait.as_nanos() as u64)) else {
            continue;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => {
                eos = true;
                break;
            }
            gst::MessageView::Error(e) => {
                errors.push(BusError::from(&e.error(), e.debug(), msg.src()));
                break;
            }
            _ => {}
        }
    }
    let (stats, _) = read_stats(&src);
    let _ = pipeline.set_state(gst::State::Null);
    let pads = std::mem::take(&mut *pads.lock().unwrap());
    RawOutcome {
        stats: stats.unwrap(),
        pads,
        errors,
        eos,
        timed_out,
        source: src,
    }
}

/// What [`run_selection`] saw.
pub struct Selection {
    /// The collection the element posted.
    pub collection: gst::StreamCollection,
    /// The ids sent in the last `select-streams`, and its seqnum.
    pub sent: (Vec<String>, gst::Seqnum),
    /// STREAMS_SELECTED: seqnum and stream ids.
    pub selected: Option<(gst::Seqnum, Vec<String>)>,
    pub eos: bool,
    /// Pad `src_1` (the audio): its bytes, stream-start ids, the language of its tag events
    /// and its DISCONT buffers.
    pub audio: Vec<u8>,
    pub stream_starts: Vec<String>,
    pub languages: Vec<String>,
    pub discont: usize,
    /// CAPS and SEGMENT events on the audio pad.
    pub caps_events: usize,
    pub segment_events: usize,
    /// The secondary (audio) swarms in the stats before the selection and at the end, with
    /// the segments each fetched over HTTP.
    pub swarms_before: BTreeMap<String, u64>,
    pub swarms_after: BTreeMap<String, u64>,
}

/// The secondary (audio) swarms an element's stats list, with the segments each fetched.
fn audio_swarms(src: &gst::Element) -> BTreeMap<String, u64> {
    let stats = src.property::<gst::Structure>("stats");
    let swarms = stats.get::<gst::Array>("swarms").expect("stats swarms");
    swarms
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .filter(|s| s.get::<String>("type").ok().as_deref() == Some("secondary"))
        .map(|s| {
            (
                s.get::<String>("info-hash").unwrap(),
                stat(&s, "http-segments"),
            )
        })
        .collect()
}

/// Plays `location` with `factory` into real-time fakesinks (P2P on behind a tracker nobody
/// answers: swarms exist, nothing is shared); `after` the start, sends the element the
/// `select-streams` events that `choose` makes of its collection, one after the other; runs
/// to EOS (30 s at most).
pub fn run_selection(
    factory: &str,
    location: &str,
    after: Duration,
    choose: impl FnOnce(&gst::StreamCollection) -> Vec<Vec<String>>,
) -> Selection {
    super::init();
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make(factory)
        .property("location", location)
        .property("trackers", gst::Array::new(["ws://127.0.0.1:9"]))
        .build()
        .unwrap();
    pipeline.add(&src).unwrap();
    #[derive(Default)]
    struct Audio {
        bytes: Vec<u8>,
        stream_starts: Vec<String>,
        languages: Vec<String>,
        discont: usize,
        caps: usize,
        segments: usize,
    }
    let audio: Arc<Mutex<Audio>> = Arc::default();
    {
        let audio = audio.clone();
        let pl = pipeline.downgrade();
        src.connect_pad_added(move |_, pad| {
            let Some(pl) = pl.upgrade() else { return };
            // Real time, so that the selection lands mid-stream.
            link_fakesink(&pl, pad, true, |sink| {
                if pad.name() != "src_1" {
                    return;
                }
                let audio = audio.clone();
                sink.static_pad("sink").unwrap().add_probe(
                    gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                    move |_, info| {
                        let mut a = audio.lock().unwrap();
                        match &info.data {
                            Some(gst::PadProbeData::Buffer(b)) => {
                                if b.flags().contains(gst::BufferFlags::DISCONT) {
                                    a.discont += 1;
                                }
                                a.bytes.extend_from_slice(&b.map_readable().unwrap());
                            }
                            Some(gst::PadProbeData::Event(ev)) => match ev.view() {
                                gst::EventView::StreamStart(s) => {
                                    a.stream_starts.push(s.stream_id().to_string())
                                }
                                gst::EventView::Caps(_) => a.caps += 1,
                                gst::EventView::Segment(_) => a.segments += 1,
                                gst::EventView::Tag(t) => {
                                    if let Some(l) = t.tag().get::<gst::tags::LanguageCode>() {
                                        a.languages.push(l.get().to_string());
                                    }
                                }
                                _ => {}
                            },
                            _ => {}
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            });
        });
    }
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let started = Instant::now();
    let mut collection: Option<gst::StreamCollection> = None;
    let mut choose = Some(choose);
    let mut sent = None;
    let mut selected = None;
    let mut swarms_before = BTreeMap::new();
    let mut eos = false;
    while started.elapsed() < Duration::from_secs(30) && !eos {
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(50)) {
            match msg.view() {
                gst::MessageView::StreamCollection(c) => collection = Some(c.stream_collection()),
                gst::MessageView::StreamsSelected(m) => {
                    let ids = m
                        .streams()
                        .filter_map(|s| s.stream_id().map(|i| i.to_string()))
                        .collect();
                    selected = Some((m.seqnum(), ids));
                }
                gst::MessageView::Eos(_) => eos = true,
                gst::MessageView::Error(e) => panic!("{} ({:?})", e.error(), e.debug()),
                _ => {}
            }
        }
        if started.elapsed() > after {
            if let Some(choose) = choose.take() {
                let c = collection.as_ref().expect("a stream collection was posted");
                swarms_before = audio_swarms(&src);
                for ids in choose(c) {
                    let ev = gst::event::SelectStreams::new(ids.iter().map(String::as_str));
                    let seqnum = ev.seqnum();
                    assert!(src.send_event(ev), "select-streams refused");
                    sent = Some((ids, seqnum));
                }
            }
        }
    }
    let swarms_after = audio_swarms(&src);
    pipeline.set_state(gst::State::Null).unwrap();
    let a = std::mem::take(&mut *audio.lock().unwrap());
    Selection {
        collection: collection.expect("a stream collection was posted"),
        sent: sent.expect("the selection was sent"),
        selected,
        eos,
        audio: a.bytes,
        stream_starts: a.stream_starts,
        languages: a.languages,
        discont: a.discont,
        caps_events: a.caps,
        segment_events: a.segments,
        swarms_before,
        swarms_after,
    }
}

/// A collection's video stream id and its audio streams, in order.
pub fn video_and_audio(c: &gst::StreamCollection) -> (String, Vec<gst::Stream>) {
    let streams: Vec<gst::Stream> = c.iter().collect();
    let video = streams
        .iter()
        .find(|s| s.stream_type() == gst::StreamType::VIDEO)
        .and_then(|s| s.stream_id())
        .expect("a video stream")
        .to_string();
    let audio = streams
        .into_iter()
        .filter(|s| s.stream_type() == gst::StreamType::AUDIO)
        .collect();
    (video, audio)
}

/// A stream's id.
pub fn stream_id(s: &gst::Stream) -> String {
    s.stream_id().expect("a stream id").to_string()
}

/// The language tag of a stream of a collection.
pub fn stream_language(s: &gst::Stream) -> Option<String> {
    s.tags().and_then(|t| {
        t.get::<gst::tags::LanguageCode>()
            .map(|v| v.get().to_string())
    })
}

impl Selection {
    /// The checks every selection test makes: STREAMS_SELECTED with the event's seqnum and
    /// the chosen stream `chosen` instead of `old`, one stream-start on the audio pad, caps
    /// and segment again and a tag event with the chosen stream's `language` at the switch, a
    /// DISCONT there, EOS, and the chosen alternative's swarm fetching.
    pub fn assert_switched_to(&self, chosen: &str, old: &str, language: &str) {
        assert!(self.eos, "no EOS in 30 s");
        let (got, ids) = self.selected.as_ref().expect("STREAMS_SELECTED posted");
        assert_eq!(*got, self.sent.1);
        assert!(ids.iter().any(|i| i == chosen), "{ids:?}");
        assert!(!ids.iter().any(|i| i == old), "{ids:?}");
        assert_eq!(
            (self.caps_events, self.segment_events),
            (2, 2),
            "caps and segment at the start and at the switch"
        );
        assert_eq!(self.stream_starts.len(), 1, "{:?}", self.stream_starts);
        assert_eq!(
            self.languages.last().map(String::as_str),
            Some(language),
            "{:?}",
            self.languages
        );
        assert!(
            self.discont >= 2,
            "DISCONT at the start and at the switch: {}",
            self.discont
        );
        // One swarm before; after, the chosen stream's fetched (the old one, released, stays
        // listed a while for its peers, as in PML).
        assert_eq!(self.swarms_before.len(), 1, "{:?}", self.swarms_before);
        let fetched_by_new: u64 = self
            .swarms_after
            .iter()
            .filter(|(h, _)| !self.swarms_before.contains_key(*h))
            .map(|(_, n)| n)
            .sum();
        assert!(
            fetched_by_new >= 1,
            "the chosen stream's swarm fetched nothing: before {:?}, after {:?}",
            self.swarms_before,
            self.swarms_after
        );
    }
}

/// Sends `src` a `select-streams` of its video and alternative `k` of its audio pad `src_1`
/// (the alternatives' ids are the audio pad's id with `/<k>` for its last part).
pub fn select_audio_alternative(src: &gst::Element, k: usize) {
    let id = |pad: &str| {
        let pad = src.static_pad(pad).unwrap_or_else(|| panic!("pad {pad}"));
        pad.stream()
            .expect("a stream on the pad")
            .stream_id()
            .unwrap()
            .to_string()
    };
    let audio = id("src_1");
    let (prefix, _) = audio.rsplit_once('/').expect("an alternative's id");
    let chosen = format!("{prefix}/{k}");
    let ev = gst::event::SelectStreams::new([id("src_0").as_str(), chosen.as_str()]);
    assert!(src.send_event(ev), "select-streams refused");
}

/// Decoded audio runs on without a gap or an overlap (a segment lost or played twice at a
/// switch) to within one second of `end`.
pub fn assert_audio_continuous(r: &Outcome, end: gst::ClockTime, label: &str) {
    let mut last_end: Option<gst::ClockTime> = None;
    for b in &r.audio {
        let (Some(pts), Some(d)) = (b.pts, b.duration) else {
            continue;
        };
        if let Some(end) = last_end {
            let gap = pts.nseconds() as i64 - end.nseconds() as i64;
            assert!(
                gap.abs() < 50_000_000,
                "{label}: audio jumps by {gap} ns at {pts}"
            );
        }
        last_end = Some(pts + d);
    }
    let last = last_end.expect("audio decoded");
    assert!(
        last + gst::ClockTime::from_seconds(1) > end,
        "{label}: audio ends at {last}"
    );
}
