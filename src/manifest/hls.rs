//! HLS (RFC 8216) playlist parsing and live refresh, reduced to the media model.
//!
//! The line/tag scan is done here rather than with `m3u8-rs` 6 because that crate mis-parses
//! things we rely on (checked in its 6.0.1 source):
//! - it forgets EXT-X-KEY and EXT-X-MAP after one segment, while they apply until the next tag;
//! - it rejects `METHOD=NONE` without IV (inverted check), so key resets are lost;
//! - a truncated `#EXTINF:10` or a `#comment` on the last line without newline becomes a segment URI;
//! - a STREAM-INF it cannot parse is dropped and its URI line overwrites the previous variant's URI;
//! - BYTERANGE without offset is left unresolved and tags are matched by prefix.
//!
//! The scan is strictly line based with exact tag names, so none of those can happen, and every
//! error carries the line number.

use std::time::Duration;

use url::Url;

use super::ManifestError;
use crate::media::{
    Aes128Key, ByteRange, MasterPlaylist, MediaPlaylist, PlaylistKind, Rendition, Resource,
    Segment, StreamType, Variant,
};

/// Bigger bodies are rejected before parsing (largest real VOD playlists are a few MB).
pub const MAX_PLAYLIST_BYTES: usize = 32 * 1024 * 1024;
/// Bounds memory for a media playlist (a 24 h VOD with 1 s segments has 86 400).
pub const MAX_SEGMENTS: usize = 500_000;
/// Bounds variants + renditions of a master playlist.
pub const MAX_STREAMS: usize = 10_000;
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
    // Line numbers count from the #EXTM3U line (leading blank lines were stripped).
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .collect();

    let mut master_line = None;
    let mut media_line = None;
    for &(n, line) in &lines {
        let (name, _) = split_tag(line);
        match name {
            "#EXT-X-STREAM-INF" | "#EXT-X-I-FRAME-STREAM-INF" | "#EXT-X-MEDIA" => {
                master_line.get_or_insert(n);
            }
            "#EXTINF" | "#EXT-X-TARGETDURATION" => {
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
        (Some(_), None) => parse_master(&lines, url).map(Playlist::Master),
        // No master tag: a media playlist, possibly still empty (live stream just starting).
        (None, _) => parse_media(&lines, url).map(Playlist::Media),
    }
}

/// Live/EVENT refresh: returns `new` with `start` times carried over from `old`.
///
/// Segments present in both (same media sequence number) keep the start `old` gave them; new
/// segments continue after the previous one. If `new` starts after the end of `old` (we missed
/// segments), its first segment is anchored at `old`'s end and `lost_sync` is set.
pub fn update(old: &MediaPlaylist, mut new: MediaPlaylist) -> Result<MediaPlaylist, ManifestError> {
    if new.media_sequence < old.media_sequence {
        return Err(ManifestError::SequenceWentBackwards {
            old: old.media_sequence,
            new: new.media_sequence,
        });
    }
    let old_end = old.segments.last().map_or(Duration::ZERO, Segment::end);
    // Sequence number that would directly follow `old`.
    let next_seq = old.media_sequence.saturating_add(old.segments.len() as u64);
    new.lost_sync = new.media_sequence > next_seq && !new.segments.is_empty();

    let mut t = old_end;
    for seg in &mut new.segments {
        seg.start = match old.find_sequence(seg.sequence) {
            Some(i) => old.segments[i].start,
            None => t,
        };
        t = seg.end();
    }
    Ok(new)
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

fn parse_media(lines: &[(usize, &str)], url: &Url) -> Result<MediaPlaylist, ManifestError> {
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
    // State that applies until changed.
    let mut key = KeyState::default();
    let mut init: Option<Resource> = None;
    let mut discontinuities = 0u64;
    // Resource and end offset of the previous segment's byte range (implicit offset rule).
    let mut prev_range: Option<(Url, u64)> = None;
    let mut t = Duration::ZERO;

    for &(n, line) in lines {
        if line.is_empty() {
            continue;
        }
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
                    playlist_type = match value.map(str::trim) {
                        Some("VOD") => Some(PlaylistKind::Vod),
                        Some("EVENT") => Some(PlaylistKind::Event),
                        _ => return Err(malformed(n, "invalid EXT-X-PLAYLIST-TYPE")),
                    }
                }
                "#EXT-X-ENDLIST" => end_list = true,
                "#EXT-X-I-FRAMES-ONLY" => {
                    return Err(ManifestError::Unsupported(
                        "I-frame-only media playlist (EXT-X-I-FRAMES-ONLY)".into(),
                    ))
                }
                "#EXT-X-SKIP" => {
                    return Err(ManifestError::Unsupported(
                        "playlist delta update (EXT-X-SKIP)".into(),
                    ))
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
                "#EXT-X-MAP" => init = Some(parse_map(value.unwrap_or(""), url, n)?),
                // PROGRAM-DATE-TIME, DATERANGE, START, LL-HLS tags, comments: not needed.
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
            key: key.for_segment(n)?,
            init: init.clone(),
            gap: pending_gap,
        });
        t += duration;
        pending_discontinuity = false;
        pending_gap = false;
    }
    // A trailing EXTINF/BYTERANGE without URI (truncated body) is simply dropped.

    for (i, seg) in segments.iter_mut().enumerate() {
        seg.sequence = media_sequence
            .checked_add(i as u64)
            .ok_or_else(|| malformed(1, "EXT-X-MEDIA-SEQUENCE overflows"))?;
        seg.discontinuity_sequence = discontinuity_base.saturating_add(seg.discontinuity_sequence);
    }

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

    fn for_segment(&self, _line: usize) -> Result<Option<Aes128Key>, ManifestError> {
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

fn parse_master(lines: &[(usize, &str)], url: &Url) -> Result<MasterPlaylist, ManifestError> {
    let mut variants = Vec::new();
    let mut renditions = Vec::new();
    // A STREAM-INF waiting for its URI line.
    let mut pending: Option<Variant> = None;

    for &(n, line) in lines {
        if line.is_empty() {
            continue;
        }
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
            variants.push(v);
        }
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
    })
}

fn parse_media_tag(
    value: &str,
    base: &Url,
    line: usize,
) -> Result<Option<Rendition>, ManifestError> {
    let attrs = parse_attributes(value, line)?;
    let stream_type = match attrs.get("TYPE") {
        Some("AUDIO") => StreamType::Audio,
        Some("VIDEO") => StreamType::Video,
        Some("SUBTITLES") => StreamType::Subtitles,
        Some("CLOSED-CAPTIONS") => StreamType::ClosedCaptions,
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
        (StreamType::ClosedCaptions, _) | (_, None) => None,
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
