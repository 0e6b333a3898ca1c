//! DASH MPD front-end (`manifest::dash`): arbitrary bytes → `parse` at two wall-clock times,
//! then every Representation's helpers; a `SegmentBase` Representation gets the part of the
//! input after the first NUL byte as its `sidx`. Checks, besides "no panic": the segment
//! limits, segments sorted by start, no segment longer than `Mpd::max_segment_duration`, and
//! the same for segments built from a sidx. Template expansion may legitimately produce up to
//! `MAX_TOTAL_SEGMENTS` from a few bytes, so memory is only measured (new peaks are printed).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use gstp2pmedia::manifest::dash::{self, Mpd, SegmentSource, MAX_SEGMENTS, MAX_TOTAL_SEGMENTS};
use gstp2pmedia::media::Segment;
use libfuzzer_sys::fuzz_target;

/// 2026-01-01T00:00:00Z: a wall clock after the fixtures' availabilityStartTime.
const NOW: f64 = 1_767_225_600.0;

fn check_segments(segs: &[Segment], max_duration: Option<Duration>) {
    assert!(segs.len() <= MAX_SEGMENTS);
    for w in segs.windows(2) {
        assert!(w[0].start <= w[1].start, "segments not sorted by start");
    }
    if let Some(max) = max_duration {
        for s in segs {
            assert!(
                s.duration <= max,
                "{:?} > max_segment_duration {max:?}",
                s.duration
            );
        }
    }
}

fn check(mpd: &Mpd, sidx: Option<&[u8]>) {
    let mut total = 0usize;
    let _ = (mpd.reload_interval(), mpd.presentation_delay());
    let _ = (
        mpd.live_edge(NOW),
        mpd.live_start(NOW),
        mpd.live_start(f64::MAX),
    );
    let start = mpd.live_start(NOW).unwrap_or(Duration::ZERO);
    for period in &mpd.periods {
        let _ = period.end();
        for set in &period.adaptation_sets {
            for rep in &set.representations {
                let segs = rep.segment_list();
                total += segs.len();
                check_segments(segs, Some(mpd.max_segment_duration));
                assert!(rep.start_index_for(start) <= segs.len().saturating_sub(1));
                // (A zero-length last segment, e.g. clipped at the Period end, contains no time.)
                if let Some(s) = segs.last().filter(|s| !s.duration.is_zero()) {
                    assert_eq!(rep.segment_index_at(s.start), Some(segs.len() - 1));
                }
                let _ = rep.segment_index_at(Duration::MAX);
                if let Some(m) = rep.to_media_playlist(mpd) {
                    assert_eq!(m.segments.len(), segs.len());
                }
                if let (SegmentSource::NeedsIndex(ctx), Some(bytes)) = (&rep.segments, sidx) {
                    if let Ok(segs) = dash::segments_from_sidx(bytes, ctx) {
                        check_segments(&segs, None);
                    }
                }
            }
        }
    }
    assert!(total <= MAX_TOTAL_SEGMENTS);
}

fuzz_target!(|data: &[u8]| {
    let (mpd, sidx) = common::split_nul(data);
    let url = url::Url::parse("https://origin.test/dash/manifest.mpd").unwrap();
    for now in [NOW, NOW + 3600.5] {
        let (r, _peak) = common::peak(|| dash::parse(mpd, &url, now));
        match r {
            Ok(m) => check(&m, sidx),
            Err(_) => return,
        }
    }
});
