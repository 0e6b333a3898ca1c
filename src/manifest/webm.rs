//! WebM (Matroska) segment indexes for DASH SegmentBase: the Cues element an `indexRange`
//! points at, read with the initialization range (for the Segment's data offset and size and
//! the Info's TimecodeScale and Duration), as Shaka Player's `webm_segment_index_parser.js`
//! does. Pure: bytes in, byte ranges and times out; bounded, no panics.

/// Matroska element IDs (with their length marker, as written).
const EBML: u32 = 0x1A45_DFA3;
const SEGMENT: u32 = 0x1853_8067;
const INFO: u32 = 0x1549_A966;
const TIMECODE_SCALE: u32 = 0x2A_D7B1;
const DURATION: u32 = 0x4489;
const CUES: u32 = 0x1C53_BB6B;
const CUE_POINT: u32 = 0xBB;
const CUE_TIME: u32 = 0xB3;
const CUE_TRACK_POSITIONS: u32 = 0xB7;
const CUE_CLUSTER_POSITION: u32 = 0xF1;

/// Cue points read at most (a 24-h file cut every second has 86,400).
pub const MAX_CUES: usize = 200_000;

/// What the initialization range says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WebmInit {
    /// Byte offset (in the file) where the Segment element's data starts: cluster positions
    /// count from here.
    pub segment_data_offset: u64,
    /// Size of the Segment's data; `None` when written as unknown (live).
    pub segment_data_size: Option<u64>,
    /// Nanoseconds per Matroska timecode unit (TimecodeScale, default 1,000,000).
    pub timecode_scale: u64,
    /// Info Duration, in timecode units.
    pub duration: Option<f64>,
}

/// One cue: a cluster start and its time, in timecode units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CuePoint {
    pub time: u64,
    pub cluster_position: u64,
}

/// Reads the initialization range (from the start of the file): EBML header, then the
/// Segment's header and, inside it, Info.
pub fn parse_init(bytes: &[u8]) -> Result<WebmInit, String> {
    let mut r = Reader { bytes, pos: 0 };
    let (id, size) = r.header()?;
    if id != EBML {
        return Err(format!("not WebM: first element {id:#x}"));
    }
    r.skip(size.ok_or("EBML header of unknown size")?)?;
    let (id, segment_size) = r.header()?;
    if id != SEGMENT {
        return Err(format!(
            "no Segment after the EBML header (element {id:#x})"
        ));
    }
    let segment_data_offset = r.pos as u64;
    let mut init = WebmInit {
        segment_data_offset,
        segment_data_size: segment_size,
        timecode_scale: 1_000_000,
        duration: None,
    };
    // Top-level children until Info (SeekHead, Void... come first); the range may end there.
    while r.pos < bytes.len() {
        let (id, size) = r.header()?;
        let size = size.ok_or("element of unknown size before Info")?;
        if id != INFO {
            r.skip(size)?;
            continue;
        }
        let mut info = r.sub(size)?;
        while info.pos < info.bytes.len() {
            let (id, size) = info.header()?;
            let size = size.ok_or("Info child of unknown size")?;
            let body = info.take(size)?;
            match id {
                TIMECODE_SCALE => init.timecode_scale = uint(body)?.max(1),
                DURATION => init.duration = Some(float(body)?),
                _ => {}
            }
        }
        return Ok(init);
    }
    Err("no Info element in the initialization range".into())
}

/// Reads the Cues element (the `indexRange`): every CuePoint's time and first cluster
/// position, in order.
pub fn parse_cues(bytes: &[u8]) -> Result<Vec<CuePoint>, String> {
    let mut r = Reader { bytes, pos: 0 };
    let (id, size) = r.header()?;
    if id != CUES {
        return Err(format!("indexRange is not a Cues element ({id:#x})"));
    }
    let mut cues = r.sub(size.ok_or("Cues of unknown size")?)?;
    let mut out = Vec::new();
    while cues.pos < cues.bytes.len() {
        let (id, size) = cues.header()?;
        let body = cues.take(size.ok_or("CuePoint of unknown size")?)?;
        if id != CUE_POINT {
            continue;
        }
        if out.len() >= MAX_CUES {
            return Err(format!("more than {MAX_CUES} cue points"));
        }
        let mut p = Reader {
            bytes: body,
            pos: 0,
        };
        let (mut time, mut position) = (None, None);
        while p.pos < body.len() {
            let (id, size) = p.header()?;
            let body = p.take(size.ok_or("cue child of unknown size")?)?;
            match id {
                CUE_TIME => time = Some(uint(body)?),
                // The first track's position: every track's cluster is the same one.
                CUE_TRACK_POSITIONS if position.is_none() => {
                    let mut t = Reader {
                        bytes: body,
                        pos: 0,
                    };
                    while t.pos < body.len() {
                        let (id, size) = t.header()?;
                        let body = t.take(size.ok_or("position of unknown size")?)?;
                        if id == CUE_CLUSTER_POSITION {
                            position = Some(uint(body)?);
                        }
                    }
                }
                _ => {}
            }
        }
        match (time, position) {
            (Some(time), Some(cluster_position)) => out.push(CuePoint {
                time,
                cluster_position,
            }),
            _ => return Err("CuePoint without CueTime or CueClusterPosition".into()),
        }
    }
    if out.is_empty() {
        return Err("Cues without a CuePoint".into());
    }
    if out
        .windows(2)
        .any(|w| w[1].time < w[0].time || w[1].cluster_position <= w[0].cluster_position)
    {
        return Err("cue points out of order".into());
    }
    Ok(out)
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Element ID (marker kept) and data size (`None`: unknown, all ones).
    fn header(&mut self) -> Result<(u32, Option<u64>), String> {
        let (id, id_len) = self.vint(4)?;
        let id = id | (1u64 << (7 * id_len)); // put the marker back
        let (size, size_len) = self.vint(8)?;
        let unknown = size == (1u64 << (7 * size_len)) - 1;
        Ok((id as u32, (!unknown).then_some(size)))
    }

    /// An EBML variable-length integer (marker removed) of at most `max` bytes, and its
    /// length in bytes.
    fn vint(&mut self, max: usize) -> Result<(u64, usize), String> {
        let first = *self.bytes.get(self.pos).ok_or("truncated element header")?;
        let len = first.leading_zeros() as usize + 1;
        if len > max {
            return Err(format!("invalid EBML length byte {first:#04x}"));
        }
        let b = self
            .bytes
            .get(self.pos..self.pos + len)
            .ok_or("truncated element header")?;
        let mut v = u64::from(first) & ((1u64 << (8 - len)) - 1);
        for &x in &b[1..] {
            v = (v << 8) | u64::from(x);
        }
        self.pos += len;
        Ok((v, len))
    }

    fn take(&mut self, size: u64) -> Result<&'a [u8], String> {
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| self.pos.checked_add(s))
            .filter(|e| *e <= self.bytes.len())
            .ok_or("element runs past the range")?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn skip(&mut self, size: u64) -> Result<(), String> {
        self.take(size).map(|_| ())
    }

    fn sub(&mut self, size: u64) -> Result<Reader<'a>, String> {
        Ok(Reader {
            bytes: self.take(size)?,
            pos: 0,
        })
    }
}

fn uint(b: &[u8]) -> Result<u64, String> {
    if b.len() > 8 {
        return Err("unsigned integer of more than 8 bytes".into());
    }
    Ok(b.iter().fold(0, |v, &x| (v << 8) | u64::from(x)))
}

fn float(b: &[u8]) -> Result<f64, String> {
    match b.len() {
        4 => Ok(f64::from(f32::from_be_bytes(
            b.try_into().expect("4 bytes"),
        ))),
        8 => Ok(f64::from_be_bytes(b.try_into().expect("8 bytes"))),
        n => Err(format!("float of {n} bytes")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An element: ID bytes, a 1-byte (or 8-byte for `long`) size, the body.
    fn el(id: &[u8], body: &[u8]) -> Vec<u8> {
        let mut v = id.to_vec();
        assert!(body.len() < 127);
        v.push(0x80 | body.len() as u8);
        v.extend_from_slice(body);
        v
    }

    fn init(timecode_scale: &[u8], segment_size: Option<u64>) -> Vec<u8> {
        let mut v = el(&[0x1A, 0x45, 0xDF, 0xA3], &el(&[0x42, 0x82], b"webm"));
        v.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
        match segment_size {
            // 8-byte size.
            Some(s) => {
                v.push(0x01);
                v.extend_from_slice(&s.to_be_bytes()[1..]);
            }
            None => v.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
        }
        v.extend(el(&[0xEC], &[0; 3])); // Void
        let mut info = el(&[0x2A, 0xD7, 0xB1], timecode_scale);
        info.extend(el(&[0x44, 0x89], &10_000f64.to_be_bytes()));
        v.extend(el(&[0x15, 0x49, 0xA9, 0x66], &info));
        v
    }

    fn cue(time: u8, position: u16) -> Vec<u8> {
        let mut body = el(&[0xB3], &[time]);
        let mut tp = el(&[0xF7], &[1]);
        tp.extend(el(&[0xF1], &position.to_be_bytes()));
        body.extend(el(&[0xB7], &tp));
        el(&[0xBB], &body)
    }

    #[test]
    fn init_gives_the_segment_offset_scale_and_duration() {
        let b = init(&[0x0F, 0x42, 0x40], Some(5000));
        let i = parse_init(&b).unwrap();
        // EBML header 4 + 1 + 7 bytes, Segment ID 4 + size 8.
        assert_eq!(i.segment_data_offset, 12 + 12);
        assert_eq!(i.segment_data_size, Some(5000));
        assert_eq!(i.timecode_scale, 1_000_000);
        assert_eq!(i.duration, Some(10_000.0));
        assert_eq!(
            parse_init(&init(&[0x0F, 0x42, 0x40], None))
                .unwrap()
                .segment_data_size,
            None
        );
        assert!(parse_init(b"\x00\x00\x00\x18ftypisom").is_err());
        // Cut before Info: no Info.
        assert!(parse_init(&b[..30]).is_err());
    }

    #[test]
    fn cues_in_order_with_their_cluster_positions() {
        let mut body = cue(0, 0x0100);
        body.extend(cue(20, 0x0900));
        body.extend(cue(40, 0x1200));
        let mut cues = vec![0x1C, 0x53, 0xBB, 0x6B, 0x80 | body.len() as u8];
        cues.extend(&body);
        let got = parse_cues(&cues).unwrap();
        assert_eq!(
            got,
            [(0, 0x100), (20, 0x900), (40, 0x1200)]
                .map(|(time, cluster_position)| CuePoint {
                    time,
                    cluster_position
                })
                .to_vec()
        );
        // Truncated, wrong element, out of order: errors, never a panic.
        for bad in [&cues[..cues.len() - 3], &cues[1..], &[][..], &[0xFF][..]] {
            assert!(parse_cues(bad).is_err());
        }
        let mut swapped = cue(20, 0x0900);
        swapped.extend(cue(0, 0x0100));
        let mut c = vec![0x1C, 0x53, 0xBB, 0x6B, 0x80 | swapped.len() as u8];
        c.extend(&swapped);
        assert!(parse_cues(&c).is_err());
    }
}
