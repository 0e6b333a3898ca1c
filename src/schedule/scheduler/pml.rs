//! `Policy::Pml`: P2P Media Loader 2.3 `HybridLoader.processQueue` and
//! `loadRandomThroughHttp` (hybrid-loader.ts:274-394, 423-514).

use super::{Item, Scheduler};
use crate::schedule::{SegmentId, Source};

impl Scheduler {
    /// PML 2.3 `HybridLoader.processQueue` (hybrid-loader.ts:274-394).
    pub(super) fn process_pml(&mut self, queue: &[Item]) {
        for idx in 0..queue.len() {
            let item = queue[idx];
            let loading = self.loading(item.id);
            if item.high_demand {
                if matches!(loading, Some((_, Source::Http))) || self.http_exhausted(item.id) {
                    continue;
                }
                if self.try_http(queue, idx) {
                    continue;
                }
                if matches!(loading, Some((_, Source::P2p(_)))) {
                    continue;
                }
                self.try_p2p(queue, idx);
            } else if item.p2p_window && (item.avail.loaded > 0 || item.avail.http_loading > 0) {
                if loading.is_some() {
                    continue;
                }
                self.try_p2p(queue, idx);
            }
        }
    }

    /// PML: take the first min(n, limit·(peers+1)) candidates, shuffle, load the first with
    /// probability n/(peers+1), the next with that minus 1, ...
    pub(super) fn random_pml(&mut self, cands: &[(SegmentId, bool)]) {
        let lim = self.cfg.simultaneous_http_downloads;
        let peers = self.peers.len() + 1;
        let n = cands.len().min(lim.saturating_mul(peers));
        let mut idx: Vec<usize> = (0..n).collect();
        self.rng.shuffle(&mut idx);
        let mut probability = n as f64 / peers as f64;
        for i in idx {
            if self.http_active >= lim {
                break;
            }
            if probability >= 1.0 || self.rng.next_f64() <= probability {
                self.start_http(cands[i].0);
            }
            probability -= 1.0;
            if probability <= 0.0 {
                break;
            }
        }
    }
}
