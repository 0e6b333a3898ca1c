//! WebTorrent WebSocket-tracker messages (JSON), byte-compatible with the `bittorrent-tracker@11`
//! client that P2P Media Loader 2.x uses. Pure: no I/O, no clocks.
//!
//! Encoding reproduces the JS client's key order (it builds the objects with `Object.assign`,
//! so the order is part of "looking like a browser peer") and emits only what strict trackers
//! (wt-tracker) accept: no `event` on re-announces, never `update`/`empty`, no `event` next to
//! an `answer`, `numwant` always an integer equal to the number of offers.
//! Decoding is lenient: unknown keys are ignored, optional keys may be missing, and malformed
//! input is an `Err`, never a panic.
//!
//! Binary fields (`info_hash`, `peer_id`, `offer_id`) are JS "binary strings": one JSON char per
//! byte, U+0000..=U+00FF. serde_json escapes exactly what `JSON.stringify` escapes (controls,
//! `"` and `\`, lower-case `\u00xx`), so the bytes on the wire match the JS client's.

use std::fmt;
use std::time::Duration;

use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// Length of every binary id in the protocol.
pub const ID_LEN: usize = 20;

macro_rules! binary_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; ID_LEN]);

        impl $name {
            /// From exactly 20 raw bytes.
            pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(Self)
            }

            /// From a JS binary string: exactly 20 chars, each U+0000..=U+00FF.
            pub fn from_binary_str(s: &str) -> Option<Self> {
                binary_str_to_bytes(s).map(Self)
            }

            /// The JS binary string (one char per byte) that goes into JSON.
            pub fn to_binary_string(&self) -> String {
                bytes_to_binary_string(&self.0)
            }

            pub fn as_bytes(&self) -> &[u8; ID_LEN] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        /// Printable ASCII ids (2.x info hashes and peer ids) as text, others as hex.
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if self.0.iter().all(|b| (0x20..0x7f).contains(b)) {
                    // All printable ASCII, so this is valid UTF-8.
                    f.write_str(std::str::from_utf8(&self.0).unwrap_or_default())
                } else {
                    self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_binary_string())
            }
        }
    };
}

binary_id!(
    /// Swarm id. For PML 2.x this is 20 ASCII chars (base64 of a truncated hash).
    InfoHash
);
binary_id!(
    /// Peer id, one per swarm (wt-tracker keys peers globally by it).
    PeerId
);
binary_id!(
    /// Id of one offer in an announce; answers must echo it byte-exactly.
    OfferId
);

impl OfferId {
    /// 20 random bytes, as `bittorrent-tracker` does (`randomBytes(20)`).
    pub fn random() -> Self {
        OfferId(rand::random())
    }
}

impl PeerId {
    /// `prefix` (truncated to 20 bytes) followed by random `[A-Za-z0-9]`, the shape PML uses
    /// (e.g. `-PM0203-GfIOL48eQkJM`).
    pub fn random_with_prefix(prefix: &str) -> Self {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut id = [0u8; ID_LEN];
        let p = prefix.as_bytes();
        let n = p.len().min(ID_LEN);
        id[..n].copy_from_slice(&p[..n]);
        for b in &mut id[n..] {
            *b = ALPHABET[rand::random_range(0..ALPHABET.len())];
        }
        PeerId(id)
    }
}

/// JS binary string → bytes; `None` unless exactly 20 chars all ≤ U+00FF.
pub fn binary_str_to_bytes(s: &str) -> Option<[u8; ID_LEN]> {
    let mut out = [0u8; ID_LEN];
    let mut n = 0;
    for c in s.chars() {
        let b = u8::try_from(u32::from(c)).ok()?;
        *out.get_mut(n)? = b;
        n += 1;
    }
    (n == ID_LEN).then_some(out)
}

/// Bytes → JS binary string (Latin-1 decoding: byte `b` becomes char U+00bb).
pub fn bytes_to_binary_string(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

// ------------------------------------------------------------------------------------------
// Client → tracker
// ------------------------------------------------------------------------------------------

/// `event` values we ever send. `update`/`empty` are deliberately absent: wt-tracker closes the
/// socket on them, and the JS client omits the key instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceEvent {
    /// First announce of a swarm on a tracker.
    Started,
    /// Leaving a swarm (0.6 and `client.stop()` send it; both trackers accept it).
    Stopped,
}

impl AnnounceEvent {
    fn as_str(self) -> &'static str {
        match self {
            AnnounceEvent::Started => "started",
            AnnounceEvent::Stopped => "stopped",
        }
    }
}

impl Serialize for AnnounceEvent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One of our SDP offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingOffer {
    pub offer_id: OfferId,
    pub sdp: String,
}

#[derive(Serialize)]
struct Sdp<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sdp: &'a str,
}

#[derive(Serialize)]
struct OfferEntry<'a> {
    offer: Sdp<'a>,
    offer_id: OfferId,
}

// Field order = the JS client's: `_defaultAnnounceOpts` (numwant, uploaded, downloaded),
// then `event`, then `Object.assign(..., {action, info_hash, peer_id})`, `trackerid`, `offers`.
#[derive(Serialize)]
struct AnnounceWire<'a> {
    numwant: usize,
    uploaded: u64,
    downloaded: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    event: Option<AnnounceEvent>,
    action: &'static str,
    info_hash: InfoHash,
    peer_id: PeerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    trackerid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offers: Option<Vec<OfferEntry<'a>>>,
}

#[derive(Serialize)]
struct AnswerWire<'a> {
    action: &'static str,
    info_hash: InfoHash,
    peer_id: PeerId,
    to_peer_id: PeerId,
    answer: Sdp<'a>,
    offer_id: OfferId,
    #[serde(skip_serializing_if = "Option::is_none")]
    trackerid: Option<&'a str>,
}

fn to_json<T: Serialize>(v: &T) -> String {
    // Serialising plain structs of strings and integers into a String cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// An announce carrying offers. `event` is `Some(Started)` on the very first announce of the
/// swarm on this tracker only; `numwant` is the number of offers (an integer, or wt-tracker
/// relays nothing).
pub fn encode_announce(
    info_hash: &InfoHash,
    peer_id: &PeerId,
    started: bool,
    offers: &[OutgoingOffer],
    tracker_id: Option<&str>,
) -> String {
    to_json(&AnnounceWire {
        numwant: offers.len(),
        uploaded: 0,
        downloaded: 0,
        event: started.then_some(AnnounceEvent::Started),
        action: "announce",
        info_hash: *info_hash,
        peer_id: *peer_id,
        trackerid: tracker_id,
        offers: Some(
            offers
                .iter()
                .map(|o| OfferEntry {
                    offer: Sdp {
                        kind: "offer",
                        sdp: &o.sdp,
                    },
                    offer_id: o.offer_id,
                })
                .collect(),
        ),
    })
}

/// `event: "stopped"` without offers, as `client.stop()` sends it.
pub fn encode_stopped(
    info_hash: &InfoHash,
    peer_id: &PeerId,
    numwant: usize,
    tracker_id: Option<&str>,
) -> String {
    to_json(&AnnounceWire {
        numwant,
        uploaded: 0,
        downloaded: 0,
        event: Some(AnnounceEvent::Stopped),
        action: "announce",
        info_hash: *info_hash,
        peer_id: *peer_id,
        trackerid: tracker_id,
        offers: None,
    })
}

/// Our answer to a relayed offer: never with `event`, `numwant` or `offers`.
pub fn encode_answer(
    info_hash: &InfoHash,
    peer_id: &PeerId,
    to_peer_id: &PeerId,
    offer_id: &OfferId,
    sdp: &str,
    tracker_id: Option<&str>,
) -> String {
    to_json(&AnswerWire {
        action: "announce",
        info_hash: *info_hash,
        peer_id: *peer_id,
        to_peer_id: *to_peer_id,
        answer: Sdp {
            kind: "answer",
            sdp,
        },
        offer_id: *offer_id,
        trackerid: tracker_id,
    })
}

// ------------------------------------------------------------------------------------------
// Tracker → client
// ------------------------------------------------------------------------------------------

/// A relayed offer or answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub offer_id: OfferId,
    pub sdp: String,
}

/// Everything a tracker message may carry. One message can combine several parts (an
/// announce response is `interval`+`complete`+`incomplete`; a failure may come alone, without
/// `info_hash` or even `action`), so this mirrors the JS client's field-by-field handling
/// rather than forcing one variant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inbound {
    pub action: Option<String>,
    pub info_hash: Option<InfoHash>,
    pub peer_id: Option<PeerId>,
    pub failure_reason: Option<String>,
    pub warning_message: Option<String>,
    /// `interval`, else `min interval` (the JS client's `data.interval || data['min interval']`).
    pub interval: Option<Duration>,
    pub tracker_id: Option<String>,
    pub complete: Option<u64>,
    pub incomplete: Option<u64>,
    pub offer: Option<Signal>,
    pub answer: Option<Signal>,
}

impl Inbound {
    /// An announce response (counts/interval), as opposed to a relayed offer/answer.
    pub fn is_announce_response(&self) -> bool {
        self.offer.is_none()
            && self.answer.is_none()
            && (self.interval.is_some() || self.complete.is_some() || self.incomplete.is_some())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    NotJson(String),
    NotAnObject,
    /// A field is present but unusable (e.g. an id that is not 20 Latin-1 chars).
    BadField(&'static str),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::NotJson(e) => write!(f, "tracker message is not JSON: {e}"),
            ProtoError::NotAnObject => f.write_str("tracker message is not a JSON object"),
            ProtoError::BadField(k) => write!(f, "tracker message has a malformed `{k}`"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Longest interval we accept; keeps `Duration` arithmetic far from overflow.
const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Decode one tracker message (a WebSocket text frame).
pub fn decode(text: &str) -> Result<Inbound, ProtoError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProtoError::NotJson(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(ProtoError::NotAnObject);
    };

    let id_field = |key: &'static str| -> Result<Option<[u8; ID_LEN]>, ProtoError> {
        match obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => binary_str_to_bytes(s)
                .map(Some)
                .ok_or(ProtoError::BadField(key)),
            Some(_) => Err(ProtoError::BadField(key)),
        }
    };

    // `peer_id` is only needed to route offers/answers; don't reject a whole announce
    // response because of it, but do reject offers/answers with a bad one (below).
    let peer_id = id_field("peer_id");
    let mut msg = Inbound {
        action: str_field(&obj, "action"),
        info_hash: id_field("info_hash")?.map(InfoHash),
        peer_id: peer_id.clone().ok().flatten().map(PeerId),
        failure_reason: str_field(&obj, "failure reason"),
        warning_message: str_field(&obj, "warning message"),
        interval: seconds_field(&obj, "interval").or_else(|| seconds_field(&obj, "min interval")),
        tracker_id: str_field(&obj, "tracker id"),
        complete: count_field(&obj, "complete"),
        incomplete: count_field(&obj, "incomplete"),
        offer: None,
        answer: None,
    };
    msg.offer = signal_field(&obj, "offer")?;
    msg.answer = signal_field(&obj, "answer")?;
    if msg.offer.is_some() || msg.answer.is_some() {
        peer_id?;
        if msg.peer_id.is_none() {
            return Err(ProtoError::BadField("peer_id"));
        }
    }
    Ok(msg)
}

fn str_field(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        // Failure reasons are meant to be text; keep other JSON readable rather than lose it.
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        // Some trackers stringify numbers; the JS client would coerce them too.
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Seconds > 0 (JS treats 0 as "absent"), capped at one day.
fn seconds_field(obj: &Map<String, Value>, key: &str) -> Option<Duration> {
    let secs = number(obj.get(key)?)?;
    if secs.is_nan() || secs <= 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(secs).map_or(MAX_INTERVAL, |d| d.min(MAX_INTERVAL)))
}

fn count_field(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    let n = number(obj.get(key)?)?;
    // Saturating float→int cast; negative or NaN counts become 0.
    (n.is_finite()).then(|| n.max(0.0) as u64)
}

/// `offer`/`answer`: `{type, sdp}` plus the sibling `offer_id`. Absent → `Ok(None)`.
fn signal_field(obj: &Map<String, Value>, key: &'static str) -> Result<Option<Signal>, ProtoError> {
    let sig = match obj.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ProtoError::BadField(key)),
    };
    let Some(Value::String(sdp)) = sig.get("sdp") else {
        return Err(ProtoError::BadField(key));
    };
    let offer_id = match obj.get("offer_id") {
        Some(Value::String(s)) => {
            OfferId::from_binary_str(s).ok_or(ProtoError::BadField("offer_id"))?
        }
        _ => return Err(ProtoError::BadField("offer_id")),
    };
    Ok(Some(Signal {
        offer_id,
        sdp: sdp.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ih() -> InfoHash {
        InfoHash::from_bytes(b"J3KjvNhSbLlKe91dpkWw").unwrap()
    }
    fn pid(s: &[u8; 20]) -> PeerId {
        PeerId(*s)
    }

    /// The offer_id of the reference's captured announce as printed there. It has only 17
    /// chars: the document lost the invisible C1 controls (U+0080..U+009F) that
    /// `JSON.stringify` emits raw, so the tests append three of them to get a real 20-byte id.
    const REF_OFFER_ID_JSON: &str = "\"·;gî\\u0012\u{AD}ÎQã=\\\\F\\u0017Vü®P\"";

    fn captured_offer_id_json() -> String {
        format!(
            "{}\u{80}\u{85}\u{9f}\"",
            &REF_OFFER_ID_JSON[..REF_OFFER_ID_JSON.len() - 1]
        )
    }

    #[test]
    fn binary_string_round_trip_all_bytes() {
        for start in (0u8..=232).step_by(4) {
            let bytes: Vec<u8> = (start..start + 20).collect();
            let id = OfferId::from_bytes(&bytes).unwrap();
            let s = id.to_binary_string();
            assert_eq!(s.chars().count(), 20);
            assert_eq!(OfferId::from_binary_str(&s), Some(id));
            // And through JSON text, as it travels.
            let json = serde_json::to_string(&s).unwrap();
            let back: String = serde_json::from_str(&json).unwrap();
            assert_eq!(OfferId::from_binary_str(&back), Some(id));
        }
        let last: Vec<u8> = (236u8..=255).collect();
        let id = OfferId::from_bytes(&last).unwrap();
        assert_eq!(OfferId::from_binary_str(&id.to_binary_string()), Some(id));
    }

    #[test]
    fn binary_string_rejects_wrong_length_and_wide_chars() {
        assert_eq!(binary_str_to_bytes("short"), None);
        assert_eq!(binary_str_to_bytes(&"a".repeat(21)), None);
        assert_eq!(binary_str_to_bytes(&format!("{}Ā", "a".repeat(19))), None); // U+0100
        assert_eq!(binary_str_to_bytes(&format!("{}Ж", "a".repeat(19))), None);
        assert!(binary_str_to_bytes(&"ÿ".repeat(20)).is_some());
    }

    #[test]
    fn captured_offer_id_decodes_and_reencodes_byte_exactly() {
        let printed: String = serde_json::from_str(REF_OFFER_ID_JSON).unwrap();
        assert_eq!(printed.chars().count(), 17);
        assert_eq!(OfferId::from_binary_str(&printed), None);
        let json = captured_offer_id_json();
        let s: String = serde_json::from_str(&json).unwrap();
        let id = OfferId::from_binary_str(&s).expect("20 latin-1 chars");
        assert_eq!(id.0[4], 0x12);
        assert_eq!(id.0[5], 0xad);
        assert_eq!(id.0[10], b'\\');
        assert_eq!(id.0[17..], [0x80, 0x85, 0x9f]);
        // C1 controls stay raw (UTF-8 encoded), like JSON.stringify.
        assert_eq!(serde_json::to_string(&id).unwrap(), json);
    }

    #[test]
    fn first_announce_matches_reference_key_order() {
        let peer = pid(b"-PM0203-AAAAAAAAAAAA");
        let oid_json = captured_offer_id_json();
        let oid =
            OfferId::from_binary_str(&serde_json::from_str::<String>(&oid_json).unwrap()).unwrap();
        let offers = vec![OutgoingOffer {
            offer_id: oid,
            sdp: "v=0\r\na=end-of-candidates\r\n".into(),
        }];
        let json = encode_announce(&ih(), &peer, true, &offers, None);
        let expected = concat!(
            r#"{"numwant":1,"uploaded":0,"downloaded":0,"event":"started","action":"announce","#,
            r#""info_hash":"J3KjvNhSbLlKe91dpkWw","peer_id":"-PM0203-AAAAAAAAAAAA","#,
            r#""offers":[{"offer":{"type":"offer","sdp":"v=0\r\na=end-of-candidates\r\n"},"#,
            r#""offer_id":OID}]}"#
        )
        .replace("OID", &oid_json);
        assert_eq!(json, expected);
    }

    #[test]
    fn reannounce_has_no_event_key_and_integer_numwant() {
        let offers: Vec<_> = (0..5)
            .map(|i| OutgoingOffer {
                offer_id: OfferId([i; 20]),
                sdp: format!("sdp{i}"),
            })
            .collect();
        let json = encode_announce(
            &ih(),
            &pid(b"-PR0100-abcdefghijkl"),
            false,
            &offers,
            Some("tid"),
        );
        assert!(json.starts_with(
            r#"{"numwant":5,"uploaded":0,"downloaded":0,"action":"announce","info_hash":"J3KjvNhSbLlKe91dpkWw","peer_id":"-PR0100-abcdefghijkl","trackerid":"tid","offers":["#
        ));
        assert!(!json.contains("event"));
        let v: Value = serde_json::from_str(&json).unwrap();
        assert!(v["numwant"].is_u64());
        assert_eq!(v["offers"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn announce_without_offers_keeps_empty_array() {
        let json = encode_announce(&ih(), &pid(b"-PR0100-abcdefghijkl"), false, &[], None);
        assert!(json.starts_with(r#"{"numwant":0,"#));
        assert!(json.ends_with(r#""offers":[]}"#));
    }

    #[test]
    fn answer_matches_reference_key_order() {
        let oid_json = r#""A¶#¡\u001e\u001cÞ¶ÎÀE%\u000b9\u0016(\u0000""#;
        // The reference's example is abbreviated to 17 chars; pad to a real 20-byte id.
        let mut s: String = serde_json::from_str(oid_json).unwrap();
        while s.chars().count() < 20 {
            s.push('x');
        }
        let oid = OfferId::from_binary_str(&s).unwrap();
        let json = encode_answer(
            &ih(),
            &pid(b"-PM0203-AAAAAAAAAAAA"),
            &pid(b"-PM0203-BBBBBBBBBBBB"),
            &oid,
            "v=0\r\n",
            None,
        );
        let expected = concat!(
            r#"{"action":"announce","info_hash":"J3KjvNhSbLlKe91dpkWw","peer_id":"-PM0203-AAAAAAAAAAAA","#,
            r#""to_peer_id":"-PM0203-BBBBBBBBBBBB","answer":{"type":"answer","sdp":"v=0\r\n"},"#,
            r#""offer_id":"A¶#¡\u001e\u001cÞ¶ÎÀE%\u000b9\u0016(\u0000xxx"}"#
        );
        assert_eq!(json, expected);
        assert!(!json.contains("event") && !json.contains("numwant"));
    }

    #[test]
    fn stopped_has_event_and_no_offers() {
        let json = encode_stopped(&ih(), &pid(b"-PR0100-abcdefghijkl"), 5, None);
        assert_eq!(
            json,
            r#"{"numwant":5,"uploaded":0,"downloaded":0,"event":"stopped","action":"announce","info_hash":"J3KjvNhSbLlKe91dpkWw","peer_id":"-PR0100-abcdefghijkl"}"#
        );
    }

    #[test]
    fn decodes_announce_response() {
        let m = decode(r#"{"action":"announce","interval":120,"info_hash":"J3KjvNhSbLlKe91dpkWw","complete":0,"incomplete":2}"#).unwrap();
        assert_eq!(m.action.as_deref(), Some("announce"));
        assert_eq!(m.info_hash, Some(ih()));
        assert_eq!(m.interval, Some(Duration::from_secs(120)));
        assert_eq!((m.complete, m.incomplete), (Some(0), Some(2)));
        assert!(m.is_announce_response());
        assert!(m.offer.is_none() && m.answer.is_none() && m.peer_id.is_none());
    }

    #[test]
    fn decodes_min_interval_and_tracker_id_and_warning() {
        let m = decode(r#"{"action":"announce","min interval":7.5,"info_hash":"J3KjvNhSbLlKe91dpkWw","tracker id":"x","warning message":"slow down","future":[1,2]}"#).unwrap();
        assert_eq!(m.interval, Some(Duration::from_millis(7500)));
        assert_eq!(m.tracker_id.as_deref(), Some("x"));
        assert_eq!(m.warning_message.as_deref(), Some("slow down"));
        // interval wins over min interval, like `data.interval || data['min interval']`.
        let m = decode(r#"{"interval":0,"min interval":3}"#).unwrap();
        assert_eq!(m.interval, Some(Duration::from_secs(3)));
        let m = decode(r#"{"interval":1e300}"#).unwrap();
        assert_eq!(m.interval, Some(MAX_INTERVAL));
        let m = decode(r#"{"interval":-5,"complete":-1,"incomplete":"3"}"#).unwrap();
        assert_eq!(
            (m.interval, m.complete, m.incomplete),
            (None, Some(0), Some(3))
        );
    }

    #[test]
    fn decodes_relayed_offer_and_answer() {
        let oid_json = captured_offer_id_json();
        let offer = format!(
            r#"{{"action":"announce","info_hash":"J3KjvNhSbLlKe91dpkWw","offer_id":{oid_json},"peer_id":"-PM0203-BBBBBBBBBBBB","offer":{{"type":"offer","sdp":"v=0\r\n"}}}}"#
        );
        let m = decode(&offer).unwrap();
        assert_eq!(m.peer_id, Some(pid(b"-PM0203-BBBBBBBBBBBB")));
        let sig = m.offer.unwrap();
        assert_eq!(sig.sdp, "v=0\r\n");
        assert_eq!(serde_json::to_string(&sig.offer_id).unwrap(), oid_json);
        assert!(m.answer.is_none());

        // bittorrent-tracker's relay order: action, answer, offer_id, peer_id, info_hash.
        let answer = format!(
            r#"{{"action":"announce","answer":{{"type":"answer","sdp":"a"}},"offer_id":{oid_json},"peer_id":"-PM0203-BBBBBBBBBBBB","info_hash":"J3KjvNhSbLlKe91dpkWw"}}"#
        );
        let m = decode(&answer).unwrap();
        assert!(!m.is_announce_response());
        assert_eq!(m.answer.unwrap().sdp, "a");
    }

    #[test]
    fn decodes_failures_with_and_without_info_hash() {
        let m = decode(r#"{"failure reason":"invalid info_hash"}"#).unwrap();
        assert_eq!(m.failure_reason.as_deref(), Some("invalid info_hash"));
        assert_eq!(m.info_hash, None);
        let m = decode(r#"{"action":"announce","failure reason":"invalid event","info_hash":"J3KjvNhSbLlKe91dpkWw"}"#).unwrap();
        assert_eq!(m.info_hash, Some(ih()));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [
            "",
            "not json",
            "[1,2]",
            "\"str\"",
            "null",
            "{\"info_hash\":\"short\"}",
            "{\"info_hash\":12}",
            "{\"info_hash\":\"J3KjvNhSbLlKe91dpkWw\",\"offer\":{\"type\":\"offer\"},\"offer_id\":\"aaaaaaaaaaaaaaaaaaaa\",\"peer_id\":\"-PM0203-BBBBBBBBBBBB\"}",
            "{\"info_hash\":\"J3KjvNhSbLlKe91dpkWw\",\"offer\":{\"sdp\":\"x\"},\"peer_id\":\"-PM0203-BBBBBBBBBBBB\"}",
            "{\"info_hash\":\"J3KjvNhSbLlKe91dpkWw\",\"answer\":{\"sdp\":\"x\"},\"offer_id\":\"aaaaaaaaaaaaaaaaaaaa\"}",
            "{\"info_hash\":\"J3KjvNhSbLlKe91dpkWw\",\"answer\":\"x\",\"offer_id\":\"aaaaaaaaaaaaaaaaaaaa\",\"peer_id\":\"-PM0203-BBBBBBBBBBBB\"}",
            "{\"info_hash\":\"J3KjvNhSbLlKe91dpkWw\",\"offer\":{\"sdp\":\"x\"},\"offer_id\":\"ĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀĀ\",\"peer_id\":\"-PM0203-BBBBBBBBBBBB\"}",
        ] {
            assert!(decode(bad).is_err(), "{bad:?} should not decode");
        }
        // Unknown keys and a malformed peer_id on a plain response are fine.
        let m = decode(
            r#"{"action":"announce","info_hash":"J3KjvNhSbLlKe91dpkWw","peer_id":7,"x":{}}"#,
        )
        .unwrap();
        assert_eq!(m.peer_id, None);
    }

    #[test]
    fn truncated_and_mutated_messages_never_panic() {
        let oid_json = captured_offer_id_json();
        let msg = format!(
            r#"{{"action":"announce","interval":120,"info_hash":"J3KjvNhSbLlKe91dpkWw","offer_id":{oid_json},"peer_id":"-PM0203-BBBBBBBBBBBB","offer":{{"type":"offer","sdp":"v=0\r\n"}},"complete":1}}"#
        );
        assert!(decode(&msg).is_ok());
        for (i, _) in msg.char_indices() {
            let _ = decode(&msg[..i]);
            let mut m = msg.clone();
            m.remove(i);
            let _ = decode(&m);
        }
        for _ in 0..2000 {
            let bytes: Vec<u8> = (0..rand::random_range(0..64))
                .map(|_| rand::random())
                .collect();
            let _ = decode(&String::from_utf8_lossy(&bytes));
        }
    }

    #[test]
    fn peer_id_prefix_and_alphabet() {
        let p = PeerId::random_with_prefix("-PR0100-");
        assert_eq!(&p.0[..8], b"-PR0100-");
        assert!(p.0[8..].iter().all(u8::is_ascii_alphanumeric));
        assert_eq!(p.to_string().len(), 20);
        assert_ne!(OfferId::random(), OfferId::random());
    }

    #[test]
    fn display_is_text_or_hex() {
        assert_eq!(ih().to_string(), "J3KjvNhSbLlKe91dpkWw");
        assert_eq!(OfferId([0xab; 20]).to_string(), "ab".repeat(20));
    }
}
