//! Memory-bounded segment storage of one swarm, with PML 2.x eviction
//! (`segment-memory-storage.ts`): live streams drop segments that ended more than the
//! high-demand window behind the playhead; VOD drops already-played segments (oldest first) only
//! when over the byte limit. Segments not played yet are never dropped, as in PML: the limit
//! may be exceeded by them. Dropping them made a store smaller than the prefetch windows fetch
//! the same segments again and again; instead the scheduler's memory-pressure brake
//! (`free_ratio_ahead`) shrinks prefetch to the high-demand window, which bounds what is
//! ahead by the stream's bitrate.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{SegmentId, StreamId};

/// Anything stored must report its size; `u64` stores sizes only (simulator).
pub trait SegmentBytes {
    fn byte_len(&self) -> u64;
}

impl SegmentBytes for Vec<u8> {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }
}

impl SegmentBytes for Box<[u8]> {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }
}

impl SegmentBytes for Arc<[u8]> {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }
}

/// The engine stores segments as `Bytes`: shared, zero-copy slices for uploads and output.
impl SegmentBytes for bytes::Bytes {
    fn byte_len(&self) -> u64 {
        self.len() as u64
    }
}

impl SegmentBytes for u64 {
    fn byte_len(&self) -> u64 {
        *self
    }
}

#[derive(Debug)]
struct Entry<D> {
    data: D,
    len: u64,
    start_ms: u64,
    end_ms: u64,
    /// Insertion counter: PML announces `l` in storage insertion order.
    seq: u64,
}

#[derive(Debug)]
struct StreamState<D> {
    live: bool,
    high_demand_window_ms: u64,
    playhead_ms: Option<u64>,
    segs: BTreeMap<SegmentId, Entry<D>>,
}

#[derive(Debug)]
pub struct SegmentStore<D> {
    limit_bytes: u64,
    used_bytes: u64,
    next_seq: u64,
    streams: BTreeMap<StreamId, StreamState<D>>,
    changed: BTreeSet<StreamId>,
}

impl<D: SegmentBytes> SegmentStore<D> {
    pub fn new(limit_bytes: u64) -> Self {
        SegmentStore {
            limit_bytes,
            used_bytes: 0,
            next_seq: 0,
            streams: BTreeMap::new(),
            changed: BTreeSet::new(),
        }
    }

    /// Declare (or update) a stream. `high_demand_window_ms` is the live retention behind the
    /// playhead (PML uses `highDemandTimeWindow`).
    pub fn configure_stream(&mut self, stream: StreamId, live: bool, high_demand_window_ms: u64) {
        let st = self.streams.entry(stream).or_insert_with(|| StreamState {
            live,
            high_demand_window_ms,
            playhead_ms: None,
            segs: BTreeMap::new(),
        });
        st.live = live;
        st.high_demand_window_ms = high_demand_window_ms;
    }

    /// Drop a stream and everything stored for it (e.g. inactive variant swarm destroyed).
    pub fn remove_stream(&mut self, stream: StreamId) {
        if let Some(st) = self.streams.remove(&stream) {
            let freed: u64 = st.segs.values().map(|e| e.len).sum();
            self.used_bytes = self.used_bytes.saturating_sub(freed);
            self.changed.remove(&stream);
        }
    }

    /// New playhead for a stream; applies live eviction. Returns evicted segments.
    pub fn set_playhead(&mut self, stream: StreamId, pos_ms: u64) -> Vec<(StreamId, SegmentId)> {
        if let Some(st) = self.streams.get_mut(&stream) {
            st.playhead_ms = Some(pos_ms);
        }
        self.evict_live()
    }

    /// Store a segment (replacing an existing copy) and evict as PML does on every store.
    /// Returns the evicted segments: the one just inserted only if it is live and already
    /// behind the retention window.
    pub fn insert(
        &mut self,
        stream: StreamId,
        id: SegmentId,
        start_ms: u64,
        end_ms: u64,
        data: D,
    ) -> Vec<(StreamId, SegmentId)> {
        let len = data.byte_len();
        let seq = self.next_seq;
        self.next_seq += 1;
        let st = self.streams.entry(stream).or_insert_with(|| StreamState {
            live: false,
            high_demand_window_ms: 15_000,
            playhead_ms: None,
            segs: BTreeMap::new(),
        });
        let entry = Entry {
            data,
            len,
            start_ms,
            end_ms,
            seq,
        };
        if let Some(old) = st.segs.insert(id, entry) {
            self.used_bytes = self.used_bytes.saturating_sub(old.len);
        }
        self.used_bytes += len;
        self.changed.insert(stream);
        let mut evicted = self.evict_live();
        evicted.extend(self.evict_over_limit());
        evicted
    }

    /// Remove one segment (e.g. it failed validation). Returns whether it was stored.
    pub fn remove(&mut self, stream: StreamId, id: SegmentId) -> bool {
        let Some(st) = self.streams.get_mut(&stream) else {
            return false;
        };
        match st.segs.remove(&id) {
            Some(e) => {
                self.used_bytes = self.used_bytes.saturating_sub(e.len);
                self.changed.insert(stream);
                true
            }
            None => false,
        }
    }

    pub fn get(&self, stream: StreamId, id: SegmentId) -> Option<&D> {
        self.streams.get(&stream)?.segs.get(&id).map(|e| &e.data)
    }

    pub fn contains(&self, stream: StreamId, id: SegmentId) -> bool {
        self.get(stream, id).is_some()
    }

    /// Stored ids of a stream in insertion order (the `l` list of an announcement).
    pub fn ids(&self, stream: StreamId) -> Vec<SegmentId> {
        let Some(st) = self.streams.get(&stream) else {
            return Vec::new();
        };
        let mut v: Vec<(u64, SegmentId)> = st.segs.iter().map(|(id, e)| (e.seq, *id)).collect();
        v.sort_unstable();
        v.into_iter().map(|(_, id)| id).collect()
    }

    pub fn len(&self, stream: StreamId) -> usize {
        self.streams.get(&stream).map_or(0, |s| s.segs.len())
    }

    pub fn is_empty(&self) -> bool {
        self.streams.values().all(|s| s.segs.is_empty())
    }

    pub fn used_bytes(&self) -> u64 {
        self.used_bytes
    }

    pub fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// Free share of the limit counting only segments that end after their stream's playhead
    /// (PML's memory-pressure measure; feed it to `Scheduler::handle_storage_free_ratio`).
    pub fn free_ratio_ahead(&self) -> f64 {
        if self.limit_bytes == 0 {
            return 0.0;
        }
        let used: u64 = self
            .streams
            .values()
            .flat_map(|st| {
                let pos = st.playhead_ms.unwrap_or(0);
                st.segs.values().filter(move |e| e.end_ms > pos)
            })
            .map(|e| e.len)
            .sum();
        1.0 - (used as f64 / self.limit_bytes as f64).min(1.0)
    }

    /// Streams whose stored id set changed since the last call: re-announce them.
    pub fn take_changed(&mut self) -> Vec<StreamId> {
        std::mem::take(&mut self.changed).into_iter().collect()
    }

    fn evict_live(&mut self) -> Vec<(StreamId, SegmentId)> {
        let mut out = Vec::new();
        for (sid, st) in self.streams.iter_mut() {
            let (true, Some(pos)) = (st.live, st.playhead_ms) else {
                continue;
            };
            let doomed: Vec<SegmentId> = st
                .segs
                .iter()
                .filter(|(_, e)| pos > e.end_ms.saturating_add(st.high_demand_window_ms))
                .map(|(id, _)| *id)
                .collect();
            for id in doomed {
                if let Some(e) = st.segs.remove(&id) {
                    self.used_bytes = self.used_bytes.saturating_sub(e.len);
                    self.changed.insert(*sid);
                    out.push((*sid, id));
                }
            }
        }
        out
    }

    /// Played segments, oldest first, until under the limit (or none is left to drop).
    fn evict_over_limit(&mut self) -> Vec<(StreamId, SegmentId)> {
        let mut out = Vec::new();
        if self.used_bytes <= self.limit_bytes {
            return out;
        }
        let mut cands: Vec<(u64, StreamId, SegmentId)> = Vec::new();
        for (sid, st) in &self.streams {
            let Some(pos) = st.playhead_ms else {
                continue;
            };
            for (id, e) in &st.segs {
                if pos > e.end_ms {
                    cands.push((e.start_ms, *sid, *id));
                }
            }
        }
        cands.sort_unstable();
        for (_, sid, id) in cands {
            if self.used_bytes <= self.limit_bytes {
                break;
            }
            if let Some(st) = self.streams.get_mut(&sid) {
                if let Some(e) = st.segs.remove(&id) {
                    self.used_bytes = self.used_bytes.saturating_sub(e.len);
                    self.changed.insert(sid);
                    out.push((sid, id));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: StreamId = StreamId(0);
    const T: StreamId = StreamId(1);

    #[test]
    fn live_evicts_behind_high_demand_window() {
        let mut st: SegmentStore<u64> = SegmentStore::new(1 << 30);
        st.configure_stream(S, true, 15_000);
        for i in 0..10u64 {
            st.insert(S, i, i * 2000, i * 2000 + 2000, 100);
        }
        assert_eq!(st.take_changed(), vec![S]);
        // Playhead at 30 s: segments ending before 15 s (ids 0..=6 end at <= 14 s) go.
        let ev = st.set_playhead(S, 30_000);
        let ids: Vec<_> = ev.iter().map(|e| e.1).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(st.ids(S), vec![7, 8, 9]);
        assert_eq!(st.used_bytes(), 300);
        assert_eq!(st.take_changed(), vec![S]);
        assert!(st.take_changed().is_empty());
        // Nothing more to evict: no change reported.
        assert!(st.set_playhead(S, 30_500).is_empty());
        assert!(st.take_changed().is_empty());
    }

    #[test]
    fn vod_keeps_everything_under_limit_then_drops_played_oldest_first() {
        let mut st: SegmentStore<u64> = SegmentStore::new(1000);
        st.configure_stream(S, false, 15_000);
        st.set_playhead(S, 7_000);
        for i in 0..10u64 {
            let ev = st.insert(S, i, i * 2000, i * 2000 + 2000, 100);
            assert!(ev.is_empty(), "under the limit nothing is evicted");
        }
        // 11th segment: 1100 > 1000 → the oldest played segment (0) goes.
        let ev = st.insert(S, 10, 20_000, 22_000, 100);
        assert_eq!(ev, vec![(S, 0)]);
        assert_eq!(st.used_bytes(), 1000);
        // A 300-byte segment: evict played 1, 2 (ending <= 6 s < 7 s); 3 (6..8 s) is being
        // played and 4.. are ahead: kept, over the limit, rather than fetched again later.
        let ev = st.insert(S, 11, 22_000, 24_000, 300);
        assert_eq!(ev, vec![(S, 1), (S, 2)]);
        assert_eq!(st.used_bytes(), 1100);
        assert!(st.contains(S, 10) && st.contains(S, 11));
        // A segment larger than the whole limit is kept too; the played ones make room.
        st.set_playhead(S, 13_000);
        let ev = st.insert(S, 12, 24_000, 26_000, 5000);
        assert_eq!(ev, vec![(S, 3), (S, 4), (S, 5)]);
        assert!(st.contains(S, 12));
        assert_eq!(st.used_bytes(), 5000 + 4 * 100 + 100 + 300);
        // Nothing played left to drop: the store stays over its limit, and says so.
        assert_eq!(st.free_ratio_ahead(), 0.0);
    }

    #[test]
    fn insertion_order_and_streams_are_separate() {
        let mut st: SegmentStore<Vec<u8>> = SegmentStore::new(1 << 20);
        st.insert(S, 5, 0, 1, vec![1, 2]);
        st.insert(S, 3, 0, 1, vec![3]);
        st.insert(T, 5, 0, 1, vec![9; 4]);
        assert_eq!(st.ids(S), vec![5, 3]);
        assert_eq!(st.ids(T), vec![5]);
        assert_eq!(st.get(T, 5).map(|d| d.len()), Some(4));
        assert_eq!(st.used_bytes(), 7);
        assert_eq!(st.take_changed(), vec![S, T]);
        assert!(st.remove(S, 5));
        assert!(!st.remove(S, 5));
        assert_eq!(st.take_changed(), vec![S]);
        st.remove_stream(T);
        assert_eq!(st.used_bytes(), 1);
    }

    #[test]
    fn free_ratio_counts_only_segments_ahead() {
        let mut st: SegmentStore<u64> = SegmentStore::new(1000);
        st.configure_stream(S, false, 15_000);
        st.insert(S, 0, 0, 2000, 500);
        st.insert(S, 1, 2000, 4000, 250);
        st.set_playhead(S, 3000);
        assert!((st.free_ratio_ahead() - 0.75).abs() < 1e-9);
    }
}
