//! Swarm identity (§1, §2): swarm id, stream swarm id, the 20-character
//! info-hash of PML 2.2 and 2.3 (and the binary one of 0.6), the 2.3 hashed
//! stream index, and peer ids.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use md5::{Digest as _, Md5};
use sha1::Sha1;

use super::js;
use super::rng::SplitMix64;

/// Which PML population to meet; 0.6, 2.2 and 2.3 land in disjoint swarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compat {
    /// 0.6.x and PeerTube's fork of it (§1.2, §4.2): `<master>+V<i>` swarms hashed to a
    /// raw SHA-1, JSON commands with string segment ids, video variants only.
    Pml06,
    /// 1.0.4 ..= 2.2.x: MD5-based info-hash, ordinal stream index.
    Pml22,
    /// 2.3.x: SHA-1-based info-hash, hashed stream-properties index.
    Pml23,
}

impl Compat {
    /// The peer-id prefix PML itself uses for this family.
    pub fn pml_peer_id_prefix(self) -> &'static str {
        match self {
            // A WebTorrent client's prefix, so trackers that filter clients let 0.6 in.
            Compat::Pml06 => "-WW0006-",
            Compat::Pml22 => "-PM0202-",
            Compat::Pml23 => "-PM0203-",
        }
    }

    /// 0.6 uses one peer id for all its swarms; 2.x one per swarm (wt-tracker evicts an id
    /// seen on another connection, and 2.x shares one socket per tracker).
    pub fn peer_id_per_swarm(self) -> bool {
        self != Compat::Pml06
    }

    /// Offers per announce (`numwant`): 0.6.2's bittorrent-tracker 9 sends 10, 2.x sends 5.
    pub fn offers_per_announce(self) -> usize {
        match self {
            Compat::Pml06 => 10,
            Compat::Pml22 | Compat::Pml23 => 5,
        }
    }

    /// Whether streams of this type get a swarm: 0.6 shares video variants only (its
    /// hls.js integration leaves audio renditions to HTTP).
    pub fn shares(self, stream_type: StreamType) -> bool {
        self != Compat::Pml06 || stream_type == StreamType::Main
    }

    /// The master swarm id is the manifest URL the player asked for in 0.6 (hls.js's request
    /// URL), the one after redirects in 2.x.
    pub fn swarm_from_requested_url(self) -> bool {
        self == Compat::Pml06
    }
}

/// `main` (video level / audio-only main) or `secondary` (audio rendition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamType {
    /// hls.js level, Shaka video (or audio of an audio-only variant).
    Main,
    /// Alternate audio rendition.
    Secondary,
}

impl StreamType {
    /// Wire spelling used inside the stream swarm id.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamType::Main => "main",
            StreamType::Secondary => "secondary",
        }
    }
}

/// Stream properties hashed into the 2.3 stream index (`generateStreamShortId`).
/// Fields mirror what the player integration feeds in (§5.1/§5.2); `None`
/// means the JS value was `undefined`/`null`. For an hls.js level whose
/// BANDWIDTH is 0, pass only `bitrate: 0` (hls.js omits the rest).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamProperties {
    /// Variant bitrate (`bitrate ?? 0`).
    pub bitrate: u64,
    /// Codec string as given (comma separated).
    pub codecs: Option<String>,
    /// Width in pixels.
    pub width: Option<u32>,
    /// Height in pixels.
    pub height: Option<u32>,
    /// Language tag (`und` counts as none).
    pub language: Option<String>,
    /// Channels attribute, e.g. `"2"` or `"16/JOC"`.
    pub channels: Option<String>,
    /// Rendition name.
    pub name: Option<String>,
    /// Frame rate as the JS number PML sees (`Number(attr)`); `0`/NaN print
    /// as empty. Use [`js::parse_js_number`](super::parse_js_number) on the
    /// FRAME-RATE attribute. (hls.js passes the attribute *string*, so the
    /// literal `FRAME-RATE=0` would print `0` there; not reproduced.)
    pub frame_rate: Option<f64>,
    /// VIDEO-RANGE / Shaka `hdr`.
    pub video_range: Option<String>,
}

/// Swarm id from the manifest's final (post-redirect) URL: cut at the first
/// `?`, unless a custom swarm id is configured (used verbatim, even if empty,
/// like JS `config.swarmId ?? url`).
pub fn swarm_id(manifest_final_url: &str, configured: Option<&str>) -> String {
    match configured {
        Some(custom) => custom.to_owned(),
        None => manifest_final_url
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// [`swarm_id`] for a parsed URL: WHATWG serialisation as browsers produce it;
/// the fragment is dropped because browsers' response URLs never carry one.
pub fn swarm_id_from_url(manifest_final_url: &url::Url, configured: Option<&str>) -> String {
    let mut u = manifest_final_url.clone();
    u.set_fragment(None);
    swarm_id(u.as_str(), configured)
}

fn normalize_codec(codec: &str) -> String {
    let c = js::trim(codec).to_lowercase();
    let parts: Vec<&str> = c.split('.').collect();
    if parts.len() == 3 && (parts[0] == "avc1" || parts[0] == "avc") {
        if let (Some(profile), Some(level)) = (canonical_int(parts[1]), canonical_int(parts[2])) {
            return format!("{}.{}00{}", parts[0], hex2(profile), hex2(level));
        }
    }
    c
}

/// `s` if `parseInt(s, 10).toString() === s` (JS canonical decimal integer).
fn canonical_int(s: &str) -> Option<i128> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // Round-trip through JS printing rejects leading zeros, "-0", and
    // integers that an f64 cannot hold exactly.
    if js::number_to_string(v) != s || v.abs() >= 1e21 {
        return None;
    }
    Some(v as i128)
}

/// JS `n.toString(16).padStart(2, "0")`.
fn hex2(n: i128) -> String {
    let s = if n < 0 {
        format!("-{:x}", n.unsigned_abs())
    } else {
        format!("{n:x}")
    };
    if s.len() < 2 {
        format!("0{s}")
    } else {
        s
    }
}

/// The exact string PML 2.3 hashes for the stream index.
pub fn normalized_stream_properties(p: &StreamProperties) -> String {
    let codecs = match p.codecs.as_deref() {
        Some(c) if !c.is_empty() => {
            let mut list: Vec<String> = c.split(',').map(normalize_codec).collect();
            list.sort_by(|a, b| js::utf16_cmp(a, b));
            list.join(",")
        }
        _ => String::new(),
    };
    let language = match p.language.as_deref() {
        Some(l) if !l.is_empty() && l != "und" => js::utf16_prefix(l, 2).to_lowercase(),
        _ => String::new(),
    };
    let channels = match p.channels.as_deref() {
        Some(c) if !c.is_empty() => c.split('/').next().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let name = match p.name.as_deref() {
        Some(n) if !n.is_empty() => js::trim(&n.to_lowercase()).to_owned(),
        _ => String::new(),
    };
    let frame_rate = match p.frame_rate {
        Some(f) if f != 0.0 && !f.is_nan() => js::number_to_string(f),
        _ => String::new(),
    };
    let video_range = match p.video_range.as_deref() {
        Some(v) if !v.is_empty() => js::trim(&v.to_uppercase()).to_owned(),
        _ => String::new(),
    };
    let opt = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}-{}-{}-{}-{}",
        // JS prints the Number, which rounds above 2^53.
        js::number_to_string(p.bitrate as f64),
        codecs,
        opt(p.width),
        opt(p.height),
        language,
        channels,
        name,
        frame_rate,
        video_range
    )
}

/// PML 2.3 stream index: base64(SHA-1(normalised properties)), 28 chars.
pub fn stream_short_id(p: &StreamProperties) -> String {
    STANDARD.encode(Sha1::digest(normalized_stream_properties(p).as_bytes()))
}

/// `Stream.index` for the family: 2.3 hashes `props`, 2.2 (and 0.6) use `position`
/// (0-based order of the level / audio track as the integration saw it).
pub fn stream_index(compat: Compat, props: &StreamProperties, position: usize) -> String {
    match compat {
        Compat::Pml23 => stream_short_id(props),
        Compat::Pml22 | Compat::Pml06 => position.to_string(),
    }
}

/// `v2-<swarmId>-<main|secondary>-<index>`.
pub fn stream_swarm_id(swarm_id: &str, stream_type: StreamType, index: &str) -> String {
    format!("v2-{swarm_id}-{}-{index}", stream_type.as_str())
}

/// 0.6 stream swarm id of the variant at `position` in the master playlist:
/// `<master swarm id>+V<position>` (§1.2).
pub fn v06_stream_swarm_id(swarm_id: &str, position: usize) -> String {
    format!("{swarm_id}+V{position}")
}

/// The 20-character info-hash as it goes into tracker JSON: ASCII for 2.x; for 0.6 the raw
/// SHA-1 of `"2" + id` as a JS binary string (one char U+0000..=U+00FF per byte).
pub fn info_hash(compat: Compat, stream_swarm_id: &str) -> String {
    match compat {
        Compat::Pml23 => STANDARD.encode(&Sha1::digest(stream_swarm_id.as_bytes())[..15]),
        Compat::Pml22 => STANDARD.encode(&Md5::digest(stream_swarm_id.as_bytes())[1..16]),
        Compat::Pml06 => {
            let mut h = Sha1::new();
            h.update(b"2");
            h.update(stream_swarm_id.as_bytes());
            h.finalize().iter().map(|&b| char::from(b)).collect()
        }
    }
}

/// A stream's swarm identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSwarm {
    /// The string that was hashed (`v2-…`, or `<master>+V<i>` for 0.6).
    pub stream_swarm_id: String,
    /// 20-character info-hash (see [`info_hash`]).
    pub info_hash: String,
}

/// Convenience: index, stream swarm id and info-hash in one go.
pub fn stream_swarm(
    compat: Compat,
    swarm_id: &str,
    stream_type: StreamType,
    props: &StreamProperties,
    position: usize,
) -> StreamSwarm {
    let stream_swarm_id = match compat {
        Compat::Pml06 => v06_stream_swarm_id(swarm_id, position),
        _ => stream_swarm_id(
            swarm_id,
            stream_type,
            &stream_index(compat, props, position),
        ),
    };
    let info_hash = info_hash(compat, &stream_swarm_id);
    StreamSwarm {
        stream_swarm_id,
        info_hash,
    }
}

/// `-PM<MM><mm>-` style prefix for a version (`-PM0203-` for 2.3).
pub fn peer_id_version_prefix(tag: &str, major: u32, minor: u32) -> String {
    format!("-{tag}{major:02}{minor:02}-")
}

const PEER_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Peer ids are 20 bytes on the tracker wire.
pub const PEER_ID_LEN: usize = 20;

/// PML's `generatePeerId`: `prefix` + random alphanumerics up to 20 chars.
/// Use a distinct id per swarm (wt-tracker evicts an id seen elsewhere).
/// A prefix of 20+ UTF-16 units is returned unchanged, as in PML; keep it ASCII.
pub fn generate_peer_id(prefix: &str, rng: &mut SplitMix64) -> String {
    let mut id = prefix.to_owned();
    for _ in js::utf16_len(prefix)..PEER_ID_LEN {
        let i = rng.below(PEER_ID_ALPHABET.len() as u64) as usize;
        id.push(char::from(PEER_ID_ALPHABET[i % PEER_ID_ALPHABET.len()]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/live/master.m3u8?token=abc";
    const SWARM: &str = "https://example.com/live/master.m3u8";

    fn s(x: &str) -> Option<String> {
        Some(x.to_owned())
    }

    #[test]
    fn swarm_id_cuts_query_or_uses_custom() {
        assert_eq!(swarm_id(URL, None), SWARM);
        assert_eq!(swarm_id(URL, Some("my-swarm-Ж")), "my-swarm-Ж");
        assert_eq!(swarm_id("https://a/b?x?y", None), "https://a/b");
        let u = url::Url::parse("HTTPS://Example.COM:443/live/master.m3u8?token=abc#frag").unwrap();
        assert_eq!(swarm_id_from_url(&u, None), SWARM);
    }

    #[test]
    fn v23_level_vector() {
        let p = StreamProperties {
            bitrate: 1_500_000,
            codecs: s("avc1.64001f"),
            width: Some(1280),
            height: Some(720),
            frame_rate: Some(js::parse_js_number("29.970")),
            video_range: s("SDR"),
            ..Default::default()
        };
        assert_eq!(
            normalized_stream_properties(&p),
            "1500000-avc1.64001f-1280-720----29.97-SDR"
        );
        assert_eq!(stream_short_id(&p), "N+KD4SAEQ9lQR8uY1gDyy/w+J68=");
        let sw = stream_swarm(Compat::Pml23, &swarm_id(URL, None), StreamType::Main, &p, 0);
        assert_eq!(
            sw.stream_swarm_id,
            "v2-https://example.com/live/master.m3u8-main-N+KD4SAEQ9lQR8uY1gDyy/w+J68="
        );
        assert_eq!(sw.info_hash, "J3KjvNhSbLlKe91dpkWw");
        let hex: String = sw.info_hash.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "4a334b6a764e6853624c6c4b65393164706b5777");
    }

    #[test]
    fn v23_audio_vector() {
        let p = StreamProperties {
            codecs: s("mp4a.40.2"),
            language: s("en"),
            channels: s("2"),
            name: s("English"),
            ..Default::default()
        };
        assert_eq!(
            normalized_stream_properties(&p),
            "0-mp4a.40.2---en-2-english--"
        );
        assert_eq!(stream_short_id(&p), "bdjQ1B4N2yrcTDHyU5j7iDGV9sY=");
        let sw = stream_swarm(Compat::Pml23, SWARM, StreamType::Secondary, &p, 0);
        assert_eq!(
            sw.stream_swarm_id,
            "v2-https://example.com/live/master.m3u8-secondary-bdjQ1B4N2yrcTDHyU5j7iDGV9sY="
        );
        assert_eq!(sw.info_hash, "inmRsbVmWfbvgnlkL4BJ");
    }

    #[test]
    fn v23_bitrate_zero_and_custom_swarm() {
        let p = StreamProperties::default();
        assert_eq!(normalized_stream_properties(&p), "0--------");
        assert_eq!(stream_short_id(&p), "UYnLxGhQilEV4D0HbCx+kRv0ZF0=");
        let sw = stream_swarm(Compat::Pml23, SWARM, StreamType::Main, &p, 0);
        assert_eq!(sw.info_hash, "RJhoUxftMVvf2gSHwVVX");
        let sw = stream_swarm(
            Compat::Pml23,
            &swarm_id(URL, Some("my-swarm-Ж")),
            StreamType::Main,
            &p,
            0,
        );
        assert_eq!(
            sw.stream_swarm_id,
            "v2-my-swarm-Ж-main-UYnLxGhQilEV4D0HbCx+kRv0ZF0="
        );
        assert_eq!(sw.info_hash, "9DV1sp6Gfrya4oHQJrma");
    }

    #[test]
    fn v23_extra_index_vectors() {
        let p = StreamProperties {
            bitrate: 800_000,
            codecs: s("avc1.4d401e"),
            width: Some(640),
            height: Some(360),
            ..Default::default()
        };
        assert_eq!(
            normalized_stream_properties(&p),
            "800000-avc1.4d401e-640-360-----"
        );
        assert_eq!(stream_short_id(&p), "ZyrtJdm0eCXX0oucB4RC10Br1lA=");
        let p = StreamProperties {
            bitrate: 2_000_000,
            codecs: s("avc1.77.30"),
            width: Some(1920),
            height: Some(1080),
            ..Default::default()
        };
        assert_eq!(
            normalized_stream_properties(&p),
            "2000000-avc1.4d001e-1920-1080-----"
        );
        assert_eq!(stream_short_id(&p), "ELaaKkKIkrfifqRU4G4wbokwxM0=");
        let p = StreamProperties {
            codecs: s("ec-3"),
            language: s("eng"),
            channels: s("16/JOC"),
            name: s(" Main "),
            ..Default::default()
        };
        assert_eq!(normalized_stream_properties(&p), "0-ec-3---en-16-main--");
        assert_eq!(stream_short_id(&p), "S8MFzpH/pnagxqnZVmSIEjywfV4=");
    }

    #[test]
    fn normalisation_edge_cases() {
        let norm = |codecs: &str| {
            normalized_stream_properties(&StreamProperties {
                codecs: s(codecs),
                ..Default::default()
            })
        };
        // Sorted, trimmed, lower-cased; avc/avc1 decimal forms rewritten.
        assert_eq!(
            norm(" MP4A.40.2 , AVC1.66.30"),
            "0-avc1.42001e,mp4a.40.2-------"
        );
        assert_eq!(norm("avc.77.30"), "0-avc.4d001e-------");
        assert_eq!(norm("avc1.077.30"), "0-avc1.077.30-------");
        assert_eq!(norm("avc1.300.5"), "0-avc1.12c0005-------");
        assert_eq!(norm("avc1.-5.30"), "0-avc1.-5001e-------");
        assert_eq!(norm("avc1.-0.30"), "0-avc1.-0.30-------");
        assert_eq!(norm("a,,b"), "0-,a,b-------");
        let p = StreamProperties {
            language: s("und"),
            name: s("\u{FEFF}Ünë "),
            frame_rate: Some(30.0),
            video_range: s(" pq "),
            channels: s("6"),
            ..Default::default()
        };
        assert_eq!(normalized_stream_properties(&p), "0-----6-ünë-30-PQ");
        let p = StreamProperties {
            language: s("EN-us"),
            frame_rate: Some(0.0),
            ..Default::default()
        };
        assert_eq!(normalized_stream_properties(&p), "0----en----");
    }

    #[test]
    fn v22_vectors() {
        let p = StreamProperties::default();
        let cases = [
            (StreamType::Main, 0, SWARM, "L2uYwMcHhsstZuLv8ZqU"),
            (StreamType::Main, 1, SWARM, "ceUCM5mHdwt3tS5zdgVA"),
            (StreamType::Secondary, 0, SWARM, "yOtRb9gbGaQ7z2LmThPK"),
            (StreamType::Main, 0, "my-swarm-Ж", "Wtq+ME1SfRcg0uxKVLDi"),
        ];
        for (ty, pos, swarm, want) in cases {
            let sw = stream_swarm(Compat::Pml22, swarm, ty, &p, pos);
            assert_eq!(
                sw.stream_swarm_id,
                format!("v2-{swarm}-{}-{pos}", ty.as_str())
            );
            assert_eq!(sw.info_hash, want);
        }
    }

    fn hex(binary: &str) -> String {
        binary
            .chars()
            .map(|c| format!("{:02x}", u32::from(c)))
            .collect()
    }

    /// §1.2 and peertube.md §4: 0.6's raw SHA-1 of `"2" + <master>+V<i>`.
    #[test]
    fn v06_vectors() {
        let p = StreamProperties::default();
        let sw = stream_swarm(Compat::Pml06, SWARM, StreamType::Main, &p, 0);
        assert_eq!(
            sw.stream_swarm_id,
            "https://example.com/live/master.m3u8+V0"
        );
        assert_eq!(sw.info_hash.chars().count(), 20);
        assert_eq!(
            hex(&sw.info_hash),
            "ae9cd6bf657a583a6f33711f1cae11fa25c19b43"
        );
        // The reference's JSON form: bytes ≥ 0x80 are code points, controls are escaped.
        assert_eq!(
            serde_json::to_string(&sw.info_hash).unwrap(),
            "\"®\u{9c}Ö¿ezX:o3q\\u001f\\u001c®\\u0011ú%Á\u{9b}C\""
        );
        let sw = stream_swarm(Compat::Pml06, SWARM, StreamType::Main, &p, 1);
        assert_eq!(
            hex(&sw.info_hash),
            "5a2494fff7ac76977cc7032e97ab684b8a345af4"
        );
        // A PeerTube master (what its database stores, hex).
        let pt = "https://peertube.example/static/streaming-playlists/hls/\
                  9c9de5e8-0a1e-484a-b099-e80766180a6d/0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d-master.m3u8";
        let h = |i| hex(&stream_swarm(Compat::Pml06, pt, StreamType::Main, &p, i).info_hash);
        assert_eq!(h(0), "440a6cc5bf8fed3639fe3c77ca351c0f62f8fc16");
        assert_eq!(h(1), "481b97b97f0c70507ee51b1ffc31363d379322fe");
        // The properties play no part, the position does; audio gets no swarm.
        let rich = StreamProperties {
            bitrate: 9,
            codecs: s("avc1.64001f"),
            ..Default::default()
        };
        assert_eq!(
            stream_swarm(Compat::Pml06, pt, StreamType::Main, &rich, 1).info_hash,
            { stream_swarm(Compat::Pml06, pt, StreamType::Main, &p, 1).info_hash }
        );
        assert!(!Compat::Pml06.shares(StreamType::Secondary));
        assert!(Compat::Pml22.shares(StreamType::Secondary));
        assert_eq!(Compat::Pml06.offers_per_announce(), 10);
        assert!(!Compat::Pml06.peer_id_per_swarm());
    }

    #[test]
    fn peer_ids() {
        assert_eq!(
            peer_id_version_prefix("PM", 2, 3),
            Compat::Pml23.pml_peer_id_prefix()
        );
        assert_eq!(
            peer_id_version_prefix("PM", 2, 2),
            Compat::Pml22.pml_peer_id_prefix()
        );
        assert_eq!(peer_id_version_prefix("PM", 1, 0), "-PM0100-");
        let mut rng = SplitMix64::new(7);
        let a = generate_peer_id("-PM0203-", &mut rng);
        let b = generate_peer_id("-PM0203-", &mut rng);
        assert_eq!(a.len(), 20);
        assert!(a.starts_with("-PM0203-"));
        assert!(a[8..].bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert_eq!(generate_peer_id("-PM0203-", &mut SplitMix64::new(7)), a);
        assert_eq!(
            generate_peer_id("-ABCDEFGHIJKLMNOPQRSTUV-", &mut rng),
            "-ABCDEFGHIJKLMNOPQRSTUV-"
        );
    }
}
