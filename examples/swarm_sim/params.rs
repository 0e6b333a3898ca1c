//! Simulation parameters. The model itself (links, loss, origin, tracker, player) is
//! `gstp2pmedia::swarm::mesh`; defaults (documented in `--help`):
//!
//! * stream: 720p at 2.5 Mbit/s, 2-s segments (sizes ±15 %, deterministic per id); VOD of
//!   `--vod-length` s (default: `--duration`); live with a 12-segment sliding playlist that
//!   already holds 12 segments at t=0 (the browser harness also waits for a full window),
//!   refreshed by every peer once per segment duration at its own phase, playback starting
//!   `--live-delay` (20 s) behind the live edge (PML sets hls.js close to the window length).
//! * peers: downlink 20–100 Mbit/s, uplink 5–20 Mbit/s, one-way latency 10–40 ms to the
//!   network core (uniform, seeded); origin (CDN) with unlimited capacity, 10 ms away.
//! * signalling: tracker reply after one peer↔tracker RTT (+5 ms); each announce offers to up
//!   to 5 random swarm members; a data channel opens 500–1000 ms after the announce (offer and
//!   answer relayed by the tracker, ICE + DTLS + SCTP); re-announce every 120 s; at most 30
//!   connections per peer.
//! * player: requests the next segment while less than 30 s are buffered (hls.js
//!   `maxBufferLength`), starts playing when the first segment is delivered, stalls when the
//!   playhead reaches the end of the buffer.
//! * uploads: every peer serves any request for a stored segment at once (as PML browsers
//!   do); a flow gets min(uploader uplink / its uploads, downloader downlink / its downloads),
//!   recomputed whenever a flow starts or ends at either end. Progress is reported per first
//!   64 KiB and then every 500 ms; aborted transfers count the bytes moved so far.
//!
//! Realism check against the browser harness (`harness/browser-swarm/REPORT.md`): PML policy,
//! 4 peers, 60-s VOD, 4-s stagger gives 54.6 % here (measured 54–55 %); with a loopback-like
//! network (`--down-mbps 400,800 --up-mbps 200,400 --latency-ms 1,2 --setup-ms 300,700
//! --bitrate-kbps 1670`) 53.7–55.0 % and 1.80× origin (measured 55.0 %, 1.80×). PML live is
//! very sensitive to the live delay: 4 peers, 90 s: 22–35 % at 20 s, 57–59 % at 24 s
//! (measured 62.9 % with hls.js playing near the start of a 24-s window).

use gstp2pmedia::schedule::Policy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Vod,
    Live,
}

/// `Http` = HTTP-only baseline (PML policy, no tracker, no peers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimPolicy {
    Sched(Policy),
    HttpOnly,
}

impl SimPolicy {
    pub fn name(self) -> &'static str {
        match self {
            SimPolicy::Sched(Policy::Pml) => "pml",
            SimPolicy::Sched(Policy::Ours) => "ours",
            SimPolicy::Sched(Policy::Seed) => "seed",
            SimPolicy::Sched(Policy::Mirror) => "mirror",
            SimPolicy::HttpOnly => "http",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Params {
    pub peers: usize,
    pub stream: StreamKind,
    /// Seconds each peer stays after joining (VOD) / simulated seconds (live).
    pub duration_s: f64,
    pub stagger_s: f64,
    pub seed: u64,
    pub policy: SimPolicy,
    pub bitrate_kbps: u64,
    pub segment_ms: u64,
    pub vod_length_s: Option<f64>,
    pub live_window: u64,
    pub live_delay_ms: u64,
    pub max_buffer_ms: u64,
    pub down_mbps: (f64, f64),
    pub up_mbps: (f64, f64),
    pub latency_ms: (u64, u64),
    pub origin_latency_ms: u64,
    pub setup_ms: (u64, u64),
    pub offers: usize,
    pub announce_interval_ms: u64,
    pub max_conns: usize,
    /// Churn: how often each peer leaves and rejoins (as a new peer), per minute on average.
    pub churn: f64,
    /// Extra round trip on every peer link (ms).
    pub rtt_ms: u64,
    /// Packet loss on peer links (0..1): a round trip per lost packet, the 400-ms RTO for a tail
    /// loss.
    pub loss: f64,
    /// Every peer's uplink / downlink (kbit/s), overriding the ranges.
    pub uplink_kbps: Option<u64>,
    pub downlink_kbps: Option<u64>,
    /// Extra peers that send garbage of the right size / one byte every 1.9 s (not measured).
    pub liars: usize,
    /// Seeders (`mode=seeder`) joining first, not counted as viewers.
    pub seeders: usize,
    /// A seeder's uplink (a server's, not a viewer's).
    pub seeder_up_mbps: u64,
    /// Peers speak PML 0.6's protocol (JSON commands, string ids, completion by count).
    pub pml06: bool,
    pub drip: usize,
    /// Report the playhead as the element did before the fix (calibration).
    pub playhead_taken: bool,
    /// Stored segments are this many times smaller than the bytes they stand for.
    pub payload_scale: u64,
    pub http_initial_timeout_ms: Option<u64>,
    /// Scheduler option overrides (`--set key=value`).
    pub overrides: Vec<(String, String)>,
    pub quiet: bool,
    /// Print every HTTP fetch (debugging the policies).
    pub trace: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            peers: 4,
            stream: StreamKind::Vod,
            duration_s: 60.0,
            stagger_s: 4.0,
            seed: 1,
            policy: SimPolicy::Sched(Policy::Ours),
            bitrate_kbps: 2500,
            segment_ms: 2000,
            vod_length_s: None,
            live_window: 12,
            live_delay_ms: 20_000,
            max_buffer_ms: 30_000,
            down_mbps: (20.0, 100.0),
            up_mbps: (5.0, 20.0),
            latency_ms: (10, 40),
            origin_latency_ms: 10,
            setup_ms: (500, 1000),
            offers: 5,
            announce_interval_ms: 120_000,
            max_conns: 30,
            churn: 0.0,
            rtt_ms: 0,
            loss: 0.0,
            uplink_kbps: None,
            downlink_kbps: None,
            liars: 0,
            seeders: 0,
            seeder_up_mbps: 100,
            pml06: false,
            drip: 0,
            payload_scale: 64,
            playhead_taken: false,
            http_initial_timeout_ms: None,
            overrides: Vec::new(),
            quiet: false,
            trace: false,
        }
    }
}

impl Params {
    pub fn vod_segments(&self) -> u64 {
        let len_ms = (self.vod_length_s.unwrap_or(self.duration_s) * 1000.0) as u64;
        len_ms.div_ceil(self.segment_ms).max(1)
    }
}
