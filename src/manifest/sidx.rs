//! ISO-BMFF `sidx` (Segment Index Box, ISO/IEC 14496-12 §8.16.3) parser for DASH `SegmentBase`.
//! Pure, bounds-checked: never panics and never allocates more than the input can describe.

use super::ManifestError;

/// One reference of a `sidx` box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidxReference {
    /// `reference_type` = 1: this entry points at another `sidx` (hierarchical index).
    pub references_index: bool,
    /// Bytes of the referenced subsegment (or sub-index).
    pub referenced_size: u32,
    /// In `Sidx::timescale` units.
    pub subsegment_duration: u32,
    pub starts_with_sap: bool,
    pub sap_type: u8,
    pub sap_delta_time: u32,
}

/// A parsed `sidx` box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sidx {
    pub version: u8,
    pub reference_id: u32,
    pub timescale: u32,
    pub earliest_presentation_time: u64,
    /// Distance from the first byte after this box to the first referenced byte.
    pub first_offset: u64,
    /// Where the box starts inside the parsed data (0 unless other boxes precede it).
    pub box_offset: u64,
    /// Total box size in bytes, header included: `first_offset` is anchored at
    /// `box_offset + box_size`.
    pub box_size: u64,
    pub references: Vec<SidxReference>,
}

fn err(why: impl Into<String>) -> ManifestError {
    ManifestError::InvalidSidx(why.into())
}

/// Big-endian reader over a slice that fails instead of panicking.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ManifestError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.data.len())
            .ok_or_else(|| err("truncated sidx box"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, ManifestError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, ManifestError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, ManifestError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, ManifestError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
}

/// Finds the first top-level `sidx` box in `data` (skipping e.g. `styp`/`free` boxes that may
/// precede it inside an index range) and parses it.
pub fn parse(data: &[u8]) -> Result<Sidx, ManifestError> {
    let mut offset = 0usize;
    loop {
        let mut r = Reader { data, pos: offset };
        let size32 = r.u32().map_err(|_| err("no sidx box in the index data"))?;
        let kind = r
            .take(4)
            .map_err(|_| err("no sidx box in the index data"))?;
        let (size, header) = match size32 {
            // 64-bit largesize follows the type.
            1 => (r.u64()?, 16u64),
            // Box extends to the end of the data.
            0 => ((data.len() - offset) as u64, 8),
            s => (u64::from(s), 8),
        };
        if size < header {
            return Err(err(format!("box size {size} smaller than its header")));
        }
        if kind == b"sidx" {
            let avail = (data.len() - offset) as u64;
            if size > avail {
                return Err(err(format!(
                    "sidx box of {size} bytes but only {avail} bytes available"
                )));
            }
            let end = offset + size as usize;
            let body = Reader {
                data: &data[..end],
                pos: r.pos,
            };
            return parse_body(body, offset as u64, size);
        }
        // Skip a non-sidx box.
        offset = u64::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(size))
            .filter(|o| *o <= data.len() as u64)
            .ok_or_else(|| err("no sidx box in the index data"))? as usize;
    }
}

fn parse_body(mut r: Reader<'_>, box_offset: u64, box_size: u64) -> Result<Sidx, ManifestError> {
    let version = r.u8()?;
    r.take(3)?; // flags
    let reference_id = r.u32()?;
    let timescale = r.u32()?;
    if timescale == 0 {
        return Err(err("timescale is 0"));
    }
    let (earliest_presentation_time, first_offset) = match version {
        0 => (u64::from(r.u32()?), u64::from(r.u32()?)),
        1 => (r.u64()?, r.u64()?),
        v => return Err(err(format!("unknown sidx version {v}"))),
    };
    r.take(2)?; // reserved
    let count = usize::from(r.u16()?);
    // Each reference is 12 bytes: check before allocating.
    if r.data.len().saturating_sub(r.pos) < count * 12 {
        return Err(err(format!(
            "sidx announces {count} references but the box is too short"
        )));
    }
    let mut references = Vec::with_capacity(count);
    for _ in 0..count {
        let a = r.u32()?;
        let subsegment_duration = r.u32()?;
        let sap = r.u32()?;
        references.push(SidxReference {
            references_index: a >> 31 == 1,
            referenced_size: a & 0x7fff_ffff,
            subsegment_duration,
            starts_with_sap: sap >> 31 == 1,
            sap_type: ((sap >> 28) & 0x7) as u8,
            sap_delta_time: sap & 0x0fff_ffff,
        });
    }
    Ok(Sidx {
        version,
        reference_id,
        timescale,
        earliest_presentation_time,
        first_offset,
        box_offset,
        box_size,
        references,
    })
}

/// Builds a `sidx` box (test helper, also handy for other modules' tests).
/// `refs`: (reference_type, referenced_size, subsegment_duration).
#[cfg(test)]
pub(crate) fn build(
    version: u8,
    timescale: u32,
    ept: u64,
    first_offset: u64,
    refs: &[(bool, u32, u32)],
) -> Vec<u8> {
    let mut body = vec![version, 0, 0, 0];
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&timescale.to_be_bytes());
    if version == 0 {
        body.extend_from_slice(&(ept as u32).to_be_bytes());
        body.extend_from_slice(&(first_offset as u32).to_be_bytes());
    } else {
        body.extend_from_slice(&ept.to_be_bytes());
        body.extend_from_slice(&first_offset.to_be_bytes());
    }
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&(refs.len() as u16).to_be_bytes());
    for &(t, size, dur) in refs {
        body.extend_from_slice(&((u32::from(t) << 31) | size).to_be_bytes());
        body.extend_from_slice(&dur.to_be_bytes());
        body.extend_from_slice(&0x9000_0000u32.to_be_bytes());
    }
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(b"sidx");
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version0() {
        let b = build(0, 1000, 500, 10, &[(false, 100, 2000), (false, 200, 1500)]);
        let s = parse(&b).unwrap();
        assert_eq!(s.version, 0);
        assert_eq!(s.timescale, 1000);
        assert_eq!(s.earliest_presentation_time, 500);
        assert_eq!(s.first_offset, 10);
        assert_eq!(s.box_offset, 0);
        assert_eq!(s.box_size, b.len() as u64);
        assert_eq!(s.references.len(), 2);
        assert_eq!(s.references[0].referenced_size, 100);
        assert_eq!(s.references[1].subsegment_duration, 1500);
        assert!(s.references[0].starts_with_sap);
        assert_eq!(s.references[0].sap_type, 1);
        assert!(!s.references[0].references_index);
    }

    #[test]
    fn version1_large_values_and_reference_type() {
        let ept = (1u64 << 40) + 7;
        let b = build(1, 90000, ept, 1 << 33, &[(true, 0x7fff_ffff, 1)]);
        let s = parse(&b).unwrap();
        assert_eq!(s.earliest_presentation_time, ept);
        assert_eq!(s.first_offset, 1 << 33);
        assert!(s.references[0].references_index);
        assert_eq!(s.references[0].referenced_size, 0x7fff_ffff);
    }

    #[test]
    fn skips_leading_boxes() {
        let mut data = vec![0, 0, 0, 16];
        data.extend_from_slice(b"styp");
        data.extend_from_slice(b"iso6msdh");
        let sidx = build(0, 1, 0, 0, &[(false, 1, 1)]);
        data.extend_from_slice(&sidx);
        let s = parse(&data).unwrap();
        assert_eq!(s.box_offset, 16);
        assert_eq!(s.box_size, sidx.len() as u64);
    }

    #[test]
    fn rejects_garbage() {
        assert!(matches!(parse(b""), Err(ManifestError::InvalidSidx(_))));
        assert!(parse(b"\0\0\0\x08moov").is_err());
        let b = build(0, 0, 0, 0, &[]);
        assert!(parse(&b).is_err(), "zero timescale");
        let mut b = build(0, 1, 0, 0, &[(false, 1, 1)]);
        b.truncate(b.len() - 4);
        assert!(parse(&b).is_err(), "truncated");
        let mut b = build(0, 1, 0, 0, &[(false, 1, 1)]);
        b[8] = 7;
        assert!(parse(&b).is_err(), "unknown version");
        // Reference count larger than the box: error, no huge allocation.
        let mut b = build(0, 1, 0, 0, &[]);
        let n = b.len();
        b[n - 2] = 0xff;
        b[n - 1] = 0xff;
        assert!(parse(&b).is_err());
        // Box size smaller than header / larger than the data.
        assert!(parse(b"\0\0\0\x04sidx").is_err());
        assert!(parse(b"\0\0\x01\0sidx\0\0\0\0").is_err());
        // 64-bit size of a skipped box pointing far away.
        let mut b = vec![0, 0, 0, 1];
        b.extend_from_slice(b"free");
        b.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(parse(&b).is_err());
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let b = build(1, 1000, 5, 6, &[(false, 10, 20), (false, 30, 40)]);
        for n in 0..b.len() {
            let _ = parse(&b[..n]);
        }
        let mut d = b.clone();
        for i in 0..d.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let old = d[i];
                d[i] = v;
                let _ = parse(&d);
                d[i] = old;
            }
        }
    }
}
