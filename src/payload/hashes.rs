//! Published segment hashes: PeerTube's `segments-sha256.json` (peertube.md §3), which its
//! player checks every segment against, from the origin or from a peer.
//!
//! `{"<file name>": {"<start>-<end>": "<sha256 hex>", …}, …}` for byte-range segments (end
//! inclusive, as in an HTTP Range) and `{"<file name>": "<sha256 hex>"}` for whole files. A
//! segment is named by the last path segment of its URL without the query, as PeerTube's
//! validator names it.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};

use crate::media::Resource;

type Sha256Digest = [u8; 32];

#[derive(Debug, Clone, PartialEq, Eq)]
enum FileHashes {
    Whole(Sha256Digest),
    /// (first byte, last byte) → digest.
    Ranges(HashMap<(u64, u64), Sha256Digest>),
}

/// One version of the published table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentHashes {
    files: HashMap<String, FileHashes>,
}

/// What the table says of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashVerdict {
    Match,
    Mismatch,
    /// The table does not list this segment (yet: a live table lags the playlist).
    Unknown,
}

fn digest_from_hex(s: &str) -> Option<Sha256Digest> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn range_key(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then_some((a, b))
}

/// The name PeerTube's validator looks a segment up by: the URL's last path segment.
pub fn file_name(resource: &Resource) -> &str {
    resource
        .url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or_default()
}

impl SegmentHashes {
    /// Parses the JSON; entries it cannot read are an error (a table that lies in part is
    /// not one to trust), an empty object is a valid, empty table.
    pub fn parse(json: &[u8]) -> Result<Self, String> {
        let v: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let mut files = HashMap::with_capacity(obj.len());
        for (name, entry) in obj {
            let hashes = match entry {
                serde_json::Value::String(h) => FileHashes::Whole(
                    digest_from_hex(h).ok_or_else(|| format!("{name}: bad SHA-256 {h:?}"))?,
                ),
                serde_json::Value::Object(ranges) => {
                    let mut m = HashMap::with_capacity(ranges.len());
                    for (r, h) in ranges {
                        let key = range_key(r).ok_or_else(|| format!("{name}: bad range {r:?}"))?;
                        let d = h
                            .as_str()
                            .and_then(digest_from_hex)
                            .ok_or_else(|| format!("{name} {r}: bad SHA-256 {h}"))?;
                        m.insert(key, d);
                    }
                    FileHashes::Ranges(m)
                }
                other => return Err(format!("{name}: neither a hash nor ranges: {other}")),
            };
            files.insert(name.clone(), hashes);
        }
        Ok(SegmentHashes { files })
    }

    /// Number of files listed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    fn expected(&self, resource: &Resource) -> Option<&Sha256Digest> {
        match (self.files.get(file_name(resource))?, resource.range) {
            (FileHashes::Whole(d), None) => Some(d),
            (FileHashes::Ranges(m), Some(r)) if r.length > 0 => {
                m.get(&(r.offset, r.offset + r.length - 1))
            }
            _ => None,
        }
    }

    /// Whether the table lists this segment.
    pub fn knows(&self, resource: &Resource) -> bool {
        self.expected(resource).is_some()
    }

    /// Checks `data` (the segment as the origin serves it, before any decryption).
    pub fn verdict(&self, resource: &Resource, data: &[u8]) -> HashVerdict {
        match self.expected(resource) {
            None => HashVerdict::Unknown,
            Some(d) if Sha256::digest(data).as_slice() == d => HashVerdict::Match,
            Some(_) => HashVerdict::Mismatch,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::ByteRange;

    fn res(url: &str, range: Option<(u64, u64)>) -> Resource {
        Resource {
            url: url::Url::parse(url).unwrap(),
            range: range.map(|(offset, length)| ByteRange { offset, length }),
        }
    }

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn byte_ranges_and_whole_files() {
        let a = b"first segment";
        let b = b"second";
        let json = format!(
            r#"{{"u-360-fragmented.mp4": {{"100-112": "{}", "113-118": "{}"}},
                 "live-000001.ts": "{}"}}"#,
            hex(&Sha256::digest(a)),
            hex(&Sha256::digest(b)).to_uppercase(),
            hex(&Sha256::digest(b))
        );
        let t = SegmentHashes::parse(json.as_bytes()).unwrap();
        assert_eq!(t.len(), 2);
        let base = "http://pt.example/static/streaming-playlists/hls/v/";
        let first = res(&format!("{base}u-360-fragmented.mp4?x=1"), Some((100, 13)));
        let second = res(&format!("{base}u-360-fragmented.mp4"), Some((113, 6)));
        assert_eq!(t.verdict(&first, a), HashVerdict::Match);
        assert_eq!(t.verdict(&second, b), HashVerdict::Match);
        assert_eq!(t.verdict(&second, a), HashVerdict::Mismatch);
        // Another range of a listed file, an unlisted file, a range where a file is listed.
        assert_eq!(
            t.verdict(
                &res(&format!("{base}u-360-fragmented.mp4"), Some((0, 100))),
                a
            ),
            HashVerdict::Unknown
        );
        assert!(!t.knows(&res(
            &format!("{base}u-720-fragmented.mp4"),
            Some((100, 13))
        )));
        assert_eq!(
            t.verdict(&res(&format!("{base}live-000001.ts"), None), b),
            HashVerdict::Match
        );
        assert_eq!(
            t.verdict(&res(&format!("{base}live-000001.ts"), Some((0, 6))), b),
            HashVerdict::Unknown
        );
    }

    #[test]
    fn rejects_malformed_tables() {
        for bad in [
            "[]",
            "{\"a\": 5}",
            "{\"a\": \"abcd\"}",
            "{\"a\": {\"5-1\": \"00\"}}",
            "{\"a\": {\"1-2\": 7}}",
            "nope",
        ] {
            assert!(SegmentHashes::parse(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(SegmentHashes::parse(b"{}").unwrap().is_empty());
    }
}
