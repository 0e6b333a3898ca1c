//! What connected peers announced (`l` loaded, `p` HTTP-loading), kept as full snapshots per
//! peer (PML announcements replace, never patch) plus per-segment counts so the scheduler can ask
//! "does anyone have X" without scanning every peer.

use std::collections::BTreeMap;

use super::{PeerKey, SegmentId};

#[derive(Debug, Clone, Default)]
pub struct PeerState {
    /// Sorted, deduplicated.
    pub loaded: Vec<SegmentId>,
    /// Sorted, deduplicated.
    pub http_loading: Vec<SegmentId>,
    /// Whether it sent at least one announcement since connecting.
    pub announced: bool,
    /// Our download from this peer in progress (one per connection).
    pub busy: bool,
    /// Inactivity timeouts since the last success (PML `p2pErrorRetries` counter).
    pub timeouts: u32,
    /// Smoothed throughput of completed downloads, bytes per ms (0 = unproven).
    pub throughput: f64,
}

impl PeerState {
    pub fn has_loaded(&self, id: SegmentId) -> bool {
        self.loaded.binary_search(&id).is_ok()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Avail {
    pub loaded: u32,
    pub http_loading: u32,
}

#[derive(Debug, Default)]
pub struct Peers {
    map: BTreeMap<PeerKey, PeerState>,
    avail: BTreeMap<SegmentId, Avail>,
}

fn normalise(ids: &[SegmentId]) -> Vec<SegmentId> {
    let mut v = ids.to_vec();
    if !v.windows(2).all(|w| w[0] < w[1]) {
        v.sort_unstable();
        v.dedup();
    }
    v
}

impl Peers {
    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn connect(&mut self, peer: PeerKey) {
        self.map.entry(peer).or_default();
    }

    /// Returns the removed state (so in-flight transfers can be failed).
    pub fn disconnect(&mut self, peer: PeerKey) -> Option<PeerState> {
        let st = self.map.remove(&peer)?;
        for &id in &st.loaded {
            self.bump(id, -1, 0);
        }
        for &id in &st.http_loading {
            self.bump(id, 0, -1);
        }
        Some(st)
    }

    /// Replace a peer's announcement. Unknown peers are connected implicitly. Returns whether
    /// this was the peer's first announcement or a changed id satisfies `relevant`.
    pub fn announce(
        &mut self,
        peer: PeerKey,
        loaded: &[SegmentId],
        http_loading: &[SegmentId],
        relevant: impl Fn(SegmentId) -> bool,
    ) -> bool {
        let new_l = normalise(loaded);
        let new_p = normalise(http_loading);
        let Peers { map, avail } = self;
        let st = map.entry(peer).or_default();
        let mut hit = !st.announced;
        st.announced = true;
        diff(&st.loaded, &new_l, |id, d| {
            bump(avail, id, d, 0);
            hit = hit || relevant(id);
        });
        diff(&st.http_loading, &new_p, |id, d| {
            bump(avail, id, 0, d);
            hit = hit || relevant(id);
        });
        st.loaded = new_l;
        st.http_loading = new_p;
        hit
    }

    /// A peer said `SegmentAbsent`: it no longer counts as holding `id`.
    pub fn forget_loaded(&mut self, peer: PeerKey, id: SegmentId) {
        if let Some(st) = self.map.get_mut(&peer) {
            if let Ok(i) = st.loaded.binary_search(&id) {
                st.loaded.remove(i);
                self.bump(id, -1, 0);
            }
        }
    }

    fn bump(&mut self, id: SegmentId, dl: i32, dp: i32) {
        bump(&mut self.avail, id, dl, dp);
    }

    /// Whether at least half of the connected peers have announced.
    pub fn mostly_announced(&self) -> bool {
        let n = self.map.values().filter(|s| s.announced).count();
        n > 0 && n * 2 >= self.map.len()
    }

    /// Whether every connected peer has announced at least once.
    pub fn all_announced(&self) -> bool {
        self.map.values().all(|s| s.announced)
    }

    pub fn avail(&self, id: SegmentId) -> Avail {
        self.avail.get(&id).copied().unwrap_or_default()
    }

    pub fn get(&self, peer: PeerKey) -> Option<&PeerState> {
        self.map.get(&peer)
    }

    pub fn get_mut(&mut self, peer: PeerKey) -> Option<&mut PeerState> {
        self.map.get_mut(&peer)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&PeerKey, &PeerState)> {
        self.map.iter()
    }

    /// Idle peers (no download from them in progress) that announced `id` as loaded.
    pub fn idle_holders(&self, id: SegmentId) -> impl Iterator<Item = (&PeerKey, &PeerState)> {
        self.map
            .iter()
            .filter(move |(_, s)| !s.busy && s.has_loaded(id))
    }
}

fn bump(avail: &mut BTreeMap<SegmentId, Avail>, id: SegmentId, dl: i32, dp: i32) {
    let a = avail.entry(id).or_default();
    a.loaded = a.loaded.saturating_add_signed(dl);
    a.http_loading = a.http_loading.saturating_add_signed(dp);
    if *a == Avail::default() {
        avail.remove(&id);
    }
}

/// Calls `f(id, +1)` for ids only in `new`, `f(id, -1)` for ids only in `old` (both sorted).
fn diff(old: &[SegmentId], new: &[SegmentId], mut f: impl FnMut(SegmentId, i32)) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(&a), Some(&b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(&a), Some(&b)) if a < b => {
                f(a, -1);
                i += 1;
            }
            (Some(_), Some(&b)) => {
                f(b, 1);
                j += 1;
            }
            (Some(&a), None) => {
                f(a, -1);
                i += 1;
            }
            (None, Some(&b)) => {
                f(b, 1);
                j += 1;
            }
            (None, None) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_snapshots() {
        let mut p = Peers::default();
        assert!(p.announce(PeerKey(1), &[3, 1, 2], &[4], |_| false), "first");
        assert!(
            !p.announce(PeerKey(1), &[1, 2, 3], &[4], |_| true),
            "no change"
        );
        p.announce(PeerKey(2), &[2], &[4, 5], |_| false);
        assert_eq!(
            p.avail(2),
            Avail {
                loaded: 2,
                http_loading: 0
            }
        );
        assert_eq!(p.avail(4).http_loading, 2);
        assert!(p.announce(PeerKey(1), &[4], &[], |id| id == 4));
        assert_eq!(p.avail(1), Avail::default());
        assert_eq!(p.avail(4).loaded, 1);
        assert_eq!(p.avail(4).http_loading, 1);
        p.forget_loaded(PeerKey(1), 4);
        assert_eq!(p.avail(4).loaded, 0);
        p.disconnect(PeerKey(2));
        assert_eq!(p.avail(2), Avail::default());
        assert_eq!(p.avail(5), Avail::default());
        assert!(p.avail.is_empty());
    }
}
