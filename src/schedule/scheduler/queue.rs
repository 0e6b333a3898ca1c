//! The forward queue (PML `utils/queue.ts`, `utils/stream.ts`): playback position, time
//! windows and which segments are still wanted.

use super::{Item, Scheduler};
use crate::schedule::{SegmentId, SegmentInfo};

impl Scheduler {
    pub(super) fn position_at(&self, now: u64) -> u64 {
        let pb = &self.playback;
        if pb.playing {
            pb.position_ms
                .saturating_add((now.saturating_sub(pb.at_ms) as f64 * pb.rate) as u64)
        } else {
            pb.position_ms
        }
    }

    pub(super) fn segment(&self, id: SegmentId) -> Option<&SegmentInfo> {
        self.segments
            .binary_search_by_key(&id, |s| s.id)
            .ok()
            .map(|i| &self.segments[i])
    }

    /// Effective (http, p2p) prefetch windows under memory pressure.
    pub(super) fn windows(&self) -> (u64, u64) {
        let (h, p) = (
            self.cfg.http_download_time_window_ms,
            self.cfg.p2p_download_time_window_ms,
        );
        if self.storage_free_ratio <= 0.05 {
            (0, 0)
        } else if self.storage_free_ratio <= 0.10 {
            (h, h)
        } else {
            (h, p)
        }
    }

    /// PML `generateQueue`: from the segment last requested by the player, forward while the
    /// segment is in at least one window; stored segments are skipped.
    pub(super) fn build_queue(&mut self, pos: u64) -> Vec<Item> {
        let rate = self.playback.rate;
        let (http_w, p2p_w) = self.windows();
        let hd_w = self.cfg.high_demand_time_window_ms;
        let in_window = |s: &SegmentInfo, w: u64| -> bool {
            let horizon = pos as f64 + w as f64 * rate;
            !(horizon < s.start_ms as f64 || pos > s.end_ms())
        };
        let start = match self.last_requested {
            Some(id) => match self.segments.binary_search_by_key(&id, |s| s.id) {
                Ok(i) => i,
                Err(i) => i,
            },
            None => self.segments.partition_point(|s| s.end_ms() <= pos),
        };
        let mut q = Vec::new();
        let playing = self.playback.playing;
        let mut wake: Option<u64> = None;
        let mut wake_in = |ms: u64| wake = Some(wake.map_or(ms, |w: u64| w.min(ms)));
        for s in &self.segments[start.min(self.segments.len())..] {
            // A request for a segment the (possibly stale) position says is played is still
            // wanted now.
            let hd = in_window(s, hd_w) || (Some(s.id) == self.pending_request && pos > s.end_ms());
            let hw = in_window(s, http_w);
            let pw = in_window(s, p2p_w);
            if !(hd || hw || pw) {
                if pos > s.end_ms() {
                    // Already played (the player requested ahead of a stale position): skip.
                    continue;
                }
                if playing {
                    let enter = s.start_ms.saturating_sub(pos + (hd_w as f64 * rate) as u64);
                    wake_in((enter as f64 / rate) as u64);
                }
                break;
            }
            if self.stored.contains(&s.id) {
                continue;
            }
            let until_ms = ((s.start_ms.saturating_sub(pos)) as f64 / rate) as u64;
            if !hd && playing {
                // Re-evaluate when it enters the high-demand window (hd_w of wall time ahead).
                wake_in(until_ms.saturating_sub(hd_w));
            }
            q.push(Item {
                id: s.id,
                high_demand: hd,
                http_window: hw,
                p2p_window: pw,
                until_ms,
                avail: self.peers.avail(s.id),
            });
        }
        if let Some(w) = wake {
            self.wake_in(w);
        }
        q
    }

    pub(super) fn wake_in(&mut self, ms: u64) {
        let t = self.now_ms.saturating_add(ms.max(1));
        self.next_wake_ms = Some(self.next_wake_ms.map_or(t, |w| w.min(t)));
    }
}
