//! Sans-IO core of the P2P Media Loader protocol (2.x, and 0.6 beside it): swarm identity, segment
//! ids, the data-channel wire codec and the per-peer state machine.
//! No I/O, no clocks (time is passed in as milliseconds), no panics on input.

pub mod dash_streams;
#[doc(hidden)]
pub mod fuzz_driver;
pub mod hls_streams;
pub mod identity;
mod js;
pub mod peer;
pub mod rng;
pub mod segment_id;
pub mod wire;
pub mod wire06;

#[cfg(test)]
mod robustness_tests;

pub use identity::{Compat, StreamProperties, StreamSwarm, StreamType};
pub use js::{number_to_string as js_number_to_string, parse_js_number};
pub use peer::{
    DisconnectReason, DownloadFailure, DownloadRequest, Event, Output, PeerConfig, PeerSession,
    RequestError, UploadData, WireFamily,
};
pub use rng::SplitMix64;
pub use segment_id::{HlsIdScheme, WireSegmentId};
pub use wire::{Command, DecodeError, Decoder, Incoming};
