//! Properties shared by the adaptive-streaming sources: names and meanings follow
//! adaptivedemux2 (ABR, buffering) and souphttpsrc (HTTP), which users already know.

use std::time::Duration;

use gst::glib;
use gst::prelude::*;

use crate::abr::AbrSettings;
use crate::engine::p2p::{P2pConfig, DEFAULT_TRACKERS};
use crate::engine::{EngineConfig, LiveFreeze, LiveFreezeAction, SeedVariants};
use crate::net::http::HttpConfig;
use crate::p2p::identity::Compat;
use crate::schedule::{Policy, SchedulerConfig};

/// Which P2P Media Loader families to meet (their swarms are disjoint). With several, the
/// element plays through the newest family's swarms and hands every segment it plays to the
/// others' swarms, which serve it and fetch nothing (a bridge: one origin fetch, three
/// audiences).
#[glib::flags(name = "GstP2pMediaCompat")]
pub enum CompatFlags {
    #[flags_value(name = "P2P Media Loader 2.3.x (SHA-1 info-hashes)", nick = "pml-2.3")]
    PML23 = 0b001,
    #[flags_value(
        name = "P2P Media Loader 1.0.4 to 2.2.x (MD5 info-hashes)",
        nick = "pml-2.2"
    )]
    PML22 = 0b010,
    #[flags_value(
        name = "P2P Media Loader 0.6.x and PeerTube's 1.0.x fork (JSON commands; video only)",
        nick = "pml-0.6"
    )]
    PML06 = 0b100,
}

impl Default for CompatFlags {
    fn default() -> Self {
        CompatFlags::PML23
    }
}

impl CompatFlags {
    /// The families, newest first: the first is the one played through.
    pub fn families(self) -> Vec<Compat> {
        [
            (CompatFlags::PML23, Compat::Pml23),
            (CompatFlags::PML22, Compat::Pml22),
            (CompatFlags::PML06, Compat::Pml06),
        ]
        .into_iter()
        .filter(|(f, _)| self.contains(*f))
        .map(|(_, c)| c)
        .collect()
    }
}

/// Scheduling algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum, Default)]
#[enum_type(name = "GstP2pMediaScheduler")]
pub enum SchedulerMode {
    #[default]
    #[enum_value(name = "Deadline-aware scheduler (fewer origin bytes)", nick = "ours")]
    Ours,
    #[enum_value(name = "P2P Media Loader 2.3 HybridLoader behaviour", nick = "pml")]
    Pml,
}

/// What the element is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum, Default)]
#[enum_type(name = "GstP2pMediaMode")]
pub enum Mode {
    /// Plays one variant in real time, as a player does.
    #[default]
    #[enum_value(
        name = "Player: play the stream, share what was played",
        nick = "player"
    )]
    Player,
    /// Fetches every seeded variant from the origin once and serves the swarms; the output
    /// never holds it back.
    #[enum_value(
        name = "Seeder: follow every variant, fetch each segment once, serve the swarms",
        nick = "seeder"
    )]
    Seeder,
}

/// `max-peers` of a seeder unless set: it is there to serve whole audiences.
pub const SEEDER_MAX_PEERS: u32 = 100;

/// What a live stream whose playlist stopped growing does after `live-freeze-timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, glib::Enum, Default)]
#[enum_type(name = "GstP2pMediaLiveFreezeAction")]
pub enum LiveFreezeActionMode {
    #[default]
    #[enum_value(name = "Post an error (the stream is dead)", nick = "error")]
    Error,
    #[enum_value(name = "End the stream (EOS)", nick = "eos")]
    Eos,
}

/// Scheduler knobs exposed as properties: (name, blurb). PML's windows are seconds.
const KNOBS: &[(&str, &str)] = &[
    (
        "high-demand-time-window",
        "Seconds ahead of the playhead that are urgent (HTTP preferred)",
    ),
    (
        "http-download-time-window",
        "Seconds ahead in which segments may be prefetched over HTTP",
    ),
    (
        "p2p-download-time-window",
        "Seconds ahead in which segments may be prefetched from peers",
    ),
    (
        "simultaneous-http-downloads",
        "Concurrent HTTP segment downloads per stream",
    ),
    (
        "simultaneous-p2p-downloads",
        "Concurrent P2P segment downloads per stream",
    ),
    (
        "http-download-initial-timeout-ms",
        "No HTTP segment downloads this long after start (0 = none)",
    ),
    (
        "http-error-retries",
        "HTTP attempts per segment before giving up on it",
    ),
    (
        "p2p-error-retries",
        "Peer inactivity timeouts in a row before disconnecting it",
    ),
    (
        "p2p-not-receiving-bytes-timeout-ms",
        "A peer download fails after this long without bytes",
    ),
];

#[derive(Debug, Clone)]
pub struct Settings {
    pub location: Option<String>,
    /// kbit/s; 0 = measure.
    pub connection_speed: u32,
    pub bandwidth_target_ratio: f64,
    pub min_bitrate: u32,
    pub max_bitrate: u32,
    pub start_bitrate: u32,
    pub max_buffering_time: gst::ClockTime,
    pub user_agent: String,
    pub extra_headers: Option<gst::Structure>,
    pub cookies: Vec<String>,
    pub proxy: Option<String>,
    /// Seconds.
    pub timeout: u32,
    pub retries: i32,
    pub p2p_enabled: bool,
    pub p2p_upload: bool,
    pub trackers: Vec<String>,
    pub ice_servers: Vec<String>,
    pub swarm_id: Option<String>,
    /// PeerTube's `segments-sha256.json`: every segment is checked against it.
    pub segment_hashes_url: Option<String>,
    pub compat: CompatFlags,
    pub scheduler: SchedulerMode,
    /// Knob overrides by property name (values as `SchedulerConfig::set` parses them).
    pub knobs: std::collections::BTreeMap<String, f64>,
    /// `None`: the mode's default (20 for a player, [`SEEDER_MAX_PEERS`] for a seeder).
    pub max_peers: Option<u32>,
    /// Bytes per second, 0 = unlimited; `None`: the mode's default (a player's
    /// `DEFAULT_MAX_UPLOAD_RATE`, a seeder's unlimited).
    pub max_upload_rate: Option<u64>,
    pub mode: Mode,
    /// `seed-variants` as set (`all` or bitrates), checked when the element starts.
    pub seed_variants: String,
    /// `mode=seeder`: origin pulls in bytes per second on average, 0 = unlimited.
    pub max_download_rate: u64,
    pub max_segment_size: u64,
    /// Bytes; the segment store of each stream's swarm.
    pub max_store_size: u64,
    pub tracker_origin: Option<String>,
    /// Period of the `p2pmedia-stats` bus message in ms; 0 = none.
    pub stats_interval: u32,
    /// Bytes; cap on a media segment downloaded whole over HTTP.
    pub max_segment_download_size: u64,
    /// Seconds; 0 = auto.
    pub live_freeze_timeout: u32,
    pub live_freeze_action: LiveFreezeActionMode,
    /// LL-HLS: play parts when the playlist offers them.
    pub low_latency: bool,
    /// Comma-separated audio language preferences.
    pub audio_language: Option<String>,
    /// Comma-separated subtitle language preferences.
    pub text_language: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        let http = HttpConfig::default();
        Settings {
            location: None,
            connection_speed: 0,
            bandwidth_target_ratio: 0.8,
            min_bitrate: 0,
            max_bitrate: 0,
            start_bitrate: 0,
            max_buffering_time: gst::ClockTime::from_seconds(30),
            user_agent: http.user_agent,
            extra_headers: None,
            cookies: Vec::new(),
            proxy: None,
            timeout: http.timeout.as_secs() as u32,
            retries: http.retries,
            p2p_enabled: true,
            p2p_upload: true,
            trackers: DEFAULT_TRACKERS.iter().map(|s| s.to_string()).collect(),
            ice_servers: P2pConfig::default().ice_servers,
            swarm_id: None,
            segment_hashes_url: None,
            compat: CompatFlags::default(),
            scheduler: SchedulerMode::default(),
            knobs: Default::default(),
            max_peers: None,
            max_upload_rate: None,
            mode: Mode::default(),
            seed_variants: "all".to_string(),
            max_download_rate: 0,
            max_segment_size: P2pConfig::default().max_segment_bytes,
            max_store_size: P2pConfig::default().store_limit,
            tracker_origin: None,
            stats_interval: 1000,
            max_segment_download_size: http.max_segment_bytes,
            live_freeze_timeout: 0,
            live_freeze_action: LiveFreezeActionMode::default(),
            low_latency: true,
            audio_language: None,
            text_language: None,
        }
    }
}

pub fn properties() -> Vec<glib::ParamSpec> {
    let d = Settings::default();
    vec![
        glib::ParamSpecString::builder("location")
            .nick("Location")
            .blurb("URL of the manifest (plain http:// or https://)")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("connection-speed")
            .nick("Connection Speed")
            .blurb("Network connection speed to use in kbit/s (0 = measure it)")
            .maximum(u32::MAX / 1000)
            .default_value(d.connection_speed)
            .mutable_playing()
            .build(),
        glib::ParamSpecDouble::builder("bandwidth-target-ratio")
            .nick("Ratio of target bandwidth / available bandwidth")
            .blurb("Limit of the available bitrate to use when switching to alternates")
            .minimum(0.0)
            .maximum(1.0)
            .default_value(d.bandwidth_target_ratio)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("min-bitrate")
            .nick("Minimum Bitrate")
            .blurb("Minimum bitrate to use when switching to alternates (bit/s)")
            .default_value(d.min_bitrate)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("max-bitrate")
            .nick("Maximum Bitrate")
            .blurb("Maximum bitrate to use when switching to alternates (bit/s, 0 = no limit)")
            .default_value(d.max_bitrate)
            .mutable_playing()
            .build(),
        glib::ParamSpecUInt::builder("start-bitrate")
            .nick("Starting Bitrate")
            .blurb("Initial bitrate estimate used to pick the first variant (bit/s, 0 = first variant)")
            .default_value(d.start_bitrate)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("current-bandwidth")
            .nick("Current download bandwidth")
            .blurb("Measured download bandwidth in bit/s (HTTP and P2P)")
            .read_only()
            .build(),
        glib::ParamSpecUInt64::builder("max-buffering-time")
            .nick("Maximum buffering time")
            .blurb("Maximum media time buffered ahead per output stream (nanoseconds)")
            .minimum(gst::ClockTime::SECOND.nseconds())
            .default_value(d.max_buffering_time.nseconds())
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("user-agent")
            .nick("User-Agent")
            .blurb("Value of the User-Agent HTTP request header")
            .default_value(Some(d.user_agent.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("extra-headers")
            .nick("Extra Headers")
            .blurb("Extra headers to append to the HTTP request: every field becomes a header")
            .mutable_ready()
            .build(),
        gst::ParamSpecArray::builder("cookies")
            .nick("Cookies")
            .blurb("HTTP request cookies, each as name=value, as an array of strings: <\"a=1\", \"b=2\">")
            .element_spec(
                &glib::ParamSpecString::builder("cookie")
                    .nick("cookie")
                    .blurb("A cookie as name=value")
                    .build(),
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("proxy")
            .nick("Proxy")
            .blurb("HTTP proxy server URI (default: from the http_proxy/https_proxy environment)")
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("timeout")
            .nick("Timeout")
            .blurb("Seconds without data before an HTTP attempt fails")
            .minimum(1)
            .maximum(3600)
            .default_value(d.timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecInt::builder("retries")
            .nick("Retries")
            .blurb("Retries of a failed HTTP request before giving up (-1 = unlimited)")
            .minimum(-1)
            .default_value(d.retries)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("p2p-enabled")
            .nick("P2P enabled")
            .blurb("Share segments with peers (off: plain HTTP)")
            .default_value(d.p2p_enabled)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("p2p-upload")
            .nick("P2P upload")
            .blurb("Announce and serve segments to peers (off: download only)")
            .default_value(d.p2p_upload)
            .mutable_ready()
            .build(),
        gst::ParamSpecArray::builder("trackers")
            .nick("Trackers")
            .blurb("WebTorrent tracker URLs (ws:// or wss://) as an array of strings: <\"ws://127.0.0.1:8000\">; default: P2P Media Loader's")
            .element_spec(
                &glib::ParamSpecString::builder("tracker")
                    .nick("tracker")
                    .blurb("A WebTorrent tracker URL (ws:// or wss://)")
                    .build(),
            )
            .mutable_ready()
            .build(),
        gst::ParamSpecArray::builder("ice-servers")
            .nick("ICE servers")
            .blurb("STUN/TURN URLs as an array of strings: <\"stun:host:port\">; empty (<>) = host candidates only")
            .element_spec(
                &glib::ParamSpecString::builder("ice-server")
                    .nick("ice-server")
                    .blurb("A STUN or TURN URL (stun:host:port, turn:user:pass@host:port)")
                    .build(),
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("swarm-id")
            .nick("Swarm id")
            .blurb("Custom swarm id (default: the manifest URL without its query)")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("segment-hashes-url")
            .nick("Segment hashes URL")
            .blurb(
                "PeerTube's segments-sha256.json: every segment, from the origin or a peer, must \
                 match its SHA-256 before it is used or shared (a peer's mismatch drops and bans \
                 the peer; the origin's is an error)",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecFlags::builder::<CompatFlags>("compat")
            .nick("Compatibility")
            .blurb(
                "Which P2P Media Loader families' swarms to join (pml-2.3+pml-2.2+pml-0.6: \
                 play through the newest, serve every segment to all)",
            )
            .default_value(d.compat)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder::<SchedulerMode>("scheduler")
            .nick("Scheduler")
            .blurb("Segment scheduling algorithm")
            .default_value(d.scheduler)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("max-peers")
            .nick("Maximum peers")
            .blurb("Connections per swarm (0 = unlimited; default 20, 100 with mode=seeder)")
            .default_value(d.effective_max_peers())
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("max-upload-rate")
            .nick("Maximum upload rate")
            .blurb("Upload limit of each stream's swarm, shared fairly among its peers, in bytes per second (0 = unlimited; the default, 2 MB/s, is 16 Mbit/s; unlimited with mode=seeder)")
            .default_value(d.effective_max_upload_rate())
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder::<Mode>("mode")
            .nick("Mode")
            .blurb("player: play the stream; seeder: an always-on super-peer that follows every \
                    variant in seed-variants, fetches each segment from the origin once as soon \
                    as it is listed, keeps the live window and serves the swarms (its output \
                    never blocks it and never ends: run it with ! fakesink)")
            .default_value(d.mode)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("seed-variants")
            .nick("Seeded variants")
            .blurb("mode=seeder: \"all\", or a comma-separated list of variant bitrates \
                    (BANDWIDTH, bit/s) to seed; a stream with none of them seeds its highest")
            .default_value(Some(d.seed_variants.as_str()))
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("max-download-rate")
            .nick("Maximum download rate")
            .blurb("mode=seeder: the seeder's origin pulls, in bytes per second on average \
                    (0 = unlimited), e.g. to spread a VOD seeder's fetch of a whole presentation; \
                    the output's own segment is never held back")
            .default_value(d.max_download_rate)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("max-segment-size")
            .nick("Maximum segment size")
            .blurb("Largest segment size a peer may claim when the playlist gives none (bytes)")
            .minimum(1024)
            .default_value(d.max_segment_size)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("max-store-size")
            .nick("Maximum store size")
            .blurb("Segments kept to serve peers, per stream, in bytes (P2P Media Loader's segmentMemoryStorageLimit): VOD keeps what it played or prefetched until full, live the last 15 s; lower it to bound a VOD peer's memory")
            .minimum(1 << 20)
            .default_value(d.max_store_size)
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("tracker-origin")
            .nick("Tracker Origin header")
            .blurb(
                "Origin header sent to trackers, which may refuse connections without one \
                 (default: the origin of location; empty: none)",
            )
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("stats-interval")
            .nick("Statistics interval")
            .blurb("Milliseconds between p2pmedia-stats element messages on the bus (0 = none)")
            .default_value(d.stats_interval)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt64::builder("max-segment-download-size")
            .nick("Maximum segment download size")
            .blurb("Largest media segment body accepted over HTTP, in bytes: a bigger (or \
                    endless) response fails the download instead of filling memory. Manifests \
                    are capped at 32 MiB, keys at 4 KiB, byte ranges at their length")
            .minimum(64 * 1024)
            .default_value(d.max_segment_download_size)
            .mutable_ready()
            .build(),
        glib::ParamSpecUInt::builder("live-freeze-timeout")
            .nick("Live freeze timeout")
            .blurb("Seconds a live playlist may go without a new segment before \
                    live-freeze-action is taken (0 = auto: max(30, 6 target durations)); a \
                    warning is posted after 3 target durations")
            .maximum(24 * 3600)
            .default_value(d.live_freeze_timeout)
            .mutable_ready()
            .build(),
        glib::ParamSpecEnum::builder::<LiveFreezeActionMode>("live-freeze-action")
            .default_value(d.live_freeze_action)
            .nick("Live freeze action")
            .blurb("What a live stream whose playlist stopped updating does after \
                    live-freeze-timeout: error (post an error) or eos (end the stream)")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("audio-language")
            .nick("Audio language")
            .blurb("Preferred audio languages, most preferred first, comma-separated \
                    (\"de,en\"; ISO 639-1 or 639-2, matched on the primary language): the \
                    alternate audio rendition (HLS) or audio adaptation set (DASH) played; \
                    none matching, or unset: the default one")
            .mutable_ready()
            .build(),
        glib::ParamSpecString::builder("text-language")
            .nick("Text language")
            .blurb("Subtitles to play, most preferred language first, comma-separated \
                    (\"fr,en\"): an HLS SUBTITLES rendition (WebVTT) or a DASH text adaptation \
                    set (WebVTT, TTML) becomes an output stream; unset: only a DEFAULT=YES \
                    rendition (HLS) or a Role main text set (DASH)")
            .mutable_ready()
            .build(),
        glib::ParamSpecBoolean::builder("low-latency")
            .nick("Low latency")
            .blurb("Low-latency HLS: when a live playlist offers parts (EXT-X-PART), start \
                    PART-HOLD-BACK from the live edge and push parts as they are published \
                    (complete segments are still shared P2P); false: whole segments only, \
                    3 target durations from the edge")
            .default_value(d.low_latency)
            .mutable_ready()
            .build(),
        glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
            .nick("Statistics")
            .blurb("Transfer statistics: mode, seeded-segments (stored from the origin by the \
                    swarms), served-segments (uploaded whole), http-bytes, http-segments, \
                    p2p-bytes, p2p-upload-bytes, p2p-segments, p2p-longest-stall-ms, peers, \
                    trackers-connected, trackers (url, state, last-error, peers-seen), swarms \
                    (info-hash, type, peers, store-bytes, upload-bytes, http-segments, \
                    served-segments), variant-bitrate, bandwidth, buffered-time")
            .read_only()
            .build(),
    ]
    .into_iter()
    .chain(KNOBS.iter().map(|(name, blurb)| {
        let default = knob_default(name);
        glib::ParamSpecDouble::builder(name)
            .blurb(blurb)
            .minimum(0.0)
            .default_value(default)
            .mutable_ready()
            .build()
    }))
    .collect()
}

/// A knob's value in our default preset, in its property unit.
fn knob_default(name: &str) -> f64 {
    let c = SchedulerConfig::ours();
    match name {
        "high-demand-time-window" => c.high_demand_time_window_ms as f64 / 1000.0,
        "http-download-time-window" => c.http_download_time_window_ms as f64 / 1000.0,
        "p2p-download-time-window" => c.p2p_download_time_window_ms as f64 / 1000.0,
        "simultaneous-http-downloads" => c.simultaneous_http_downloads as f64,
        "simultaneous-p2p-downloads" => c.simultaneous_p2p_downloads as f64,
        "http-download-initial-timeout-ms" => c.http_download_initial_timeout_ms as f64,
        "http-error-retries" => c.http_error_retries as f64,
        "p2p-error-retries" => c.p2p_error_retries as f64,
        "p2p-not-receiving-bytes-timeout-ms" => c.p2p_not_receiving_bytes_timeout_ms as f64,
        _ => 0.0,
    }
}

impl Settings {
    /// Applies a write to one of `properties()`; returns false for names it does not own.
    pub fn set(&mut self, value: &glib::Value, pspec: &glib::ParamSpec) -> bool {
        match pspec.name() {
            "location" => self.location = value.get().expect("type checked upstream"),
            "connection-speed" => {
                self.connection_speed = value.get().expect("type checked upstream")
            }
            "bandwidth-target-ratio" => {
                self.bandwidth_target_ratio = value.get().expect("type checked upstream")
            }
            "min-bitrate" => self.min_bitrate = value.get().expect("type checked upstream"),
            "max-bitrate" => self.max_bitrate = value.get().expect("type checked upstream"),
            "start-bitrate" => self.start_bitrate = value.get().expect("type checked upstream"),
            "max-buffering-time" => {
                self.max_buffering_time =
                    gst::ClockTime::from_nseconds(value.get().expect("type checked upstream"))
            }
            "user-agent" => {
                self.user_agent = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "extra-headers" => self.extra_headers = value.get().expect("type checked upstream"),
            "cookies" => self.cookies = strings(value),
            "proxy" => self.proxy = value.get().expect("type checked upstream"),
            "timeout" => self.timeout = value.get().expect("type checked upstream"),
            "retries" => self.retries = value.get().expect("type checked upstream"),
            "p2p-enabled" => self.p2p_enabled = value.get().expect("type checked upstream"),
            "p2p-upload" => self.p2p_upload = value.get().expect("type checked upstream"),
            "trackers" => self.trackers = strings(value),
            "ice-servers" => self.ice_servers = strings(value),
            "swarm-id" => self.swarm_id = value.get().expect("type checked upstream"),
            "segment-hashes-url" => {
                self.segment_hashes_url = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|s| !s.is_empty())
            }
            "compat" => self.compat = value.get().expect("type checked upstream"),
            "scheduler" => self.scheduler = value.get().expect("type checked upstream"),
            "max-peers" => self.max_peers = Some(value.get().expect("type checked upstream")),
            "max-upload-rate" => {
                self.max_upload_rate = Some(value.get().expect("type checked upstream"))
            }
            "mode" => self.mode = value.get().expect("type checked upstream"),
            "max-download-rate" => {
                self.max_download_rate = value.get().expect("type checked upstream")
            }
            "seed-variants" => {
                self.seed_variants = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .unwrap_or_default()
            }
            "max-store-size" => self.max_store_size = value.get().expect("type checked upstream"),
            "max-segment-size" => {
                self.max_segment_size = value.get().expect("type checked upstream")
            }
            "tracker-origin" => self.tracker_origin = value.get().expect("type checked upstream"),
            "stats-interval" => self.stats_interval = value.get().expect("type checked upstream"),
            "max-segment-download-size" => {
                self.max_segment_download_size = value.get().expect("type checked upstream")
            }
            "live-freeze-timeout" => {
                self.live_freeze_timeout = value.get().expect("type checked upstream")
            }
            "live-freeze-action" => {
                self.live_freeze_action = value.get().expect("type checked upstream")
            }
            "low-latency" => self.low_latency = value.get().expect("type checked upstream"),
            "audio-language" => self.audio_language = value.get().expect("type checked upstream"),
            "text-language" => self.text_language = value.get().expect("type checked upstream"),
            name if KNOBS.iter().any(|(k, _)| *k == name) => {
                self.knobs.insert(
                    name.to_string(),
                    value.get().expect("type checked upstream"),
                );
            }
            _ => return false,
        }
        true
    }

    /// Reads one of the writable `properties()`.
    pub fn get(&self, pspec: &glib::ParamSpec) -> Option<glib::Value> {
        Some(match pspec.name() {
            "location" => self.location.to_value(),
            "connection-speed" => self.connection_speed.to_value(),
            "bandwidth-target-ratio" => self.bandwidth_target_ratio.to_value(),
            "min-bitrate" => self.min_bitrate.to_value(),
            "max-bitrate" => self.max_bitrate.to_value(),
            "start-bitrate" => self.start_bitrate.to_value(),
            "max-buffering-time" => self.max_buffering_time.nseconds().to_value(),
            "user-agent" => self.user_agent.to_value(),
            "extra-headers" => self.extra_headers.to_value(),
            "cookies" => array(&self.cookies).to_value(),
            "proxy" => self.proxy.to_value(),
            "timeout" => self.timeout.to_value(),
            "retries" => self.retries.to_value(),
            "p2p-enabled" => self.p2p_enabled.to_value(),
            "p2p-upload" => self.p2p_upload.to_value(),
            "trackers" => array(&self.trackers).to_value(),
            "ice-servers" => array(&self.ice_servers).to_value(),
            "swarm-id" => self.swarm_id.to_value(),
            "segment-hashes-url" => self.segment_hashes_url.to_value(),
            "compat" => self.compat.to_value(),
            "scheduler" => self.scheduler.to_value(),
            "max-peers" => self.effective_max_peers().to_value(),
            "max-upload-rate" => self.effective_max_upload_rate().to_value(),
            "mode" => self.mode.to_value(),
            "max-download-rate" => self.max_download_rate.to_value(),
            "seed-variants" => self.seed_variants.to_value(),
            "max-store-size" => self.max_store_size.to_value(),
            "max-segment-size" => self.max_segment_size.to_value(),
            "tracker-origin" => self.tracker_origin.to_value(),
            "stats-interval" => self.stats_interval.to_value(),
            "max-segment-download-size" => self.max_segment_download_size.to_value(),
            "live-freeze-timeout" => self.live_freeze_timeout.to_value(),
            "live-freeze-action" => self.live_freeze_action.to_value(),
            "low-latency" => self.low_latency.to_value(),
            "audio-language" => self.audio_language.to_value(),
            "text-language" => self.text_language.to_value(),
            name if KNOBS.iter().any(|(k, _)| *k == name) => self
                .knobs
                .get(name)
                .copied()
                .unwrap_or_else(|| knob_default(name))
                .to_value(),
            _ => return None,
        })
    }

    pub fn effective_max_peers(&self) -> u32 {
        self.max_peers.unwrap_or(match self.mode {
            Mode::Player => P2pConfig::default().max_peers as u32,
            Mode::Seeder => SEEDER_MAX_PEERS,
        })
    }

    pub fn effective_max_upload_rate(&self) -> u64 {
        self.max_upload_rate.unwrap_or(match self.mode {
            Mode::Player => crate::engine::p2p::DEFAULT_MAX_UPLOAD_RATE,
            Mode::Seeder => 0,
        })
    }

    /// `mode=seeder`'s variants, or an error naming the bad `seed-variants`.
    pub fn seeder(&self) -> Result<Option<SeedVariants>, String> {
        match self.mode {
            Mode::Player => Ok(None),
            Mode::Seeder => SeedVariants::parse(&self.seed_variants).map(Some),
        }
    }

    /// `segment-hashes-url` as an absolute http(s) URL (refused at start otherwise).
    pub fn segment_hashes(&self) -> Result<Option<url::Url>, String> {
        let Some(text) = self.segment_hashes_url.as_deref() else {
            return Ok(None);
        };
        match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(u)),
            _ => Err(format!("segment-hashes-url: not an http(s) URL: {text:?}")),
        }
    }

    pub fn abr(&self) -> AbrSettings {
        AbrSettings {
            connection_speed_bps: self.connection_speed as u64 * 1000,
            bandwidth_target_ratio: self.bandwidth_target_ratio,
            min_bitrate: self.min_bitrate as u64,
            max_bitrate: self.max_bitrate as u64,
            start_bitrate: self.start_bitrate as u64,
        }
    }

    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            http: HttpConfig {
                user_agent: self.user_agent.clone(),
                extra_headers: self
                    .extra_headers
                    .as_ref()
                    .map(|s| header_pairs(s))
                    .unwrap_or_default(),
                cookies: self.cookies.clone(),
                proxy: self.proxy.clone(),
                timeout: Duration::from_secs(self.timeout.max(1) as u64),
                retries: self.retries,
                max_segment_bytes: self.max_segment_download_size,
            },
            live_freeze: LiveFreeze {
                timeout: (self.live_freeze_timeout > 0)
                    .then(|| Duration::from_secs(self.live_freeze_timeout as u64)),
                action: match self.live_freeze_action {
                    LiveFreezeActionMode::Error => LiveFreezeAction::Error,
                    LiveFreezeActionMode::Eos => LiveFreezeAction::Eos,
                },
            },
            abr: self.abr(),
            max_buffering_time: Duration::from_nanos(self.max_buffering_time.nseconds()),
            p2p: self.p2p_enabled.then(|| self.p2p_config()),
            // A bad list or URL was refused when the element started.
            seeder: self.seeder().ok().flatten(),
            segment_hashes: self.segment_hashes().ok().flatten(),
            low_latency: self.low_latency,
            audio_languages: language_list(self.audio_language.as_deref()),
            text_languages: language_list(self.text_language.as_deref()),
        }
    }

    pub fn p2p_config(&self) -> P2pConfig {
        let families = self.compat.families();
        let mut scheduler = SchedulerConfig::for_policy(match (self.mode, self.scheduler) {
            (Mode::Seeder, _) => Policy::Seed,
            (_, SchedulerMode::Ours) => Policy::Ours,
            (_, SchedulerMode::Pml) => Policy::Pml,
        });
        for (name, value) in &self.knobs {
            // Property ranges keep values valid; `set` parses integers for counts and ms.
            let text = if name.ends_with("-window") {
                value.to_string()
            } else {
                (value.round() as u64).to_string()
            };
            let _ = scheduler.set(name, &text);
        }
        scheduler.seed_download_rate = self.max_download_rate;
        P2pConfig {
            enabled: self.p2p_enabled,
            upload: self.p2p_upload,
            trackers: self.trackers.clone(),
            ice_servers: self.ice_servers.clone(),
            swarm_id: self.swarm_id.clone(),
            compat: families.first().copied().unwrap_or(Compat::Pml23),
            bridge: families.iter().skip(1).copied().collect(),
            scheduler,
            max_peers: self.effective_max_peers() as usize,
            max_upload_rate: self.effective_max_upload_rate(),
            max_segment_bytes: self.max_segment_size,
            store_limit: self.max_store_size,
            // Browsers always send an Origin, and wt-tracker and OpenWebTorrent may refuse a
            // connection without one (`denyEmptyOrigin`). Unless set, send the stream's own
            // origin, as a page on the stream's site would; an empty string sends none.
            tracker_origin: match self.tracker_origin.as_deref() {
                Some("") => None,
                Some(o) => Some(o.to_owned()),
                None => self.location.as_deref().and_then(web_origin),
            },
            ..P2pConfig::default()
        }
    }
}

/// `scheme://host[:port]` of an http(s) URL, as a browser's `Origin` header spells it.
fn web_origin(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// souphttpsrc semantics: every field is a header; arrays give the header several times.
fn header_pairs(s: &gst::StructureRef) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (name, value) in s.iter() {
        let values: Vec<glib::SendValue> = if let Ok(a) = value.get::<gst::Array>() {
            a.iter().cloned().collect()
        } else if let Ok(l) = value.get::<gst::List>() {
            l.iter().cloned().collect()
        } else {
            vec![value.clone()]
        };
        for v in values {
            let text = match v.get::<String>() {
                Ok(s) => s,
                Err(_) => match v.transform::<String>() {
                    Ok(t) => t.get::<String>().unwrap_or_default(),
                    Err(_) => continue,
                },
            };
            out.push((name.to_string(), text));
        }
    }
    out
}

/// The strings of a list property's value (a `GstValueArray` of strings, as webrtcsink's
/// `turn-servers`: `<"a", "b">` from gst-launch-1.0). Elements that are not strings are skipped.
fn strings(value: &glib::Value) -> Vec<String> {
    value
        .get::<gst::Array>()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.get::<Option<String>>().ok().flatten())
                .collect()
        })
        .unwrap_or_default()
}

/// A list property's value as a `GstValueArray` of strings.
fn array(list: &[String]) -> gst::Array {
    gst::Array::new(list.iter().map(String::as_str))
}

/// A comma-separated language preference list (`audio-language`, `text-language`).
fn language_list(text: Option<&str>) -> Vec<String> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_store_size_bounds_each_swarms_store() {
        gst::init().unwrap();
        let pspec = properties()
            .into_iter()
            .find(|p| p.name() == "max-store-size")
            .unwrap();
        let mut s = Settings::default();
        assert_eq!(s.p2p_config().store_limit, P2pConfig::default().store_limit);
        assert!(s.set(&(8u64 << 20).to_value(), &pspec));
        assert_eq!(s.p2p_config().store_limit, 8 << 20);
        assert_eq!(s.get(&pspec).unwrap().get::<u64>().unwrap(), 8 << 20);
    }

    #[test]
    fn a_seeder_gets_its_own_defaults_unless_told_otherwise() {
        let mut s = Settings::default();
        assert_eq!(s.p2p_config().max_peers, 20);
        assert_eq!(s.p2p_config().scheduler.policy, Policy::Ours);
        assert_eq!(s.seeder(), Ok(None));
        s.mode = Mode::Seeder;
        let c = s.p2p_config();
        assert_eq!(c.max_peers, SEEDER_MAX_PEERS as usize);
        assert_eq!(c.max_upload_rate, 0);
        assert_eq!(c.scheduler.policy, Policy::Seed);
        assert_eq!(s.seeder(), Ok(Some(SeedVariants::All)));
        s.max_peers = Some(7);
        s.max_upload_rate = Some(1000);
        assert_eq!(s.p2p_config().max_peers, 7);
        assert_eq!(s.p2p_config().max_upload_rate, 1000);
        s.seed_variants = "730400,nope".into();
        assert!(s.seeder().is_err());
    }

    #[test]
    fn trackers_get_the_streams_origin_unless_told_otherwise() {
        let mut s = Settings {
            location: Some("https://cdn.example.com:8443/live/master.m3u8?t=1".into()),
            ..Settings::default()
        };
        let origin = |s: &Settings| s.p2p_config().tracker_origin;
        assert_eq!(origin(&s).as_deref(), Some("https://cdn.example.com:8443"));
        s.location = Some("http://127.0.0.1:80/a.m3u8".into());
        assert_eq!(origin(&s).as_deref(), Some("http://127.0.0.1"));
        s.tracker_origin = Some("https://player.example".into());
        assert_eq!(origin(&s).as_deref(), Some("https://player.example"));
        s.tracker_origin = Some(String::new());
        assert_eq!(origin(&s), None);
        s.tracker_origin = None;
        s.location = Some("file:///tmp/a.m3u8".into());
        assert_eq!(origin(&s), None);
    }
}
