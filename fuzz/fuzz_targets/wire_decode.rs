//! Arbitrary bytes → wire decoder and a PeerSession.
#![no_main]

use gstp2pmedia::p2p::{fuzz_driver, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The raw input as one message and as a command body...
    let mut decoder = wire::Decoder::new(fuzz_driver::MAX_COMMAND_BYTES);
    let _ = decoder.push(data);
    let _ = wire::decode_body(data);
    // ...and as a script of messages, timers and local actions.
    fuzz_driver::run(data);
});
