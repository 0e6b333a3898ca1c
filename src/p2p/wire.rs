//! Data-channel wire codec of PML 2.x (§4.1): the six binary commands, value
//! encodings, `cstr`/`cend` framing with splitting, and an incremental
//! decoder that tells commands from raw segment payload with bounded buffering.

use std::collections::{HashMap, HashSet};

use super::segment_id::WireSegmentId;

/// Largest data-channel message PML sends (`webRtcMaxMessageSize`).
pub const MAX_MESSAGE_SIZE: usize = 65_535;
/// Default cap on one (joined) command body. The largest announcement a JS
/// peer can send that JS decoders accept is ~135 KB (2 × 255 groups × 255 ids).
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 256 * 1024;

const CSTR: &[u8; 4] = b"cstr";
const DSTR: &[u8; 4] = b"dstr";
const CEND: &[u8; 4] = b"cend";
const DEND: &[u8; 4] = b"dend";
const FRAME_LEN: usize = 8;
/// JS writes a group's count in one byte, so 256 ids encode as 0 and break
/// JS decoders; we never emit more than 255 per group.
const MAX_GROUP_IDS: usize = 255;
/// The group count is one byte too (JS wraps it mod 256).
const MAX_GROUPS: usize = 255;

const TYPE_INT: u8 = 0;
const TYPE_SIMILAR_INT_ARRAY: u8 = 1;
const TYPE_STRING: u8 = 2;

/// A peer command (§4.1.4). Integers are JS Numbers on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Code 0: full snapshot of stored (`l`) and HTTP-loading (`p`) ids.
    SegmentsAnnouncement {
        /// Ids stored locally.
        loaded: Vec<WireSegmentId>,
        /// Ids being downloaded over HTTP.
        http_loading: Vec<WireSegmentId>,
    },
    /// Code 1: downloader asks for `id` from `byte_offset` (`b`, sent only if non-zero).
    SegmentRequest {
        /// Segment id (`i`).
        id: WireSegmentId,
        /// Request id (`r`).
        request_id: i64,
        /// Resume offset (`b`); 0 when absent.
        byte_offset: i64,
    },
    /// Code 2: uploader header; `size` (`s`) payload bytes follow.
    SegmentData {
        /// Segment id (`i`).
        id: WireSegmentId,
        /// Request id (`r`).
        request_id: i64,
        /// Bytes that follow (`s` = length − b).
        size: i64,
    },
    /// Code 3: uploader sent all payload.
    SegmentDataSendingCompleted {
        /// Segment id (`i`).
        id: WireSegmentId,
        /// Request id (`r`).
        request_id: i64,
    },
    /// Code 4: uploader cannot serve the request.
    SegmentAbsent {
        /// Segment id (`i`).
        id: WireSegmentId,
        /// Request id (`r`).
        request_id: i64,
    },
    /// Code 5: downloader aborts its request.
    CancelSegmentRequest {
        /// Segment id (`i`).
        id: WireSegmentId,
        /// Request id (`r`).
        request_id: i64,
    },
}

impl Command {
    /// Command code byte.
    pub fn code(&self) -> u8 {
        match self {
            Command::SegmentsAnnouncement { .. } => 0,
            Command::SegmentRequest { .. } => 1,
            Command::SegmentData { .. } => 2,
            Command::SegmentDataSendingCompleted { .. } => 3,
            Command::SegmentAbsent { .. } => 4,
            Command::CancelSegmentRequest { .. } => 5,
        }
    }
}

/// Why a command message was dropped (PML drops malformed commands silently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Empty command body.
    Empty,
    /// Command code outside 0..=5.
    UnknownCommand(u8),
    /// Value type tag other than Int/SimilarIntArray/String.
    UnknownType(u8),
    /// Body ended inside a value.
    Truncated,
    /// An integer does not fit the field.
    IntOutOfRange,
    /// A required field is missing or has the wrong type.
    BadField(u8),
    /// Command exceeds the configured size cap.
    TooLarge,
    /// Continuation chunk without a preceding `cstr` chunk.
    NoFirstChunk,
}

// ---------------------------------------------------------------- encoding

/// Appends a sign-magnitude Int: `[0x0L][L bytes BE]`, one spare bit.
fn push_int(out: &mut Vec<u8>, v: i64) {
    let mag = v.unsigned_abs();
    let bitlen = (64 - mag.leading_zeros()).max(1) as usize;
    // At most 9 bytes for |v| ≤ 2^63; widen so the spare sign bit fits.
    let len = (bitlen + 1).div_ceil(8);
    out.push((TYPE_INT << 4) | len as u8);
    let start = out.len();
    out.extend_from_slice(&(mag as u128).to_be_bytes()[16 - len..]);
    if v < 0 {
        out[start] |= 0x80;
    }
}

/// Appends a SimilarIntArray of distinct `ids` (first-occurrence order).
/// Groups are capped at 255 ids (a 256-id block is split) and at 255 groups
/// (excess groups with the lowest ids are dropped), since JS decoders break
/// otherwise and an announcement must remain a single snapshot.
fn push_similar_int_array(out: &mut Vec<u8>, ids: &[WireSegmentId]) {
    let mut seen = HashSet::with_capacity(ids.len());
    let mut index: HashMap<i64, usize> = HashMap::new();
    let mut groups: Vec<(i64, Vec<u8>)> = Vec::new();
    for &id in ids {
        if !seen.insert(id) {
            continue;
        }
        let common = id & !0xff;
        let slot = *index.entry(common).or_insert_with(|| {
            groups.push((common, Vec::new()));
            groups.len() - 1
        });
        groups[slot].1.push((id & 0xff) as u8);
    }
    let mut split: Vec<(i64, &[u8])> = Vec::with_capacity(groups.len());
    for (common, lows) in &groups {
        for chunk in lows.chunks(MAX_GROUP_IDS) {
            split.push((*common, chunk));
        }
    }
    if split.len() > MAX_GROUPS {
        let mut order: Vec<usize> = (0..split.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(split[i].0));
        let mut keep = vec![false; split.len()];
        for &i in &order[..MAX_GROUPS] {
            keep[i] = true;
        }
        let mut k = keep.iter();
        split.retain(|_| k.next().copied().unwrap_or(false));
    }
    out.push(TYPE_SIMILAR_INT_ARRAY << 4);
    out.push(split.len() as u8);
    for (common, lows) in split {
        push_int(out, common | lows.len() as i64);
        out.extend_from_slice(lows);
    }
}

/// Serialises a command body (unframed), in PML's field order.
pub fn encode_body(cmd: &Command) -> Vec<u8> {
    let mut out = vec![cmd.code()];
    let int = |out: &mut Vec<u8>, name: u8, v: i64| {
        out.push(name);
        push_int(out, v);
    };
    match cmd {
        Command::SegmentsAnnouncement {
            loaded,
            http_loading,
        } => {
            for (name, ids) in [(b'l', loaded), (b'p', http_loading)] {
                if !ids.is_empty() {
                    out.push(name);
                    push_similar_int_array(&mut out, ids);
                }
            }
        }
        Command::SegmentRequest {
            id,
            request_id,
            byte_offset,
        } => {
            int(&mut out, b'i', *id);
            int(&mut out, b'r', *request_id);
            if *byte_offset != 0 {
                int(&mut out, b'b', *byte_offset);
            }
        }
        Command::SegmentData {
            id,
            request_id,
            size,
        } => {
            int(&mut out, b'i', *id);
            int(&mut out, b's', *size);
            int(&mut out, b'r', *request_id);
        }
        Command::SegmentDataSendingCompleted { id, request_id }
        | Command::SegmentAbsent { id, request_id }
        | Command::CancelSegmentRequest { id, request_id } => {
            int(&mut out, b'i', *id);
            int(&mut out, b'r', *request_id);
        }
    }
    out
}

fn framed(start: &[u8; 4], body: &[u8], end: &[u8; 4]) -> Vec<u8> {
    let mut m = Vec::with_capacity(body.len() + FRAME_LEN);
    m.extend_from_slice(start);
    m.extend_from_slice(body);
    m.extend_from_slice(end);
    m
}

/// Frames a body into data-channel messages of at most `max_message_size`
/// bytes, splitting like PML's `BinaryCommandCreator` (equal pieces).
pub fn frame_body(body: &[u8], max_message_size: usize) -> Vec<Vec<u8>> {
    // At least one body byte per message, whatever the caller configured.
    let max = max_message_size.max(FRAME_LEN + 1);
    if body.len() + FRAME_LEN <= max {
        return vec![framed(CSTR, body, CEND)];
    }
    let mut n = body.len().div_ceil(max);
    if body.len().div_ceil(n) + FRAME_LEN > max {
        n += 1;
    }
    // PML increments once; for tiny limits keep going so no message is oversized.
    while body.len().div_ceil(n) + FRAME_LEN > max {
        n += 1;
    }
    let piece = body.len().div_ceil(n);
    (0..n)
        .map(|i| {
            let from = (i * piece).min(body.len());
            let to = ((i + 1) * piece).min(body.len());
            let start = if i == 0 { CSTR } else { DSTR };
            let end = if i == n - 1 { CEND } else { DEND };
            framed(start, &body[from..to], end)
        })
        .collect()
}

/// Encodes and frames a command into data-channel messages.
pub fn encode_command(cmd: &Command, max_message_size: usize) -> Vec<Vec<u8>> {
    frame_body(&encode_body(cmd), max_message_size)
}

// ---------------------------------------------------------------- decoding

/// PML's test: starts with `cstr`/`dstr` and ends with `cend`/`dend`
/// (anything else is raw segment payload).
pub fn is_command_chunk(msg: &[u8]) -> bool {
    msg.len() >= FRAME_LEN
        && (msg.starts_with(CSTR) || msg.starts_with(DSTR))
        && (msg.ends_with(CEND) || msg.ends_with(DEND))
}

enum Value {
    Int(i128),
    Ints(Vec<WireSegmentId>),
    Other,
}

/// Reads an Int; returns (value, bytes consumed). `L = 0` reads as 0 like JS.
fn read_int(b: &[u8]) -> Result<(i128, usize), DecodeError> {
    let header = *b.first().ok_or(DecodeError::Truncated)?;
    let len = (header & 0x0f) as usize;
    let mag = b.get(1..1 + len).ok_or(DecodeError::Truncated)?;
    let mut v: i128 = 0;
    for (k, &byte) in mag.iter().enumerate() {
        let byte = if k == 0 { byte & 0x7f } else { byte };
        v = (v << 8) | byte as i128; // ≤ 119 bits: cannot overflow
    }
    if mag.first().is_some_and(|f| f & 0x80 != 0) {
        v = -v;
    }
    Ok((v, 1 + len))
}

fn to_i64(v: i128) -> Result<i64, DecodeError> {
    i64::try_from(v).map_err(|_| DecodeError::IntOutOfRange)
}

fn read_similar_int_array(b: &[u8]) -> Result<(Vec<WireSegmentId>, usize), DecodeError> {
    let groups = *b.get(1).ok_or(DecodeError::Truncated)?;
    let mut pos = 2;
    let mut ids = Vec::new();
    for _ in 0..groups {
        let (v, used) = read_int(b.get(pos..).ok_or(DecodeError::Truncated)?)?;
        pos += used;
        // Two's-complement masks, as JS BigInt does on the sign-magnitude value.
        // Count 0 can only come from JS's 256-id bug: read it as 256.
        let count = match (v & 0xff) as usize {
            0 => 256,
            c => c,
        };
        let common = v & !0xff;
        let lows = b.get(pos..pos + count).ok_or(DecodeError::Truncated)?;
        pos += count;
        for &low in lows {
            ids.push(to_i64(common | low as i128)?);
        }
    }
    Ok((ids, pos))
}

/// Decodes an unframed command body. Field order is irrelevant, unknown
/// fields are skipped, the last duplicate wins (as in PML).
pub fn decode_body(body: &[u8]) -> Result<Command, DecodeError> {
    let (&code, _) = body.split_first().ok_or(DecodeError::Empty)?;
    let mut fields: Vec<(u8, Value)> = Vec::new();
    let mut pos = 1;
    while pos < body.len() {
        let name = body[pos];
        pos += 1;
        let rest = body
            .get(pos..)
            .filter(|r| !r.is_empty())
            .ok_or(DecodeError::Truncated)?;
        let (value, used) = match rest[0] >> 4 {
            TYPE_INT => read_int(rest).map(|(v, n)| (Value::Int(v), n))?,
            TYPE_SIMILAR_INT_ARRAY => {
                read_similar_int_array(rest).map(|(v, n)| (Value::Ints(v), n))?
            }
            TYPE_STRING => {
                // 12-bit length; PML's decoder reads that many bytes.
                let len = (((rest[0] & 0x0f) as usize) << 8)
                    | *rest.get(1).ok_or(DecodeError::Truncated)? as usize;
                if rest.len() < 2 + len {
                    return Err(DecodeError::Truncated);
                }
                (Value::Other, 2 + len)
            }
            t => return Err(DecodeError::UnknownType(t)),
        };
        pos += used;
        fields.retain(|(n, _)| *n != name);
        fields.push((name, value));
    }
    let get = |name: u8| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v);
    let int = |name: u8| match get(name) {
        Some(Value::Int(v)) => to_i64(*v),
        _ => Err(DecodeError::BadField(name)),
    };
    let ids = |name: u8| match get(name) {
        None => Ok(Vec::new()),
        Some(Value::Ints(v)) => Ok(v.clone()),
        Some(_) => Err(DecodeError::BadField(name)),
    };
    Ok(match code {
        0 => Command::SegmentsAnnouncement {
            loaded: ids(b'l')?,
            http_loading: ids(b'p')?,
        },
        1 => Command::SegmentRequest {
            id: int(b'i')?,
            request_id: int(b'r')?,
            byte_offset: match get(b'b') {
                None => 0,
                Some(_) => int(b'b')?,
            },
        },
        2 => Command::SegmentData {
            id: int(b'i')?,
            request_id: int(b'r')?,
            size: int(b's')?,
        },
        3 => Command::SegmentDataSendingCompleted {
            id: int(b'i')?,
            request_id: int(b'r')?,
        },
        4 => Command::SegmentAbsent {
            id: int(b'i')?,
            request_id: int(b'r')?,
        },
        5 => Command::CancelSegmentRequest {
            id: int(b'i')?,
            request_id: int(b'r')?,
        },
        c => return Err(DecodeError::UnknownCommand(c)),
    })
}

/// What one incoming data-channel message turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A complete command.
    Command(Command),
    /// Raw segment payload (borrowed from the message).
    Payload(&'a [u8]),
    /// Part of a multi-message command; more to come.
    Partial,
    /// A command (or partial command) was dropped.
    Dropped(DecodeError),
}

/// Incremental reassembler/decoder for one data channel. Buffers at most
/// `max_command_bytes` of a split command; payload is never buffered.
#[derive(Debug, Clone)]
pub struct Decoder {
    partial: Vec<u8>,
    joining: bool,
    max_command_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_COMMAND_BYTES)
    }
}

impl Decoder {
    /// Decoder that drops commands whose body exceeds `max_command_bytes`.
    pub fn new(max_command_bytes: usize) -> Self {
        Self {
            partial: Vec::new(),
            joining: false,
            max_command_bytes,
        }
    }

    /// Bytes currently held for an incomplete command.
    pub fn buffered_len(&self) -> usize {
        self.partial.len()
    }

    fn reset(&mut self) {
        self.partial = Vec::new();
        self.joining = false;
    }

    /// Classifies and, for commands, reassembles/decodes one message.
    /// Payload may interleave with the parts of a split command.
    pub fn push<'a>(&mut self, msg: &'a [u8]) -> Incoming<'a> {
        if !is_command_chunk(msg) {
            return Incoming::Payload(msg);
        }
        let inner = &msg[4..msg.len() - 4];
        let last = msg.ends_with(CEND);
        if msg.starts_with(CSTR) {
            // A new command while joining: PML drops both; we keep the new one.
            self.reset();
            if inner.len() > self.max_command_bytes {
                return Incoming::Dropped(DecodeError::TooLarge);
            }
            if last {
                return Self::finish(decode_body(inner));
            }
            self.partial.extend_from_slice(inner);
            self.joining = true;
            return Incoming::Partial;
        }
        if !self.joining {
            return Incoming::Dropped(DecodeError::NoFirstChunk);
        }
        if self.partial.len() + inner.len() > self.max_command_bytes {
            self.reset();
            return Incoming::Dropped(DecodeError::TooLarge);
        }
        self.partial.extend_from_slice(inner);
        if !last {
            return Incoming::Partial;
        }
        let body = std::mem::take(&mut self.partial);
        self.joining = false;
        Self::finish(decode_body(&body))
    }

    fn finish<'a>(r: Result<Command, DecodeError>) -> Incoming<'a> {
        match r {
            Ok(c) => Incoming::Command(c),
            Err(e) => Incoming::Dropped(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn int_bytes(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        push_int(&mut out, v);
        out
    }

    #[test]
    fn int_vectors() {
        let cases: &[(i64, &str)] = &[
            (0, "01 00"),
            (1, "01 01"),
            (127, "01 7f"),
            (128, "02 00 80"),
            (255, "02 00 ff"),
            (256, "02 01 00"),
            (32767, "02 7f ff"),
            (32768, "03 00 80 00"),
            (65535, "03 00 ff ff"),
            (1_000_000, "03 0f 42 40"),
            (2_147_483_648, "05 00 80 00 00 00"),
            (3_400_000_000, "05 00 ca a7 e2 00"),
            ((1 << 53) - 1, "07 1f ff ff ff ff ff ff"),
            (-1, "01 81"),
            (-128, "02 80 80"),
            (-255, "02 80 ff"),
        ];
        for (v, h) in cases {
            assert_eq!(int_bytes(*v), hex(h), "encode {v}");
            assert_eq!(
                read_int(&hex(h)),
                Ok((*v as i128, hex(h).len())),
                "decode {v}"
            );
        }
        assert_eq!(read_int(&[0x00]), Ok((0, 1)));
        assert_eq!(read_int(&[0x02, 0x01]), Err(DecodeError::Truncated));
    }

    #[test]
    fn similar_int_array_vector_and_negatives() {
        let mut out = Vec::new();
        push_similar_int_array(&mut out, &[100, 101, 102, 355]);
        assert_eq!(out, hex("10 02 | 01 03 | 64 65 66 | 02 01 01 | 63"));
        assert_eq!(
            read_similar_int_array(&out),
            Ok((vec![100, 101, 102, 355], out.len()))
        );
        let ids = vec![-1, -2, -300, 5, i64::MAX, i64::MIN, -(1 << 53)];
        let mut out = Vec::new();
        push_similar_int_array(&mut out, &ids);
        assert_eq!(read_similar_int_array(&out).unwrap().0, ids);
    }

    #[test]
    fn command_vectors() {
        let r = 457;
        let cases = vec![
            (
                Command::SegmentsAnnouncement {
                    loaded: vec![100, 101, 102, 355],
                    http_loading: vec![103],
                },
                "63 73 74 72 00 6c 10 02 01 03 64 65 66 02 01 01 63 70 10 01 01 01 67 63 65 6e 64",
            ),
            (
                Command::SegmentsAnnouncement {
                    loaded: vec![],
                    http_loading: vec![],
                },
                "63 73 74 72 00 63 65 6e 64",
            ),
            (
                Command::SegmentRequest {
                    id: 103,
                    request_id: r,
                    byte_offset: 0,
                },
                "63 73 74 72 01 69 01 67 72 02 01 c9 63 65 6e 64",
            ),
            (
                Command::SegmentRequest {
                    id: 103,
                    request_id: r,
                    byte_offset: 65535,
                },
                "63 73 74 72 01 69 01 67 72 02 01 c9 62 03 00 ff ff 63 65 6e 64",
            ),
            (
                Command::SegmentData {
                    id: 103,
                    request_id: r,
                    size: 1_234_567,
                },
                "63 73 74 72 02 69 01 67 73 03 12 d6 87 72 02 01 c9 63 65 6e 64",
            ),
            (
                Command::SegmentDataSendingCompleted {
                    id: 103,
                    request_id: r,
                },
                "63 73 74 72 03 69 01 67 72 02 01 c9 63 65 6e 64",
            ),
            (
                Command::SegmentAbsent {
                    id: 103,
                    request_id: r,
                },
                "63 73 74 72 04 69 01 67 72 02 01 c9 63 65 6e 64",
            ),
            (
                Command::CancelSegmentRequest {
                    id: 103,
                    request_id: r,
                },
                "63 73 74 72 05 69 01 67 72 02 01 c9 63 65 6e 64",
            ),
            (
                Command::SegmentRequest {
                    id: 3_400_000_000,
                    request_id: 0,
                    byte_offset: 0,
                },
                "63 73 74 72 01 69 05 00 ca a7 e2 00 72 01 00 63 65 6e 64",
            ),
        ];
        for (cmd, h) in cases {
            let msgs = encode_command(&cmd, MAX_MESSAGE_SIZE);
            assert_eq!(msgs, vec![hex(h)], "{cmd:?}");
            let mut d = Decoder::default();
            assert_eq!(d.push(&msgs[0]), Incoming::Command(cmd));
        }
    }

    #[test]
    fn split_vector_max_chunk_20() {
        let ids: Vec<i64> = (1..=20).collect();
        let cmd = Command::SegmentsAnnouncement {
            loaded: ids,
            http_loading: vec![],
        };
        let msgs = encode_command(&cmd, 20);
        assert_eq!(
            msgs,
            vec![
                hex("63 73 74 72 | 00 6c 10 01 01 14 01 02 03 | 64 65 6e 64"),
                hex("64 73 74 72 | 04 05 06 07 08 09 0a 0b 0c | 64 65 6e 64"),
                hex("64 73 74 72 | 0d 0e 0f 10 11 12 13 14    | 63 65 6e 64"),
            ]
        );
        let mut d = Decoder::default();
        assert_eq!(d.push(&msgs[0]), Incoming::Partial);
        // Payload interleaved with a split command passes through untouched.
        assert_eq!(d.push(b"payload"), Incoming::Payload(b"payload"));
        assert_eq!(d.push(&msgs[1]), Incoming::Partial);
        assert_eq!(d.push(&msgs[2]), Incoming::Command(cmd));
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn large_announcement_splits_under_limit_and_round_trips() {
        // 250 groups per field (full blocks are split in two): still within
        // the 255-group limit, and together bigger than one message.
        let cmd = Command::SegmentsAnnouncement {
            loaded: (0..32_000).collect(),
            http_loading: (100_000..132_000).collect(),
        };
        for max in [MAX_MESSAGE_SIZE, 1000, 9, 3] {
            let msgs = encode_command(&cmd, max);
            assert!(msgs.len() > 1);
            assert!(msgs.iter().all(|m| m.len() <= max.max(9)), "max {max}");
            let mut d = Decoder::default();
            let mut out = None;
            for m in &msgs {
                if let Incoming::Command(c) = d.push(m) {
                    out = Some(c);
                }
            }
            assert_eq!(out.as_ref(), Some(&cmd));
        }
    }

    /// Simulates PML's JS decoder (count byte taken literally, G literal).
    fn js_decode_similar(b: &[u8]) -> Option<Vec<i64>> {
        let groups = *b.get(1)?;
        let mut pos = 2;
        let mut ids = Vec::new();
        for _ in 0..groups {
            let (v, used) = read_int(b.get(pos..)?).ok()?;
            pos += used;
            let count = (v & 0xff) as usize;
            for k in 0..count {
                ids.push(((v & !0xff) | *b.get(pos + k)? as i128) as i64);
            }
            pos += count;
        }
        Some(ids)
    }

    #[test]
    fn never_emits_full_256_group_or_too_many_groups() {
        // VOD ids 0..=255 all cached: JS would write count 0.
        let ids: Vec<i64> = (0..256).collect();
        let mut out = Vec::new();
        push_similar_int_array(&mut out, &ids);
        assert_eq!(&out[..4], &hex("10 02 02 00 ff")[..4]);
        let mut got = js_decode_similar(&out).unwrap();
        got.sort();
        assert_eq!(got, ids);
        // 300 sparse groups: keep the 255 highest.
        let ids: Vec<i64> = (0..300).map(|g| g * 256).collect();
        let mut out = Vec::new();
        push_similar_int_array(&mut out, &ids);
        assert_eq!(out[1], 255);
        let got = js_decode_similar(&out).unwrap();
        assert_eq!(got, (45..300).map(|g| g * 256).collect::<Vec<_>>());
        // Duplicates are sent once.
        let mut out = Vec::new();
        push_similar_int_array(&mut out, &[5, 5, 6]);
        assert_eq!(js_decode_similar(&out).unwrap(), vec![5, 6]);
    }

    #[test]
    fn lenient_decoding() {
        // JS's buggy encoding of 0..=255: count byte 0 means 256.
        let mut body = hex("00 6c 10 01 01 00");
        body.extend(0..=255u8);
        match decode_body(&body) {
            Ok(Command::SegmentsAnnouncement { loaded, .. }) => {
                assert_eq!(loaded, (0..256).collect::<Vec<_>>())
            }
            other => panic!("{other:?}"),
        }
        // Field order is irrelevant; unknown fields (incl. strings) are skipped.
        let body = hex("03 72 02 01 c9 78 01 05 7a 20 03 61 62 63 69 01 67");
        assert_eq!(
            decode_body(&body),
            Ok(Command::SegmentDataSendingCompleted {
                id: 103,
                request_id: 457
            })
        );
        // Duplicate field: last wins.
        let body = hex("04 69 01 01 72 01 02 69 01 03");
        assert_eq!(
            decode_body(&body),
            Ok(Command::SegmentAbsent {
                id: 3,
                request_id: 2
            })
        );
    }

    #[test]
    fn malformed_commands_are_dropped() {
        assert_eq!(decode_body(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_body(&[9]), Err(DecodeError::UnknownCommand(9)));
        assert_eq!(
            decode_body(&hex("01 69 01 67")),
            Err(DecodeError::BadField(b'r'))
        );
        assert_eq!(
            decode_body(&hex("01 69 31 67")),
            Err(DecodeError::UnknownType(3))
        );
        assert_eq!(decode_body(&hex("01 69")), Err(DecodeError::Truncated));
        assert_eq!(
            decode_body(&hex("00 6c 10 02 01 01 05")),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_body(&hex("05 69 09 00 ff ff ff ff ff ff ff ff 72 01 00")),
            Err(DecodeError::IntOutOfRange)
        );
        assert_eq!(
            decode_body(&hex("00 6c 01 05")),
            Err(DecodeError::BadField(b'l'))
        );
        let mut d = Decoder::default();
        assert_eq!(d.push(b"cstrcend"), Incoming::Dropped(DecodeError::Empty));
        assert_eq!(
            d.push(b"dstr\x01cend"),
            Incoming::Dropped(DecodeError::NoFirstChunk)
        );
        // Short or half-framed messages are payload.
        assert_eq!(d.push(b"cstr"), Incoming::Payload(b"cstr"));
        assert_eq!(d.push(b"cstr\x00"), Incoming::Payload(b"cstr\x00"));
    }

    #[test]
    fn new_command_start_discards_unfinished_one() {
        let cmd = Command::SegmentAbsent {
            id: 1,
            request_id: 2,
        };
        let mut d = Decoder::default();
        assert_eq!(d.push(b"cstr\x00\x6cdend"), Incoming::Partial);
        assert_eq!(
            d.push(&encode_command(&cmd, MAX_MESSAGE_SIZE)[0]),
            Incoming::Command(cmd)
        );
        assert_eq!(d.buffered_len(), 0);
    }

    #[test]
    fn buffering_is_capped() {
        let mut d = Decoder::new(100);
        assert_eq!(d.push(&framed(CSTR, &[0; 60], DEND)), Incoming::Partial);
        assert_eq!(
            d.push(&framed(DSTR, &[0; 60], DEND)),
            Incoming::Dropped(DecodeError::TooLarge)
        );
        assert_eq!(d.buffered_len(), 0);
        // The rest of the oversized command is dropped too.
        assert_eq!(
            d.push(&framed(DSTR, &[0; 10], CEND)),
            Incoming::Dropped(DecodeError::NoFirstChunk)
        );
        assert_eq!(
            d.push(&framed(CSTR, &[0; 101], CEND)),
            Incoming::Dropped(DecodeError::TooLarge)
        );
    }
}
