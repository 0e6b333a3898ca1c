//! Remote SDP, as `net::rtc` receives it from a tracker relay (any JSON string, so any UTF-8):
//! the library's own gate (`m=application` required) and webrtc-rs's `RTCSessionDescription`
//! constructors, which parse every remote offer/answer before it is applied. Checks, besides
//! "no panic": parsing holds memory proportional to the input, never yields more media
//! sections than `m=` lines, and a parsed description prints back to SDP that parses again
//! with the same media sections.
#![no_main]

#[path = "common/mod.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use webrtc::peer_connection::RTCSessionDescription;

fuzz_target!(|data: &[u8]| {
    let sdp = String::from_utf8_lossy(data).into_owned();
    // What `WebRtcFactory::answer` checks before handing an offer to webrtc-rs.
    let _has_app = sdp.contains("m=application");
    let m_lines = sdp.matches("m=").count();
    let (offer, peak) = common::peak(|| RTCSessionDescription::offer(sdp.clone()));
    assert!(
        peak <= 64 * 1024 + 64 * sdp.len(),
        "{} bytes held {peak}",
        sdp.len()
    );
    let answer = RTCSessionDescription::answer(sdp.clone());
    assert_eq!(
        offer.is_ok(),
        answer.is_ok(),
        "offer and answer parse differently"
    );
    let Ok(desc) = offer else { return };
    let parsed = desc.unmarshal().expect("parsed once, parses again");
    assert!(parsed.media_descriptions.len() <= m_lines);
    let printed = parsed.marshal();
    if let Ok(again) = RTCSessionDescription::offer(printed.clone()) {
        let again = again.unmarshal().expect("parses again");
        assert_eq!(
            again.media_descriptions.len(),
            parsed.media_descriptions.len(),
            "printed SDP lost media sections:\n{printed}"
        );
    }
});
