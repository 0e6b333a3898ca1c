//! Segment `externalId`s (§5): the only segment identifier on the wire.
//! Only media segments get one (never init/map segments, keys, parts, subtitles).

/// Segment id as carried on the wire (a JS Number; always within ±2^53).
pub type WireSegmentId = i64;

/// Largest integer a JS Number holds exactly (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Whose HLS id rules to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsIdScheme {
    /// hls.js integration: live (no `#EXT-X-ENDLIST`) → media sequence
    /// number, VOD → 0-based position in the playlist.
    HlsJs,
    /// Shaka integration: always the media sequence number.
    Shaka,
}

/// HLS externalId of the segment at 0-based `position` in a media playlist.
/// `has_endlist`: the playlist contains `#EXT-X-ENDLIST` (hls.js treats
/// everything else, including EVENT playlists, as live). `None` past 2^53.
/// Ids of already-known segments should be kept when a playlist changes
/// (e.g. an EVENT playlist gaining ENDLIST); that is the caller's state.
pub fn hls_segment_id(
    scheme: HlsIdScheme,
    has_endlist: bool,
    media_sequence: u64,
    position: u64,
) -> Option<WireSegmentId> {
    let id = match scheme {
        HlsIdScheme::HlsJs if has_endlist => position,
        _ => media_sequence.checked_add(position)?,
    };
    i64::try_from(id).ok().filter(|v| *v <= MAX_SAFE_INTEGER)
}

/// DASH externalId: `Math.trunc(start / 0.5)` of Shaka's presentation start
/// time in seconds. `None` for NaN/infinite or beyond ±2^53.
pub fn dash_segment_id(start_seconds: f64) -> Option<WireSegmentId> {
    let v = (start_seconds / 0.5).trunc();
    if !v.is_finite() || v.abs() > MAX_SAFE_INTEGER as f64 {
        return None;
    }
    Some(v as i64)
}

/// Shaka's start time for SegmentTemplate with `@duration` (`$Number$`):
/// `(number − startNumber) × (duration / timescale) + periodStart`, in that
/// f64 order (segment_template.js). PTO is not subtracted here, as in Shaka.
pub fn dash_numbered_segment_start(
    period_start: f64,
    number: u64,
    start_number: u64,
    duration: u64,
    timescale: u64,
) -> f64 {
    let segment_duration = duration as f64 / timescale.max(1) as f64;
    let position_within_period = number as f64 - start_number as f64;
    position_within_period * segment_duration + period_start
}

/// Shaka's start time for SegmentTimeline (and PTO-adjusted lists):
/// `periodStart + (t − presentationTimeOffset) / timescale` where `t` is the
/// segment's media time in timescale units (S@t, or the previous end).
pub fn dash_timeline_segment_start(
    period_start: f64,
    t: u64,
    presentation_time_offset: u64,
    timescale: u64,
) -> f64 {
    let unscaled = t as f64 - presentation_time_offset as f64;
    period_start + unscaled / timescale.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hls_ids() {
        use HlsIdScheme::*;
        // VOD: position regardless of media sequence.
        assert_eq!(hls_segment_id(HlsJs, true, 100, 3), Some(3));
        // Live / EVENT without ENDLIST: sequence number.
        assert_eq!(hls_segment_id(HlsJs, false, 100, 3), Some(103));
        assert_eq!(hls_segment_id(Shaka, true, 100, 3), Some(103));
        assert_eq!(hls_segment_id(HlsJs, false, u64::MAX, 1), None);
        assert_eq!(hls_segment_id(HlsJs, false, 1 << 53, 0), None);
    }

    #[test]
    fn dash_ids() {
        assert_eq!(dash_segment_id(0.0), Some(0));
        assert_eq!(dash_segment_id(0.49), Some(0));
        assert_eq!(dash_segment_id(4.0), Some(8));
        assert_eq!(dash_segment_id(-0.7), Some(-1));
        assert_eq!(dash_segment_id(1_700_000_000.0), Some(3_400_000_000));
        assert_eq!(dash_segment_id(f64::NAN), None);
        assert_eq!(dash_segment_id(f64::INFINITY), None);
    }

    #[test]
    fn shaka_arithmetic() {
        // 2002/1000 s segments: f64 products, not exact decimals.
        let start = dash_numbered_segment_start(0.0, 4, 1, 2002, 1000);
        assert_eq!(start, 3.0 * (2002.0 / 1000.0));
        assert_eq!(dash_segment_id(start), Some(12));
        // 45 × (7/10) is 31.499999999999996 in f64, so the id is 62, not the
        // 63 that exact decimal arithmetic would give: Shaka's order matters.
        let s = dash_numbered_segment_start(0.0, 45, 0, 7, 10);
        assert_eq!(s, 31.499999999999996);
        assert_eq!(dash_segment_id(s), Some(62));
        let s = dash_numbered_segment_start(0.0, 7, 0, 1, 15);
        assert_eq!(s, 7.0 * (1.0 / 15.0));
        // Timeline with PTO: (t − pto)/timescale, then + periodStart.
        let t = dash_timeline_segment_start(10.0, 900_000 + 180_000, 900_000, 90_000);
        assert_eq!(t, 12.0);
        assert_eq!(dash_segment_id(t), Some(24));
        let t = dash_timeline_segment_start(0.1, 3, 0, 10);
        assert_eq!(t, 0.1 + 0.3);
        assert_eq!(dash_segment_id(t), Some(0)); // 0.4 → 0
    }
}
