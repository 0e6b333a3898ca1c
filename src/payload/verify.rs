//! Strict checks for segment data from peers, which nothing authenticates: the bytes must be
//! the stream's own container, well formed throughout, with timestamps where the origin's own
//! segments put them. [`sniff`](super::sniff::sniff) only recognises a container; a liar that
//! sends 0x47 every 188 bytes passes it. Pure, no I/O.
//!
//! [`Plausibility`] learns from the origin's segments (trusted) and judges the peers'.
//! It cannot tell a well-made forgery from the real thing (PML carries no hashes); it makes
//! forging cost a real muxer, and random or stale data fail.

use std::collections::HashMap;

use super::sniff::{sniff, Container};

const TS_PACKET: usize = 188;
const TS_NULL_PID: u16 = 0x1fff;
/// More distinct PIDs than any real multiplex carries: random packet headers.
const TS_MAX_PIDS: usize = 64;
/// PTS/DTS are 33-bit counters of a 90 kHz clock.
const PTS_MODULO: i64 = 1 << 33;

/// Stands for the ID3 timestamp of packed audio among MPEG-TS PIDs.
const ID3_PID: u16 = 0xffff;

/// What a strict parse found: the first timestamp, where the container has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// No timestamp found (or the container has none we read).
    None,
    /// (PID, 90-kHz PTS) of the first PES of each PID (MPEG-TS; PIDs differ in offset, and a
    /// segment may open on any of them), or the ID3 `transportStreamTimestamp` of packed audio.
    Pts(Vec<(u16, u64)>),
    /// fMP4: the first `tfdt` (decode time in the track's timescale) and its track.
    Tfdt { track: u32, time: u64 },
}

/// Parses `data` as `container` strictly.
pub fn check(container: Container, data: &[u8]) -> Result<Timing, String> {
    match container {
        Container::MpegTs => check_ts(data),
        Container::IsoBmff => check_bmff_media(data),
        Container::PackedAudio => check_packed_audio(data),
        // Text and WebM clusters: recognised is all we check.
        Container::WebVtt | Container::WebM => Ok(Timing::None),
    }
}

/// Every packet starts with 0x47 and has a valid header; continuity counters run on per PID;
/// a plausible number of PIDs. Returns the first PES's PTS.
fn check_ts(data: &[u8]) -> Result<Timing, String> {
    if data.len() < TS_PACKET {
        return Err("MPEG-TS: shorter than one packet".into());
    }
    // Some packagers leave a partial packet at the end; every whole packet must be sound.
    let packets = data.len() / TS_PACKET;
    let mut last_cc: HashMap<u16, u8> = HashMap::new();
    let mut cc_errors = 0usize;
    let mut first_pts: Vec<(u16, u64)> = Vec::new();
    for (n, p) in data.chunks_exact(TS_PACKET).enumerate() {
        if p[0] != 0x47 {
            return Err(format!("MPEG-TS: packet {n} has no sync byte"));
        }
        if p[1] & 0x80 != 0 {
            return Err(format!("MPEG-TS: packet {n} flags a transport error"));
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        let afc = (p[3] >> 4) & 0x3;
        let cc = p[3] & 0x0f;
        // Null packets are stuffing: some muxers write them with any header bits.
        if pid == TS_NULL_PID {
            continue;
        }
        if afc == 0 {
            return Err(format!(
                "MPEG-TS: packet {n} has a reserved adaptation field control"
            ));
        }
        let mut payload_at = 4;
        let mut discontinuity = false;
        if afc & 0x2 != 0 {
            let af_len = p[4] as usize;
            let max = if afc == 0x2 { 183 } else { 182 };
            if af_len > max || (afc == 0x2 && af_len != 183) {
                return Err(format!(
                    "MPEG-TS: packet {n} has a bad adaptation field length"
                ));
            }
            discontinuity = af_len > 0 && p[5] & 0x80 != 0;
            payload_at = 5 + af_len;
        }
        if afc & 0x1 != 0 {
            let expected = last_cc.get(&pid).map(|c| (c + 1) & 0x0f);
            // A repeated counter is a legal duplicate packet.
            if expected.is_some_and(|e| e != cc && (e + 15) & 0x0f != cc) && !discontinuity {
                cc_errors += 1;
            }
            last_cc.insert(pid, cc);
            if last_cc.len() > TS_MAX_PIDS {
                return Err(format!("MPEG-TS: more than {TS_MAX_PIDS} PIDs"));
            }
            if pusi && !first_pts.iter().any(|(p, _)| *p == pid) {
                if let Some(pts) = pes_pts(&p[payload_at.min(TS_PACKET)..]) {
                    first_pts.push((pid, pts));
                }
            }
        }
    }
    // Real segments may carry the odd counter jump (a packager's splice); random headers
    // break nearly every one.
    if cc_errors > 2 + packets / 100 {
        return Err(format!(
            "MPEG-TS: {cc_errors} continuity errors in {packets} packets"
        ));
    }
    Ok(if first_pts.is_empty() {
        Timing::None
    } else {
        Timing::Pts(first_pts)
    })
}

/// PTS of a PES header at the start of `payload`, if it has one.
fn pes_pts(payload: &[u8]) -> Option<u64> {
    if payload.len() < 14 || payload[..3] != [0, 0, 1] {
        return None;
    }
    // Stream ids without the optional PES header (padding, private 2, ...) carry no PTS.
    let stream_id = payload[3];
    if !(0xbd..=0xef).contains(&stream_id) || stream_id == 0xbe || stream_id == 0xbf {
        return None;
    }
    if payload[6] & 0xc0 != 0x80 || payload[7] & 0x80 == 0 {
        return None;
    }
    Some(read_pts(&payload[9..14]))
}

/// The 33-bit timestamp of a PES header's 5 PTS bytes (or ID3's 8-byte big-endian field).
fn read_pts(b: &[u8]) -> u64 {
    (((b[0] as u64 >> 1) & 0x07) << 30)
        | ((b[1] as u64) << 22)
        | (((b[2] as u64) >> 1) << 15)
        | ((b[3] as u64) << 7)
        | ((b[4] as u64) >> 1)
}

/// A media segment: top-level boxes tile the data (checked by `sniff`), at least one `moof`
/// followed by an `mdat`, each `moof` with a `traf` that has a `tfhd`. Returns the first `tfdt`.
fn check_bmff_media(data: &[u8]) -> Result<Timing, String> {
    if sniff(data) != Some(Container::IsoBmff) {
        return Err("fMP4: the boxes do not tile the data".into());
    }
    let mut moofs = 0usize;
    let mut mdat_after_moof = false;
    let mut first = None;
    for (kind, body) in boxes(data) {
        match &kind {
            b"moof" => {
                moofs += 1;
                mdat_after_moof = false;
                let timing = moof_timing(body)?;
                first = first.or(timing);
            }
            b"mdat" if moofs > 0 => mdat_after_moof = true,
            b"moov" | b"ftyp" => return Err("fMP4: an init segment where media belongs".into()),
            _ => {}
        }
    }
    if moofs == 0 || !mdat_after_moof {
        return Err("fMP4: no moof followed by an mdat".into());
    }
    Ok(first.unwrap_or(Timing::None))
}

fn moof_timing(moof: &[u8]) -> Result<Option<Timing>, String> {
    let mut trafs = 0;
    let mut first = None;
    for (kind, traf) in boxes(moof) {
        if &kind != b"traf" {
            continue;
        }
        trafs += 1;
        let mut track = None;
        let mut time = None;
        for (kind, b) in boxes(traf) {
            match &kind {
                b"tfhd" if b.len() >= 8 => {
                    track = Some(u32::from_be_bytes([b[4], b[5], b[6], b[7]]))
                }
                b"tfdt" if b.len() >= 8 => {
                    time = match (b[0], b.get(4..12)) {
                        (1, Some(t)) => Some(u64::from_be_bytes(t.try_into().unwrap_or([0; 8]))),
                        _ => Some(u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as u64),
                    }
                }
                _ => {}
            }
        }
        let Some(track) = track else {
            return Err("fMP4: a traf without a tfhd".into());
        };
        if first.is_none() {
            first = time.map(|time| Timing::Tfdt { track, time });
        }
    }
    if trafs == 0 {
        return Err("fMP4: a moof without a traf".into());
    }
    Ok(first)
}

/// The boxes inside `data` (a top-level run or a container box's body); stops at the first
/// malformed header. Full-box bodies include their version and flags.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(pos..pos + 8)?;
        let kind: [u8; 4] = header[4..8].try_into().ok()?;
        let (size, skip) = match u32::from_be_bytes(header[..4].try_into().ok()?) {
            0 => (data.len() - pos, 8),
            1 => (
                usize::try_from(u64::from_be_bytes(
                    data.get(pos + 8..pos + 16)?.try_into().ok()?,
                ))
                .ok()?,
                16,
            ),
            s => (s as usize, 8),
        };
        if size < skip || size > data.len() - pos {
            return None;
        }
        let body = &data[pos + skip..pos + size];
        pos += size;
        Some((kind, body))
    })
}

/// Packed audio (RFC 8216 3.4): optional ID3v2 tags, then a chain of ADTS or MPEG audio frames
/// that tiles the rest exactly. Returns the ID3 `transportStreamTimestamp`, if present.
fn check_packed_audio(data: &[u8]) -> Result<Timing, String> {
    let mut pos = 0usize;
    let mut pts = None;
    while data.get(pos..pos + 3) == Some(b"ID3") {
        let h = data
            .get(pos..pos + 10)
            .ok_or("packed audio: a cut ID3 header")?;
        if h[6..10].iter().any(|b| b & 0x80 != 0) {
            return Err("packed audio: an ID3 size that is not syncsafe".into());
        }
        let size = h[6..10].iter().fold(0usize, |a, b| (a << 7) | *b as usize);
        let footer = if h[5] & 0x10 != 0 { 10 } else { 0 };
        let end = pos + 10 + size + footer;
        if end > data.len() {
            return Err("packed audio: an ID3 tag longer than the data".into());
        }
        pts = pts.or_else(|| id3_timestamp(&data[pos + 10..pos + 10 + size]));
        pos = end;
    }
    let mut frames = 0usize;
    while pos < data.len() {
        let len = audio_frame_len(&data[pos..])
            .ok_or_else(|| format!("packed audio: no frame header at byte {pos}"))?;
        if pos + len > data.len() {
            return Err(format!("packed audio: frame {frames} runs past the end"));
        }
        pos += len;
        frames += 1;
    }
    if frames == 0 {
        return Err("packed audio: no audio frames".into());
    }
    Ok(pts.map_or(Timing::None, |pts| Timing::Pts(vec![(ID3_PID, pts)])))
}

/// Length of the ADTS or MPEG-1/2 audio frame at the start of `b`.
fn audio_frame_len(b: &[u8]) -> Option<usize> {
    if b.len() < 7 || b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
        return None;
    }
    let layer = (b[1] >> 1) & 0x3;
    if b[1] & 0xf6 == 0xf0 {
        // ADTS: 12 sync bits, layer 0; 13-bit frame length including the header.
        let len = (((b[3] & 0x03) as usize) << 11) | ((b[4] as usize) << 3) | (b[5] as usize >> 5);
        return (len >= 7).then_some(len);
    }
    // MPEG audio: version (1, 2, 2.5), layer, bitrate and sample-rate indexes.
    let version = (b[1] >> 3) & 0x3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    if version == 1 || layer == 0 {
        return None;
    }
    let bitrate_index = (b[2] >> 4) as usize;
    let rate_index = ((b[2] >> 2) & 0x3) as usize;
    let padding = ((b[2] >> 1) & 0x1) as usize;
    if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const RATES: [usize; 3] = [44_100, 48_000, 32_000];
    let rate = RATES[rate_index]
        >> if version == 3 {
            0
        } else if version == 2 {
            1
        } else {
            2
        };
    const BITRATES: [[usize; 15]; 5] = [
        [
            0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ], // V1 L1
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ], // V1 L2
        [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ], // V1 L3
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ], // V2 L1
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160], // V2 L2/L3
    ];
    let table = match (version == 3, layer) {
        (true, 3) => 0,
        (true, 2) => 1,
        (true, _) => 2,
        (false, 3) => 3,
        (false, _) => 4,
    };
    let kbps = BITRATES[table][bitrate_index] * 1000;
    let len = match layer {
        3 => (12 * kbps / rate + padding) * 4,
        1 if version != 3 => 72 * kbps / rate + padding,
        _ => 144 * kbps / rate + padding,
    };
    (len >= 4).then_some(len)
}

/// The `PRIV` frame `com.apple.streaming.transportStreamTimestamp` of an ID3v2 tag body.
fn id3_timestamp(tag: &[u8]) -> Option<u64> {
    const OWNER: &[u8] = b"com.apple.streaming.transportStreamTimestamp\0";
    let at = tag.windows(OWNER.len()).position(|w| w == OWNER)?;
    let ts = tag.get(at + OWNER.len()..at + OWNER.len() + 8)?;
    Some(u64::from_be_bytes(ts.try_into().ok()?) & (PTS_MODULO as u64 - 1))
}

/// Why peer data was judged implausible.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doubt {
    pub reason: String,
    pub kind: DoubtKind,
}

/// How much a [`Doubt`] says about the peer that sent the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoubtKind {
    /// Not the stream's media, or not well formed: no honest peer sends that.
    Malformed,
    /// Well-formed media whose timestamps are not where the origin's put them: a stale or
    /// foreign segment, or an origin that disagrees with itself (a renumbered timeline). The
    /// only doubt an honest peer can earn, so it is not held against it at once.
    Misplaced,
    /// No origin segment of this discontinuity has been seen yet, so its timestamps cannot be
    /// judged: the data may be right, but a replayed segment would pass. Says nothing about
    /// the peer; the segment comes from the origin, which then anchors the rest.
    Unanchored,
}

impl std::fmt::Display for Doubt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// What the origin's segments taught about a stream, for judging peers' copies of others.
#[derive(Debug, Default, Clone)]
pub struct Plausibility {
    /// By discontinuity sequence (HLS may switch containers across a discontinuity).
    containers: HashMap<u64, Container>,
    /// By discontinuity sequence, containers whose origin segments fail the strict parse
    /// (AC-3 packed audio, free-format MP3, odd muxers): peers are never held to a rule the
    /// origin itself breaks — there, and not in every later discontinuity.
    lenient: HashMap<u64, Vec<Container>>,
    /// By (discontinuity sequence, PID): 90-kHz timestamp minus the segment's start, from the
    /// latest origin segment (drift and re-anchoring follow the origin).
    pts_offset: HashMap<(u64, u16), i64>,
    /// By (discontinuity sequence, track): up to two trusted (start ms, tfdt) points; two
    /// give the track's timescale.
    tfdt: HashMap<(u64, u32), TfdtPoints>,
}

/// Discontinuities remembered: the newest ones taught (a live stream that loops with
/// EXT-X-DISCONTINUITY would otherwise grow the maps above for as long as it runs). DASH numbers
/// them by Period start in ms, so this counts distinct values, not a numeric window.
const KEPT_DISCONTINUITIES: usize = 8;

#[derive(Debug, Default, Clone, Copy)]
struct TfdtPoints {
    first: Option<(u64, u64)>,
    second: Option<(u64, u64)>,
}

/// Where a segment sits on the playlist's timeline.
#[derive(Debug, Clone, Copy)]
pub struct Place {
    pub start_ms: u64,
    pub duration_ms: u64,
    pub discontinuity_sequence: u64,
}

impl Place {
    /// How far a real segment's timestamps may stray from where the latest origin segment
    /// puts them: playlist durations are rounded and drift, the first PES may be a reordered
    /// frame; a neighbour's bytes are a whole segment off, so half a segment catches them.
    fn slack_ms(&self) -> u64 {
        (self.duration_ms / 2).max(750)
    }
}

impl Plausibility {
    /// The origin's data for the segment at `place` (trusted): learn its container and
    /// timestamps. Data that is not media teaches nothing.
    pub fn learn(&mut self, place: Place, data: &[u8]) {
        let Some(container) = sniff(data) else {
            return;
        };
        let disc = place.discontinuity_sequence;
        self.containers.insert(disc, container);
        if self.containers.len() > KEPT_DISCONTINUITIES {
            let mut discs: Vec<u64> = self.containers.keys().copied().collect();
            discs.sort_unstable();
            self.forget_before(discs[discs.len() - KEPT_DISCONTINUITIES]);
        }
        let slack = place.slack_ms() as i64;
        match check(container, data) {
            Ok(Timing::Pts(list)) => {
                for (pid, pts) in list {
                    let offset = pts as i64 - place.start_ms as i64 * 90;
                    self.pts_offset.insert((disc, pid), offset);
                }
            }
            Ok(Timing::Tfdt { track, time }) => {
                let p = self.tfdt.entry((disc, track)).or_default();
                match p.first {
                    None => p.first = Some((place.start_ms, time)),
                    // The origin disagrees with what it taught (a re-anchored timeline, a
                    // renumbered Period): start again from this point.
                    Some(_) if judge_tfdt(p, place, time, slack).is_err() => {
                        *p = TfdtPoints {
                            first: Some((place.start_ms, time)),
                            second: None,
                        }
                    }
                    Some((s, _)) if s != place.start_ms => p.second = Some((place.start_ms, time)),
                    _ => {}
                }
            }
            Ok(Timing::None) => {}
            Err(_) => {
                let lenient = self.lenient.entry(disc).or_default();
                if !lenient.contains(&container) {
                    lenient.push(container);
                }
            }
        }
    }

    /// Whether peers' data for the segment at `place` can be judged: an origin segment of its
    /// discontinuity has taught where its timestamps belong. Until then a replayed segment of
    /// the same stream would pass every check, so such segments come from the origin.
    pub fn anchored(&self, place: Place) -> bool {
        self.containers.contains_key(&place.discontinuity_sequence)
    }

    fn forget_before(&mut self, disc: u64) {
        self.containers.retain(|d, _| *d >= disc);
        self.lenient.retain(|d, _| *d >= disc);
        self.pts_offset.retain(|(d, _), _| *d >= disc);
        self.tfdt.retain(|(d, _), _| *d >= disc);
    }

    /// Judges a peer's data for the segment at `place`: the stream's own container, well
    /// formed, with timestamps where the origin's segments put them.
    pub fn judge(&self, place: Place, data: &[u8]) -> Result<(), Doubt> {
        if !self.anchored(place) {
            return Err(Doubt {
                reason: format!(
                    "no origin segment of discontinuity {} yet to judge it by",
                    place.discontinuity_sequence
                ),
                kind: DoubtKind::Unanchored,
            });
        }
        self.judge_inner(place, data)
            .map_err(|(reason, misplaced)| Doubt {
                reason,
                kind: if misplaced {
                    DoubtKind::Misplaced
                } else {
                    DoubtKind::Malformed
                },
            })
    }

    fn judge_inner(&self, place: Place, data: &[u8]) -> Result<(), (String, bool)> {
        let bad = |r: String| (r, false);
        let disc = place.discontinuity_sequence;
        let container = match (self.containers.get(&disc), sniff(data)) {
            (_, None) => return Err(bad("not media".into())),
            (Some(want), Some(got)) if *want != got => {
                return Err(bad(format!("{got:?} where the stream carries {want:?}")))
            }
            (_, Some(got)) => got,
        };
        if self
            .lenient
            .get(&disc)
            .is_some_and(|l| l.contains(&container))
        {
            return Ok(());
        }
        let slack = place.slack_ms() as i64;
        let learned_pts = self.pts_offset.keys().any(|(d, _)| *d == disc);
        match check(container, data).map_err(bad)? {
            Timing::Pts(list) => {
                // Judged on the PIDs the origin's segments taught.
                for (pid, pts) in list {
                    let Some(offset) = self.pts_offset.get(&(disc, pid)) else {
                        continue;
                    };
                    let expected = place.start_ms as i64 * 90 + offset;
                    let off = wrap_pts(pts as i64 - expected);
                    if off.abs() > slack * 90 {
                        let why = format!("timestamps {} ms from the segment's place", off / 90);
                        return Err((why, true));
                    }
                }
            }
            Timing::Tfdt { track, time } => {
                let key = (place.discontinuity_sequence, track);
                if let Some(p) = self.tfdt.get(&key) {
                    judge_tfdt(p, place, time, slack).map_err(|why| (why, true))?;
                } else if self
                    .tfdt
                    .keys()
                    .any(|(d, _)| *d == place.discontinuity_sequence)
                {
                    return Err(bad(format!("fMP4: track {track} is not the stream's")));
                }
            }
            Timing::None => {
                // The origin's segments had timestamps; this one should too.
                if matches!(container, Container::MpegTs | Container::IsoBmff)
                    && (learned_pts || self.tfdt.keys().any(|(d, _)| *d == disc))
                {
                    return Err(bad("no timestamps where the stream has them".into()));
                }
            }
        }
        Ok(())
    }
}

fn judge_tfdt(p: &TfdtPoints, place: Place, time: u64, slack_ms: i64) -> Result<(), String> {
    let Some((s1, t1)) = p.first else {
        return Ok(());
    };
    let start = place.start_ms as i64;
    let (s1, t1) = (s1 as i64, t1 as i128);
    match p.second {
        Some((s2, t2)) => {
            // Ticks per millisecond from the two trusted points.
            let per_ms = (t2 as i128 - t1) as f64 / (s2 as i64 - s1) as f64;
            if per_ms <= 0.0 {
                return Ok(());
            }
            let expected = t1 as f64 + (start - s1) as f64 * per_ms;
            let off_ms = (time as f64 - expected) / per_ms;
            if off_ms.abs() > slack_ms as f64 {
                return Err(format!(
                    "fMP4: tfdt {off_ms:.0} ms from the segment's place"
                ));
            }
        }
        None => {
            // One point: at least the order must agree.
            let later = time as i128 > t1;
            let same = time as i128 == t1;
            let ok = match start.cmp(&s1) {
                std::cmp::Ordering::Greater => later,
                std::cmp::Ordering::Less => !later && !same,
                std::cmp::Ordering::Equal => same,
            };
            if !ok {
                return Err("fMP4: tfdt out of order with the origin's segments".into());
            }
        }
    }
    Ok(())
}

/// A PTS difference brought into (−2^32, 2^32]: the 33-bit clock wraps every 26.5 hours.
fn wrap_pts(d: i64) -> i64 {
    let d = d.rem_euclid(PTS_MODULO);
    if d > PTS_MODULO / 2 {
        d - PTS_MODULO
    } else {
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `packets` MPEG-TS packets on PID 0x100: a PES with `pts` first, continuity counters
    /// counting, the payload filled from `fill`.
    pub(crate) fn ts_segment(pts: u64, packets: usize, fill: u8) -> Vec<u8> {
        ts_pid(0x100, pts, packets, fill)
    }

    fn ts_pid(pid: u16, pts: u64, packets: usize, fill: u8) -> Vec<u8> {
        let mut v = vec![fill; packets * TS_PACKET];
        let [hi, lo] = pid.to_be_bytes();
        for (n, p) in v.chunks_mut(TS_PACKET).enumerate() {
            let start = if n == 0 { 0x40 } else { 0 };
            p[..4].copy_from_slice(&[0x47, start | hi, lo, 0x10 | (n as u8 & 0x0f)]);
            if n == 0 {
                p[4..13].copy_from_slice(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5]);
                p[13] = 0x21 | (((pts >> 30) as u8 & 0x07) << 1);
                p[14] = (pts >> 22) as u8;
                p[15] = (((pts >> 15) as u8) << 1) | 1;
                p[16] = (pts >> 7) as u8;
                p[17] = ((pts as u8) << 1) | 1;
            }
        }
        v
    }

    fn bmff_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut v = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.extend_from_slice(body);
        v
    }

    fn fmp4_segment(track: u32, tfdt: u64) -> Vec<u8> {
        let mut tfhd = vec![0, 0, 0, 0];
        tfhd.extend(track.to_be_bytes());
        let mut tfdt_body = vec![1, 0, 0, 0];
        tfdt_body.extend(tfdt.to_be_bytes());
        let traf = [bmff_box(b"tfhd", &tfhd), bmff_box(b"tfdt", &tfdt_body)].concat();
        let moof = bmff_box(b"moof", &bmff_box(b"traf", &traf));
        [
            bmff_box(b"styp", b"msdh"),
            moof,
            bmff_box(b"mdat", &[7; 300]),
        ]
        .concat()
    }

    fn adts(frames: usize) -> Vec<u8> {
        let len = 100usize;
        let mut f = vec![0xff, 0xf1, 0x50, 0x80, 0, 0x1f, 0xfc];
        f[3] |= ((len >> 11) & 0x3) as u8;
        f[4] = (len >> 3) as u8;
        f[5] |= ((len & 0x7) as u8) << 5;
        f.resize(len, 0x11);
        let mut id3 = b"ID3\x04\x00\x00".to_vec();
        let mut body = b"PRIV".to_vec();
        let owner = b"com.apple.streaming.transportStreamTimestamp\0";
        body.extend(((owner.len() + 8) as u32).to_be_bytes());
        body.extend([0, 0]);
        body.extend(owner);
        body.extend(900_000u64.to_be_bytes());
        id3.extend([0, 0, 0, body.len() as u8]);
        id3.extend(body);
        [id3, f.repeat(frames)].concat()
    }

    fn place(start_ms: u64) -> Place {
        Place {
            start_ms,
            duration_ms: 2000,
            discontinuity_sequence: 0,
        }
    }

    #[test]
    fn well_formed_segments_pass_and_give_their_timestamps() {
        assert_eq!(
            check_ts(&ts_segment(123_456, 20, 0xaa)),
            Ok(Timing::Pts(vec![(0x100, 123_456)]))
        );
        assert_eq!(
            check_bmff_media(&fmp4_segment(1, 90_000)),
            Ok(Timing::Tfdt {
                track: 1,
                time: 90_000
            })
        );
        assert_eq!(
            check_packed_audio(&adts(5)),
            Ok(Timing::Pts(vec![(ID3_PID, 900_000)]))
        );
        // MP3: MPEG-1 Layer III, 128 kbit/s, 44.1 kHz: 417-byte frames.
        let mut mp3 = vec![0xff, 0xfb, 0x90, 0x00];
        mp3.resize(417, 0);
        assert_eq!(check_packed_audio(&mp3.repeat(3)), Ok(Timing::None));
    }

    #[test]
    fn plausible_looking_garbage_fails() {
        let mut rng = crate::schedule::Rng::new(7);
        let mut garbage = vec![0u8; 188 * 50];
        for (k, b) in garbage.iter_mut().enumerate() {
            *b = if k % 188 == 0 {
                0x47
            } else {
                rng.next_u64() as u8
            };
        }
        assert!(check_ts(&garbage).is_err());
        // Headers fine, continuity broken throughout (packets shuffled).
        let good = ts_segment(0, 40, 0);
        let shuffled: Vec<u8> = good
            .chunks(188)
            .enumerate()
            .map(|(n, p)| good.chunks(188).nth((n * 7) % 40).unwrap_or(p))
            .flat_map(|p| p.iter().copied())
            .collect();
        assert!(check_ts(&shuffled).is_err());
        // fMP4 without mdat, or an init segment in a media slot.
        let seg = fmp4_segment(1, 0);
        assert!(check_bmff_media(&seg[..seg.len() - 308]).is_err());
        let init = [bmff_box(b"ftyp", b"iso6"), bmff_box(b"moov", &[0; 16])].concat();
        assert!(check_bmff_media(&init).is_err());
        // ADTS: "FF Fx" then nothing chained.
        let mut audio = adts(3);
        let n = audio.len();
        audio[n - 100] = 0; // the third frame's header
        assert!(check_packed_audio(&audio).is_err());
        assert!(check_packed_audio(&[0xff, 0xf1, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn timestamps_are_judged_against_the_origin() {
        let mut p = Plausibility::default();
        // Origin segment 0 at 10 s of the timeline carries PTS 10 s + 1 h.
        let offset = 3_600 * 90_000;
        p.learn(place(10_000), &ts_segment(offset + 900_000, 20, 1));
        let at = |ms: u64| ts_segment(offset + ms * 90, 20, 2);
        assert_eq!(p.judge(place(12_000), &at(12_000)), Ok(()));
        assert_eq!(
            p.judge(place(12_000), &at(12_500)),
            Ok(()),
            "drift is tolerated"
        );
        // Another segment's bytes (stale, replayed): far off.
        assert!(p.judge(place(12_000), &at(40_000)).is_err());
        // Another discontinuity: nothing learned there, so nothing can be judged (a replayed
        // segment would pass a structure check): the origin's copy, without blame.
        let other = Place {
            discontinuity_sequence: 1,
            ..place(12_000)
        };
        for data in [at(12_000), at(40_000)] {
            let doubt = p.judge(other, &data).unwrap_err();
            assert_eq!(doubt.kind, DoubtKind::Unanchored, "{doubt}");
        }
        // Once the origin served a segment of it, its timestamps anchor the rest.
        let pts_1 = 7_200 * 90_000;
        p.learn(other, &ts_segment(pts_1, 20, 1));
        let later = Place {
            discontinuity_sequence: 1,
            ..place(16_000)
        };
        assert_eq!(p.judge(later, &ts_segment(pts_1 + 360_000, 20, 2)), Ok(()));
        let stale = p.judge(later, &ts_segment(pts_1, 20, 2)).unwrap_err();
        assert_eq!(stale.kind, DoubtKind::Misplaced, "{stale}");
        // Nothing learned at all: a joiner's first segment comes from the origin too.
        let fresh = Plausibility::default();
        let first = fresh.judge(place(0), &at(0)).unwrap_err();
        assert_eq!(first.kind, DoubtKind::Unanchored);
        // A stream that loops with a discontinuity per lap keeps only the latest few.
        let mut looping = Plausibility::default();
        for disc in 0..100u64 {
            let here = Place {
                discontinuity_sequence: disc,
                ..place(disc * 2_000)
            };
            looping.learn(here, &ts_segment(0, 20, 1));
        }
        assert_eq!(looping.containers.len(), KEPT_DISCONTINUITIES);
        assert_eq!(looping.pts_offset.len(), KEPT_DISCONTINUITIES);
        assert!(looping.anchored(Place {
            discontinuity_sequence: 99,
            ..place(0)
        }));
        // The wrong container.
        let wrong = p.judge(place(12_000), &fmp4_segment(1, 0)).unwrap_err();
        assert_eq!(wrong.kind, DoubtKind::Malformed);
        // PTS wraps at 2^33.
        let mut w = Plausibility::default();
        w.learn(place(0), &ts_segment((1 << 33) - 90_000, 20, 1));
        assert_eq!(w.judge(place(2_000), &ts_segment(90_000, 20, 1)), Ok(()));
    }

    #[test]
    fn tfdt_is_judged_by_order_then_by_timescale() {
        let mut p = Plausibility::default();
        p.learn(place(0), &fmp4_segment(1, 0));
        assert_eq!(p.judge(place(2_000), &fmp4_segment(1, 180_000)), Ok(()));
        assert!(
            p.judge(place(2_000), &fmp4_segment(1, 0)).is_err(),
            "same time as segment 0"
        );
        assert!(
            p.judge(place(2_000), &fmp4_segment(2, 180_000)).is_err(),
            "foreign track"
        );
        p.learn(place(4_000), &fmp4_segment(1, 360_000)); // 90 kHz
        assert_eq!(p.judge(place(2_000), &fmp4_segment(1, 180_000)), Ok(()));
        assert!(
            p.judge(place(2_000), &fmp4_segment(1, 900_000)).is_err(),
            "8 s late"
        );
    }

    /// The origin's own segments set the bar: a rule they break is not held against peers,
    /// timestamps are compared PID by PID, the container per discontinuity, and the origin
    /// can re-anchor what it taught.
    #[test]
    fn the_origin_sets_the_bar() {
        // AC-3 packed audio (not a frame chain we parse): peers are judged by sniffing only.
        let mut ac3 = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
        ac3.extend([0x0b, 0x77, 1, 2, 3, 4, 5, 6]);
        let mut p = Plausibility::default();
        p.learn(place(0), &ac3);
        assert_eq!(p.judge(place(2_000), &ac3), Ok(()));
        // The origin's segment opens on audio (PID 0x101), the peer's on video (0x100).
        let mut p = Plausibility::default();
        let origin = [
            ts_pid(0x101, 900_000 + 30_000, 5, 1),
            ts_pid(0x100, 900_000, 5, 1),
        ]
        .concat();
        p.learn(place(10_000), &origin);
        let peer = [
            ts_pid(0x100, 1_080_000, 5, 2),
            ts_pid(0x101, 1_110_000, 5, 2),
        ]
        .concat();
        assert_eq!(p.judge(place(12_000), &peer), Ok(()));
        let stale = [ts_pid(0x100, 900_000, 5, 2), ts_pid(0x101, 930_000, 5, 2)].concat();
        assert!(p.judge(place(12_000), &stale).is_err());
        // Null packets with any header bits are stuffing.
        let mut nulls = ts_segment(0, 10, 3);
        nulls[188 * 5 + 1] = 0x1f;
        nulls[188 * 5 + 2] = 0xff;
        nulls[188 * 5 + 3] = 0x00;
        assert!(check_ts(&nulls).is_ok());
        // TS ads in an fMP4 stream, across a discontinuity.
        let mut p = Plausibility::default();
        p.learn(place(0), &ts_segment(0, 10, 1));
        let content = Place {
            discontinuity_sequence: 1,
            ..place(30_000)
        };
        p.learn(content, &fmp4_segment(1, 0));
        let next = Place {
            discontinuity_sequence: 1,
            ..place(32_000)
        };
        assert_eq!(p.judge(next, &fmp4_segment(1, 180_000)), Ok(()));
        // A renumbered timeline: the origin's newer point replaces the old one.
        let mut p = Plausibility::default();
        p.learn(place(0), &fmp4_segment(1, 0));
        p.learn(place(2_000), &fmp4_segment(1, 180_000));
        p.learn(place(4_000), &fmp4_segment(1, 90_000_000));
        assert_eq!(
            p.judge(place(6_000), &fmp4_segment(1, 90_000_000 + 180_000)),
            Ok(())
        );
    }
}
