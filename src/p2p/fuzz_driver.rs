//! Script interpreter shared by the `cargo fuzz` target and the randomized
//! unit test: arbitrary bytes drive a [`Decoder`] and a [`PeerSession`]
//! through messages, timers and local actions, asserting the invariants
//! (no panic, bounded buffering, bounded message sizes). Not a stable API.

use std::sync::Arc;

use super::peer::{DownloadRequest, Event, Output, PeerConfig, PeerSession};
use super::wire::Decoder;

/// Command-size cap used by the driver (small, to exercise the limit).
pub const MAX_COMMAND_BYTES: usize = 4096;
/// Segment-size cap used by the driver.
pub const MAX_SEGMENT_BYTES: u64 = 1 << 16;
/// Message-size limit used by the driver.
pub const MAX_MESSAGE_SIZE: usize = 1000;

/// Script opcodes (first byte of each step, modulo [`OPS`]).
pub mod op {
    /// `len:u16le` + raw message bytes.
    pub const RAW: u8 = 0;
    /// `len:u16le` + body, sent framed `cstr…cend`.
    pub const FRAMED: u8 = 1;
    /// `len:u16le` + body, sent as first part `cstr…dend`.
    pub const FIRST_PART: u8 = 2;
    /// `len:u16le` + body, sent as continuation `dstr…cend` / `dstr…dend` (by a flag byte).
    pub const NEXT_PART: u8 = 3;
    /// `dt:u8`: advance the clock by `dt × 50` ms and fire the timer.
    pub const TIMER: u8 = 4;
    /// `id:u8 r:u8 flags:u8`: request a download.
    pub const REQUEST: u8 = 5;
    /// Cancel the current download.
    pub const CANCEL: u8 = 6;
    /// `size:u8`: answer the last upload request (size 0 → absent).
    pub const ANSWER: u8 = 7;
}
/// Number of opcodes.
pub const OPS: u8 = 8;

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

fn framed(start: &[u8], body: &[u8], end: &[u8]) -> Vec<u8> {
    [start, body, end].concat()
}

fn new_session(seed: u64) -> PeerSession {
    let config = PeerConfig {
        max_message_size: MAX_MESSAGE_SIZE,
        max_command_bytes: MAX_COMMAND_BYTES,
        ..PeerConfig::default()
    };
    PeerSession::new(config, seed)
}

/// What a script run reached (lets tests check the generator is effective).
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Segments fully downloaded.
    pub received: u64,
    /// Sessions that ended in a disconnect.
    pub disconnects: u64,
    /// Upload payload chunks produced.
    pub upload_chunks: u64,
    /// Upload requests seen.
    pub upload_requests: u64,
}

/// Drains a session, checking invariants.
fn drain(s: &mut PeerSession, last_upload: &mut Option<i64>, stats: &mut Stats) {
    for _ in 0..64 {
        while let Some(o) = s.poll_output() {
            match o {
                Output::Send(m) => assert!(m.len() <= MAX_MESSAGE_SIZE, "oversized message"),
                Output::Event(e) => match e {
                    Event::DownloadProgress {
                        received, expected, ..
                    } => assert!(received <= expected && expected <= MAX_SEGMENT_BYTES),
                    Event::SegmentReceived { data, .. } => {
                        assert!(data.len() as u64 <= MAX_SEGMENT_BYTES);
                        stats.received += 1;
                    }
                    Event::UploadRequested { request_id, .. } => {
                        *last_upload = Some(request_id);
                        stats.upload_requests += 1;
                    }
                    Event::Disconnect { .. } => stats.disconnects += 1,
                    _ => {}
                },
            }
        }
        match s.poll_upload_chunk() {
            Some(c) => {
                assert!(!c.is_empty() && c.len() <= MAX_MESSAGE_SIZE);
                stats.upload_chunks += 1;
            }
            None => break,
        }
    }
    assert!(s.buffered_command_bytes() <= MAX_COMMAND_BYTES);
}

/// Runs one script. Panics only if an invariant is broken.
pub fn run(input: &[u8]) -> Stats {
    let mut stats = Stats::default();
    let mut c = Cursor(input);
    let mut decoder = Decoder::new(MAX_COMMAND_BYTES);
    let mut session = new_session(input.len() as u64);
    let mut now = 0u64;
    let mut last_upload = None;
    while !c.0.is_empty() {
        let code = c.byte() % OPS;
        let msg = match code {
            op::RAW..=op::NEXT_PART => {
                let len = u16::from_le_bytes([c.byte(), c.byte()]) as usize;
                let body = c.bytes(len);
                Some(match code {
                    op::RAW => body.to_vec(),
                    op::FRAMED => framed(b"cstr", body, b"cend"),
                    op::FIRST_PART => framed(b"cstr", body, b"dend"),
                    _ if c.byte() & 1 == 0 => framed(b"dstr", body, b"dend"),
                    _ => framed(b"dstr", body, b"cend"),
                })
            }
            op::TIMER => {
                now += c.byte() as u64 * 50;
                session.on_timer(now);
                None
            }
            op::REQUEST => {
                let (id, r, flags) = (c.byte(), c.byte(), c.byte());
                let req = DownloadRequest {
                    id: id as i64,
                    byte_offset: (flags & 3) as u64 * 10,
                    total_bytes: (flags & 4 != 0).then_some(flags as u64 * 4),
                    max_segment_bytes: MAX_SEGMENT_BYTES,
                };
                let _ = session.request_with_id(req, r as i64, now);
                None
            }
            op::CANCEL => {
                session.cancel_download();
                None
            }
            _ => {
                let size = c.byte() as usize * 40;
                if let Some(r) = last_upload {
                    if size == 0 {
                        session.upload_absent(r);
                    } else {
                        let data: Vec<u8> = (0..size).map(|i| i as u8).collect();
                        session.upload(r, Arc::new(data));
                    }
                }
                None
            }
        };
        if let Some(m) = msg {
            let _ = decoder.push(&m);
            assert!(decoder.buffered_len() <= MAX_COMMAND_BYTES);
            session.on_message(&m, now);
        }
        drain(&mut session, &mut last_upload, &mut stats);
        if session.is_closed() {
            session = new_session(now);
            last_upload = None;
        }
    }
    stats
}
