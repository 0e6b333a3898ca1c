//! Counters the element exposes in its read-only `stats` structure.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Debug, Default)]
pub struct Stats {
    pub http_bytes: AtomicU64,
    pub http_segments: AtomicU64,
    /// Segment bytes received from peers.
    pub p2p_bytes: AtomicU64,
    pub p2p_segments: AtomicU64,
    /// Segment bytes sent to peers.
    pub p2p_upload_bytes: AtomicU64,
    /// Bitrate (BANDWIDTH) of the variant being fetched for the main stream, bit/s.
    pub variant_bitrate: AtomicU64,
    /// Measured download throughput, bit/s (0 until measured).
    pub bandwidth: AtomicU64,
    /// Longest stall inside one P2P download, over all swarms, ms.
    pub p2p_longest_stall_ms: AtomicU64,
    /// Segments the swarms stored from the origin (a seeder's pulls).
    pub seeded_segments: AtomicU64,
    /// Segments uploaded to peers to their last byte.
    pub served_segments: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub http_bytes: u64,
    pub http_segments: u64,
    pub p2p_bytes: u64,
    pub p2p_segments: u64,
    pub p2p_upload_bytes: u64,
    pub variant_bitrate: u64,
    pub bandwidth: u64,
    pub p2p_longest_stall_ms: u64,
    pub seeded_segments: u64,
    pub served_segments: u64,
}

impl Stats {
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            http_bytes: self.http_bytes.load(Relaxed),
            http_segments: self.http_segments.load(Relaxed),
            p2p_bytes: self.p2p_bytes.load(Relaxed),
            p2p_segments: self.p2p_segments.load(Relaxed),
            p2p_upload_bytes: self.p2p_upload_bytes.load(Relaxed),
            variant_bitrate: self.variant_bitrate.load(Relaxed),
            bandwidth: self.bandwidth.load(Relaxed),
            p2p_longest_stall_ms: self.p2p_longest_stall_ms.load(Relaxed),
            seeded_segments: self.seeded_segments.load(Relaxed),
            served_segments: self.served_segments.load(Relaxed),
        }
    }

    pub fn add_http(&self, bytes: u64, segment: bool) {
        self.http_bytes.fetch_add(bytes, Relaxed);
        if segment {
            self.http_segments.fetch_add(1, Relaxed);
        }
    }

    pub fn add_p2p(&self, bytes: u64) {
        self.p2p_bytes.fetch_add(bytes, Relaxed);
        self.p2p_segments.fetch_add(1, Relaxed);
    }

    pub fn p2p_stall(&self, ms: u64) {
        self.p2p_longest_stall_ms.fetch_max(ms, Relaxed);
    }

    pub fn add_p2p_upload(&self, bytes: u64) {
        self.p2p_upload_bytes.fetch_add(bytes, Relaxed);
    }
}
