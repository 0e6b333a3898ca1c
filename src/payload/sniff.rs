//! Container sanity checks: recognise what a segment holds before it goes downstream, so an
//! HTML error page served with status 200 (or garbage from a peer) is rejected, not decoded.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    MpegTs,
    /// ISO BMFF (fMP4/CMAF init or media segment).
    IsoBmff,
    /// Packed audio (ADTS/MP3, optionally behind an ID3 tag).
    PackedAudio,
    WebVtt,
    /// WebM/Matroska: an EBML header (init segment) or a Cluster (media segment).
    WebM,
}

/// EBML header and Cluster element ids.
const EBML_HEADER: [u8; 4] = [0x1a, 0x45, 0xdf, 0xa3];
const MATROSKA_CLUSTER: [u8; 4] = [0x1f, 0x43, 0xb6, 0x75];

const TS_PACKET: usize = 188;

/// Box types that may open an ISO BMFF init or media segment.
const BMFF_FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"styp", b"moof", b"moov", b"sidx", b"emsg", b"prft", b"free", b"skip", b"uuid",
];

pub fn sniff(data: &[u8]) -> Option<Container> {
    if is_mpeg_ts(data) {
        return Some(Container::MpegTs);
    }
    if is_iso_bmff(data) {
        return Some(Container::IsoBmff);
    }
    if data.starts_with(b"ID3") || (data.len() >= 2 && data[0] == 0xff && data[1] & 0xe0 == 0xe0) {
        return Some(Container::PackedAudio);
    }
    if data.len() >= 8 && (data.starts_with(&EBML_HEADER) || data.starts_with(&MATROSKA_CLUSTER)) {
        return Some(Container::WebM);
    }
    let text = data.strip_prefix(b"\xef\xbb\xbf").unwrap_or(data);
    if text.starts_with(b"WEBVTT") {
        return Some(Container::WebVtt);
    }
    None
}

/// Sync byte at the start of each of the first packets. Length is not checked here: HTTP and
/// P2P transfers verify sizes, and some packagers leave a partial packet at the end.
fn is_mpeg_ts(data: &[u8]) -> bool {
    data.len() >= TS_PACKET && data.chunks(TS_PACKET).take(5).all(|p| p[0] == 0x47)
}

/// The chain of top-level boxes must tile the data exactly.
fn is_iso_bmff(data: &[u8]) -> bool {
    if data.len() < 8 || !BMFF_FIRST_BOXES.iter().any(|t| &data[4..8] == *t) {
        return false;
    }
    let mut pos = 0usize;
    while pos < data.len() {
        let Some(header) = data.get(pos..pos + 8) else {
            return false;
        };
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let size = match size32 {
            0 => (data.len() - pos) as u64, // box extends to the end
            1 => match data.get(pos + 8..pos + 16) {
                Some(b) => u64::from_be_bytes(b.try_into().unwrap_or([0; 8])),
                None => return false,
            },
            s => s,
        };
        if size < 8 || size > (data.len() - pos) as u64 {
            return false;
        }
        pos += size as usize;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bmff_box(kind: &[u8; 4], payload: usize) -> Vec<u8> {
        let mut v = ((payload + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(kind);
        v.resize(payload + 8, 0);
        v
    }

    #[test]
    fn recognises_containers() {
        let mut ts = vec![0u8; TS_PACKET * 3];
        for p in ts.chunks_mut(TS_PACKET) {
            p[0] = 0x47;
        }
        assert_eq!(sniff(&ts), Some(Container::MpegTs));
        let mut fmp4 = bmff_box(b"moof", 20);
        fmp4.extend(bmff_box(b"mdat", 100));
        assert_eq!(sniff(&fmp4), Some(Container::IsoBmff));
        assert_eq!(sniff(b"ID3\x04\x00rest"), Some(Container::PackedAudio));
        assert_eq!(
            sniff(b"WEBVTT\n\n00:00.000 --> 00:01.000\nhi"),
            Some(Container::WebVtt)
        );
        let init = [0x1a, 0x45, 0xdf, 0xa3, 0x9f, 0x42, 0x86, 0x81, 0x01];
        assert_eq!(sniff(&init), Some(Container::WebM));
        let cluster = [0x1f, 0x43, 0xb6, 0x75, 0x01, 0xff, 0xff, 0xff, 0xe7];
        assert_eq!(sniff(&cluster), Some(Container::WebM));
        assert_eq!(sniff(&cluster[..4]), None);
    }

    #[test]
    fn rejects_html_truncation_and_garbage() {
        assert_eq!(
            sniff(b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>"),
            None
        );
        assert_eq!(sniff(b""), None);
        let mut ts = vec![0u8; TS_PACKET * 2];
        ts[0] = 0x47; // second packet lost its sync byte
        assert_eq!(sniff(&ts), None);
        let mut fmp4 = bmff_box(b"moof", 20);
        fmp4.extend(bmff_box(b"mdat", 100));
        fmp4.truncate(fmp4.len() - 1); // mdat claims more than is there
        assert_eq!(sniff(&fmp4), None);
        assert_eq!(
            sniff(&[0x00, 0x00, 0x00, 0x01, b'x', b'y', b'z', b'w']),
            None
        );
    }
}
