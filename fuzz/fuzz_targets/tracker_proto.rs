//! WebTorrent tracker messages (`net::tracker::proto`). Two halves per input:
//! - the input as a tracker's text frame → `decode`: no panic; a decoded message is sane
//!   (offers/answers carry a peer id, intervals in (0, 1 day]); its offer/answer, sent back
//!   through our encoder as an answer, decodes to the same ids and SDP;
//! - the input as raw material for our encoder: ids from its first 60 bytes (any byte value),
//!   SDP from the rest; `encode_announce`/`encode_answer`/`encode_stopped` → `decode` must give
//!   back exactly those ids and that SDP (the binary-string round trip every peer relies on).
#![no_main]

#[path = "common/mod.rs"]
mod common;

use std::time::Duration;

use gstp2pmedia::net::tracker::proto::{self, InfoHash, OfferId, OutgoingOffer, PeerId, ID_LEN};
use libfuzzer_sys::fuzz_target;

fn decode_checked(text: &str) -> Result<proto::Inbound, proto::ProtoError> {
    let (r, peak) = common::peak(|| proto::decode(text));
    // serde_json's Value tree: a few dozen bytes per input byte at most (`[[[[...` nests).
    assert!(
        peak <= 64 * 1024 + 96 * text.len(),
        "{} bytes held {peak}",
        text.len()
    );
    r
}

fn round_trip_answer(ih: &InfoHash, me: &PeerId, to: &PeerId, id: &OfferId, sdp: &str) {
    let json = proto::encode_answer(ih, me, to, id, sdp, Some("tid"));
    let back = proto::decode(&json).expect("our own answer decodes");
    assert_eq!(back.action.as_deref(), Some("announce"));
    assert_eq!(back.info_hash.as_ref(), Some(ih));
    assert_eq!(back.peer_id.as_ref(), Some(me));
    assert!(back.offer.is_none() && !back.is_announce_response());
    let answer = back.answer.expect("answer kept");
    assert_eq!(&answer.offer_id, id);
    assert_eq!(answer.sdp, sdp);
}

fuzz_target!(|data: &[u8]| {
    // 1. Whatever a tracker may send.
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(msg) = decode_checked(text) {
            if let Some(i) = msg.interval {
                assert!(!i.is_zero() && i <= Duration::from_secs(24 * 3600));
            }
            let _ = msg.is_announce_response();
            let ih = msg.info_hash.unwrap_or(InfoHash([b'i'; ID_LEN]));
            let me = PeerId([b'm'; ID_LEN]);
            for sig in [&msg.offer, &msg.answer].into_iter().flatten() {
                let from = msg.peer_id.expect("a signal always has a peer id");
                round_trip_answer(&ih, &me, &from, &sig.offer_id, &sig.sdp);
            }
            for id in [msg.info_hash.map(|h| h.0), msg.peer_id.map(|p| p.0)]
                .into_iter()
                .flatten()
            {
                let s = proto::bytes_to_binary_string(&id);
                assert_eq!(proto::binary_str_to_bytes(&s), Some(id));
            }
        }
    }

    // 2. Our encoder with arbitrary ids and SDP.
    let Some((ids, rest)) = data.split_first_chunk::<{ 3 * ID_LEN }>() else {
        return;
    };
    let ih = InfoHash::from_bytes(&ids[..ID_LEN]).unwrap();
    let pid = PeerId::from_bytes(&ids[ID_LEN..2 * ID_LEN]).unwrap();
    let oid = OfferId::from_bytes(&ids[2 * ID_LEN..]).unwrap();
    let sdp = String::from_utf8_lossy(rest);
    round_trip_answer(&ih, &pid, &pid, &oid, &sdp);

    let offers = [OutgoingOffer {
        offer_id: oid,
        sdp: sdp.clone().into_owned(),
    }];
    let tid = (data[0] & 1 == 1).then_some(&*sdp);
    let back = proto::decode(&proto::encode_announce(&ih, &pid, true, &offers, tid))
        .expect("our own announce decodes");
    assert_eq!(back.action.as_deref(), Some("announce"));
    assert_eq!((back.info_hash, back.peer_id), (Some(ih), Some(pid)));
    assert!(back.offer.is_none() && back.answer.is_none());
    let back = proto::decode(&proto::encode_stopped(&ih, &pid, 0, tid)).expect("stopped decodes");
    assert_eq!((back.info_hash, back.peer_id), (Some(ih), Some(pid)));
});
