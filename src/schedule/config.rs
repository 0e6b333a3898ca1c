//! Scheduler knobs. Names in docs are the element-property spelling (kebab-case of PML's
//! `StreamConfig` keys); PML's time windows are seconds, ours are milliseconds.

/// Which algorithm family the scheduler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// P2P Media Loader 2.3 `HybridLoader` behaviour, as specified in the protocol notes §6.2.
    Pml,
    /// PML plus deadline-aware waiting for peers (startup hold, urgent-only HTTP), P2P
    /// rescue/switch, live spread jitter and swarm-size-aware random HTTP seeding. Identical to
    /// `Pml`'s HTTP behaviour when no peer is around.
    Ours,
    /// A seeder (`mode=seeder`): nobody watches, so there is no playhead and no deadline.
    /// Every segment of the playlist (live: of the last [`SEED_LIVE_SPAN_MS`] or four
    /// segments) is fetched from the origin once, as soon as it is listed, newest first on
    /// live; never from peers, never twice.
    Seed,
    /// Another family's swarm of a stream a bridge plays (`compat` with several families):
    /// its segments are handed over by the swarm of the family it plays through, once that one
    /// has them; it never fetches, from the origin or from peers, and only serves.
    Mirror,
}

/// How far back from a live playlist's end a seeder fetches: where players join (hls.js
/// starts 3 target durations back, PML's high-demand window is 15 s). At least four segments.
pub const SEED_LIVE_SPAN_MS: u64 = 15_000;

#[derive(Debug, Clone, PartialEq)]
pub struct SchedulerConfig {
    pub policy: Policy,
    /// `high-demand-time-window` (PML 15 s): segments overlapping `[pos, pos + w·rate]`.
    pub high_demand_time_window_ms: u64,
    /// `http-download-time-window` (PML 3000 s): window for random HTTP prefetch.
    pub http_download_time_window_ms: u64,
    /// `p2p-download-time-window` (PML 6000 s): window for P2P prefetch.
    pub p2p_download_time_window_ms: u64,
    /// `simultaneous-http-downloads` (PML 2).
    pub simultaneous_http_downloads: usize,
    /// `simultaneous-p2p-downloads` (PML 3).
    pub simultaneous_p2p_downloads: usize,
    /// `http-download-initial-timeout-ms` (PML 0): no HTTP at all for this long after creation.
    pub http_download_initial_timeout_ms: u64,
    /// `http-error-retries` (PML 3): HTTP attempts per segment before giving up on it.
    pub http_error_retries: u32,
    /// `p2p-error-retries` (PML 3): inactivity timeouts in a row before disconnecting a peer.
    pub p2p_error_retries: u32,
    /// `p2p-not-receiving-bytes-timeout-ms` (PML 2000).
    pub p2p_not_receiving_bytes_timeout_ms: u64,
    /// `http-not-receiving-bytes-timeout-ms` (PML 3000).
    pub http_not_receiving_bytes_timeout_ms: u64,
    /// Failed-attempt history is forgotten this long after the last failure (PML constant 60 s).
    pub failed_attempts_clear_ms: u64,
    /// Random HTTP prefetch period base (PML `PEER_UPDATE_LATENCY` 1000 ms).
    pub random_http_interval_ms: u64,

    // ---- Ours only (ignored by `Policy::Pml`) ----
    /// `urgent-time-window-ms`: a segment needed sooner than this (plus twice the observed HTTP
    /// fetch time) goes to HTTP even if a peer might deliver it later.
    pub urgent_time_window_ms: u64,
    /// `peer-wait-ms`: startup budget. When the tracker reports other swarm members (or has not
    /// answered yet), the first segment may wait this long after start for a peer to supply
    /// it, and high-demand HTTP is held back while no peer is connected. Alone: no wait.
    pub peer_wait_ms: u64,
    /// `tracker-wait-ms`: before the tracker's first answer, the startup hold lasts at most
    /// this long (alone behind a slow/unreachable tracker we start almost like plain HTTP).
    pub tracker_wait_ms: u64,
    /// `rarest-first`: order P2P prefetch by how few neighbours hold a segment.
    pub rarest_first: bool,
    /// `p2p-spread-jitter-ms` (live only): a non-urgent segment that `h` neighbours hold is
    /// requested
    /// only after a per-peer random delay in `[0, jitter/h]` from when it was first seen, so
    /// a fresh segment's first holders are not all hit at once (their uplink is shared: all
    /// requesters would finish late together instead of becoming sources one by one).
    pub p2p_spread_jitter_ms: u64,
    /// `swarm-http-seeds`: in a swarm much larger than our neighbourhood, the expected number
    /// of members elected to fetch each segment nobody around has over HTTP (once per
    /// segment); in small swarms it scales PML's per-tick lottery (capped at 1). Swarm size is
    /// the tracker's count, not only our neighbours as in PML.
    pub swarm_http_seeds: f64,

    // ---- Seed only ----
    /// `max-download-rate`: a seeder's origin pulls at most this many bytes per second on
    /// average (0 = unlimited): what a VOD seeder fetching a whole presentation may take.
    pub seed_download_rate: u64,
}

impl SchedulerConfig {
    /// PML 2.3 defaults (protocol notes §6.1).
    pub fn pml() -> Self {
        SchedulerConfig {
            policy: Policy::Pml,
            high_demand_time_window_ms: 15_000,
            http_download_time_window_ms: 3_000_000,
            p2p_download_time_window_ms: 6_000_000,
            simultaneous_http_downloads: 2,
            simultaneous_p2p_downloads: 3,
            http_download_initial_timeout_ms: 0,
            http_error_retries: 3,
            p2p_error_retries: 3,
            p2p_not_receiving_bytes_timeout_ms: 2_000,
            http_not_receiving_bytes_timeout_ms: 3_000,
            failed_attempts_clear_ms: 60_000,
            random_http_interval_ms: 1_000,
            urgent_time_window_ms: 0,
            peer_wait_ms: 0,
            tracker_wait_ms: 0,
            rarest_first: false,
            p2p_spread_jitter_ms: 0,
            swarm_http_seeds: 1.0,
            seed_download_rate: 0,
        }
    }

    /// Our defaults: PML's windows and limits, plus the deadline-aware additions.
    pub fn ours() -> Self {
        SchedulerConfig {
            policy: Policy::Ours,
            urgent_time_window_ms: 1_000,
            peer_wait_ms: 1_700,
            tracker_wait_ms: 300,
            // Measured: in-order prefetch did slightly better in the simulator (live 100 peers
            // +0.3–0.5 points, VOD equal), so rarest-first stays available but off.
            rarest_first: false,
            p2p_spread_jitter_ms: 6_000,
            swarm_http_seeds: 2.0,
            ..Self::pml()
        }
    }

    /// A seeder's: PML's limits (two HTTP downloads at once), the seed policy.
    pub fn seed() -> Self {
        SchedulerConfig {
            policy: Policy::Seed,
            ..Self::pml()
        }
    }

    /// A bridge's other families: serve what is handed over, fetch nothing.
    pub fn mirror() -> Self {
        SchedulerConfig {
            policy: Policy::Mirror,
            ..Self::pml()
        }
    }

    pub fn for_policy(policy: Policy) -> Self {
        match policy {
            Policy::Pml => Self::pml(),
            Policy::Ours => Self::ours(),
            Policy::Seed => Self::seed(),
            Policy::Mirror => Self::mirror(),
        }
    }
}

impl SchedulerConfig {
    /// Set a knob by its property name (kebab-case of PML's option; PML's time windows are
    /// seconds, `*-ms` values milliseconds). For element properties and experiments.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let ms = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{key}: not an integer: {v}"))
        };
        let secs = |v: &str| match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Ok((s * 1000.0) as u64),
            _ => Err(format!("{key}: not a number of seconds: {v}")),
        };
        let count = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| format!("{key}: not a count: {v}"))
        };
        let flag = |v: &str| match v {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(format!("{key}: not a boolean: {v}")),
        };
        match key {
            "policy" => {
                let base = match value {
                    "pml" => Self::pml(),
                    "ours" => Self::ours(),
                    "seed" => Self::seed(),
                    _ => return Err(format!("policy: pml, ours or seed, not {value}")),
                };
                *self = base;
            }
            "high-demand-time-window" => self.high_demand_time_window_ms = secs(value)?,
            "http-download-time-window" => self.http_download_time_window_ms = secs(value)?,
            "p2p-download-time-window" => self.p2p_download_time_window_ms = secs(value)?,
            "simultaneous-http-downloads" => self.simultaneous_http_downloads = count(value)?,
            "simultaneous-p2p-downloads" => self.simultaneous_p2p_downloads = count(value)?,
            "http-download-initial-timeout-ms" => {
                self.http_download_initial_timeout_ms = ms(value)?
            }
            "http-error-retries" => self.http_error_retries = ms(value)? as u32,
            "p2p-error-retries" => self.p2p_error_retries = ms(value)? as u32,
            "p2p-not-receiving-bytes-timeout-ms" => {
                self.p2p_not_receiving_bytes_timeout_ms = ms(value)?
            }
            "http-not-receiving-bytes-timeout-ms" => {
                self.http_not_receiving_bytes_timeout_ms = ms(value)?
            }
            "urgent-time-window-ms" => self.urgent_time_window_ms = ms(value)?,
            "peer-wait-ms" => self.peer_wait_ms = ms(value)?,
            "tracker-wait-ms" => self.tracker_wait_ms = ms(value)?,
            "rarest-first" => self.rarest_first = flag(value)?,
            "p2p-spread-jitter-ms" => self.p2p_spread_jitter_ms = ms(value)?,
            "swarm-http-seeds" => {
                self.swarm_http_seeds = value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("{key}: not a number: {value}"))?
            }
            _ => return Err(format!("unknown scheduler option {key}")),
        }
        Ok(())
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self::ours()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_by_property_name() {
        let mut c = SchedulerConfig::pml();
        c.set("high-demand-time-window", "7.5").unwrap();
        assert_eq!(c.high_demand_time_window_ms, 7_500);
        c.set("rarest-first", "true").unwrap();
        assert!(c.rarest_first);
        c.set("policy", "ours").unwrap();
        assert_eq!(c, SchedulerConfig::ours());
        assert!(c.set("simultaneous-http-downloads", "-1").is_err());
        assert!(c.set("nope", "1").is_err());
    }
}
