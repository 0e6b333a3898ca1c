//! Where playback starts in a media playlist. One rule for both users: the session, which
//! tells the element the timeline position playback begins at, and each stream's fetch loop,
//! which fetches from that segment on (after opening and after every seek). Two rules drifted
//! apart once (the reported start named one segment, the loop fetched another).

use std::time::Duration;

use crate::media::MediaPlaylist;

/// Where a fetch loop begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Live, without a better hint: hlsdemux2's hold-back of 3 target durations from the edge
    /// (`MediaPlaylist::live_start_index`).
    LiveEdge,
    /// A timeline position: the beginning of a VOD, a front-end's live start (DASH's
    /// presentation delay), a seek target.
    At(Duration),
}

impl Start {
    /// Where a session begins: VOD at 0; live where the front-end says if it knows (DASH),
    /// else at the live edge.
    pub fn initial(live: bool, live_start: Option<Duration>) -> Self {
        match (live, live_start) {
            (false, _) => Start::At(Duration::ZERO),
            (true, Some(t)) => Start::At(t),
            (true, None) => Start::LiveEdge,
        }
    }
}

/// The first segment to fetch and the timeline position playback begins at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartPoint {
    /// Index into the playlist's segments; `segments.len()` when none is left (VOD: EOS;
    /// live: the next segment to come).
    pub index: usize,
    /// Start of that segment; past the last one, the playlist's end, where the next segment
    /// will start.
    pub position: Duration,
}

/// Where playback from `start` begins in `playlist`. `At(t)`: the segment holding `t`; before
/// the first segment (slid out of a live window), the first; in a gap between segments (DASH
/// Periods), the next one; at or past the end, none.
pub fn start_point(playlist: &MediaPlaylist, start: Start) -> StartPoint {
    let segments = &playlist.segments;
    let index = match start {
        Start::LiveEdge => playlist.live_start_index(),
        // Segments are sorted and do not overlap, so their ends are sorted too.
        Start::At(t) => segments.partition_point(|s| s.end() <= t),
    };
    let position = match (segments.get(index), segments.last(), start) {
        (Some(s), _, _) => s.start,
        (None, Some(last), _) => last.end(),
        (None, None, Start::At(t)) => t,
        (None, None, Start::LiveEdge) => Duration::ZERO,
    };
    StartPoint { index, position }
}

/// Where low-latency playback begins: a part (or segment) boundary of the live playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartStart {
    /// Media sequence number of the parent segment (one past the last listed segment when
    /// the part belongs to the segment still being produced).
    pub sequence: u64,
    /// Index of the first part to play in that segment (0: its beginning).
    pub part: usize,
    /// Timeline position of that part.
    pub position: Duration,
    /// Start of the parent segment on the timeline.
    pub segment_start: Duration,
}

/// Low-latency HLS (RFC 8216bis 6.3.3): `hold_back` (PART-HOLD-BACK) from the live edge (the
/// end of the last part), at the last independent part or segment start at or before it.
/// `None` when the playlist lists no parts (then the usual segment start applies).
pub fn low_latency_start(playlist: &MediaPlaylist, hold_back: Duration) -> Option<PartStart> {
    let ll = playlist.low_latency.as_ref()?;
    let next_seq = playlist
        .segments
        .last()
        .map_or(playlist.media_sequence, |s| s.sequence.saturating_add(1));
    let end = playlist.segments.last().map_or(Duration::ZERO, |s| s.end());
    // Every segment start and independent part start, then sorted by position.
    let mut candidates: Vec<PartStart> = playlist
        .segments
        .iter()
        .filter(|s| !s.gap)
        .map(|s| PartStart {
            sequence: s.sequence,
            part: 0,
            position: s.start,
            segment_start: s.start,
        })
        .collect();
    let mut edge = end;
    for list in &ll.parts {
        let parent_start = match playlist.find_sequence(list.sequence) {
            Some(i) => playlist.segments[i].start,
            None if list.sequence == next_seq => end,
            None => continue,
        };
        let mut t = parent_start;
        for (i, part) in list.parts.iter().enumerate() {
            if (i == 0 || part.independent) && !part.gap {
                candidates.push(PartStart {
                    sequence: list.sequence,
                    part: i,
                    position: t,
                    segment_start: parent_start,
                });
            }
            t += part.duration;
        }
        edge = edge.max(t);
    }
    if ll.parts.is_empty() {
        return None;
    }
    let target = edge.saturating_sub(hold_back);
    candidates.sort_by_key(|c| (c.position, c.part));
    candidates.into_iter().rev().find(|c| c.position <= target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{Resource, Segment};
    use url::Url;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn segment(sequence: u64, start_ms: u64, duration_ms: u64) -> Segment {
        let url = Url::parse(&format!("https://cdn.example.com/{sequence}.ts")).unwrap();
        Segment {
            resource: Resource { url, range: None },
            start: ms(start_ms),
            duration: ms(duration_ms),
            sequence,
            discontinuity: false,
            discontinuity_sequence: 0,
            key: None,
            init: None,
            init_key: None,
            gap: false,
            start_seconds: None,
            media_offset_ns: None,
            program_date_time_ns: None,
            start_in_period_seconds: None,
        }
    }

    /// `n` segments of 6 s from `first_ms` on, numbered from 100.
    fn playlist(live: bool, first_ms: u64, n: u64) -> MediaPlaylist {
        let segments = (0..n)
            .map(|i| segment(100 + i, first_ms + i * 6000, 6000))
            .collect();
        let url = Url::parse("https://cdn.example.com/index.m3u8").unwrap();
        MediaPlaylist::from_segments(url, live, segments, ms(6000))
    }

    fn at(p: &MediaPlaylist, t_ms: u64) -> (usize, Duration) {
        let s = start_point(p, Start::At(ms(t_ms)));
        (s.index, s.position)
    }

    #[test]
    fn initial_start() {
        assert_eq!(Start::initial(false, None), Start::At(Duration::ZERO));
        // A VOD starts at 0 even if a front-end offered a live start.
        assert_eq!(
            Start::initial(false, Some(ms(5))),
            Start::At(Duration::ZERO)
        );
        assert_eq!(Start::initial(true, Some(ms(5))), Start::At(ms(5)));
        assert_eq!(Start::initial(true, None), Start::LiveEdge);
    }

    #[test]
    fn at_a_position_starts_at_the_segment_holding_it() {
        let p = playlist(false, 0, 5); // 0..30 s
        assert_eq!(at(&p, 0), (0, ms(0)));
        assert_eq!(at(&p, 5999), (0, ms(0)));
        assert_eq!(at(&p, 6000), (1, ms(6000)));
        assert_eq!(at(&p, 13_500), (2, ms(12_000)));
        assert_eq!(at(&p, 29_999), (4, ms(24_000)));
    }

    #[test]
    fn at_or_past_the_end_there_is_nothing_left() {
        let p = playlist(false, 0, 5);
        assert_eq!(at(&p, 30_000), (5, ms(30_000)));
        assert_eq!(at(&p, 99_000), (5, ms(30_000)));
        // Live: the next segment to come starts where the playlist ends.
        let live = playlist(true, 60_000, 3);
        assert_eq!(at(&live, 90_000), (3, ms(78_000)));
    }

    #[test]
    fn before_a_live_window_starts_at_its_first_segment() {
        let p = playlist(true, 60_000, 3); // 60..78 s
        assert_eq!(at(&p, 10_000), (0, ms(60_000)));
    }

    #[test]
    fn in_a_gap_starts_at_the_next_segment() {
        let mut p = playlist(false, 0, 2); // 0..12 s
        p.segments.push(segment(200, 20_000, 6000)); // a Period starting after a gap
        assert_eq!(at(&p, 15_000), (2, ms(20_000)));
    }

    #[test]
    fn live_edge_holds_back_three_target_durations() {
        let p = playlist(true, 0, 10); // edge at 60 s: 42 s = segment 7
        let s = start_point(&p, Start::LiveEdge);
        assert_eq!((s.index, s.position), (7, ms(42_000)));
        // A VOD has no live edge: from the beginning.
        let vod = playlist(false, 0, 10);
        assert_eq!(start_point(&vod, Start::LiveEdge).index, 0);
    }

    #[test]
    fn empty_playlists() {
        let p = playlist(true, 0, 0);
        let edge = start_point(&p, Start::LiveEdge);
        assert_eq!((edge.index, edge.position), (0, Duration::ZERO));
        assert_eq!(at(&p, 7000), (0, ms(7000)));
    }
}
