//! Data-channel commands of PML 0.6 and PeerTube's fork of it (§4.2): JSON objects with
//! string segment ids `<stream swarm id>+<n>`, in text (the fork) or binary (0.6.2)
//! messages; everything that is not a command is payload, and a download completes by byte
//! count. [`PeerSession`](super::PeerSession) maps these onto the 2.x [`Command`]s.

use serde_json::Value;

use super::segment_id::WireSegmentId;
use super::wire::Command;

/// `enum MediaPeerCommands` of `media-peer.ts`.
const SEGMENT_DATA: u64 = 0;
const SEGMENT_ABSENT: u64 = 1;
const SEGMENTS_MAP: u64 = 2;
const SEGMENT_REQUEST: u64 = 3;
const CANCEL_SEGMENT_REQUEST: u64 = 4;

/// Segment status in a SegmentsMap (`SegmentStatus` of `hybrid-loader.ts`).
const LOADED: u64 = 0;
const LOADING_BY_HTTP: u64 = 1;

/// How a 0.6 integration numbers segments after `<stream swarm id>+`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ids06 {
    /// hls.js: the media sequence number (`mediaSequence + index`), VOD and live.
    #[default]
    Sequence,
    /// Shaka (DASH): the segment's start within its Period, `Number(start).toFixed(3)`; we
    /// hold it as integer milliseconds.
    Millis,
}

/// JS `x.toFixed(3)` as integer milliseconds: the n nearest to x·1000 computed exactly, the
/// larger on a tie (Rust's `{:.3}` rounds ties to even: 2.0625 is "2.063" in JS). None for
/// negative, non-finite or huge values.
pub fn to_fixed3_millis(x: f64) -> Option<WireSegmentId> {
    if !x.is_finite() || !(0.0..=9.0e12).contains(&x) {
        return None;
    }
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = u128::from(bits & ((1 << 52) - 1));
    // x = m · 2^e exactly.
    let (m, e) = if exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), exp - 1075)
    };
    let q = m * 1000;
    let n = if e >= 0 {
        q << e
    } else if -e >= 127 {
        0
    } else {
        let sh = (-e) as u32;
        (q + (1u128 << (sh - 1))) >> sh
    };
    WireSegmentId::try_from(n).ok()
}

/// `<stream swarm id>+<n>` (`+<s>.<mmm>` for [`Ids06::Millis`]).
pub fn segment_id_string(stream_swarm_id: &str, id: WireSegmentId, ids: Ids06) -> String {
    match ids {
        Ids06::Sequence => format!("{stream_swarm_id}+{id}"),
        Ids06::Millis => format!("{stream_swarm_id}+{}.{:03}", id / 1000, id % 1000),
    }
}

/// A segment id as a 0.6 peer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Id06 {
    /// `<our stream swarm id>+<n>`.
    Ours(WireSegmentId),
    /// Another variant's segment, or a form we do not use: only ever answered as absent.
    Foreign(String),
}

/// A decoded 0.6 command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command06 {
    /// Code 0: `s` payload bytes follow. `size` is None when `s` is not a number (PeerTube's
    /// fork ignores such a header; the request then times out).
    SegmentData { id: Id06, size: Option<i64> },
    /// Code 1.
    SegmentAbsent { id: Id06 },
    /// Code 2: the peer's full snapshot, our stream's entry only (other variants' entries
    /// are checked for shape and skipped).
    SegmentsMap {
        loaded: Vec<WireSegmentId>,
        http_loading: Vec<WireSegmentId>,
    },
    /// Code 3.
    SegmentRequest { id: Id06 },
    /// Code 4 (0.6 peers ignore it; we stop the upload).
    CancelSegmentRequest { id: Id06 },
}

/// What one incoming message turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming06 {
    Command(Command06),
    Payload,
    /// JSON that is a command by 0.6's test but not a valid one: dropped, as 0.6 does.
    Dropped,
}

/// 0.6's test (`media-peer.ts`): `{"` … `}` that parses as JSON is a command, anything else
/// payload.
fn looks_like_command(msg: &[u8]) -> bool {
    msg.len() >= 3 && msg.starts_with(b"{\"") && msg.ends_with(b"}")
}

/// Whether a payload chunk would be taken for a command by the receiver; the uploader
/// shortens such a chunk (a JSON-parsable chunk would abort the peer's download).
pub fn chunk_is_ambiguous(chunk: &[u8]) -> bool {
    looks_like_command(chunk) && serde_json::from_slice::<Value>(chunk).is_ok()
}

fn parse_number(s: &str, ids: Ids06) -> Option<WireSegmentId> {
    // Only the canonical form JS writes (`${n}`, `toFixed(3)`): it must round-trip.
    let n = match ids {
        Ids06::Sequence => s.parse().ok()?,
        Ids06::Millis => {
            let (int, frac) = s.split_once('.')?;
            let int: WireSegmentId = int.parse().ok()?;
            let frac: WireSegmentId = frac.parse().ok().filter(|_| frac.len() == 3)?;
            int.checked_mul(1000)?.checked_add(frac)?
        }
    };
    (n >= 0 && segment_id_string("", n, ids)[1..] == *s).then_some(n)
}

fn parse_id(stream_swarm_id: &str, s: &str, ids: Ids06) -> Id06 {
    s.strip_prefix(stream_swarm_id)
        .and_then(|rest| rest.strip_prefix('+'))
        .and_then(|n| parse_number(n, ids))
        .map_or_else(|| Id06::Foreign(s.to_owned()), Id06::Ours)
}

/// Decodes one message for the stream swarm `stream_swarm_id`; messages longer than
/// `max_command_bytes` are never parsed (payload if they do not look like a command).
pub fn decode(
    msg: &[u8],
    stream_swarm_id: &str,
    ids: Ids06,
    max_command_bytes: usize,
) -> Incoming06 {
    if !looks_like_command(msg) {
        return Incoming06::Payload;
    }
    if msg.len() > max_command_bytes {
        return Incoming06::Dropped;
    }
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(msg) else {
        return Incoming06::Payload;
    };
    let id = || {
        obj.get("i")
            .and_then(Value::as_str)
            .map(|s| parse_id(stream_swarm_id, s, ids))
    };
    let cmd = match obj.get("c").and_then(Value::as_u64) {
        Some(SEGMENT_DATA) => id().map(|id| Command06::SegmentData {
            id,
            size: obj.get("s").and_then(|s| {
                s.as_i64()
                    .or_else(|| s.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            }),
        }),
        Some(SEGMENT_ABSENT) => id().map(|id| Command06::SegmentAbsent { id }),
        Some(SEGMENTS_MAP) => decode_map(obj.get("m"), stream_swarm_id, ids),
        Some(SEGMENT_REQUEST) => id().map(|id| Command06::SegmentRequest { id }),
        Some(CANCEL_SEGMENT_REQUEST) => id().map(|id| Command06::CancelSegmentRequest { id }),
        _ => None,
    };
    cmd.map_or(Incoming06::Dropped, Incoming06::Command)
}

/// `{"<stream swarm id>": ["id|id|…", [status, …]], …}`; like 0.6, any malformed entry
/// rejects the whole map.
fn decode_map(m: Option<&Value>, stream_swarm_id: &str, ids: Ids06) -> Option<Command06> {
    let mut loaded = Vec::new();
    let mut http_loading = Vec::new();
    for (key, entry) in m?.as_object()? {
        let [names, statuses] = entry.as_array()?.as_slice() else {
            return None;
        };
        let (names, statuses) = (names.as_str()?, statuses.as_array()?);
        let names: Vec<&str> = if names.is_empty() {
            Vec::new()
        } else {
            names.split('|').collect()
        };
        if names.len() != statuses.len() {
            return None;
        }
        if key != stream_swarm_id {
            continue;
        }
        for (id, status) in names.iter().zip(statuses) {
            // Ids we cannot read are not ours to ask for; skipped, not fatal.
            let Some(id) = parse_number(id, ids) else {
                continue;
            };
            match status.as_u64() {
                Some(LOADED) => loaded.push(id),
                Some(LOADING_BY_HTTP) => http_loading.push(id),
                _ => {}
            }
        }
    }
    Some(Command06::SegmentsMap {
        loaded,
        http_loading,
    })
}

/// The JSON message for `cmd` (request ids are ours alone and not sent); None for
/// SegmentDataSendingCompleted, which 0.6 does not have (it counts bytes).
pub fn encode(cmd: &Command, stream_swarm_id: &str, ids: Ids06) -> Option<Vec<u8>> {
    let id = |id: WireSegmentId| Value::from(segment_id_string(stream_swarm_id, id, ids));
    let json = match cmd {
        Command::SegmentsAnnouncement {
            loaded,
            http_loading,
        } => {
            // 0.6 leaves a stream without segments out of the map.
            let mut m = serde_json::Map::new();
            if !loaded.is_empty() || !http_loading.is_empty() {
                let names: Vec<String> = loaded
                    .iter()
                    .chain(http_loading)
                    .map(|&n| segment_id_string("", n, ids)[1..].to_owned())
                    .collect();
                let statuses: Vec<u64> = std::iter::repeat_n(LOADED, loaded.len())
                    .chain(std::iter::repeat_n(LOADING_BY_HTTP, http_loading.len()))
                    .collect();
                m.insert(
                    stream_swarm_id.to_owned(),
                    serde_json::json!([names.join("|"), statuses]),
                );
            }
            serde_json::json!({ "c": SEGMENTS_MAP, "m": m })
        }
        Command::SegmentRequest { id: i, .. } => {
            serde_json::json!({ "c": SEGMENT_REQUEST, "i": id(*i) })
        }
        Command::SegmentData { id: i, size, .. } => {
            serde_json::json!({ "c": SEGMENT_DATA, "i": id(*i), "s": size })
        }
        Command::SegmentAbsent { id: i, .. } => {
            serde_json::json!({ "c": SEGMENT_ABSENT, "i": id(*i) })
        }
        Command::CancelSegmentRequest { id: i, .. } => {
            serde_json::json!({ "c": CANCEL_SEGMENT_REQUEST, "i": id(*i) })
        }
        Command::SegmentDataSendingCompleted { .. } => return None,
    };
    // serde_json's map is ordered by key here; "c" < "i" < "m" < "s" is also the order
    // JS's JSON.stringify writes these objects in.
    serde_json::to_vec(&json).ok()
}

/// SegmentAbsent for an id we do not serve, echoed verbatim.
pub fn encode_absent_foreign(id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "c": SEGMENT_ABSENT, "i": id })).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSID: &str = "https://example.com/live/master.m3u8+V0";

    fn text(cmd: &Command) -> String {
        String::from_utf8(encode(cmd, SSID, Ids06::Sequence).unwrap()).unwrap()
    }

    /// The reference's examples (§4.2), byte for byte.
    #[test]
    fn encodes_the_reference_examples() {
        assert_eq!(
            text(&Command::SegmentsAnnouncement {
                loaded: vec![100, 101],
                http_loading: vec![102]
            }),
            r#"{"c":2,"m":{"https://example.com/live/master.m3u8+V0":["100|101|102",[0,0,1]]}}"#
        );
        assert_eq!(
            text(&Command::SegmentRequest {
                id: 103,
                request_id: 7,
                byte_offset: 0
            }),
            r#"{"c":3,"i":"https://example.com/live/master.m3u8+V0+103"}"#
        );
        assert_eq!(
            text(&Command::SegmentData {
                id: 103,
                request_id: 7,
                size: 1_234_567
            }),
            r#"{"c":0,"i":"https://example.com/live/master.m3u8+V0+103","s":1234567}"#
        );
        assert_eq!(
            text(&Command::SegmentAbsent {
                id: 103,
                request_id: 7
            }),
            r#"{"c":1,"i":"https://example.com/live/master.m3u8+V0+103"}"#
        );
        assert_eq!(
            text(&Command::CancelSegmentRequest {
                id: 103,
                request_id: 7
            }),
            r#"{"c":4,"i":"https://example.com/live/master.m3u8+V0+103"}"#
        );
        assert_eq!(
            encode(
                &Command::SegmentDataSendingCompleted {
                    id: 1,
                    request_id: 1
                },
                SSID,
                Ids06::Sequence
            ),
            None
        );
        assert_eq!(
            text(&Command::SegmentsAnnouncement {
                loaded: vec![],
                http_loading: vec![]
            }),
            r#"{"c":2,"m":{}}"#
        );
    }

    #[test]
    fn decodes_and_round_trips() {
        let d = |s: &str| decode(s.as_bytes(), SSID, Ids06::Sequence, 1 << 20);
        assert_eq!(
            d(
                r#"{"c":2,"m":{"https://example.com/live/master.m3u8+V0":["100|101|102",[0,0,1]],"https://example.com/live/master.m3u8+V1":["7",[0]]}}"#
            ),
            Incoming06::Command(Command06::SegmentsMap {
                loaded: vec![100, 101],
                http_loading: vec![102]
            })
        );
        assert_eq!(
            d(r#"{"c":3,"i":"https://example.com/live/master.m3u8+V0+103"}"#),
            Incoming06::Command(Command06::SegmentRequest {
                id: Id06::Ours(103)
            })
        );
        // Another variant's segment, a leading zero, a DASH time: not ours.
        for other in ["+V1+103", "+V0+0103", "+V0+12.000", "+V0+-1"] {
            let i = format!("https://example.com/live/master.m3u8{other}");
            assert_eq!(
                d(&format!(r#"{{"c":3,"i":"{i}"}}"#)),
                Incoming06::Command(Command06::SegmentRequest {
                    id: Id06::Foreign(i)
                })
            );
        }
        assert_eq!(
            d(r#"{"c":0,"i":"https://example.com/live/master.m3u8+V0+5","s":"x"}"#),
            Incoming06::Command(Command06::SegmentData {
                id: Id06::Ours(5),
                size: None
            })
        );
        // Round trip of what we send.
        let cmd = Command::SegmentData {
            id: 9,
            request_id: 0,
            size: 70_000,
        };
        assert_eq!(
            decode(
                &encode(&cmd, SSID, Ids06::Sequence).unwrap(),
                SSID,
                Ids06::Sequence,
                1 << 20
            ),
            Incoming06::Command(Command06::SegmentData {
                id: Id06::Ours(9),
                size: Some(70_000)
            })
        );
    }

    /// Shaka's DASH ids (helper run on the interop fixture: `…+V1+0.000`, `+2.000`, …).
    #[test]
    fn dash_ids_are_to_fixed_3() {
        let ssid = "http://127.0.0.1:8080/dash/manifest.mpd+V1";
        assert_eq!(to_fixed3_millis(0.0), Some(0));
        assert_eq!(to_fixed3_millis(26.0), Some(26_000));
        // Exact ties go up (JS), not to even (Rust's formatting).
        assert_eq!(to_fixed3_millis(2.0625), Some(2063));
        assert_eq!(to_fixed3_millis(0.0005), Some(1)); // 0.0005 is a hair above
        assert_eq!(to_fixed3_millis(1.0005), Some(1000)); // …and this a hair below
        assert_eq!(to_fixed3_millis(0.1 * 3.0), Some(300));
        assert_eq!(to_fixed3_millis(-1.0), None);
        assert_eq!(
            segment_id_string(ssid, 2000, Ids06::Millis),
            format!("{ssid}+2.000")
        );
        assert_eq!(
            segment_id_string(ssid, 12_345, Ids06::Millis),
            format!("{ssid}+12.345")
        );
        let cmd = Command::SegmentsAnnouncement {
            loaded: vec![0, 2000],
            http_loading: vec![4000],
        };
        let msg = encode(&cmd, ssid, Ids06::Millis).unwrap();
        assert_eq!(
            String::from_utf8(msg.clone()).unwrap(),
            format!(r#"{{"c":2,"m":{{"{ssid}":["0.000|2.000|4.000",[0,0,1]]}}}}"#)
        );
        assert_eq!(
            decode(&msg, ssid, Ids06::Millis, 1 << 20),
            Incoming06::Command(Command06::SegmentsMap {
                loaded: vec![0, 2000],
                http_loading: vec![4000]
            })
        );
        for (text, want) in [
            ("6.000", Id06::Ours(6000)),
            ("6", Id06::Foreign(format!("{ssid}+6"))),
            ("6.0000", Id06::Foreign(format!("{ssid}+6.0000"))),
            ("06.000", Id06::Foreign(format!("{ssid}+06.000"))),
        ] {
            let m = format!(r#"{{"c":3,"i":"{ssid}+{text}"}}"#);
            assert_eq!(
                decode(m.as_bytes(), ssid, Ids06::Millis, 1 << 20),
                Incoming06::Command(Command06::SegmentRequest { id: want })
            );
        }
    }

    #[test]
    fn payload_and_bad_commands() {
        let d = |s: &[u8]| decode(s, SSID, Ids06::Sequence, 1 << 20);
        assert_eq!(d(b"\x47\x40\x11"), Incoming06::Payload);
        // Looks like a command but is not JSON: payload, as in 0.6.
        assert_eq!(d(b"{\"abc}"), Incoming06::Payload);
        assert_eq!(d(b"{\"c\":9}"), Incoming06::Dropped);
        assert_eq!(d(b"{\"c\":3}"), Incoming06::Dropped);
        // A map with one malformed entry is rejected whole.
        assert_eq!(
            d(br#"{"c":2,"m":{"https://example.com/live/master.m3u8+V0":["1|2",[0]]}}"#),
            Incoming06::Dropped
        );
        assert_eq!(
            d(br#"{"c":2,"m":{"https://example.com/live/master.m3u8+V0":["1",[0]],"x":5}}"#),
            Incoming06::Dropped
        );
        // Too long to parse.
        let long = format!(r#"{{"c":1,"i":"{}"}}"#, "x".repeat(100));
        assert_eq!(
            decode(long.as_bytes(), SSID, Ids06::Sequence, 50),
            Incoming06::Dropped
        );
        assert!(chunk_is_ambiguous(b"{\"a\":1}"));
        assert!(!chunk_is_ambiguous(b"{\"a\":1} "));
        assert_eq!(
            encode_absent_foreign("x+V1+3"),
            br#"{"c":1,"i":"x+V1+3"}"#.to_vec()
        );
    }
}
