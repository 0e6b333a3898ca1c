//! Adaptive bitrate core (pure): throughput estimation and variant selection with hlsdemux2
//! semantics.
//!
//! What was matched (GStreamer `ext/adaptivedemux2`):
//! - Estimate: each finished fragment gives `bytes * 8 / download time`; the stream keeps the
//!   last `NUM_LOOKBACK_FRAGMENTS` (3) rates and uses `MIN(average, last)` ("conservative, don't
//!   upgrade too fast") — `gst_adaptive_demux2_stream_update_current_bitrate`.
//! - Target: `connection-speed` if non-zero, else estimate × `bandwidth-target-ratio`, then
//!   clamped to `min-bitrate` / `max-bitrate`.
//! - Pick (`hls_master_playlist_get_variant_for_bitrate`): the highest variant with
//!   BANDWIDTH ≤ target; if that is below `min-bitrate`, the lowest variant ≥ `min-bitrate`;
//!   if none is ≤ target, the lowest variant.
//! - Initial variant (`gst_hls_demux_process_manifest`): `start-bitrate`, else
//!   `connection-speed`, if set, picked as above without the ratio; otherwise the *first*
//!   variant of the master playlist (its `default_variant`). "Initial" = no estimate yet.
//!
//! Deliberate differences: `max-bitrate` also caps `connection-speed` and `start-bitrate`, and
//! both limits also steer the first-variant default (hlsdemux2 clamps only measured rates and
//! applies just `min-bitrate` to start/connection speeds); when every variant is below
//! `min-bitrate` the highest one is chosen. P2P transfers feed the combined estimate too (the
//! pipeline is fed either way); `estimate_bps_of` gives an HTTP-only or P2P-only view.

use std::cmp::Reverse;
use std::time::Duration;

/// Where a transfer's bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Http,
    P2p,
}

/// hlsdemux2's NUM_LOOKBACK_FRAGMENTS.
const LOOKBACK: usize = 3;
/// Floor for a transfer's duration so cached/instant transfers don't produce infinite rates.
const MIN_ELAPSED: Duration = Duration::from_millis(1);

/// Moving window of the last `LOOKBACK` per-transfer rates.
#[derive(Debug, Clone, Default)]
struct Window {
    rates: [u64; LOOKBACK],
    /// Number of valid entries in `rates` (≤ LOOKBACK).
    len: usize,
    /// Slot the next rate goes to.
    next: usize,
    last: u64,
}

impl Window {
    fn push(&mut self, bps: u64) {
        self.rates[self.next] = bps;
        self.next = (self.next + 1) % LOOKBACK;
        self.len = (self.len + 1).min(LOOKBACK);
        self.last = bps;
    }

    fn estimate(&self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        // Valid entries are always the first `len` slots (filled in order before wrapping).
        let sum: u128 = self.rates[..self.len].iter().map(|&r| u128::from(r)).sum();
        let avg = (sum / self.len as u128) as u64;
        Some(avg.min(self.last))
    }
}

/// Throughput estimator fed with completed transfers (segments). Pure: the caller provides
/// the times.
#[derive(Debug, Clone, Default)]
pub struct BandwidthEstimator {
    all: Window,
    http: Window,
    p2p: Window,
    http_bytes: u64,
    p2p_bytes: u64,
    last_sample_at: Option<Duration>,
}

impl BandwidthEstimator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one completed transfer of `bytes` that took `elapsed` (request start to last
    /// byte), finished at `now` (any monotonic clock). Only record media segments: tiny
    /// transfers (playlists, keys) measure latency, not throughput.
    pub fn record(&mut self, source: Source, bytes: u64, elapsed: Duration, now: Duration) {
        match source {
            Source::Http => self.http_bytes = self.http_bytes.saturating_add(bytes),
            Source::P2p => self.p2p_bytes = self.p2p_bytes.saturating_add(bytes),
        }
        if bytes == 0 {
            return; // nothing measured (aborted transfer)
        }
        let nanos = elapsed.max(MIN_ELAPSED).as_nanos();
        let bps = (u128::from(bytes) * 8 * 1_000_000_000 / nanos).min(u128::from(u64::MAX)) as u64;
        self.all.push(bps);
        match source {
            Source::Http => self.http.push(bps),
            Source::P2p => self.p2p.push(bps),
        }
        self.last_sample_at = Some(now);
    }

    /// Smoothed throughput over both sources in bit/s; `None` until a transfer was recorded.
    pub fn estimate_bps(&self) -> Option<u64> {
        self.all.estimate()
    }

    /// Smoothed throughput of one source only.
    pub fn estimate_bps_of(&self, source: Source) -> Option<u64> {
        match source {
            Source::Http => self.http.estimate(),
            Source::P2p => self.p2p.estimate(),
        }
    }

    /// Total bytes received from `source`.
    pub fn bytes(&self, source: Source) -> u64 {
        match source {
            Source::Http => self.http_bytes,
            Source::P2p => self.p2p_bytes,
        }
    }

    /// `now` of the most recent measured transfer.
    pub fn last_sample_at(&self) -> Option<Duration> {
        self.last_sample_at
    }
}

/// The element properties that drive variant selection (names as in hlsdemux2, bit/s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbrSettings {
    /// Fixed network speed; overrides the estimate when non-zero.
    pub connection_speed_bps: u64,
    /// Fraction of the estimate that variants may use (0..=1, default 0.8).
    pub bandwidth_target_ratio: f64,
    /// Lowest variant bandwidth to use (0 = none).
    pub min_bitrate: u64,
    /// Highest variant bandwidth to use (0 = none).
    pub max_bitrate: u64,
    /// Estimate to assume before any transfer was measured (0 = start with the first variant).
    pub start_bitrate: u64,
}

impl Default for AbrSettings {
    fn default() -> Self {
        Self {
            connection_speed_bps: 0,
            bandwidth_target_ratio: 0.8,
            min_bitrate: 0,
            max_bitrate: 0,
            start_bitrate: 0,
        }
    }
}

/// Index into `bandwidths` (variants' BANDWIDTH in bit/s, master playlist order, any sort) of
/// the variant to play next. Returns 0 for an empty slice.
pub fn select_variant(
    bandwidths: &[u64],
    estimate_bps: Option<u64>,
    settings: &AbrSettings,
) -> usize {
    if bandwidths.is_empty() {
        return 0;
    }
    let ratio = if settings.bandwidth_target_ratio.is_nan() {
        0.8
    } else {
        settings.bandwidth_target_ratio.clamp(0.0, 1.0)
    };
    let target = if estimate_bps.is_none() && settings.start_bitrate > 0 {
        // Before any measurement start-bitrate wins, even over connection-speed (hlsdemux2).
        settings.start_bitrate
    } else if settings.connection_speed_bps > 0 {
        settings.connection_speed_bps
    } else if let Some(estimate) = estimate_bps {
        // f64 -> u64 `as` saturates; precision loss is irrelevant at these magnitudes.
        (estimate as f64 * ratio) as u64
    } else {
        // Nothing known yet: hlsdemux2 starts with the first variant of the master playlist.
        let first = bandwidths[0];
        if first >= settings.min_bitrate
            && (settings.max_bitrate == 0 || first <= settings.max_bitrate)
        {
            return 0;
        }
        first
    };
    let mut target = target.max(settings.min_bitrate);
    if settings.max_bitrate > 0 {
        target = target.min(settings.max_bitrate);
    }
    pick(bandwidths, target, settings.min_bitrate)
}

/// hlsdemux2's get_variant_for_bitrate without the sorting: ties go to the earliest variant
/// (`min_by_key` keeps the first of equal elements).
fn pick(bandwidths: &[u64], target: u64, min: u64) -> usize {
    let indexed = || bandwidths.iter().copied().enumerate();
    // Highest variant that fits the target and respects the minimum.
    indexed()
        .filter(|&(_, b)| b <= target && b >= min)
        .min_by_key(|&(_, b)| Reverse(b))
        // Otherwise the lowest one at or above the minimum (all of those are above target).
        .or_else(|| indexed().filter(|&(_, b)| b >= min).min_by_key(|&(_, b)| b))
        // Every variant is below the minimum: the closest one.
        .or_else(|| indexed().min_by_key(|&(_, b)| Reverse(b)))
        .map_or(0, |(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LADDER: [u64; 4] = [800_000, 200_000, 3_000_000, 1_500_000];

    fn s() -> AbrSettings {
        AbrSettings::default()
    }

    #[test]
    fn first_variant_without_estimate_or_start_bitrate() {
        assert_eq!(select_variant(&LADDER, None, &s()), 0);
    }

    #[test]
    fn start_bitrate_used_before_samples_without_ratio() {
        let st = AbrSettings {
            start_bitrate: 1_500_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, None, &st), 3);
        let st = AbrSettings {
            start_bitrate: 1_000_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, None, &st), 0);
        // Once an estimate exists the start bitrate no longer matters.
        assert_eq!(select_variant(&LADDER, Some(100_000_000), &st), 2);
    }

    #[test]
    fn ratio_applied_to_estimate() {
        // 2 Mb/s * 0.8 = 1.6 Mb/s -> 1.5 Mb/s variant.
        assert_eq!(select_variant(&LADDER, Some(2_000_000), &s()), 3);
        // 1.8 Mb/s * 0.8 = 1.44 Mb/s -> 800 kb/s.
        assert_eq!(select_variant(&LADDER, Some(1_800_000), &s()), 0);
        // Exactly equal is allowed.
        assert_eq!(select_variant(&LADDER, Some(3_750_000), &s()), 2);
        let r1 = AbrSettings {
            bandwidth_target_ratio: 1.0,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, Some(1_800_000), &r1), 3);
    }

    #[test]
    fn below_all_variants_gives_lowest() {
        assert_eq!(select_variant(&LADDER, Some(1_000), &s()), 1);
        assert_eq!(select_variant(&LADDER, Some(0), &s()), 1);
    }

    #[test]
    fn connection_speed_overrides_estimate_and_ratio() {
        let st = AbrSettings {
            connection_speed_bps: 1_500_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, Some(100_000), &st), 3);
        assert_eq!(select_variant(&LADDER, None, &st), 3);
        // Before measurements start-bitrate takes precedence (hlsdemux2 process_manifest).
        let both = AbrSettings {
            start_bitrate: 200_000,
            ..st
        };
        assert_eq!(select_variant(&LADDER, None, &both), 1);
        assert_eq!(select_variant(&LADDER, Some(100_000_000), &both), 3);
    }

    #[test]
    fn min_bitrate() {
        let st = AbrSettings {
            min_bitrate: 1_000_000,
            ..s()
        };
        // Estimate too low: lowest variant >= min.
        assert_eq!(select_variant(&LADDER, Some(100_000), &st), 3);
        // First variant (800k) violates min at start.
        assert_eq!(select_variant(&LADDER, None, &st), 3);
        assert_eq!(select_variant(&LADDER, Some(10_000_000), &st), 2);
        // Nothing reaches the minimum: the closest (highest).
        let st = AbrSettings {
            min_bitrate: 9_000_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, Some(100), &st), 2);
    }

    #[test]
    fn max_bitrate() {
        let st = AbrSettings {
            max_bitrate: 1_000_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, Some(100_000_000), &st), 0);
        let st = AbrSettings {
            max_bitrate: 100_000,
            ..s()
        };
        // None fits: the closest (lowest).
        assert_eq!(select_variant(&LADDER, Some(100_000_000), &st), 1);
        // Start with first variant, but it is above max.
        let st = AbrSettings {
            max_bitrate: 500_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, None, &st), 1);
        // Applies to connection-speed too.
        let st = AbrSettings {
            max_bitrate: 900_000,
            connection_speed_bps: 10_000_000,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, None, &st), 0);
    }

    #[test]
    fn ties_and_degenerate_inputs() {
        assert_eq!(select_variant(&[], Some(1), &s()), 0);
        assert_eq!(select_variant(&[5, 5, 5], Some(100), &s()), 0);
        assert_eq!(select_variant(&[1, 9, 9, 20], Some(12), &s()), 1);
        assert_eq!(select_variant(&[30, 20, 20], Some(1), &s()), 1);
        let min = AbrSettings {
            min_bitrate: 100,
            ..s()
        };
        assert_eq!(select_variant(&[7, 50, 50], Some(1), &min), 1);
        assert_eq!(select_variant(&[0], None, &s()), 0);
        let nan = AbrSettings {
            bandwidth_target_ratio: f64::NAN,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, Some(2_000_000), &nan), 3);
        let huge = AbrSettings {
            bandwidth_target_ratio: 1e300,
            ..s()
        };
        assert_eq!(select_variant(&LADDER, Some(u64::MAX), &huge), 2);
        assert_eq!(select_variant(&LADDER, Some(u64::MAX), &s()), 2);
    }

    #[test]
    fn estimator_min_of_average_and_last() {
        let mut e = BandwidthEstimator::new();
        assert_eq!(e.estimate_bps(), None);
        let sec = Duration::from_secs(1);
        e.record(Source::Http, 1_000_000, sec, sec); // 8 Mb/s
        assert_eq!(e.estimate_bps(), Some(8_000_000));
        e.record(Source::Http, 500_000, sec, 2 * sec); // 4 Mb/s, avg 6
        assert_eq!(e.estimate_bps(), Some(4_000_000));
        e.record(Source::P2p, 2_000_000, sec, 3 * sec); // 16 Mb/s, avg 28/3
        assert_eq!(e.estimate_bps(), Some(28_000_000 / 3));
        e.record(Source::Http, 250_000, sec, 4 * sec); // 2 Mb/s; window 4,16,2 -> avg 22/3, last 2
        assert_eq!(e.estimate_bps(), Some(2_000_000));
        e.record(Source::Http, 1_000_000, sec, 5 * sec); // window 16,2,8 -> avg 26/3 > last 8
        assert_eq!(e.estimate_bps(), Some(8_000_000));
        assert_eq!(e.bytes(Source::Http), 2_750_000);
        assert_eq!(e.bytes(Source::P2p), 2_000_000);
        assert_eq!(e.estimate_bps_of(Source::P2p), Some(16_000_000));
        assert_eq!(e.last_sample_at(), Some(5 * sec));
    }

    #[test]
    fn estimator_edge_cases() {
        let mut e = BandwidthEstimator::new();
        e.record(Source::Http, 0, Duration::from_secs(1), Duration::ZERO);
        assert_eq!(e.estimate_bps(), None);
        e.record(Source::P2p, u64::MAX, Duration::ZERO, Duration::ZERO);
        assert_eq!(e.estimate_bps(), Some(u64::MAX));
        e.record(Source::P2p, u64::MAX, Duration::ZERO, Duration::ZERO);
        assert_eq!(e.bytes(Source::P2p), u64::MAX);
        assert_eq!(e.estimate_bps_of(Source::Http), None);
    }
}
