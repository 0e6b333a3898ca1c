//! HLS (RFC 8216) playlist parsing and live refresh, reduced to the media model.
//!
//! The line/tag scan is done here rather than with `m3u8-rs` 6 because that crate mis-parses
//! things we rely on (checked in its 6.0.1 source):
//! - it forgets EXT-X-KEY and EXT-X-MAP after one segment, while they apply until the next tag;
//! - it rejects `METHOD=NONE` without IV (inverted check), so key resets are lost;
//! - a truncated `#EXTINF:10` or a `#comment` on the last line without newline becomes a segment URI;
//! - `#EXTINF:-1` silently becomes a 0 s segment;
//! - a STREAM-INF it cannot parse is dropped and its URI line overwrites the previous variant's URI;
//! - BYTERANGE without offset is left unresolved and tags are matched by prefix.
//!
//! The scan is strictly line based with exact tag names, so none of those can happen, and every
//! error carries the line number.

use std::time::Duration;

use url::Url;

use super::ManifestError;
use crate::media::{
    Aes128Key, ByteRange, LowLatency, MasterPlaylist, MediaPlaylist, MediaType, Part, PartList,
    PlaylistKind, Rendition, RenditionReport, Resource, Segment, Variant,
};

/// Bigger bodies are rejected before parsing (largest real VOD playlists are a few MB).
pub const MAX_PLAYLIST_BYTES: usize = 32 * 1024 * 1024;
/// Bounds memory for a media playlist (~0.5 KB per segment): 27 h of 1 s segments, 166 h of 6 s.
pub const MAX_SEGMENTS: usize = 100_000;
/// Bounds variants + renditions of a master playlist.
pub const MAX_STREAMS: usize = 10_000;
/// Bytes of EXT-X-KEY/EXT-X-MAP URI copies the segments may hold per playlist byte (plus 1 MiB).
const REPEATED_URI_BYTES_PER_BYTE: usize = 24;
/// Bounds the EXT-X-PART lines kept per playlist (servers list the last few segments' parts).
pub const MAX_PARTS: usize = 10_000;
/// Longer EXTINF / TARGETDURATION values are treated as garbage.
pub const MAX_SEGMENT_DURATION: Duration = Duration::from_secs(24 * 3600);

/// A parsed playlist: either a master (variants + renditions) or a single media playlist.
#[derive(Debug, Clone, PartialEq)]
pub enum Playlist {
    Master(MasterPlaylist),
    Media(MediaPlaylist),
}

/// Parses a playlist body. `url` is the final (post-redirect) URL it was fetched from; it is the
/// base for relative URIs and is stored in the result.
pub fn parse(bytes: &[u8], url: &url::Url) -> Result<Playlist, ManifestError> {
    if bytes.len() > MAX_PLAYLIST_BYTES {
        return Err(ManifestError::TooLarge {
            what: "bytes",
            limit: MAX_PLAYLIST_BYTES,
        });
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Tolerate leading blank lines some servers emit; anything else (HTML, JSON, empty) is not HLS.
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(body.len());
    let body = &body[start..];
    if !body.starts_with(b"#EXTM3U") {
        return Err(ManifestError::NotM3u8);
    }
    let text = std::str::from_utf8(body).map_err(|_| ManifestError::NotUtf8)?;
    let mut master_line = None;
    let mut media_line = None;
    for (n, line) in numbered_lines(text) {
        match split_tag(line).0 {
            "#EXT-X-STREAM-INF" | "#EXT-X-I-FRAME-STREAM-INF" | "#EXT-X-MEDIA" => {
                master_line.get_or_insert(n);
            }
            "#EXTINF" => {
                media_line.get_or_insert(n);
            }
            _ => {}
        }
    }
    match (master_line, media_line) {
        (Some(m), Some(s)) => Err(ManifestError::Malformed {
            line: m.max(s),
            reason: "playlist mixes master (EXT-X-STREAM-INF/EXT-X-MEDIA) and media (EXTINF) tags"
                .into(),
        }),
        (Some(_), None) => parse_master(text, url).map(Playlist::Master),
        // No master tag: a media playlist, possibly still empty (live stream just starting).
        (None, _) => parse_media(text, url).map(Playlist::Media),
    }
}

/// Trimmed lines with 1-based numbers (counted from the #EXTM3U line). Handles `\n`, `\r\n` and
/// old-Mac `\r`-only line endings.
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let cr_only = !text.contains('\n');
    text.split(move |c| c == '\n' || (cr_only && c == '\r'))
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
}

/// Live/EVENT refresh: returns `new` with `start` times carried over from `old`.
///
/// Segments present in both (same media sequence number) keep the start `old` gave them; new
/// segments continue after the previous one. If `new` starts after the end of `old` (we missed
/// segments), its first segment is anchored at `old`'s end and `lost_sync` is set.
///
/// [`ManifestError::SequenceWentBackwards`] if EXT-X-MEDIA-SEQUENCE decreased, or if the list
/// ends earlier than `old` did (stale response). Keep `old` and reload; if it persists (encoder
/// restart), [`rebase`] continues the timeline.
pub fn update(old: &MediaPlaylist, new: MediaPlaylist) -> Result<MediaPlaylist, ManifestError> {
    let new = fill_skipped(old, new)?;
    if new.media_sequence < old.media_sequence {
        return Err(ManifestError::SequenceWentBackwards {
            old: old.media_sequence,
            new: new.media_sequence,
        });
    }
    // Sequence number that would directly follow each playlist.
    let next_seq = old.media_sequence.saturating_add(old.segments.len() as u64);
    let new_next_seq = new.media_sequence.saturating_add(new.segments.len() as u64);
    if new_next_seq < next_seq {
        // The list lost segments at its live end: a stale copy (e.g. from another CDN edge).
        // Accepting it would forget the timing of the lost segments, so the caller should keep
        // `old` and reload.
        return Err(ManifestError::SequenceWentBackwards {
            old: next_seq,
            new: new_next_seq,
        });
    }
    Ok(align(old, new))
}

/// A delta update (EXT-X-SKIP) completed with the segments it skipped, taken from `old`.
/// [`ManifestError::DeltaUnresolved`] if `old` lacks one of them: reload in full.
fn fill_skipped(
    old: &MediaPlaylist,
    mut new: MediaPlaylist,
) -> Result<MediaPlaylist, ManifestError> {
    let Some(ll) = new.low_latency.as_mut() else {
        return Ok(new);
    };
    let skipped = std::mem::take(&mut ll.skipped_segments);
    if skipped == 0 {
        return Ok(new);
    }
    let unresolved = ManifestError::DeltaUnresolved {
        first: new.media_sequence,
        count: skipped,
    };
    // Checked before anything is allocated: the count is the server's word.
    if skipped > old.segments.len() as u64 {
        return Err(unresolved);
    }
    let mut filled = Vec::with_capacity(new.segments.len().saturating_add(skipped as usize));
    for seq in new.media_sequence..new.media_sequence.saturating_add(skipped) {
        let i = old.find_sequence(seq).ok_or(unresolved.clone())?;
        filled.push(old.segments[i].clone());
    }
    if filled.len() + new.segments.len() > MAX_SEGMENTS {
        return Err(ManifestError::TooLarge {
            what: "segments",
            limit: MAX_SEGMENTS,
        });
    }
    let last = filled.last().expect("skipped > 0").clone();
    // The listed segments counted discontinuities from EXT-X-DISCONTINUITY-SEQUENCE, which
    // names the first (skipped) segment: add the skipped segments' own.
    let disc_offset = last
        .discontinuity_sequence
        .saturating_sub(new.discontinuity_sequence);
    let mut prev = last;
    for seg in &mut new.segments {
        seg.discontinuity_sequence = seg.discontinuity_sequence.saturating_add(disc_offset);
        if seg.program_date_time_ns.is_none() && !seg.discontinuity {
            seg.program_date_time_ns = prev
                .program_date_time_ns
                .zip(i64::try_from(prev.duration.as_nanos()).ok())
                .and_then(|(t, d)| t.checked_add(d));
        }
        prev = seg.clone();
    }
    filled.append(&mut new.segments);
    new.segments = filled;
    Ok(new)
}

/// The playlist URL without the low-latency delivery directives (`_HLS_msn`, `_HLS_part`,
/// `_HLS_skip`) a reload added: what to reload next time, and the swarm's name for it.
pub fn without_directives(url: &Url) -> Url {
    let mut out = url.clone();
    let Some(query) = url.query() else {
        return out;
    };
    // At the string level: re-encoding the rest of the query could change a signed URL.
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.starts_with("_HLS_"))
        .collect();
    if kept.len() == query.split('&').count() {
        return out;
    }
    if kept.is_empty() {
        out.set_query(None);
    } else {
        out.set_query(Some(&kept.join("&")));
    }
    out
}

/// A reload URL with delivery directives (RFC 8216bis 6.2.5), in the order the spec asks:
/// `_HLS_msn` (and `_HLS_part`) to block until that segment (part) exists, `_HLS_skip=YES` for a
/// delta update.
pub fn with_directives(url: &Url, block: Option<(u64, Option<u64>)>, skip: bool) -> Url {
    let mut out = without_directives(url);
    if block.is_none() && !skip {
        return out;
    }
    {
        let mut q = out.query_pairs_mut();
        if let Some((msn, part)) = block {
            q.append_pair("_HLS_msn", &msn.to_string());
            if let Some(part) = part {
                q.append_pair("_HLS_part", &part.to_string());
            }
        }
        if skip {
            q.append_pair("_HLS_skip", "YES");
        }
    }
    out
}

/// Gives `new` the timeline of `reference` by media sequence number, without the staleness
/// checks of [`update`]: for switching variants/renditions, whose sequence numbers are aligned
/// (RFC 8216 6.2.4) but whose windows may start or end a little differently.
///
/// Segments known to `reference` keep its start times, earlier ones are placed back-to-back
/// before them and later ones continue after. Without any common segment, `new` is anchored at
/// the end of `reference` (`lost_sync` set unless it continues exactly at the next sequence).
pub fn align(reference: &MediaPlaylist, mut new: MediaPlaylist) -> MediaPlaylist {
    let ref_last = reference.segments.last();
    let ref_end = ref_last.map_or(Duration::ZERO, Segment::end);
    let next_seq = reference
        .media_sequence
        .saturating_add(reference.segments.len() as u64);
    let known = |seq| reference.find_sequence(seq).map(|i| &reference.segments[i]);
    let anchor = new
        .segments
        .iter()
        .enumerate()
        .find_map(|(j, s)| known(s.sequence).map(|r| (j, r)));
    // Discontinuity sequence the first new segment should have, when it can be told.
    let expected_ds;
    let (first_known, anchor_start) = match (anchor, new.segments.first()) {
        (Some((j, r)), _) => {
            new.lost_sync = false;
            let local = new.segments[j]
                .discontinuity_sequence
                .saturating_sub(new.segments[0].discontinuity_sequence);
            expected_ds = Some(r.discontinuity_sequence.saturating_sub(local));
            (j, r.start)
        }
        (None, None) => {
            new.lost_sync = false;
            return new;
        }
        (None, Some(first)) => {
            new.lost_sync = first.sequence != next_seq;
            // Missed segments may have carried discontinuities: count at least one.
            let step = u64::from(first.discontinuity || new.lost_sync);
            expected_ds = ref_last.map(|l| l.discontinuity_sequence.saturating_add(step));
            (0, ref_end)
        }
    };
    let mut t = anchor_start;
    for seg in new.segments[..first_known].iter_mut().rev() {
        t = t.saturating_sub(seg.duration);
        seg.start = t;
    }
    let mut t = anchor_start;
    for seg in &mut new.segments[first_known..] {
        seg.start = known(seg.sequence).map_or(t, |r| r.start);
        t = seg.end();
    }
    if let Some(expected) = expected_ds {
        carry_discontinuity_sequence(&mut new, expected);
    }
    new
}

/// Servers that omit EXT-X-DISCONTINUITY-SEQUENCE restart counting from 0 once a discontinuity
/// slid out of the window; carry the numbering over instead (hlsdemux2 does the same). An
/// explicit non-zero tag is trusted as is.
fn carry_discontinuity_sequence(new: &mut MediaPlaylist, expected_first: u64) {
    let Some(first) = new.segments.first() else {
        return;
    };
    if new.discontinuity_sequence != 0 || first.discontinuity_sequence >= expected_first {
        return;
    }
    let delta = expected_first - first.discontinuity_sequence;
    new.discontinuity_sequence = delta;
    for seg in &mut new.segments {
        seg.discontinuity_sequence = seg.discontinuity_sequence.saturating_add(delta);
    }
}

/// Anchors `new` right after the end of `old` regardless of sequence numbers, with `lost_sync`
/// set. For recovering from [`ManifestError::SequenceWentBackwards`] (e.g. an encoder restart
/// that reset EXT-X-MEDIA-SEQUENCE) without making the timeline jump backwards.
pub fn rebase(old: &MediaPlaylist, mut new: MediaPlaylist) -> MediaPlaylist {
    let mut t = old.segments.last().map_or(Duration::ZERO, Segment::end);
    for seg in &mut new.segments {
        seg.start = t;
        t = seg.end();
    }
    new.lost_sync = true;
    if let Some(last) = old.segments.last() {
        carry_discontinuity_sequence(&mut new, last.discontinuity_sequence.saturating_add(1));
    }
    new
}

impl MediaPlaylist {
    /// True while the playlist may still change (no EXT-X-ENDLIST). A `PLAYLIST-TYPE:VOD` without
    /// ENDLIST is treated as complete too, since the spec says it can't change.
    pub fn is_live(&self) -> bool {
        !self.end_list && self.kind != PlaylistKind::Vod
    }

    /// Index of the segment whose `[start, end)` contains `t`; `None` before the first segment
    /// (slid out of a live window) or at/after the end.
    pub fn segment_index_at(&self, t: Duration) -> Option<usize> {
        // Segments are sorted by start, so the candidate is the last one starting at or before t.
        let idx = self.segments.partition_point(|s| s.start <= t);
        let i = idx.checked_sub(1)?;
        (t < self.segments[i].end()).then_some(i)
    }

    /// Where to start playing a live stream: like hlsdemux2, the last segment that still starts
    /// at least 3 target durations before the live edge (0 if the window is shorter).
    /// For a complete (VOD) playlist this is 0.
    pub fn live_start_index(&self) -> usize {
        if !self.is_live() || self.segments.is_empty() {
            return 0;
        }
        let hold_back = self.target_duration.saturating_mul(3);
        let edge = self.segments[self.segments.len() - 1].end();
        self.segments
            .iter()
            .rposition(|s| edge.saturating_sub(s.start) >= hold_back)
            .unwrap_or(0)
    }

    /// Sum of all segment durations in this playlist.
    pub fn duration(&self) -> Duration {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Index of the first segment numbered `seq` or later (DASH numbering may jump, e.g. at
    /// Period boundaries); `None` if there is none yet.
    pub fn first_from_sequence(&self, seq: u64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.sequence < seq);
        (i < self.segments.len()).then_some(i)
    }

    /// Index of the segment with media sequence number `seq`.
    pub fn find_sequence(&self, seq: u64) -> Option<usize> {
        let i = usize::try_from(seq.checked_sub(self.media_sequence)?).ok()?;
        self.segments
            .get(i)
            .filter(|s| s.sequence == seq)
            .map(|_| i)
    }

    /// How long to wait before reloading a live playlist (RFC 8216 6.3.4): the target duration,
    /// or half of it when the last reload brought nothing new.
    pub fn reload_interval(&self, last_reload_changed: bool) -> Duration {
        if last_reload_changed {
            self.target_duration
        } else {
            self.target_duration / 2
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Media playlists
// ---------------------------------------------------------------------------------------------

fn parse_media(text: &str, url: &Url) -> Result<MediaPlaylist, ManifestError> {
    let mut target_duration = None;
    let mut media_sequence = 0u64;
    let mut discontinuity_base = 0u64;
    let mut playlist_type = None;
    let mut end_list = false;
    let mut segments: Vec<Segment> = Vec::new();

    // State for the next segment (tags before its URI line).
    let mut pending_duration: Option<(usize, Duration)> = None;
    let mut pending_range: Option<(usize, u64, Option<u64>)> = None;
    let mut pending_discontinuity = false;
    let mut pending_gap = false;
    let mut pending_date_time: Option<i64> = None;
    // Low-latency HLS: what the tags said, and the parts waiting for their segment's URI line.
    let mut ll = LowLatency::default();
    let mut ll_seen = false;
    let mut pending_parts: Vec<Part> = Vec::new();
    let mut part_lists: Vec<(usize, Vec<Part>)> = Vec::new();
    let mut parts_total = 0usize;
    let mut prev_part_range: Option<(Url, u64)> = None;
    // State that applies until changed.
    let mut key = KeyState::default();
    // EXT-X-MAP in force, with the key that encrypts it (if any).
    let mut init: Option<(Resource, Option<Aes128Key>)> = None;
    let mut discontinuities = 0u64;
    // Resource and end offset of the previous segment's byte range (implicit offset rule).
    let mut prev_range: Option<(Url, u64)> = None;
    let mut t = Duration::ZERO;
    // Every segment holds its own copy of the EXT-X-KEY and EXT-X-MAP URIs, so one long URI
    // over many short segments would cost memory quadratic in the body: keep those copies
    // proportional to it (real playlists stay far below: a few hundred bytes per segment).
    let repeated_budget = REPEATED_URI_BYTES_PER_BYTE
        .saturating_mul(text.len())
        .saturating_add(1 << 20);
    let mut repeated = 0usize;

    let mut vars = Variables::default();
    for (n, line) in numbered_lines(text) {
        if line.is_empty() {
            continue;
        }
        let line = &*vars.substitute(line, url, n)?;
        if line.starts_with('#') {
            let (name, value) = split_tag(line);
            match name {
                "#EXT-X-TARGETDURATION" => {
                    let d = parse_decimal_duration(value.unwrap_or(""))
                        .filter(|d| !d.is_zero() && *d <= MAX_SEGMENT_DURATION)
                        .ok_or_else(|| malformed(n, "invalid EXT-X-TARGETDURATION"))?;
                    // Spec says integer; round fractional values up like players do.
                    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                    target_duration = Some(Duration::from_secs(secs));
                }
                "#EXT-X-MEDIA-SEQUENCE" => media_sequence = parse_u64(value, n, name)?,
                "#EXT-X-DISCONTINUITY-SEQUENCE" => discontinuity_base = parse_u64(value, n, name)?,
                "#EXT-X-PLAYLIST-TYPE" => {
                    // Unknown values (e.g. "LIVE") are harmless: treated as no type (sliding live).
                    playlist_type = match value.map(str::trim) {
                        Some("VOD") => Some(PlaylistKind::Vod),
                        Some("EVENT") => Some(PlaylistKind::Event),
                        _ => None,
                    }
                }
                "#EXT-X-ENDLIST" => end_list = true,
                "#EXT-X-I-FRAMES-ONLY" => {
                    return Err(ManifestError::Unsupported(
                        "I-frame-only media playlist (EXT-X-I-FRAMES-ONLY)".into(),
                    ))
                }
                "#EXT-X-SKIP" => {
                    if !segments.is_empty() {
                        return Err(malformed(n, "EXT-X-SKIP after a segment"));
                    }
                    let attrs = parse_attributes(value.unwrap_or(""), n)?;
                    ll.skipped_segments = parse_u64(attrs.get("SKIPPED-SEGMENTS"), n, name)?;
                    ll_seen = true;
                }
                "#EXT-X-SERVER-CONTROL" => {
                    let attrs = parse_attributes(value.unwrap_or(""), n)?;
                    ll.can_block_reload = attrs.get("CAN-BLOCK-RELOAD") == Some("YES");
                    ll.part_hold_back =
                        attrs.get("PART-HOLD-BACK").and_then(parse_decimal_duration);
                    ll.can_skip_until = attrs
                        .get("CAN-SKIP-UNTIL")
                        .and_then(parse_decimal_duration)
                        .filter(|d| !d.is_zero());
                    ll_seen = true;
                }
                "#EXT-X-PART-INF" => {
                    let attrs = parse_attributes(value.unwrap_or(""), n)?;
                    ll.part_target = Some(
                        attrs
                            .get("PART-TARGET")
                            .and_then(parse_decimal_duration)
                            .filter(|d| !d.is_zero() && *d <= MAX_SEGMENT_DURATION)
                            .ok_or_else(|| malformed(n, "invalid EXT-X-PART-INF PART-TARGET"))?,
                    );
                    ll_seen = true;
                }
                "#EXT-X-PART" => {
                    parts_total += 1;
                    if parts_total > MAX_PARTS {
                        return Err(ManifestError::TooLarge {
                            what: "parts",
                            limit: MAX_PARTS,
                        });
                    }
                    let part = parse_part(value.unwrap_or(""), url, n, &prev_part_range)?;
                    prev_part_range = part
                        .resource
                        .range
                        .map(|r| (part.resource.url.clone(), r.offset + r.length));
                    pending_parts.push(part);
                    ll_seen = true;
                }
                "#EXT-X-PRELOAD-HINT" => {
                    let attrs = parse_attributes(value.unwrap_or(""), n)?;
                    if attrs.get("TYPE") == Some("PART") {
                        if let Some(uri) = attrs.get("URI") {
                            ll.preload_hint = Some(Resource {
                                url: join(url, uri, n)?,
                                range: None,
                            });
                        }
                    }
                    ll_seen = true;
                }
                "#EXT-X-RENDITION-REPORT" => {
                    let attrs = parse_attributes(value.unwrap_or(""), n)?;
                    if let Some(uri) = attrs.get("URI") {
                        if ll.rendition_reports.len() < MAX_STREAMS {
                            ll.rendition_reports.push(RenditionReport {
                                uri: join(url, uri, n)?,
                                last_msn: attrs.get("LAST-MSN").and_then(parse_digits),
                                last_part: attrs.get("LAST-PART").and_then(parse_digits),
                            });
                        }
                    }
                    ll_seen = true;
                }
                "#EXTINF" => {
                    if let Some((prev, _)) = pending_duration {
                        // Dropping it would shift every following sequence number.
                        return Err(malformed(prev, "#EXTINF without a segment URI"));
                    }
                    pending_duration = Some((n, parse_extinf(value.unwrap_or(""), n)?));
                }
                "#EXT-X-BYTERANGE" => {
                    let (len, off) = parse_byterange(value.unwrap_or(""))
                        .ok_or_else(|| malformed(n, "invalid EXT-X-BYTERANGE"))?;
                    pending_range = Some((n, len, off));
                }
                "#EXT-X-DISCONTINUITY" => pending_discontinuity = true,
                "#EXT-X-GAP" => pending_gap = true,
                "#EXT-X-KEY" => key.apply(&parse_attributes(value.unwrap_or(""), n)?, url, n)?,
                "#EXT-X-MAP" => {
                    let map = parse_map(value.unwrap_or(""), url, n)?;
                    let map_key = key.for_init_section();
                    init = Some((map, map_key));
                }
                // A malformed date is ignored, as players do: it only loses the wall clock.
                "#EXT-X-PROGRAM-DATE-TIME" => {
                    pending_date_time = parse_program_date_time(value.unwrap_or(""))
                }
                // DATERANGE, START, comments: not needed.
                _ => {}
            }
            continue;
        }

        // A URI line: completes the pending segment.
        let Some((_, duration)) = pending_duration.take() else {
            return Err(malformed(n, "segment URI without a preceding #EXTINF"));
        };
        if segments.len() >= MAX_SEGMENTS {
            return Err(ManifestError::TooLarge {
                what: "segments",
                limit: MAX_SEGMENTS,
            });
        }
        let seg_url = join(url, line, n)?;
        let range = match pending_range.take() {
            None => None,
            Some((rn, length, offset)) => {
                let offset = match (offset, &prev_range) {
                    (Some(o), _) => o,
                    (None, Some((u, end))) if *u == seg_url => *end,
                    (None, _) => {
                        return Err(malformed(
                            rn,
                            "EXT-X-BYTERANGE without offset must follow a byte range of the same resource",
                        ))
                    }
                };
                if offset.checked_add(length).is_none() {
                    return Err(malformed(rn, "EXT-X-BYTERANGE overflows"));
                }
                Some(ByteRange { offset, length })
            }
        };
        prev_range = range.map(|r| (seg_url.clone(), r.offset + r.length));
        if pending_discontinuity {
            discontinuities += 1;
        }
        let seg_key = key.for_segment()?;
        let init_key = init.as_ref().and_then(|(_, k)| k.as_ref());
        repeated += [
            seg_key.as_ref().map(|k| &k.uri),
            init.as_ref().map(|(r, _)| &r.url),
            init_key.map(|k| &k.uri),
        ]
        .into_iter()
        .flatten()
        .map(|u| u.as_str().len())
        .sum::<usize>();
        if repeated > repeated_budget {
            return Err(ManifestError::TooLarge {
                what: "bytes of EXT-X-KEY/EXT-X-MAP URIs repeated over the segments",
                limit: repeated_budget,
            });
        }
        // RFC 8216 4.3.2.6: a segment without the tag follows the previous one's time by that
        // one's duration, unless a discontinuity lies between them.
        let program_date_time_ns = pending_date_time.take().or_else(|| {
            segments
                .last()
                .filter(|_| !pending_discontinuity)
                .and_then(|p| {
                    let d = i64::try_from(p.duration.as_nanos()).ok()?;
                    p.program_date_time_ns?.checked_add(d)
                })
        });
        segments.push(Segment {
            resource: Resource {
                url: seg_url,
                range,
            },
            start: t,
            duration,
            sequence: 0, // needs EXT-X-MEDIA-SEQUENCE, filled below
            discontinuity: pending_discontinuity,
            discontinuity_sequence: discontinuities,
            key: seg_key,
            init: init.as_ref().map(|(r, _)| r.clone()),
            init_key: init_key.cloned(),
            start_seconds: None,
            start_in_period_seconds: None,
            media_offset_ns: None,
            gap: pending_gap,
            program_date_time_ns,
        });
        if !pending_parts.is_empty() {
            part_lists.push((segments.len() - 1, std::mem::take(&mut pending_parts)));
        }
        t += duration;
        pending_discontinuity = false;
        pending_gap = false;
    }
    // A trailing EXTINF/BYTERANGE without URI (truncated body) is simply dropped; trailing
    // parts belong to the segment being produced.
    if !pending_parts.is_empty() {
        part_lists.push((segments.len(), pending_parts));
    }

    // A delta update lists its segments after the skipped ones.
    let first_listed = media_sequence
        .checked_add(ll.skipped_segments)
        .ok_or_else(|| malformed(1, "EXT-X-SKIP overflows"))?;
    for (i, seg) in segments.iter_mut().enumerate() {
        seg.sequence = first_listed
            .checked_add(i as u64)
            .ok_or_else(|| malformed(1, "EXT-X-MEDIA-SEQUENCE overflows"))?;
        seg.discontinuity_sequence = discontinuity_base.saturating_add(seg.discontinuity_sequence);
    }
    // (Parts after segment u64::MAX would belong to no segment: dropped.)
    ll.parts = part_lists
        .into_iter()
        .filter_map(|(i, parts)| {
            Some(PartList {
                sequence: first_listed.checked_add(i as u64)?,
                parts,
            })
        })
        .collect();

    let target_duration = match target_duration {
        Some(d) => d,
        // Required by the spec, but we can still derive a sane refresh interval from segments.
        None => {
            let max = segments
                .iter()
                .map(|s| s.duration)
                .max()
                .ok_or_else(|| malformed(1, "missing EXT-X-TARGETDURATION"))?;
            Duration::from_secs(max.as_secs() + u64::from(max.subsec_nanos() > 0))
        }
    };

    let kind = if end_list {
        PlaylistKind::Vod
    } else {
        playlist_type.unwrap_or(PlaylistKind::Live)
    };

    Ok(MediaPlaylist {
        url: url.clone(),
        kind,
        target_duration,
        media_sequence,
        discontinuity_sequence: discontinuity_base,
        end_list,
        segments,
        lost_sync: false,
        low_latency: ll_seen.then(|| Box::new(ll)),
    })
}

/// `#EXT-X-PART:DURATION=…,URI="…"[,INDEPENDENT=YES][,BYTERANGE="n[@o]"][,GAP=YES]`.
/// A byte range without offset continues the previous part's range of the same resource.
fn parse_part(
    value: &str,
    base: &Url,
    line: usize,
    prev_range: &Option<(Url, u64)>,
) -> Result<Part, ManifestError> {
    let attrs = parse_attributes(value, line)?;
    let uri = attrs
        .get("URI")
        .ok_or_else(|| malformed(line, "EXT-X-PART without URI"))?;
    let url = join(base, uri, line)?;
    let duration = attrs
        .get("DURATION")
        .and_then(parse_decimal_duration)
        .filter(|d| *d <= MAX_SEGMENT_DURATION)
        .ok_or_else(|| malformed(line, "EXT-X-PART without a valid DURATION"))?;
    let range = match attrs.get("BYTERANGE") {
        None => None,
        Some(v) => {
            let (length, offset) = parse_byterange(v)
                .ok_or_else(|| malformed(line, "invalid EXT-X-PART BYTERANGE"))?;
            let offset = match (offset, prev_range) {
                (Some(o), _) => o,
                (None, Some((u, end))) if *u == url => *end,
                (None, _) => return Err(malformed(
                    line,
                    "EXT-X-PART BYTERANGE without offset must follow a part of the same resource",
                )),
            };
            if offset.checked_add(length).is_none() {
                return Err(malformed(line, "EXT-X-PART BYTERANGE overflows"));
            }
            Some(ByteRange { offset, length })
        }
    };
    Ok(Part {
        resource: Resource { url, range },
        duration,
        independent: attrs.get("INDEPENDENT") == Some("YES"),
        gap: attrs.get("GAP") == Some("YES"),
    })
}

/// EXT-X-KEY state: applies to every following segment until the next key tag.
#[derive(Default)]
struct KeyState {
    /// Key for the default ("identity") KEYFORMAT.
    identity: IdentityKey,
    /// Description of a key in another KEYFORMAT (DRM) currently in force.
    other_format: Option<String>,
}

#[derive(Default)]
enum IdentityKey {
    #[default]
    Clear,
    Aes(Aes128Key),
    Unsupported(String),
}

impl KeyState {
    fn apply(&mut self, attrs: &Attrs, base: &Url, line: usize) -> Result<(), ManifestError> {
        let method = attrs
            .get("METHOD")
            .ok_or_else(|| malformed(line, "EXT-X-KEY without METHOD"))?;
        let keyformat = attrs.get("KEYFORMAT").unwrap_or("identity");
        if method == "NONE" {
            *self = KeyState::default();
            return Ok(());
        }
        if keyformat != "identity" {
            // A DRM key may come alongside an identity key for the same segments: only fail if a
            // segment ends up with no identity key we can use (see `for_segment`).
            self.other_format = Some(format!("EXT-X-KEY METHOD={method} KEYFORMAT={keyformat}"));
            return Ok(());
        }
        self.identity = match method {
            "AES-128" => {
                let uri = attrs
                    .get("URI")
                    .ok_or_else(|| malformed(line, "EXT-X-KEY METHOD=AES-128 without URI"))?;
                let iv = match attrs.get("IV") {
                    None => None,
                    Some(v) => Some(parse_iv(v).ok_or_else(|| malformed(line, "invalid IV"))?),
                };
                IdentityKey::Aes(Aes128Key {
                    uri: join(base, uri, line)?,
                    iv,
                })
            }
            other => IdentityKey::Unsupported(format!("EXT-X-KEY METHOD={other}")),
        };
        Ok(())
    }

    /// Key for an EXT-X-MAP appearing now. Only AES-128 encrypts whole init sections (SAMPLE-AES
    /// and DRM formats leave them clear). The spec requires an explicit IV there; without one
    /// we use 0 like hls.js does, since an init section has no sequence number.
    fn for_init_section(&self) -> Option<Aes128Key> {
        match &self.identity {
            IdentityKey::Aes(k) => Some(Aes128Key {
                uri: k.uri.clone(),
                iv: Some(k.iv.unwrap_or([0; 16])),
            }),
            _ => None,
        }
    }

    fn for_segment(&self) -> Result<Option<Aes128Key>, ManifestError> {
        match (&self.identity, &self.other_format) {
            (IdentityKey::Aes(k), _) => Ok(Some(k.clone())),
            (IdentityKey::Unsupported(m), _) => Err(ManifestError::Unsupported(m.clone())),
            (IdentityKey::Clear, Some(drm)) => Err(ManifestError::Unsupported(drm.clone())),
            (IdentityKey::Clear, None) => Ok(None),
        }
    }
}

fn parse_map(value: &str, base: &Url, line: usize) -> Result<Resource, ManifestError> {
    let attrs = parse_attributes(value, line)?;
    let uri = attrs
        .get("URI")
        .ok_or_else(|| malformed(line, "EXT-X-MAP without URI"))?;
    let range = match attrs.get("BYTERANGE") {
        None => None,
        Some(v) => {
            let (length, offset) =
                parse_byterange(v).ok_or_else(|| malformed(line, "invalid EXT-X-MAP BYTERANGE"))?;
            // The implicit-offset rule does not apply to EXT-X-MAP: a missing offset means 0.
            let offset = offset.unwrap_or(0);
            if offset.checked_add(length).is_none() {
                return Err(malformed(line, "EXT-X-MAP BYTERANGE overflows"));
            }
            Some(ByteRange { offset, length })
        }
    };
    Ok(Resource {
        url: join(base, uri, line)?,
        range,
    })
}

/// `#EXTINF:<duration>,[<title>]`
/// EXT-X-PROGRAM-DATE-TIME (ISO 8601 with a time zone, e.g. `2026-12-03T10:00:00.000Z`,
/// `…+01:00` or `…+0100`) as ns since the Unix epoch; `None` if it is not one.
fn parse_program_date_time(value: &str) -> Option<i64> {
    let v = value.trim();
    // chrono's RFC 3339 wants `+hh:mm`; encoders also write `+hhmm`.
    let with_colon;
    let v = match v
        .len()
        .checked_sub(5)
        .and_then(|i| v.get(..i).zip(v.get(i..)))
    {
        Some((head, tz))
            if head.contains('T')
                && (tz.starts_with('+') || tz.starts_with('-'))
                && tz[1..].bytes().all(|b| b.is_ascii_digit()) =>
        {
            with_colon = format!("{head}{}:{}", &tz[..3], &tz[3..]);
            with_colon.as_str()
        }
        _ => v,
    };
    v.parse::<dash_mpd::XsDatetime>()
        .ok()?
        .timestamp_nanos_opt()
}

fn parse_extinf(value: &str, line: usize) -> Result<Duration, ManifestError> {
    let raw = value.split(',').next().unwrap_or("").trim();
    parse_decimal_duration(raw)
        .filter(|d| !d.is_zero() && *d <= MAX_SEGMENT_DURATION)
        .ok_or_else(|| ManifestError::InvalidDuration {
            line,
            value: raw.chars().take(64).collect(),
        })
}

/// Exact decimal seconds (`12`, `9.009`) to a Duration, without float rounding so that start
/// times add up exactly. Rejects signs, exponents, NaN/inf and anything that is not plain decimal.
fn parse_decimal_duration(s: &str) -> Option<Duration> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs: u64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    if secs > MAX_SEGMENT_DURATION.as_secs() {
        return None;
    }
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(Duration::new(secs, nanos))
}

/// `<n>[@<o>]` -> (length, offset). Zero length is rejected.
fn parse_byterange(s: &str) -> Option<(u64, Option<u64>)> {
    let (len, off) = match s.trim().split_once('@') {
        Some((l, o)) => (l, Some(o)),
        None => (s.trim(), None),
    };
    let len: u64 = parse_digits(len)?;
    if len == 0 {
        return None;
    }
    let off = match off {
        Some(o) => Some(parse_digits(o)?),
        None => None,
    };
    Some((len, off))
}

fn parse_digits(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_u64(value: Option<&str>, line: usize, tag: &str) -> Result<u64, ManifestError> {
    value
        .and_then(parse_digits)
        .ok_or_else(|| malformed(line, format!("invalid {} value", &tag[1..])))
}

/// `0x` + up to 32 hex digits -> 16 bytes, big-endian (shorter values are left-padded).
fn parse_iv(s: &str) -> Option<[u8; 16]> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if hex.is_empty() || hex.len() > 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u128::from_str_radix(hex, 16).ok()?;
    Some(v.to_be_bytes())
}

// ---------------------------------------------------------------------------------------------
// Master playlists
// ---------------------------------------------------------------------------------------------

fn parse_master(text: &str, url: &Url) -> Result<MasterPlaylist, ManifestError> {
    let mut variants = Vec::new();
    let mut renditions = Vec::new();
    // A STREAM-INF waiting for its URI line.
    let mut pending: Option<Variant> = None;

    let mut vars = Variables::default();
    for (n, line) in numbered_lines(text) {
        if line.is_empty() {
            continue;
        }
        let line = &*vars.substitute(line, url, n)?;
        if variants.len() + renditions.len() >= MAX_STREAMS {
            return Err(ManifestError::TooLarge {
                what: "variants and renditions",
                limit: MAX_STREAMS,
            });
        }
        if line.starts_with('#') {
            let (name, value) = split_tag(line);
            match name {
                // A previous STREAM-INF still pending lost its URI: drop it (best effort).
                "#EXT-X-STREAM-INF" => {
                    pending = Some(parse_stream_inf(value.unwrap_or(""), url, n)?)
                }
                "#EXT-X-MEDIA" => {
                    if let Some(r) = parse_media_tag(value.unwrap_or(""), url, n)? {
                        renditions.push(r);
                    }
                }
                // I-frame variants (trick modes) are skipped; everything else is not needed.
                _ => {}
            }
            continue;
        }
        // URI lines not preceded by STREAM-INF are invalid; ignoring them is harmless.
        if let Some(mut v) = pending.take() {
            v.uri = join(url, line, n)?;
            v.master_index = variants.len();
            variants.push(v);
        }
    }
    // Like hlsdemux2: when some variants carry video, drop audio-only ones so that ABR never
    // switches to a stream without picture.
    if variants.iter().any(has_video_codec) {
        variants.retain(|v| !is_audio_only(v));
    }
    if variants.is_empty() {
        return Err(ManifestError::NoVariants);
    }
    Ok(MasterPlaylist {
        url: url.clone(),
        variants,
        renditions,
    })
}

const VIDEO_CODECS: &[&str] = &[
    "avc1", "avc3", "hvc1", "hev1", "dvh1", "dvhe", "dva1", "dvav", "vp08", "vp09", "vp8", "vp9",
    "av01", "mp4v",
];
const AUDIO_CODECS: &[&str] = &[
    "mp4a", "ac-3", "ec-3", "ac-4", "opus", "flac", "mp3", "alac", "dtsc", "dtsh", "dtsl", "dtse",
    "mha1", "mhm1",
];

/// Codec families listed in CODECS (`avc1.4d401f` -> `avc1`), lowercased.
fn codec_families(v: &Variant) -> impl Iterator<Item = String> + '_ {
    v.codecs.iter().flat_map(|c| c.split(',')).map(|c| {
        let c = c.trim();
        c.split('.').next().unwrap_or(c).to_ascii_lowercase()
    })
}

fn has_video_codec(v: &Variant) -> bool {
    codec_families(v).any(|c| VIDEO_CODECS.contains(&c.as_str()))
}

/// Only when CODECS is present and lists nothing but audio codecs.
fn is_audio_only(v: &Variant) -> bool {
    v.codecs.is_some() && codec_families(v).all(|c| AUDIO_CODECS.contains(&c.as_str()))
}

fn parse_stream_inf(value: &str, base: &Url, line: usize) -> Result<Variant, ManifestError> {
    let attrs = parse_attributes(value, line)?;
    let bandwidth = attrs
        .get("BANDWIDTH")
        .and_then(parse_digits)
        .ok_or_else(|| malformed(line, "EXT-X-STREAM-INF without valid BANDWIDTH"))?;
    // Optional attributes: an unparsable value is ignored rather than failing the playlist.
    Ok(Variant {
        uri: base.clone(), // replaced by the following URI line
        bandwidth,
        average_bandwidth: attrs.get("AVERAGE-BANDWIDTH").and_then(parse_digits),
        codecs: attrs.get("CODECS").map(str::to_owned),
        resolution: attrs.get("RESOLUTION").and_then(|r| {
            let (w, h) = r.split_once(['x', 'X'])?;
            Some((parse_digits(w)?, parse_digits(h)?))
        }),
        frame_rate: attrs
            .get("FRAME-RATE")
            .and_then(|f| f.parse::<f64>().ok())
            .filter(|f| f.is_finite() && *f > 0.0),
        video_range: attrs.get("VIDEO-RANGE").map(str::to_owned),
        audio_group: attrs.get("AUDIO").map(str::to_owned),
        subtitles_group: attrs.get("SUBTITLES").map(str::to_owned),
        master_index: 0,
    })
}

fn parse_media_tag(
    value: &str,
    base: &Url,
    line: usize,
) -> Result<Option<Rendition>, ManifestError> {
    let attrs = parse_attributes(value, line)?;
    let stream_type = match attrs.get("TYPE") {
        Some("AUDIO") => MediaType::Audio,
        Some("VIDEO") => MediaType::Video,
        Some("SUBTITLES") => MediaType::Subtitles,
        Some("CLOSED-CAPTIONS") => MediaType::ClosedCaptions,
        // Unknown future types can be skipped without harm.
        Some(_) => return Ok(None),
        None => return Err(malformed(line, "EXT-X-MEDIA without TYPE")),
    };
    let group_id = attrs
        .get("GROUP-ID")
        .ok_or_else(|| malformed(line, "EXT-X-MEDIA without GROUP-ID"))?
        .to_owned();
    let language = attrs.get("LANGUAGE").map(str::to_owned);
    // NAME is mandatory but only used for display: fall back instead of failing.
    let name = attrs
        .get("NAME")
        .map(str::to_owned)
        .or_else(|| language.clone())
        .unwrap_or_else(|| group_id.clone());
    let uri = match (stream_type, attrs.get("URI")) {
        // Closed captions live inside the video stream; a URI there is invalid and ignored.
        (MediaType::ClosedCaptions, _) | (_, None) => None,
        (_, Some(u)) => Some(join(base, u, line)?),
    };
    let yes = |k| attrs.get(k).is_some_and(|v| v.eq_ignore_ascii_case("YES"));
    Ok(Some(Rendition {
        stream_type,
        group_id,
        name,
        language,
        channels: attrs.get("CHANNELS").map(str::to_owned),
        default: yes("DEFAULT"),
        autoselect: yes("AUTOSELECT"),
        uri,
    }))
}

// ---------------------------------------------------------------------------------------------
// Lexical helpers
// ---------------------------------------------------------------------------------------------

/// EXT-X-DEFINE variables (RFC 8216bis 4.4.2.3) and their `{$name}` substitution.
#[derive(Default)]
struct Variables {
    vars: Vec<(String, String)>,
    /// Bytes produced by substitution so far, bounded like the playlist itself.
    produced: usize,
}

impl Variables {
    /// Records an EXT-X-DEFINE line, or substitutes variable references in any other line once
    /// a variable was defined (without definitions `{$` is left alone: older playlists may
    /// contain it literally).
    fn substitute<'a>(
        &mut self,
        line: &'a str,
        url: &Url,
        n: usize,
    ) -> Result<std::borrow::Cow<'a, str>, ManifestError> {
        let (name, value) = split_tag(line);
        if name == "#EXT-X-DEFINE" {
            self.define(value.unwrap_or(""), url, n)?;
            return Ok(line.into());
        }
        if self.vars.is_empty() || !line.contains("{$") {
            return Ok(line.into());
        }
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(i) = rest.find("{$") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| malformed(n, "unterminated variable reference"))?;
            let var = &after[..end];
            let (_, val) = self
                .vars
                .iter()
                .find(|(k, _)| k == var)
                .ok_or_else(|| malformed(n, format!("undefined variable {var:?}")))?;
            if out.len() + val.len() > MAX_LINE_AFTER_SUBSTITUTION {
                return Err(ManifestError::TooLarge {
                    what: "bytes in a line after variable substitution",
                    limit: MAX_LINE_AFTER_SUBSTITUTION,
                });
            }
            out.push_str(val);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        self.produced += out.len();
        if self.produced > MAX_PLAYLIST_BYTES {
            return Err(ManifestError::TooLarge {
                what: "bytes after variable substitution",
                limit: MAX_PLAYLIST_BYTES,
            });
        }
        Ok(out.into())
    }

    fn define(&mut self, value: &str, url: &Url, n: usize) -> Result<(), ManifestError> {
        let attrs = parse_attributes(value, n)?;
        let (name, val) = if let (Some(name), Some(val)) = (attrs.get("NAME"), attrs.get("VALUE")) {
            (name.to_owned(), val.to_owned())
        } else if let Some(param) = attrs.get("QUERYPARAM") {
            // Value taken from the playlist URL's query (e.g. an auth token).
            let val = url
                .query_pairs()
                .find(|(k, _)| k == param)
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| {
                    malformed(
                        n,
                        format!("EXT-X-DEFINE QUERYPARAM {param:?} not in the URL"),
                    )
                })?;
            (param.to_owned(), val)
        } else if attrs.get("IMPORT").is_some() {
            // Would need the master playlist's definitions, which `parse` does not get.
            return Err(ManifestError::Unsupported("EXT-X-DEFINE IMPORT".into()));
        } else {
            return Err(malformed(
                n,
                "EXT-X-DEFINE without NAME/VALUE or QUERYPARAM",
            ));
        };
        if self.vars.len() >= MAX_VARIABLES {
            return Err(ManifestError::TooLarge {
                what: "EXT-X-DEFINE variables",
                limit: MAX_VARIABLES,
            });
        }
        self.vars.push((name, val));
        Ok(())
    }
}

/// Bounds how much substitution can grow one line (values may be long, references repeated).
const MAX_LINE_AFTER_SUBSTITUTION: usize = 64 * 1024;
const MAX_VARIABLES: usize = 1000;

/// `#TAG:value` -> (`#TAG`, Some(value)); `#TAG` -> (`#TAG`, None). Exact names avoid prefix
/// confusion such as DISCONTINUITY vs DISCONTINUITY-SEQUENCE.
fn split_tag(line: &str) -> (&str, Option<&str>) {
    match line.split_once(':') {
        Some((name, value)) => (name.trim_end(), Some(value)),
        None => (line, None),
    }
}

/// A parsed attribute list (RFC 8216 4.2); quotes are removed from quoted values.
struct Attrs(Vec<(String, String)>);

impl Attrs {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_attributes(s: &str, line: usize) -> Result<Attrs, ManifestError> {
    let mut out = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        let Some(eq) = rest.find('=') else {
            break; // trailing garbage without '=': nothing usable
        };
        let key = rest[..eq].trim();
        if key.contains(',') {
            // `FOO,BAR=1`: skip the value-less token.
            rest = &rest[key.find(',').unwrap_or(0) + 1..];
            continue;
        }
        let key = key.to_ascii_uppercase();
        let after = rest[eq + 1..].trim_start();
        let value;
        if let Some(q) = after.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| malformed(line, "unterminated quoted string"))?;
            value = q[..end].to_owned();
            rest = &q[end + 1..];
            // Skip anything up to the next separator.
            rest = rest.find(',').map_or("", |c| &rest[c..]);
        } else {
            let end = after.find(',').unwrap_or(after.len());
            value = after[..end].trim().to_owned();
            rest = &after[end..];
        }
        out.push((key, value));
    }
    Ok(Attrs(out))
}

fn join(base: &Url, uri: &str, line: usize) -> Result<Url, ManifestError> {
    base.join(uri.trim())
        .map_err(|_| ManifestError::InvalidUri {
            line,
            uri: uri.chars().take(200).collect(),
        })
}

fn malformed(line: usize, reason: impl Into<String>) -> ManifestError {
    ManifestError::Malformed {
        line,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://cdn.example.com/live/stream/index.m3u8?token=abc").unwrap()
    }

    #[test]
    fn program_date_time_is_tagged_carried_and_reset_by_a_discontinuity() {
        let p = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-03T10:00:00.250Z\n#EXTINF:4,\na.ts\n\
             #EXTINF:2.5,\nb.ts\n\
             #EXTINF:4,\nc.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:4,\nd.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-03T11:00:00+0100\n#EXTINF:4,\ne.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-03T10:00:10-05:00\n#EXTINF:4,\nf.ts\n\
             #EXT-X-PROGRAM-DATE-TIME:yesterday\n#EXTINF:4,\ng.ts\n",
        );
        // 2026-12-03T10:00:00Z
        const T: i64 = 1_796_292_000 * 1_000_000_000;
        let got: Vec<Option<i64>> = p.segments.iter().map(|s| s.program_date_time_ns).collect();
        assert_eq!(
            got,
            [
                Some(T + 250_000_000),
                Some(T + 4_250_000_000),
                Some(T + 6_750_000_000),
                // After a discontinuity without a tag: unknown, not extrapolated.
                None,
                // +hhmm without a colon, as some encoders write it.
                Some(T),
                Some(T + 5 * 3600 * 1_000_000_000 + 10_000_000_000),
                // A malformed date is ignored: the previous one carried on.
                Some(T + 5 * 3600 * 1_000_000_000 + 14_000_000_000),
            ]
        );
    }

    /// An LL-HLS playlist as Apple's spec examples write it: two complete 2-s segments (the
    /// second with its parts), two parts of the third, a preload hint.
    const LL: &str = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-VERSION:9\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5,CAN-SKIP-UNTIL=12.0\n\
        #EXT-X-PART-INF:PART-TARGET=0.5\n#EXT-X-MEDIA-SEQUENCE:20\n\
        #EXT-X-PROGRAM-DATE-TIME:2026-12-03T10:00:00Z\n\
        #EXTINF:2.0,\ns20.ts\n\
        #EXT-X-PART:DURATION=1.0,URI=\"s21.ts\",BYTERANGE=\"1000@0\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=1.0,URI=\"s21.ts\",BYTERANGE=\"500\"\n\
        #EXTINF:2.0,\ns21.ts\n\
        #EXT-X-PART:DURATION=0.5,URI=\"p22.0.ts\",INDEPENDENT=YES\n\
        #EXT-X-PART:DURATION=0.5,URI=\"p22.1.ts\",GAP=YES\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"p22.2.ts\"\n\
        #EXT-X-RENDITION-REPORT:URI=\"../hi/index.m3u8\",LAST-MSN=22,LAST-PART=1\n";

    #[test]
    fn low_latency_tags_become_parts_hints_and_reports() {
        let p = media(LL);
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].sequence, 21);
        let ll = p.low_latency.as_deref().expect("LL-HLS");
        assert!(ll.can_block_reload);
        assert_eq!(ll.part_hold_back, Some(ms(1500)));
        assert_eq!(ll.can_skip_until, Some(ms(12_000)));
        assert_eq!(ll.part_target, Some(ms(500)));
        assert_eq!(ll.skipped_segments, 0);
        let of21 = ll.parts_of(21).expect("parts of 21");
        assert_eq!(of21.len(), 2);
        assert_eq!(
            of21[0].resource.range,
            Some(ByteRange {
                offset: 0,
                length: 1000
            })
        );
        // A part's byte range without offset follows the previous part of the same URI.
        assert_eq!(
            of21[1].resource.range,
            Some(ByteRange {
                offset: 1000,
                length: 500
            })
        );
        assert!(of21[0].independent && !of21[1].independent);
        // Parts after the last segment belong to the one being produced.
        let of22 = ll.parts_of(22).expect("trailing parts");
        assert_eq!(of22.len(), 2);
        assert_eq!(of22[0].resource.url.path(), "/live/stream/p22.0.ts");
        assert!(of22[1].gap);
        assert!(ll.parts_of(20).is_none());
        assert_eq!(
            ll.preload_hint.as_ref().map(|r| r.url.path()),
            Some("/live/stream/p22.2.ts")
        );
        assert_eq!(ll.rendition_reports.len(), 1);
        assert_eq!(ll.rendition_reports[0].uri.path(), "/live/hi/index.m3u8");
        assert_eq!(ll.rendition_reports[0].last_msn, Some(22));
        assert_eq!(ll.rendition_reports[0].last_part, Some(1));
        // A playlist without LL-HLS tags has none of it.
        assert!(media(&live(1, 2)).low_latency.is_none());
    }

    #[test]
    fn broken_low_latency_tags_are_refused_with_their_line() {
        for (text, line) in [
            ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:URI=\"a.ts\"\n", 3),
            ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=1\n", 3),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART:DURATION=1,URI=\"a\",BYTERANGE=\"9\"\n",
                3,
            ),
            ("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PART-INF:PART-TARGET=0\n", 3),
            (
                "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\na.ts\n#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n",
                5,
            ),
        ] {
            match err(text) {
                ManifestError::Malformed { line: l, .. } => assert_eq!(l, line, "{text}"),
                e => panic!("{text}: {e:?}"),
            }
        }
    }

    #[test]
    fn a_delta_update_is_completed_from_the_previous_playlist() {
        let mut text = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:100\n\
             #EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=36\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-12-03T10:00:00Z\n",
        );
        for i in 100..110 {
            if i == 104 {
                text += "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-12-03T11:00:00Z\n";
            }
            text += &format!("#EXTINF:6.0,\nseg{i}.ts\n");
        }
        let old = media(&text);
        // The server skipped 101..=106 and lists 107..=111.
        let delta = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:101\n\
             #EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL=36\n#EXT-X-SKIP:SKIPPED-SEGMENTS=6\n\
             #EXTINF:6.0,\nseg107.ts\n#EXTINF:6.0,\nseg108.ts\n#EXTINF:6.0,\nseg109.ts\n\
             #EXTINF:6.0,\nseg110.ts\n#EXTINF:6.0,\nseg111.ts\n",
        );
        assert_eq!(delta.segments[0].sequence, 107);
        assert_eq!(delta.low_latency.as_ref().unwrap().skipped_segments, 6);
        let merged = update(&old, delta).unwrap();
        let seqs: Vec<u64> = merged.segments.iter().map(|s| s.sequence).collect();
        assert_eq!(seqs, (101..=111).collect::<Vec<_>>());
        assert_eq!(merged.media_sequence, 101);
        assert_eq!(merged.low_latency.as_ref().unwrap().skipped_segments, 0);
        let seg = |n: u64| &merged.segments[merged.find_sequence(n).unwrap()];
        // Timeline and discontinuity numbering as if the whole list had come.
        assert_eq!(seg(107).start, old.segments[7].start);
        assert_eq!(seg(111).start, ms(66_000));
        assert_eq!(seg(103).discontinuity_sequence, 0);
        assert_eq!(seg(104).discontinuity_sequence, 1);
        assert_eq!(seg(107).discontinuity_sequence, 1);
        assert_eq!(seg(111).discontinuity_sequence, 1);
        // The wall clock carries over the skipped segments (104 is at 11:00:00).
        assert_eq!(
            seg(111).program_date_time_ns,
            old.segments[4]
                .program_date_time_ns
                .map(|t| t + 42 * 1_000_000_000)
        );
        // A delta skipping what the previous playlist never had cannot be completed.
        let far = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:90\n\
             #EXT-X-SKIP:SKIPPED-SEGMENTS=15\n#EXTINF:6.0,\nseg105.ts\n",
        );
        assert_eq!(
            update(&old, far).unwrap_err(),
            ManifestError::DeltaUnresolved {
                first: 90,
                count: 15
            }
        );
    }

    #[test]
    fn delivery_directives_are_added_in_order_and_removed_again() {
        let u = base();
        let blocked = with_directives(&u, Some((22, Some(3))), true);
        assert_eq!(
            blocked.as_str(),
            "https://cdn.example.com/live/stream/index.m3u8?token=abc&_HLS_msn=22&_HLS_part=3&_HLS_skip=YES"
        );
        assert_eq!(without_directives(&blocked), u);
        let seg = with_directives(&u, Some((7, None)), false);
        assert_eq!(seg.query(), Some("token=abc&_HLS_msn=7"));
        let plain = Url::parse("https://cdn.example.com/a.m3u8").unwrap();
        let skip = with_directives(&plain, None, true);
        assert_eq!(skip.query(), Some("_HLS_skip=YES"));
        assert_eq!(
            without_directives(&skip).as_str(),
            "https://cdn.example.com/a.m3u8"
        );
        // The rest of the query is kept byte for byte (a signed URL stays valid).
        let signed = Url::parse("https://cdn.example.com/a.m3u8?sig=a~b%2Fc=&x=1").unwrap();
        let reloaded = with_directives(&signed, Some((1, None)), true);
        assert_eq!(without_directives(&reloaded).as_str(), signed.as_str());
        // Directives from an earlier reload are replaced, not repeated.
        let again = with_directives(&blocked, Some((23, Some(0))), false);
        assert_eq!(again.query(), Some("token=abc&_HLS_msn=23&_HLS_part=0"));
    }

    #[test]
    fn low_latency_start_is_part_hold_back_from_the_edge_at_an_independent_part() {
        use crate::manifest::start::{low_latency_start, PartStart};
        let p = media(LL);
        // Edge: 4 s of segments + 1 s of parts of 22 = 5 s.
        let at = |hold_ms| low_latency_start(&p, ms(hold_ms));
        // 0.5 s back: inside p22.0 (independent, starts at 4 s).
        assert_eq!(
            at(500),
            Some(PartStart {
                sequence: 22,
                part: 0,
                position: ms(4000),
                segment_start: ms(4000)
            })
        );
        // 1.5 s back (3.5 s): the second part of 21 is not independent: 21 from its start.
        assert_eq!(
            at(1500),
            Some(PartStart {
                sequence: 21,
                part: 0,
                position: ms(2000),
                segment_start: ms(2000)
            })
        );
        // Further back than the parts: a segment start.
        assert_eq!(at(4000).map(|s| (s.sequence, s.part)), Some((20, 0)));
        let q = media(&LL.replace("BYTERANGE=\"500\"", "BYTERANGE=\"500\",INDEPENDENT=YES"));
        assert_eq!(
            low_latency_start(&q, ms(1500)),
            Some(PartStart {
                sequence: 21,
                part: 1,
                position: ms(3000),
                segment_start: ms(2000)
            })
        );
        assert_eq!(low_latency_start(&media(&live(1, 3)), ms(1500)), None);
    }

    fn media(text: &str) -> MediaPlaylist {
        match parse(text.as_bytes(), &base()).unwrap() {
            Playlist::Media(m) => m,
            Playlist::Master(_) => panic!("expected media playlist"),
        }
    }

    fn master(text: &str) -> MasterPlaylist {
        match parse(text.as_bytes(), &base()).unwrap() {
            Playlist::Master(m) => m,
            Playlist::Media(_) => panic!("expected master playlist"),
        }
    }

    fn err(text: &str) -> ManifestError {
        parse(text.as_bytes(), &base()).unwrap_err()
    }

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Live playlist with `n` 6 s segments starting at sequence `first`.
    fn live(first: u64, n: u64) -> String {
        let mut s = format!("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
        for i in first..first + n {
            s += &format!("#EXTINF:6.0,\nseg{i}.ts\n");
        }
        s
    }

    const MASTER: &str = r#"#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Deutsch",LANGUAGE="de",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="6",URI="/abs/de.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="muxed",NAME="Main"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="Français",LANGUAGE="fr",AUTOSELECT=yes,FORCED=NO,URI="subs/fr.m3u8"
#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",LANGUAGE="en",INSTREAM-ID="CC1"
#EXT-X-MEDIA:TYPE=FUTURE,GROUP-ID="x",NAME="y"
#EXT-X-STREAM-INF:BANDWIDTH=1280000,AVERAGE-BANDWIDTH=1000000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=29.970,VIDEO-RANGE=SDR,AUDIO="aud",SUBTITLES="subs",CLOSED-CAPTIONS="cc"
low/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=86000,URI="low/iframe.m3u8"
#EXT-X-STREAM-INF:PROGRAM-ID=1, BANDWIDTH=2560000, CODECS="avc1.4d401f,mp4a.40.2", RESOLUTION=1280x720
# a comment between tag and URI

https://other.example.net/hi/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS="mp4a.40.2",AUDIO="muxed"
../audio-only.m3u8
"#;

    #[test]
    fn master_playlist() {
        let m = master(MASTER);
        assert_eq!(m.url, base());
        // I-frame variant skipped, audio-only variant dropped (hlsdemux2 behaviour).
        assert_eq!(m.variants.len(), 2);
        let v = &m.variants[0];
        assert_eq!(
            v.uri.as_str(),
            "https://cdn.example.com/live/stream/low/index.m3u8"
        );
        assert_eq!(v.bandwidth, 1_280_000);
        assert_eq!(v.average_bandwidth, Some(1_000_000));
        assert_eq!(v.codecs.as_deref(), Some("avc1.4d401f,mp4a.40.2"));
        assert_eq!(v.resolution, Some((640, 360)));
        assert_eq!(v.frame_rate, Some(29.97));
        assert_eq!(v.video_range.as_deref(), Some("SDR"));
        assert_eq!(v.audio_group.as_deref(), Some("aud"));
        assert_eq!(v.subtitles_group.as_deref(), Some("subs"));
        let v = &m.variants[1];
        assert_eq!(v.uri.as_str(), "https://other.example.net/hi/index.m3u8");
        assert_eq!(v.bandwidth, 2_560_000);
        assert_eq!(v.resolution, Some((1280, 720)));
        assert_eq!(v.average_bandwidth, None);
        assert_eq!(v.audio_group, None);

        assert_eq!(m.renditions.len(), 5, "unknown TYPE skipped");
        let en = &m.renditions[0];
        assert_eq!(en.stream_type, MediaType::Audio);
        assert_eq!(en.group_id, "aud");
        assert_eq!(en.name, "English");
        assert_eq!(en.language.as_deref(), Some("en"));
        assert_eq!(en.channels.as_deref(), Some("2"));
        assert!(en.default && en.autoselect);
        assert_eq!(
            en.uri.as_ref().unwrap().as_str(),
            "https://cdn.example.com/live/stream/audio/en.m3u8"
        );
        let de = &m.renditions[1];
        assert!(!de.default && de.autoselect);
        assert_eq!(
            de.uri.as_ref().unwrap().as_str(),
            "https://cdn.example.com/abs/de.m3u8"
        );
        assert_eq!(m.renditions[2].uri, None, "muxed rendition has no URI");
        let fr = &m.renditions[3];
        assert_eq!(fr.stream_type, MediaType::Subtitles);
        assert_eq!(fr.name, "Français");
        assert!(fr.autoselect && !fr.default);
        let cc = &m.renditions[4];
        assert_eq!(cc.stream_type, MediaType::ClosedCaptions);
        assert_eq!(cc.uri, None);
    }

    #[test]
    fn audio_only_variants() {
        // Kept when nothing has video (radio), or codecs are unknown.
        let m = master(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.5\"\n../a.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\nb.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=1\nc.m3u8\n",
        );
        assert_eq!(m.variants.len(), 3);
        assert_eq!(
            m.variants[0].uri.as_str(),
            "https://cdn.example.com/live/a.m3u8"
        );
        // Dropped next to video variants; variants without CODECS are kept.
        let m = master(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=64000,CODECS=\"mp4a.40.5\"\na.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS=\"hvc1.2.4.L123.B0, ec-3\"\nv.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=5\nc.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=70000,CODECS=\"mp4a.40.2,stpp.ttml.im1t\"\nd.m3u8\n",
        );
        let b: Vec<u64> = m.variants.iter().map(|v| v.bandwidth).collect();
        assert_eq!(b, [900_000, 5, 70_000]);
        // PML 0.6 numbers variants in its own parser's unfiltered list (`+V<n>`).
        let n: Vec<usize> = m.variants.iter().map(|v| v.master_index).collect();
        assert_eq!(n, [1, 2, 3]);
    }

    #[test]
    fn master_resolves_against_final_url_after_redirect() {
        let final_url = Url::parse("http://edge7.example.org/x/y/master.m3u8").unwrap();
        let text = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv/a.m3u8\n";
        let Playlist::Master(m) = parse(text.as_bytes(), &final_url).unwrap() else {
            panic!()
        };
        assert_eq!(
            m.variants[0].uri.as_str(),
            "http://edge7.example.org/x/y/v/a.m3u8"
        );
    }

    #[test]
    fn master_errors_and_best_effort() {
        assert_eq!(
            err("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"x\"\n"),
            ManifestError::NoVariants
        );
        assert_eq!(
            err("#EXTM3U\n#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i.m3u8\"\n"),
            ManifestError::NoVariants
        );
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"x\"\na.m3u8\n"),
            ManifestError::Malformed { line: 2, .. }
        ));
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=abc\na.m3u8\n"),
            ManifestError::Malformed { line: 2, .. }
        ));
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"abc\na.m3u8\n"),
            ManifestError::Malformed { line: 2, .. }
        ));
        // Truncated: the last STREAM-INF has no URI and is dropped.
        let m = master(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=2\n",
        );
        assert_eq!(m.variants.len(), 1);
        // A STREAM-INF whose URI is missing does not steal the next one's.
        let m = master(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nb.m3u8\n",
        );
        assert_eq!(m.variants.len(), 1);
        assert_eq!(m.variants[0].bandwidth, 2);
        // Bad optional attributes are ignored.
        let m = master("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=5,RESOLUTION=big,FRAME-RATE=NaN,AVERAGE-BANDWIDTH=-1\na.m3u8\n");
        assert_eq!(m.variants[0].resolution, None);
        assert_eq!(m.variants[0].frame_rate, None);
        assert_eq!(m.variants[0].average_bandwidth, None);
        // Mixed master and media tags.
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n#EXTINF:1,\ns.ts\n"),
            ManifestError::Malformed { .. }
        ));
        // EXT-X-MEDIA without GROUP-ID / TYPE.
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,NAME=\"x\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\na\n"),
            ManifestError::Malformed { line: 2, .. }
        ));
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-MEDIA:GROUP-ID=\"a\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\na\n"),
            ManifestError::Malformed { line: 2, .. }
        ));
    }

    #[test]
    fn vod_playlist() {
        let m = media(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:10\n\
             #EXT-X-MEDIA-SEQUENCE:7\n#EXTINF:9.009,title\nfileSequence7.ts\n#EXTINF:9.009,\n\
             /abs/fileSequence8.ts\n#EXTINF:3.003\nhttp://other/seg9.ts?x=1\n#EXT-X-ENDLIST\n",
        );
        assert_eq!(m.kind, PlaylistKind::Vod);
        assert!(m.end_list && !m.is_live());
        assert_eq!(m.target_duration, Duration::from_secs(10));
        assert_eq!(m.media_sequence, 7);
        assert_eq!(m.url, base());
        assert!(!m.lost_sync);
        let seqs: Vec<u64> = m.segments.iter().map(|s| s.sequence).collect();
        assert_eq!(seqs, [7, 8, 9]);
        let starts: Vec<Duration> = m.segments.iter().map(|s| s.start).collect();
        assert_eq!(starts, [ms(0), ms(9009), ms(18018)]);
        assert_eq!(m.duration(), ms(21021));
        assert_eq!(
            m.segments[0].resource.url.as_str(),
            "https://cdn.example.com/live/stream/fileSequence7.ts"
        );
        assert_eq!(
            m.segments[1].resource.url.as_str(),
            "https://cdn.example.com/abs/fileSequence8.ts"
        );
        assert_eq!(
            m.segments[2].resource.url.as_str(),
            "http://other/seg9.ts?x=1"
        );
        assert!(m.segments.iter().all(|s| s.key.is_none()
            && s.init.is_none()
            && s.init_key.is_none()
            && !s.gap
            && !s.discontinuity));
        assert_eq!(m.live_start_index(), 0);
        assert_eq!(m.find_sequence(8), Some(1));
        assert_eq!(m.find_sequence(6), None);
        assert_eq!(m.find_sequence(10), None);
        // The fetch loop's lookup: the next segment, or the first after it.
        assert_eq!(m.first_from_sequence(6), Some(0));
        assert_eq!(m.first_from_sequence(8), Some(1));
        assert_eq!(m.first_from_sequence(10), None);
        assert_eq!(m.segment_index_at(ms(0)), Some(0));
        assert_eq!(m.segment_index_at(ms(9008)), Some(0));
        assert_eq!(m.segment_index_at(ms(9009)), Some(1));
        assert_eq!(m.segment_index_at(ms(21020)), Some(2));
        assert_eq!(m.segment_index_at(ms(21021)), None);
    }

    #[test]
    fn windows_line_endings_bom_and_leading_blank_lines() {
        let m = media("\u{feff}\r\n#EXTM3U\r\n#EXT-X-TARGETDURATION:4\r\n#EXTINF:4,\r\na.ts\r\n#EXT-X-ENDLIST\r\n");
        assert_eq!(m.segments.len(), 1);
        assert_eq!(
            m.segments[0].resource.url.as_str(),
            "https://cdn.example.com/live/stream/a.ts"
        );
    }

    #[test]
    fn cr_only_line_endings() {
        let m = media("#EXTM3U\r#EXT-X-TARGETDURATION:4\r#EXTINF:4,\ra.ts\r#EXTINF:4,\rb.ts\r");
        assert_eq!(m.segments.len(), 2);
    }

    #[test]
    fn master_with_stray_media_header_tag_is_still_master() {
        let m =
            master("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-STREAM-INF:BANDWIDTH=1\na.m3u8\n");
        assert_eq!(m.variants.len(), 1);
    }

    #[test]
    fn lone_media_playlist_without_segments_is_media() {
        let m = media("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:3\n");
        assert!(m.segments.is_empty() && m.is_live());
        assert_eq!(m.kind, PlaylistKind::Live);
        assert_eq!(m.live_start_index(), 0);
        assert_eq!(m.segment_index_at(ms(0)), None);
        assert_eq!(m.find_sequence(3), None);
    }

    #[test]
    fn live_start_and_helpers() {
        let m = media(&live(100, 10));
        assert!(m.is_live());
        assert_eq!(m.kind, PlaylistKind::Live);
        // Edge at 60 s; 3 * 6 s back = 42 s = segment 7.
        assert_eq!(m.live_start_index(), 7);
        let short = media(&live(100, 2));
        assert_eq!(short.live_start_index(), 0);
        assert_eq!(m.reload_interval(true), Duration::from_secs(6));
        assert_eq!(m.reload_interval(false), Duration::from_secs(3));
        // Short segments vs target: still 3 target durations back.
        let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
        for i in 0..20 {
            s += &format!("#EXTINF:2,\n{i}.ts\n");
        }
        assert_eq!(media(&s).live_start_index(), 14);
    }

    #[test]
    fn live_refresh_carries_start_times() {
        let a = media(&live(100, 5)); // 100..=104, 0..30 s
        let b = update(&a, media(&live(102, 5))).unwrap(); // 102..=106
        assert!(!b.lost_sync);
        let starts: Vec<u64> = b.segments.iter().map(|s| s.start.as_secs()).collect();
        assert_eq!(starts, [12, 18, 24, 30, 36]);
        assert_eq!(b.segments[0].sequence, 102);
        // Identical refresh: unchanged.
        let same = update(&b, media(&live(102, 5))).unwrap();
        assert_eq!(same, b);
        // Stale copy that ends earlier: rejected so no timing is forgotten.
        assert_eq!(
            update(&b, media(&live(102, 3))).unwrap_err(),
            ManifestError::SequenceWentBackwards { old: 107, new: 105 }
        );
        assert!(update(&b, media(&live(103, 3))).is_err());
        // Exactly continuing without overlap: anchored, not lost.
        let c = update(&b, media(&live(107, 2))).unwrap();
        assert!(!c.lost_sync);
        assert_eq!(c.segments[0].start, Duration::from_secs(42));
        // A gap (108..=111 missed): anchored at old end and flagged.
        let d = update(&c, media(&live(112, 3))).unwrap();
        assert!(d.lost_sync);
        assert_eq!(d.segments[0].start, Duration::from_secs(54));
        assert_eq!(d.segments[2].end(), Duration::from_secs(72));
        // Next normal refresh clears the flag.
        let e = update(&d, media(&live(113, 3))).unwrap();
        assert!(!e.lost_sync);
        assert_eq!(e.segments[0].start, Duration::from_secs(60));
        // Going backwards is an error; `rebase` recovers.
        assert_eq!(
            update(&e, media(&live(100, 20))).unwrap_err(),
            ManifestError::SequenceWentBackwards { old: 113, new: 100 }
        );
        let r = rebase(&e, media(&live(0, 2)));
        assert!(r.lost_sync);
        assert_eq!(
            e.segments[0].discontinuity_sequence, 1,
            "gap counted as a discontinuity"
        );
        assert_eq!(r.segments[0].discontinuity_sequence, 2);
        assert_eq!(r.segments[0].start, Duration::from_secs(78));
        assert_eq!(r.segments[1].start, Duration::from_secs(84));
        // Lookups work on carried times.
        assert_eq!(e.segment_index_at(Duration::from_secs(61)), Some(0));
        assert_eq!(e.segment_index_at(Duration::from_secs(59)), None);
        assert_eq!(e.segment_index_at(Duration::from_secs(78)), None);
        assert_eq!(e.find_sequence(115), Some(2));
    }

    #[test]
    fn align_for_variant_switch() {
        let a = update(&media(&live(100, 3)), media(&live(101, 5))).unwrap(); // 101..=105 at 6..36
                                                                              // Other variant: window starts earlier and ends earlier.
        let b = align(&a, media(&live(99, 5))); // 99..=103
        assert!(!b.lost_sync);
        let starts: Vec<u64> = b.segments.iter().map(|s| s.start.as_secs()).collect();
        assert_eq!(
            starts,
            [0, 0, 6, 12, 18],
            "earlier ones placed before, saturating at 0"
        );
        // update() would reject this as stale.
        assert!(update(&a, media(&live(99, 5))).is_err());
        // Disjoint windows.
        assert!(align(&a, media(&live(110, 2))).lost_sync);
        let c = align(&a, media(&live(106, 2)));
        assert!(!c.lost_sync);
        assert_eq!(c.segments[0].start, Duration::from_secs(36));
    }

    #[test]
    fn discontinuity_sequence_carried_when_server_omits_it() {
        let pl = |first: u64, segs: &[(bool, &str)]| {
            let mut s =
                format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
            for (disc, uri) in segs {
                if *disc {
                    s += "#EXT-X-DISCONTINUITY\n";
                }
                s += &format!("#EXTINF:4,\n{uri}\n");
            }
            media(&s)
        };
        let ds = |m: &MediaPlaylist| -> Vec<u64> {
            m.segments
                .iter()
                .map(|s| s.discontinuity_sequence)
                .collect()
        };
        let a = pl(0, &[(false, "a"), (true, "b"), (false, "c")]);
        assert_eq!(ds(&a), [0, 1, 1]);
        let b = update(&a, pl(1, &[(true, "b"), (false, "c"), (false, "d")])).unwrap();
        assert_eq!(ds(&b), [1, 1, 1]);
        // The discontinuity slid out; the server (wrongly) restarted counting at 0.
        let c = update(&b, pl(2, &[(false, "c"), (false, "d"), (true, "e")])).unwrap();
        assert_eq!(ds(&c), [1, 1, 2]);
        assert_eq!(c.discontinuity_sequence, 1);
        // Continuing without overlap.
        let d = update(&c, pl(5, &[(false, "f")])).unwrap();
        assert_eq!(ds(&d), [2]);
        // Missed segments: assume at least one discontinuity.
        let e = update(&d, pl(9, &[(false, "j")])).unwrap();
        assert!(e.lost_sync);
        assert_eq!(ds(&e), [3]);
        // Explicit numbering is trusted.
        let f = update(
            &e,
            media("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:9\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXTINF:4,\nj\n"),
        )
        .unwrap();
        assert_eq!(ds(&f), [2]);
    }

    #[test]
    fn refresh_keeps_old_start_even_if_durations_change() {
        let a = media("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:5.5,\na.ts\n#EXTINF:6,\nb.ts\n");
        let b = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6.5,\nb.ts\n#EXTINF:6,\nc.ts\n",
        );
        let b = update(&a, b).unwrap();
        assert_eq!(b.segments[0].start, ms(5500));
        assert_eq!(b.segments[1].start, ms(12000));
    }

    #[test]
    fn refresh_from_empty_playlist() {
        let empty = media("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:5\n");
        let a = update(&empty, media(&live(5, 2))).unwrap();
        assert!(!a.lost_sync);
        assert_eq!(a.segments[0].start, Duration::ZERO);
        let b = update(&empty, media(&live(9, 2))).unwrap();
        assert!(b.lost_sync);
        let still_empty = update(
            &a,
            media("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:7\n"),
        )
        .unwrap();
        assert!(still_empty.segments.is_empty() && !still_empty.lost_sync);
        assert!(update(
            &a,
            media("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:6\n")
        )
        .is_err());
    }

    #[test]
    fn event_playlist_grows_then_ends() {
        let head = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:4\n";
        let a = media(&format!("{head}#EXTINF:4,\n0.ts\n#EXTINF:4,\n1.ts\n"));
        assert_eq!(a.kind, PlaylistKind::Event);
        assert!(a.is_live());
        let b = update(
            &a,
            media(&format!(
                "{head}#EXTINF:4,\n0.ts\n#EXTINF:4,\n1.ts\n#EXTINF:4,\n2.ts\n"
            )),
        )
        .unwrap();
        assert_eq!(b.kind, PlaylistKind::Event);
        assert_eq!(b.segments[2].start, Duration::from_secs(8));
        let c = update(
            &b,
            media(&format!(
                "{head}#EXTINF:4,\n0.ts\n#EXTINF:4,\n1.ts\n#EXTINF:4,\n2.ts\n#EXTINF:2,\n3.ts\n#EXT-X-ENDLIST\n"
            )),
        )
        .unwrap();
        assert_eq!(c.kind, PlaylistKind::Vod);
        assert!(!c.is_live() && c.end_list);
        assert_eq!(c.duration(), Duration::from_secs(14));
    }

    #[test]
    fn live_playlist_gets_endlist() {
        let a = media(&live(0, 3));
        let b = update(&a, media(&(live(1, 3) + "#EXT-X-ENDLIST\n"))).unwrap();
        assert!(!b.is_live());
        assert_eq!(b.kind, PlaylistKind::Vod);
        assert_eq!(b.segments[2].start, Duration::from_secs(18));
    }

    #[test]
    fn byte_ranges_and_single_file() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-VERSION:4\n#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"720@0\"\n\
             #EXTINF:10,\n#EXT-X-BYTERANGE:1000@720\nmain.mp4\n\
             #EXTINF:10,\n#EXT-X-BYTERANGE:2000\nmain.mp4\n\
             #EXT-X-BYTERANGE:500\n#EXTINF:5,\nmain.mp4\n\
             #EXTINF:5,\n#EXT-X-BYTERANGE:300@0\nother.mp4\n\
             #EXTINF:5,\n#EXT-X-BYTERANGE:10\nother.mp4\n\
             #EXTINF:5,\nwhole.ts\n#EXT-X-ENDLIST\n",
        );
        let r: Vec<Option<(u64, u64)>> = m
            .segments
            .iter()
            .map(|s| s.resource.range.map(|r| (r.offset, r.length)))
            .collect();
        assert_eq!(
            r,
            [
                Some((720, 1000)),
                Some((1720, 2000)),
                Some((3720, 500)),
                Some((0, 300)),
                Some((300, 10)),
                None
            ]
        );
        let init = m.segments[0].init.as_ref().unwrap();
        assert_eq!(
            init.url.as_str(),
            "https://cdn.example.com/live/stream/main.mp4"
        );
        assert_eq!(
            init.range,
            Some(ByteRange {
                offset: 0,
                length: 720
            })
        );
        assert!(
            m.segments.iter().all(|s| s.init.as_ref() == Some(init)),
            "MAP applies until replaced"
        );
        assert_eq!(
            m.segments[0].resource.range.unwrap().http_header(),
            "bytes=720-1719"
        );
    }

    #[test]
    fn byte_range_errors() {
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n";
        // No previous range at all.
        assert!(matches!(
            err(&format!("{head}#EXTINF:1,\n#EXT-X-BYTERANGE:100\na.ts\n")),
            ManifestError::Malformed { line: 4, .. }
        ));
        // Previous range was a different resource.
        assert!(matches!(
            err(&format!("{head}#EXTINF:1,\n#EXT-X-BYTERANGE:100@0\na.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:100\nb.ts\n")),
            ManifestError::Malformed { line: 7, .. }
        ));
        // Previous segment was not a sub-range.
        assert!(matches!(
            err(&format!(
                "{head}#EXTINF:1,\na.ts\n#EXTINF:1,\n#EXT-X-BYTERANGE:100\na.ts\n"
            )),
            ManifestError::Malformed { .. }
        ));
        for bad in ["0@0", "abc", "-5@1", "10@x", "", "18446744073709551615@1"] {
            let e = err(&format!("{head}#EXTINF:1,\n#EXT-X-BYTERANGE:{bad}\na.ts\n"));
            assert!(
                matches!(e, ManifestError::Malformed { line: 4, .. }),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            err(&format!(
                "{head}#EXT-X-MAP:URI=\"i.mp4\",BYTERANGE=\"x\"\n#EXTINF:1,\na.ts\n"
            )),
            ManifestError::Malformed { line: 3, .. }
        ));
        assert!(matches!(
            err(&format!(
                "{head}#EXT-X-MAP:BYTERANGE=\"1@0\"\n#EXTINF:1,\na.ts\n"
            )),
            ManifestError::Malformed { line: 3, .. }
        ));
    }

    #[test]
    fn map_changes_and_offsetless_map_range() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXTINF:4,\na.m4s\n#EXTINF:4,\nb.m4s\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\",BYTERANGE=\"100\"\n#EXTINF:4,\nc.m4s\n",
        );
        let i: Vec<&str> = m
            .segments
            .iter()
            .map(|s| s.init.as_ref().unwrap().url.path())
            .collect();
        assert_eq!(
            i,
            [
                "/live/stream/init1.mp4",
                "/live/stream/init1.mp4",
                "/live/stream/init2.mp4"
            ]
        );
        assert_eq!(m.segments[0].init.as_ref().unwrap().range, None);
        assert_eq!(
            m.segments[2].init.as_ref().unwrap().range,
            Some(ByteRange {
                offset: 0,
                length: 100
            })
        );
    }

    #[test]
    fn encrypted_init_section() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"clear.mp4\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x01\n#EXTINF:4,\na.m4s\n\
             #EXT-X-MAP:URI=\"enc.mp4\"\n#EXTINF:4,\nb.m4s\n\
             #EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\nc.m4s\n",
        );
        let s = &m.segments;
        assert_eq!(s[0].init_key, None, "MAP before the key is clear");
        assert!(s[0].key.is_some());
        let k = s[1].init_key.as_ref().unwrap();
        assert_eq!(k.uri.as_str(), "https://cdn.example.com/live/stream/k");
        assert_eq!(
            s[1].init.as_ref().unwrap().url.path(),
            "/live/stream/enc.mp4"
        );
        // The init section keeps the key it was declared under even after METHOD=NONE.
        assert_eq!(s[2].key, None);
        assert_eq!(s[2].init_key.as_ref(), Some(k));
        // Missing IV (required by the spec): 0, like hls.js.
        let m = media("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXT-X-MAP:URI=\"i.mp4\"\n#EXTINF:4,\na\n");
        assert_eq!(m.segments[0].init_key.as_ref().unwrap().iv, Some([0; 16]));
        assert_eq!(m.segments[0].key.as_ref().unwrap().iv, None);
    }

    #[test]
    fn discontinuities() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:50\n#EXT-X-DISCONTINUITY-SEQUENCE:3\n\
             #EXTINF:4,\na.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:4,\nb.ts\n#EXTINF:4,\nc.ts\n\
             #EXTINF:4,\n#EXT-X-DISCONTINUITY\nd.ts\n",
        );
        assert_eq!(m.discontinuity_sequence, 3);
        let d: Vec<(bool, u64)> = m
            .segments
            .iter()
            .map(|s| (s.discontinuity, s.discontinuity_sequence))
            .collect();
        assert_eq!(d, [(false, 3), (true, 4), (false, 4), (true, 5)]);
        // Start times are not reset by discontinuities.
        assert_eq!(m.segments[3].start, Duration::from_secs(12));
    }

    #[test]
    fn keys() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:10\n#EXTINF:4,\nclear.ts\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k1\",IV=0x000102030405060708090A0B0C0D0E0F\n\
             #EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k2.bin\"\n#EXTINF:4,\nc.ts\n\
             #EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\nd.ts\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k3\",IV=0X1F,KEYFORMAT=\"identity\",KEYFORMATVERSIONS=\"1\"\n#EXTINF:4,\ne.ts\n",
        );
        let s = &m.segments;
        assert_eq!(s[0].key, None);
        let k1 = s[1].key.as_ref().unwrap();
        assert_eq!(k1.uri.as_str(), "https://keys.example.com/k1");
        let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
        assert_eq!(k1.iv, Some(iv));
        assert_eq!(
            s[2].key.as_ref(),
            Some(k1),
            "key applies until the next EXT-X-KEY"
        );
        let k2 = s[3].key.as_ref().unwrap();
        assert_eq!(
            k2.uri.as_str(),
            "https://cdn.example.com/live/stream/k2.bin"
        );
        assert_eq!(k2.iv, None);
        let mut want = [0u8; 16];
        want[15] = 13;
        assert_eq!(k2.iv_for(s[3].sequence), want, "IV from media sequence 13");
        assert_eq!(s[4].key, None, "METHOD=NONE resets");
        let mut iv3 = [0u8; 16];
        iv3[15] = 0x1f;
        assert_eq!(s[5].key.as_ref().unwrap().iv, Some(iv3));
    }

    #[test]
    fn unsupported_and_bad_keys() {
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n";
        for method in ["SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256"] {
            let e = err(&format!(
                "{head}#EXT-X-KEY:METHOD={method},URI=\"k\"\n#EXTINF:4,\na.ts\n"
            ));
            assert_eq!(
                e,
                ManifestError::Unsupported(format!("EXT-X-KEY METHOD={method}"))
            );
            assert!(e.to_string().contains(method));
        }
        // DRM-only key format.
        let e = err(&format!(
            "{head}#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n#EXTINF:4,\na.ts\n"
        ));
        assert!(
            matches!(e, ManifestError::Unsupported(ref s) if s.contains("streamingkeydelivery"))
        );
        // DRM key next to a usable identity key: fine.
        let m = media(&format!(
            "{head}#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://x\",KEYFORMAT=\"com.apple.streamingkeydelivery\"\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n#EXTINF:4,\na.ts\n"
        ));
        assert!(m.segments[0].key.is_some());
        // Unsupported key tag that no segment uses (e.g. right before ENDLIST) is harmless.
        let m = media(&format!(
            "{head}#EXTINF:4,\na.ts\n#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\"\n#EXT-X-ENDLIST\n"
        ));
        assert_eq!(m.segments.len(), 1);
        // METHOD=NONE after SAMPLE-AES makes later segments playable.
        let m = media(&format!(
            "{head}#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\"\n#EXT-X-KEY:METHOD=NONE\n#EXTINF:4,\na.ts\n"
        ));
        assert_eq!(m.segments[0].key, None);
        for bad in [
            "METHOD=AES-128",
            "METHOD=AES-128,URI=\"k\",IV=0x",
            "METHOD=AES-128,URI=\"k\",IV=1234",
            "METHOD=AES-128,URI=\"k\",IV=0x000102030405060708090A0B0C0D0E0F00",
            "METHOD=AES-128,URI=\"k\",IV=0xZZ",
            "URI=\"k\"",
            "METHOD=AES-128,URI=\"k",
        ] {
            let e = err(&format!("{head}#EXT-X-KEY:{bad}\n#EXTINF:4,\na.ts\n"));
            assert!(
                matches!(e, ManifestError::Malformed { line: 3, .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn gap_segments() {
        let m = media("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n#EXT-X-GAP\n#EXTINF:4,\nb.ts\n#EXTINF:4,\nc.ts\n");
        let g: Vec<bool> = m.segments.iter().map(|s| s.gap).collect();
        assert_eq!(g, [false, true, false]);
    }

    #[test]
    fn not_m3u8() {
        for body in [
            &b""[..],
            b"   \n\n",
            b"<!DOCTYPE html><html><body>404 Not Found</body></html>",
            b"{\"error\":\"forbidden\"}",
            b"#EXT-X-VERSION:3\n#EXTM3U\n",
            b"\xff\xfe#\x00E\x00",
        ] {
            let e = parse(body, &base()).unwrap_err();
            assert_eq!(e, ManifestError::NotM3u8);
            assert!(e.to_string().contains("does not start with #EXTM3U"));
        }
        assert_eq!(
            parse(b"#EXTM3U\n#EXTINF:1,\n\xff\xfe.ts\n", &base()).unwrap_err(),
            ManifestError::NotUtf8
        );
    }

    #[test]
    fn too_large() {
        let mut body = b"#EXTM3U\n".to_vec();
        body.resize(MAX_PLAYLIST_BYTES + 1, b'\n');
        assert!(matches!(
            parse(&body, &base()),
            Err(ManifestError::TooLarge { .. })
        ));
    }

    #[test]
    fn too_many_segments() {
        let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:1\n");
        for _ in 0..=MAX_SEGMENTS {
            s.push_str("#EXTINF:1,\na\n");
        }
        assert_eq!(
            err(&s),
            ManifestError::TooLarge {
                what: "segments",
                limit: MAX_SEGMENTS
            }
        );
        let mut s = String::from("#EXTM3U\n");
        for _ in 0..=MAX_STREAMS {
            s.push_str("#EXT-X-STREAM-INF:BANDWIDTH=1\na\n");
        }
        assert!(matches!(err(&s), ManifestError::TooLarge { .. }));
    }

    /// Found by `fuzz/fuzz_targets/hls_parse.rs`: a 20 KB EXT-X-MAP URI over 2000 one-byte
    /// segments (46 KB of playlist) held 40 MB of URI copies; 1 MB held 20 GB.
    #[test]
    fn long_map_or_key_uri_over_many_segments_is_too_large() {
        let long = "a".repeat(20_000);
        for tag in [
            format!("#EXT-X-MAP:URI=\"{long}.mp4\""),
            format!("#EXT-X-KEY:METHOD=AES-128,URI=\"{long}.key\""),
        ] {
            let mut s = format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n{tag}\n");
            for _ in 0..2000 {
                s.push_str("#EXTINF:1,\nx\n");
            }
            assert!(matches!(
                err(&s),
                ManifestError::TooLarge {
                    what: "bytes of EXT-X-KEY/EXT-X-MAP URIs repeated over the segments",
                    ..
                }
            ));
        }
        // Ordinary URIs over as many segments are fine.
        let mut s = String::from(
            "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MAP:URI=\"https://cdn.example.com/v/init.mp4?token=0123456789abcdef0123456789abcdef\"\n#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.com/k/0123456789abcdef?token=0123456789abcdef\"\n",
        );
        for i in 0..20_000 {
            s.push_str(&format!("#EXTINF:1,\ns{i}.m4s\n"));
        }
        assert_eq!(media(&s).segments.len(), 20_000);
    }

    #[test]
    fn bad_durations() {
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n";
        for d in [
            "0",
            "0.0",
            "-1",
            "-0.5",
            "NaN",
            "nan",
            "inf",
            "1e3",
            "abc",
            "",
            ".",
            "1.2.3",
            "+4",
            "86401",
            "99999999999999999999999",
        ] {
            let e = err(&format!("{head}#EXTINF:{d},\na.ts\n"));
            assert!(
                matches!(e, ManifestError::InvalidDuration { line: 3, .. }),
                "{d:?}: {e}"
            );
        }
        // Plain decimal forms are accepted exactly.
        let m = media(&format!(
            "{head}#EXTINF:.5,\na.ts\n#EXTINF:4.,\nb.ts\n#EXTINF:2.0000000019,\nc.ts\n"
        ));
        let d: Vec<Duration> = m.segments.iter().map(|s| s.duration).collect();
        assert_eq!(d, [ms(500), ms(4000), Duration::new(2, 1)]);
        for t in ["0", "-1", "abc", "", "NaN", "100000"] {
            let e = err(&format!(
                "#EXTM3U\n#EXT-X-TARGETDURATION:{t}\n#EXTINF:1,\na.ts\n"
            ));
            assert!(
                matches!(e, ManifestError::Malformed { line: 2, .. }),
                "{t:?}: {e}"
            );
        }
        // Fractional target duration rounds up.
        assert_eq!(
            media("#EXTM3U\n#EXT-X-TARGETDURATION:5.5\n").target_duration,
            Duration::from_secs(6)
        );
    }

    #[test]
    fn structural_errors_and_truncation() {
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n";
        // Truncated after EXTINF: the incomplete segment is dropped.
        let m = media(&format!("{head}#EXTINF:4,\na.ts\n#EXTINF:4,"));
        assert_eq!(m.segments.len(), 1);
        let m = media(&format!("{head}#EXTINF:4,\na.ts\n#EXTINF:4"));
        assert_eq!(m.segments.len(), 1);
        let m = media(&format!(
            "{head}#EXTINF:4,\na.ts\n#EXT-X-BYTERANGE:5@0\n#EXT-X-DISC"
        ));
        assert_eq!(m.segments.len(), 1);
        // A comment on the last line is not a segment.
        let m = media(&format!("{head}#EXTINF:4,\na.ts\n# done"));
        assert_eq!(m.segments.len(), 1);
        // URI without EXTINF.
        assert!(matches!(
            err(&format!("{head}a.ts\n")),
            ManifestError::Malformed { line: 3, .. }
        ));
        // Two EXTINF in a row.
        assert!(matches!(
            err(&format!("{head}#EXTINF:4,\n#EXTINF:4,\na.ts\n")),
            ManifestError::Malformed { line: 3, .. }
        ));
        // Missing target duration: derived from segments, error if there are none.
        assert_eq!(
            media("#EXTM3U\n#EXTINF:4.2,\na.ts\n#EXTINF:3,\nb.ts\n").target_duration,
            Duration::from_secs(5)
        );
        assert!(matches!(
            err("#EXTM3U\n#EXT-X-ENDLIST\n"),
            ManifestError::Malformed { .. }
        ));
        for (bad, line) in [
            ("#EXT-X-MEDIA-SEQUENCE:-1", 3),
            ("#EXT-X-MEDIA-SEQUENCE:x", 3),
            ("#EXT-X-MEDIA-SEQUENCE", 3),
            ("#EXT-X-DISCONTINUITY-SEQUENCE:1.5", 3),
        ] {
            let e = err(&format!("{head}{bad}\n#EXTINF:4,\na.ts\n"));
            assert!(
                matches!(e, ManifestError::Malformed { line: l, .. } if l == line),
                "{bad}: {e}"
            );
        }
        assert!(matches!(
            err(&format!("{head}#EXT-X-MEDIA-SEQUENCE:18446744073709551615\n#EXTINF:4,\na.ts\n#EXTINF:4,\nb.ts\n")),
            ManifestError::Malformed { .. }
        ));
        assert!(matches!(
            err(&format!("{head}#EXT-X-I-FRAMES-ONLY\n#EXTINF:4,\na.ts\n")),
            ManifestError::Unsupported(_)
        ));
        assert!(matches!(
            err(&format!("{head}#EXTINF:4,\nhttp://[::1\n")),
            ManifestError::InvalidUri { line: 4, .. }
        ));
    }

    #[test]
    fn variable_substitution() {
        let url = Url::parse("https://h.example/p/index.m3u8?token=s3cr3t&x=1").unwrap();
        let text = "#EXTM3U\n#EXT-X-VERSION:8\n#EXT-X-DEFINE:NAME=\"host\",VALUE=\"https://cdn.example\"\n\
                    #EXT-X-DEFINE:QUERYPARAM=\"token\"\n#EXT-X-TARGETDURATION:4\n\
                    #EXT-X-KEY:METHOD=AES-128,URI=\"{$host}/key?t={$token}\"\n\
                    #EXTINF:4,\n{$host}/a.ts?t={$token}\n";
        let Playlist::Media(m) = parse(text.as_bytes(), &url).unwrap() else {
            panic!()
        };
        assert_eq!(
            m.segments[0].resource.url.as_str(),
            "https://cdn.example/a.ts?t=s3cr3t"
        );
        assert_eq!(
            m.segments[0].key.as_ref().unwrap().uri.as_str(),
            "https://cdn.example/key?t=s3cr3t"
        );
        let master_text = "#EXTM3U\n#EXT-X-DEFINE:NAME=\"v\",VALUE=\"hi\"\n#EXT-X-STREAM-INF:BANDWIDTH=1\n{$v}/i.m3u8\n";
        let Playlist::Master(m) = parse(master_text.as_bytes(), &url).unwrap() else {
            panic!()
        };
        assert_eq!(m.variants[0].uri.as_str(), "https://h.example/p/hi/i.m3u8");
        // Errors.
        let head = "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-DEFINE:NAME=\"a\",VALUE=\"b\"\n";
        for (tail, want_unsupported) in [
            ("#EXTINF:4,\n{$nope}.ts\n", false),
            ("#EXTINF:4,\n{$a.ts\n", false),
            ("#EXT-X-DEFINE:QUERYPARAM=\"missing\"\n", false),
            ("#EXT-X-DEFINE:FOO=\"1\"\n", false),
            ("#EXT-X-DEFINE:IMPORT=\"a\"\n", true),
        ] {
            let e = err(&format!("{head}{tail}"));
            if want_unsupported {
                assert!(matches!(e, ManifestError::Unsupported(_)), "{tail}: {e}");
            } else {
                assert!(
                    matches!(e, ManifestError::Malformed { line: 4 | 5, .. }),
                    "{tail}: {e}"
                );
            }
        }
        // Without any definition `{$` is literal.
        let m = media("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n{$x}.ts\n");
        assert_eq!(m.segments.len(), 1);
        // Blow-up is bounded.
        let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
        s += &format!(
            "#EXT-X-DEFINE:NAME=\"a\",VALUE=\"{}\"\n",
            "x".repeat(60_000)
        );
        s += "#EXTINF:4,\n{$a}{$a}\n";
        assert!(matches!(err(&s), ManifestError::TooLarge { .. }));
        let mut s = String::from("#EXTM3U\n#EXT-X-TARGETDURATION:4\n");
        s += &format!(
            "#EXT-X-DEFINE:NAME=\"a\",VALUE=\"{}\"\n",
            "x".repeat(60_000)
        );
        s += &"#EXT-X-UNKNOWN:{$a}\n".repeat(600);
        assert!(
            matches!(err(&s), ManifestError::TooLarge { what, .. } if what.contains("substitution"))
        );
    }

    #[test]
    fn unknown_playlist_type_is_live() {
        let m = media(
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:LIVE\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n",
        );
        assert_eq!(m.kind, PlaylistKind::Live);
        let m =
            media("#EXTM3U\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\na.ts\n");
        assert_eq!(m.kind, PlaylistKind::Vod);
        assert!(
            !m.is_live() && !m.end_list,
            "VOD type without ENDLIST cannot change"
        );
    }

    #[test]
    fn unknown_tags_and_prefix_lookalikes_are_ignored() {
        let m = media(
            "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n#EXT-X-PROGRAM-DATE-TIME:2020-01-01T00:00:00Z\n\
             #EXT-X-DISCONTINUITYFOO\n#EXT-X-DATERANGE:ID=\"x\",START-DATE=\"2020\"\n#EXTINF:4,\na.ts\n#EXT-X-PART:DURATION=1,URI=\"p\"\n\
             #EXT-X-FUTURE-TAG\n#EXTINF:4,\nb.ts\n",
        );
        assert_eq!(m.segments.len(), 2);
        assert!(!m.segments[0].discontinuity);
    }

    #[test]
    fn error_messages_are_clear() {
        let cases = [
            (ManifestError::NotM3u8, "does not start with #EXTM3U"),
            (
                ManifestError::SequenceWentBackwards { old: 5, new: 2 },
                "went backwards (5 -> 2)",
            ),
            (
                ManifestError::Unsupported("EXT-X-KEY METHOD=SAMPLE-AES".into()),
                "unsupported HLS feature: EXT-X-KEY METHOD=SAMPLE-AES",
            ),
            (
                ManifestError::InvalidDuration {
                    line: 3,
                    value: "-1".into(),
                },
                "line 3",
            ),
            (ManifestError::NoVariants, "no EXT-X-STREAM-INF"),
        ];
        for (e, want) in cases {
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    /// For well-formed input, agree with m3u8-rs on what both parse correctly.
    #[test]
    fn agrees_with_m3u8_rs_on_well_formed_input() {
        let text = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:9.5,\na.ts\n\
                    #EXT-X-DISCONTINUITY\n#EXTINF:10,\n#EXT-X-BYTERANGE:100@5\nb.ts\n#EXT-X-ENDLIST\n";
        let theirs = m3u8_rs::parse_media_playlist_res(text.as_bytes()).unwrap();
        let ours = media(text);
        assert_eq!(theirs.segments.len(), ours.segments.len());
        assert_eq!(theirs.media_sequence, ours.media_sequence);
        assert_eq!(theirs.end_list, ours.end_list);
        for (t, o) in theirs.segments.iter().zip(&ours.segments) {
            assert_eq!(base().join(&t.uri).unwrap(), o.resource.url);
            assert!((f64::from(t.duration) - o.duration.as_secs_f64()).abs() < 1e-6);
            assert_eq!(t.discontinuity, o.discontinuity);
            assert_eq!(
                t.byte_range.as_ref().map(|b| b.length),
                o.resource.range.map(|r| r.length)
            );
        }
        let Ok(m3u8_rs::Playlist::MasterPlaylist(theirs)) =
            m3u8_rs::parse_playlist_res(MASTER.as_bytes())
        else {
            panic!()
        };
        let ours = master(MASTER);
        // Theirs still has the audio-only variant (last) that we drop.
        let their_variants: Vec<_> = theirs.variants.iter().filter(|v| !v.is_i_frame).collect();
        assert_eq!(their_variants.len(), ours.variants.len() + 1);
        for (t, o) in their_variants.iter().zip(&ours.variants) {
            assert_eq!(base().join(&t.uri).unwrap(), o.uri);
            assert_eq!(t.bandwidth, o.bandwidth);
        }
    }

    /// Tiny deterministic PRNG (xorshift64*) so the fuzz test needs no dependency and is stable.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const SNIPPETS: &[&str] = &[
        "#EXTINF:4,",
        "#EXTINF:-1,",
        "#EXTINF:NaN,",
        "#EXTINF:0,",
        "#EXTINF:99999999999999999999,",
        "#EXTINF:",
        "#EXT-X-BYTERANGE:100",
        "#EXT-X-BYTERANGE:18446744073709551615@18446744073709551615",
        "#EXT-X-BYTERANGE:0",
        "#EXT-X-DISCONTINUITY",
        "#EXT-X-DISCONTINUITY-SEQUENCE:18446744073709551615",
        "#EXT-X-MEDIA-SEQUENCE:18446744073709551615",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-TARGETDURATION:0",
        "#EXT-X-TARGETDURATION:86400",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x0102",
        "#EXT-X-KEY:METHOD=NONE",
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"k\"",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"",
        "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"10@0\"",
        "#EXT-X-MAP:URI=",
        "#EXT-X-GAP",
        "#EXT-X-ENDLIST",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-STREAM-INF:BANDWIDTH=1000",
        "#EXT-X-STREAM-INF:BANDWIDTH=",
        "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"n\",URI=\"a.m3u8\"",
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1,URI=\"i\"",
        "seg.ts",
        "http://[::1",
        "https://example.com/x.ts",
        "",
        "#",
        "#EXT",
        ":::",
        "\u{0}\u{1}",
        "é",
    ];

    fn mutate(rng: &mut Rng, input: &str) -> Vec<u8> {
        let mut lines: Vec<String> = input.lines().map(str::to_owned).collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(lines.len() + 1);
            match rng.below(8) {
                0 => lines.insert(at, SNIPPETS[rng.below(SNIPPETS.len())].to_owned()),
                1 if at < lines.len() => {
                    lines.remove(at);
                }
                2 if at < lines.len() => {
                    let l = lines[at].clone();
                    lines.insert(at, l);
                }
                3 if lines.len() > 1 => {
                    let b = rng.below(lines.len());
                    let a = at.min(lines.len() - 1);
                    lines.swap(a, b);
                }
                4 if at < lines.len() => {
                    // Replace digits with extreme values.
                    let repl =
                        ["0", "-1", "18446744073709551616", "1e309", "NaN", ""][rng.below(6)];
                    lines[at] = lines[at].replace(|c: char| c.is_ascii_digit(), repl);
                }
                5 if at < lines.len() => {
                    let cut = rng.below(lines[at].len() + 1);
                    let cut = (0..=cut)
                        .rev()
                        .find(|&c| lines[at].is_char_boundary(c))
                        .unwrap_or(0);
                    lines[at].truncate(cut);
                }
                _ => lines.truncate(at.max(1)),
            }
        }
        let mut bytes = lines
            .join(if rng.below(4) == 0 { "\r\n" } else { "\n" })
            .into_bytes();
        if rng.below(10) == 0 && !bytes.is_empty() {
            // Raw byte damage.
            let i = rng.below(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        bytes
    }

    fn check_invariants(m: &MediaPlaylist) {
        let mut prev_start = Duration::ZERO;
        for (i, s) in m.segments.iter().enumerate() {
            assert!(!s.duration.is_zero() && s.duration <= MAX_SEGMENT_DURATION);
            assert_eq!(s.sequence, m.media_sequence + i as u64);
            if let Some(r) = s.resource.range {
                assert!(r.length > 0 && r.offset.checked_add(r.length).is_some());
            }
            // segment_index_at relies on sorted starts.
            assert!(s.start >= prev_start);
            prev_start = s.start;
            if i > 0 {
                let prev = &m.segments[i - 1];
                assert!(s.discontinuity_sequence >= prev.discontinuity_sequence);
            }
        }
        let _ = (m.is_live(), m.live_start_index(), m.duration());
        for t in [0u64, 1, 5_999, 6_000, 1_000_000] {
            if let Some(i) = m.segment_index_at(ms(t)) {
                assert!(m.segments[i].start <= ms(t) && ms(t) < m.segments[i].end());
            }
        }
        if let Some(last) = m.segments.last() {
            assert_eq!(m.find_sequence(last.sequence), Some(m.segments.len() - 1));
        }
    }

    /// Random live windows refreshed through `update`: a segment's start never changes once
    /// known, starts stay contiguous, and `lost_sync` is set exactly when segments were missed.
    #[test]
    fn randomized_live_refresh_chain() {
        let mut rng = Rng(42);
        for _ in 0..200 {
            let mut first = rng.next() % 1000;
            let mut known: std::collections::HashMap<u64, (Duration, Duration)> =
                Default::default();
            // Duration per sequence number, fixed for the whole stream.
            let dur = |seq: u64| ms(2000 + (seq * 7919 % 4000));
            let window = |first: u64, n: u64| {
                let mut s =
                    format!("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:{first}\n");
                for q in first..first + n {
                    let d = dur(q);
                    s += &format!(
                        "#EXTINF:{}.{:03},\n{q}.ts\n",
                        d.as_secs(),
                        d.subsec_millis()
                    );
                }
                s
            };
            let mut n = 1 + rng.next() % 6;
            let mut cur = media(&window(first, n));
            for _ in 0..30 {
                let advance = rng.next() % 8;
                let next_n = rng.next() % 7;
                let old_next = first + n;
                first += advance;
                n = next_n;
                if first + n < old_next {
                    // Stale list (ends earlier than before): rejected, keep the current one.
                    assert!(matches!(
                        update(&cur, media(&window(first, n))),
                        Err(ManifestError::SequenceWentBackwards { .. })
                    ));
                    first = cur.media_sequence;
                    n = cur.segments.len() as u64;
                    continue;
                }
                let new = update(&cur, media(&window(first, n))).unwrap();
                assert_eq!(new.lost_sync, n > 0 && first > old_next);
                for w in new.segments.windows(2) {
                    assert_eq!(w[0].end(), w[1].start);
                }
                for s in &new.segments {
                    let e = known.entry(s.sequence).or_insert((s.start, s.duration));
                    assert_eq!(*e, (s.start, s.duration), "segment {} moved", s.sequence);
                }
                if n > 0 {
                    cur = new;
                } else {
                    // An empty refresh has no timeline: the element keeps the previous playlist.
                    first = cur.media_sequence;
                    n = cur.segments.len() as u64;
                }
                if cur.media_sequence > 0 {
                    let back = media(&window(cur.media_sequence - 1, 1));
                    assert!(update(&cur, back).is_err());
                }
            }
        }
    }

    #[test]
    fn randomized_lexers_never_panic() {
        const ALPHABET: &[char] = &[
            '=', ',', '"', '0', '9', 'x', 'X', 'a', 'F', '.', '@', '-', ' ', '\t', 'é', '€', ':',
            '#', 'Y', 'E', 'S', '\r',
        ];
        let mut rng = Rng(7);
        for _ in 0..5_000 {
            let len = rng.below(40);
            let s: String = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            if let Ok(a) = parse_attributes(&s, 1) {
                for (k, _) in &a.0 {
                    assert!(!k.contains('='));
                }
            }
            let _ = parse_byterange(&s);
            if let Some(d) = parse_decimal_duration(&s) {
                assert!(d <= MAX_SEGMENT_DURATION + Duration::from_secs(1));
            }
            let _ = parse_iv(&s);
            let _ = split_tag(&s);
            for tag in [
                "#EXTINF:",
                "#EXT-X-KEY:",
                "#EXT-X-MAP:",
                "#EXT-X-STREAM-INF:",
                "#EXT-X-MEDIA:",
            ] {
                let body = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n{tag}{s}\na.ts\n");
                let _ = parse(body.as_bytes(), &base());
            }
        }
        // Random bytes after a valid header.
        for _ in 0..2_000 {
            let mut body = b"#EXTM3U\n".to_vec();
            body.extend((0..rng.below(200)).map(|_| rng.next() as u8));
            let _ = parse(&body, &base());
        }
    }

    #[test]
    fn randomized_mutations_never_panic() {
        let corpus = [
            live(100, 8),
            live(0, 3) + "#EXT-X-ENDLIST\n",
            MASTER.to_owned(),
            "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MAP:URI=\"m.mp4\",BYTERANGE=\"720@0\"\n#EXTINF:10,\n\
             #EXT-X-BYTERANGE:1000@720\nm.mp4\n#EXTINF:10,\n#EXT-X-BYTERANGE:1000\nm.mp4\n\
             #EXT-X-KEY:METHOD=AES-128,URI=\"k\",IV=0x01\n#EXTINF:10,\n#EXT-X-BYTERANGE:1000\nm.mp4\n#EXT-X-ENDLIST\n"
                .to_owned(),
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-TARGETDURATION:4\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n\
             #EXTINF:4,\na.ts\n#EXT-X-DISCONTINUITY\n#EXT-X-GAP\n#EXTINF:4,\nb.ts\n"
                .to_owned(),
        ];
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut prev: Option<MediaPlaylist> = None;
        let (mut ok, mut failed) = (0, 0);
        for _ in 0..8_000 {
            let input = &corpus[rng.below(corpus.len())];
            let bytes = mutate(&mut rng, input);
            match parse(&bytes, &base()) {
                Ok(Playlist::Media(m)) => {
                    ok += 1;
                    check_invariants(&m);
                    if let Some(p) = &prev {
                        for (a, b) in [(p, &m), (&m, p)] {
                            if let Ok(u) = update(a, b.clone()) {
                                check_invariants(&u);
                            }
                            check_invariants(&align(a, b.clone()));
                            check_invariants(&rebase(a, b.clone()));
                        }
                    }
                    prev = Some(m);
                }
                Ok(Playlist::Master(m)) => {
                    ok += 1;
                    assert!(!m.variants.is_empty());
                }
                Err(e) => {
                    failed += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        // The mutations must exercise both paths.
        assert!(ok > 500 && failed > 500, "ok {ok} failed {failed}");
    }
}
