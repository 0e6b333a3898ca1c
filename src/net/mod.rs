//! I/O shell: thin async adapters over the network (HTTP, WebTorrent trackers, WebRTC).

pub mod http;
pub mod rtc;
pub mod tracker;
