//! HLS playlist parser (`manifest::hls`): arbitrary bytes → `parse`, then the live-refresh
//! functions. Checks, besides "no panic": a media playlist's segments have positive durations
//! within the limit, consecutive sequence numbers, back-to-back start times, sane byte ranges;
//! the timeline helpers agree with them; a refresh keeps those properties; and parsing never
//! holds more memory than a fixed multiple of the input (plus a small constant).
//!
//! An input with a NUL byte is two playlists: the part after it is a refresh of the first.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use gstp2pmedia::manifest::hls::{self, Playlist, MAX_SEGMENTS, MAX_SEGMENT_DURATION, MAX_STREAMS};
use gstp2pmedia::manifest::ManifestError;
use gstp2pmedia::media::MediaPlaylist;
use libfuzzer_sys::fuzz_target;

/// Bytes a parse may hold per input byte, plus a constant for the fixed parts. A `Segment` is
/// ~450 bytes (four URLs' worth of fields) plus its joined URL, needs as few as 12 input bytes
/// (`#EXTINF:1\nx\n`), and the Vec holding them may be twice as large as its contents.
const BYTES_PER_INPUT_BYTE: usize = 128;
const FIXED_BYTES: usize = 256 * 1024;

fn url() -> url::Url {
    url::Url::parse("https://origin.test/live/stream/index.m3u8").unwrap()
}

fn parse(bytes: &[u8]) -> Result<Playlist, ManifestError> {
    let url = url();
    let (r, peak) = common::peak(|| hls::parse(bytes, &url));
    assert!(
        peak <= FIXED_BYTES + BYTES_PER_INPUT_BYTE * bytes.len(),
        "parsing {} bytes held {peak} bytes at once",
        bytes.len()
    );
    r
}

/// Properties every media playlist we hand to the engine must have. `fresh`: straight from
/// `parse` (timeline starts at 0 and is exactly back-to-back).
fn check_media(m: &MediaPlaylist, input_lines: usize, fresh: bool) {
    assert!(m.segments.len() <= MAX_SEGMENTS);
    assert!(m.segments.len() <= input_lines, "more segments than lines");
    assert!(!m.target_duration.is_zero());
    assert!(m.target_duration <= MAX_SEGMENT_DURATION + Duration::from_secs(1));
    let mut prev_disc = m.discontinuity_sequence;
    for (i, s) in m.segments.iter().enumerate() {
        assert!(!s.duration.is_zero() && s.duration <= MAX_SEGMENT_DURATION);
        assert_eq!(Some(s.sequence), m.media_sequence.checked_add(i as u64));
        assert!(s.discontinuity_sequence >= prev_disc);
        prev_disc = s.discontinuity_sequence;
        if let Some(r) = s.resource.range {
            assert!(r.offset.checked_add(r.length).is_some());
        }
        if i == 0 {
            if fresh {
                assert_eq!(s.start, Duration::ZERO);
            }
        } else {
            let prev = &m.segments[i - 1];
            if fresh {
                assert_eq!(s.start, prev.end(), "segment {i} not back-to-back");
            } else {
                assert!(s.start >= prev.start, "segment {i} starts before {}", i - 1);
            }
        }
    }
    // Timeline helpers: never panic, and agree with the list.
    let _ = (m.is_live(), m.live_start_index(), m.duration());
    let _ = (m.reload_interval(true), m.reload_interval(false));
    assert!(m.live_start_index() <= m.segments.len());
    if let (Some(first), Some(last)) = (m.segments.first(), m.segments.last()) {
        if fresh {
            assert_eq!(m.segment_index_at(first.start), Some(0));
            assert_eq!(m.segment_index_at(last.start), Some(m.segments.len() - 1));
        }
        assert_eq!(m.segment_index_at(last.end()), None);
        assert_eq!(m.find_sequence(last.sequence), Some(m.segments.len() - 1));
        assert_eq!(m.first_from_sequence(first.sequence), Some(0));
        let _ = m.segment_index_at(Duration::MAX);
        let _ = m.find_sequence(u64::MAX);
    }
}

fn lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1
}

fuzz_target!(|data: &[u8]| {
    let (first, second) = common::split_nul(data);
    let old = match parse(first) {
        Ok(Playlist::Media(m)) => {
            check_media(&m, lines(first), true);
            // A refresh with the very same body changes nothing.
            let same = hls::update(&m, m.clone()).expect("identical refresh accepted");
            assert_eq!(same.segments, m.segments);
            m
        }
        Ok(Playlist::Master(p)) => {
            assert!(!p.variants.is_empty());
            assert!(p.variants.len() + p.renditions.len() <= MAX_STREAMS);
            return;
        }
        Err(_) => return,
    };
    let Some(second) = second else { return };
    let Ok(Playlist::Media(new)) = parse(second) else {
        return;
    };
    let n = lines(second);
    check_media(&new, n, true);
    match hls::update(&old, new.clone()) {
        Ok(m) => check_media(&m, n, false),
        Err(ManifestError::SequenceWentBackwards { .. }) => {}
        Err(e) => panic!("update failed with {e:?}"),
    }
    check_media(&hls::align(&old, new.clone()), n, false);
    check_media(&hls::rebase(&old, new), n, false);
});
