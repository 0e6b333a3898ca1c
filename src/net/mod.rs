//! I/O shell: thin async adapters over the network (HTTP now; tracker and WebRTC later).

pub mod http;
