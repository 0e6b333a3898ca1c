//! `Policy::Ours`: deadline-aware waiting for the swarm, startup hold, P2P rescue/switch,
//! live spread jitter and swarm-size-aware random HTTP seeding.

use super::{Item, Scheduler};
use crate::schedule::{PeerKey, SegmentId, Source, TransferId};

/// HTTP fetch time assumed before any HTTP download completed (deadline maths only).
const DEFAULT_HTTP_FETCH_MS: f64 = 500.0;
/// Random-prefetch probability multiplier for high-demand segments nobody around has.
const HIGH_DEMAND_SEED_BOOST: f64 = 2.0;
/// Margin before a deadline by which a P2P download must be expected to finish.
const RESCUE_SAFETY_MS: u64 = 500;
/// A P2P download gets this long before we judge its speed for a peer switch.
const MIN_SWITCH_AGE_MS: u64 = 1_000;

/// When a high-demand item is needed, from the point of view of `process_ours`.
struct Deadline {
    /// It is the first segment (its deadline is the startup budget).
    startup: bool,
    left_ms: u64,
    /// HTTP must not wait any longer.
    urgent: bool,
}

impl Scheduler {
    /// Time before its start at which a segment must go to HTTP at the latest.
    pub(super) fn urgent_ms(&self) -> u64 {
        self.cfg
            .urgent_time_window_ms
            .saturating_add(self.http_estimate_ms().saturating_mul(2))
    }

    /// Others in the swarm according to the tracker (None before its first reply).
    pub(super) fn swarm_others(&self) -> Option<u64> {
        self.swarm_total.map(|t| t.saturating_sub(1))
    }

    /// No peer connected and none expected soon: behave exactly like plain HTTP.
    pub(super) fn alone(&self) -> bool {
        self.peers.is_empty() && !self.peer_wait_active()
    }

    pub(super) fn http_estimate_ms(&self) -> u64 {
        self.http_fetch_ewma_ms.unwrap_or(DEFAULT_HTTP_FETCH_MS) as u64
    }

    /// Whether a running P2P download will likely need more than `budget` ms to finish.
    pub(super) fn p2p_too_slow(&self, xfer: TransferId, budget: u64) -> bool {
        let Some(t) = self.transfers.get(&xfer) else {
            return false;
        };
        let elapsed = self.now_ms.saturating_sub(t.started_ms);
        let size = t
            .total
            .or_else(|| self.segment(t.id).and_then(|s| s.size_hint));
        let rate = if t.bytes > 0 {
            // Pessimistic: the uploader's share shrinks as others start downloading from it.
            let avg = t.bytes as f64 / t.last_bytes_ms.saturating_sub(t.started_ms).max(1) as f64;
            // A transfer that went quiet (a retransmission timeout, a peer that stopped) is
            // as slow as its bytes over all the time so far, silence included.
            let so_far = t.bytes as f64 / self.now_ms.saturating_sub(t.started_ms).max(1) as f64;
            let avg = avg.min(so_far);
            if t.recent_rate > 0.0 {
                avg.min(t.recent_rate)
            } else {
                avg
            }
        } else {
            match t.source {
                Source::P2p(p) => self.peers.get(p).map_or(0.0, |s| s.throughput),
                Source::Http => 0.0,
            }
        };
        match (size, rate > 0.0) {
            (Some(size), true) => size.saturating_sub(t.bytes) as f64 / rate > budget as f64,
            // No estimate: give it half the budget to show progress.
            _ => t.bytes == 0 && elapsed > budget / 2,
        }
    }

    /// Ours: high-demand segments go to P2P when a peer has them and to HTTP only when they
    /// become urgent, when we are alone, or when nobody can supply them; prefetch is in
    /// playback order (or rarest-first with `rarest-first`).
    pub(super) fn process_ours(&mut self, queue: &[Item]) {
        let urgent_ms = self.urgent_ms();
        let alone = self.alone();
        let mut prefetch: Vec<usize> = Vec::new();
        for idx in 0..queue.len() {
            let item = queue[idx];
            let loading = self.loading(item.id);
            if !item.high_demand {
                if item.p2p_window
                    && item.avail.loaded > 0
                    && loading.is_none()
                    && self.spread_ready(&item)
                {
                    prefetch.push(idx);
                }
                continue;
            }
            let http_est = self.http_estimate_ms();
            let Deadline {
                startup,
                left_ms: deadline,
                urgent,
            } = self.deadline(&item, alone, urgent_ms);
            if !urgent {
                if startup {
                    self.wake_in(deadline.saturating_sub(http_est));
                } else if self.playback.playing {
                    self.wake_in(item.until_ms.saturating_sub(urgent_ms));
                }
            }
            match loading {
                Some((_, Source::Http)) => continue,
                Some((x, Source::P2p(peer))) => {
                    if urgent
                        && !self.http_exhausted(item.id)
                        && self.p2p_too_slow(
                            x,
                            // Startup: the uploader's share can still shrink and the budget
                            // is short, so demand a 2× margin; playback: a fixed margin.
                            if startup {
                                deadline.max(http_est) / 2
                            } else {
                                deadline.saturating_sub(RESCUE_SAFETY_MS).max(http_est)
                            },
                        )
                    {
                        self.try_http(queue, idx);
                    } else if urgent {
                        // Re-check the P2P download's progress soon.
                        self.wake_in(250);
                    } else if self.playback.playing {
                        self.maybe_switch_peer(x, peer, &item, urgent_ms);
                    }
                    continue;
                }
                None => {}
            }
            if item.avail.loaded > 0
                && (urgent || startup || self.spread_ready(&item))
                && (self.try_p2p(queue, idx) || self.preempt_prefetch_for(queue, idx))
            {
                continue;
            }
            if self.http_exhausted(item.id) {
                continue;
            }
            // Non-urgent segments wait for the swarm (a peer's HTTP fetch, random prefetch
            // somewhere, a peer connecting) unless we are alone.
            if urgent || alone {
                self.try_http(queue, idx);
            }
        }
        if self.cfg.rarest_first {
            prefetch.sort_by_key(|&i| queue[i].avail.loaded);
        }
        for idx in prefetch {
            if self.p2p_active >= self.cfg.simultaneous_p2p_downloads {
                break;
            }
            self.start_p2p(queue[idx].id);
        }
        if self.peer_wait_active() {
            let end = self.created_ms.saturating_add(self.startup_wait_ms());
            self.wake_in(end.saturating_sub(self.now_ms));
        }
    }

    /// How long after start the first segment may wait for the swarm: `peer-wait-ms` once the
    /// tracker promised peers, at most `tracker-wait-ms` while it has not answered.
    fn startup_wait_ms(&self) -> u64 {
        match self.swarm_total {
            Some(_) => self.cfg.peer_wait_ms,
            None => self.cfg.peer_wait_ms.min(self.cfg.tracker_wait_ms),
        }
    }

    /// Deadline of a high-demand item. The first segment's is the startup budget; every
    /// other segment has its playback deadline and turns urgent `urgent_ms` before it.
    fn deadline(&self, item: &Item, alone: bool, urgent_ms: u64) -> Deadline {
        let startup = Some(item.id) == self.pending_request && !self.delivered_any && !alone;
        if !startup {
            return Deadline {
                startup,
                left_ms: item.until_ms,
                urgent: item.until_ms <= urgent_ms
                    && (self.playback.playing || Some(item.id) == self.pending_request),
            };
        }
        let left_ms = self
            .created_ms
            .saturating_add(self.startup_wait_ms())
            .saturating_sub(self.now_ms);
        // Before the tracker answers we only hold until the short wait ends; once it promised
        // peers, HTTP must still make it within the budget.
        let expired = if self.swarm_total.is_none() {
            left_ms == 0
        } else {
            left_ms <= self.http_estimate_ms()
        };
        // Everyone around answered and nobody has or fetches it: don't wait.
        let hopeless = self.peers.all_announced()
            && !self.peers.is_empty()
            && item.avail.loaded == 0
            && item.avail.http_loading == 0;
        Deadline {
            startup,
            left_ms,
            urgent: expired || hopeless,
        }
    }

    /// A high-demand P2P download that will not finish before the segment turns urgent moves
    /// (once) to another idle holder that is not known to be slower.
    pub(super) fn maybe_switch_peer(
        &mut self,
        x: TransferId,
        peer: PeerKey,
        item: &Item,
        urgent_ms: u64,
    ) {
        let Some(t) = self.transfers.get(&x) else {
            return;
        };
        if t.switched || self.now_ms.saturating_sub(t.started_ms) < MIN_SWITCH_AGE_MS {
            return;
        }
        if !self.p2p_too_slow(x, item.until_ms.saturating_sub(urgent_ms)) {
            self.wake_in(500);
            return;
        }
        let cur = self.peers.get(peer).map_or(0.0, |p| p.throughput);
        let better = self
            .peers
            .idle_holders(item.id)
            .any(|(k, s)| *k != peer && (s.throughput == 0.0 || s.throughput >= cur));
        if better {
            self.abort(x);
            if self.start_p2p_excluding(item.id, Some(peer)) {
                if let Some(x2) = self.by_segment.get(&item.id).copied() {
                    if let Some(t2) = self.transfers.get_mut(&x2) {
                        t2.switched = true;
                    }
                }
            }
        }
    }

    /// All holders of a high-demand segment are busy with our prefetch downloads (one
    /// download per connection): abort the furthest such prefetch and ask that peer instead.
    pub(super) fn preempt_prefetch_for(&mut self, queue: &[Item], idx: usize) -> bool {
        let id = queue[idx].id;
        let victim = queue[idx + 1..].iter().rev().find_map(|later| {
            if later.high_demand {
                return None;
            }
            match self.loading(later.id) {
                Some((x, Source::P2p(peer)))
                    if self.peers.get(peer).is_some_and(|p| p.has_loaded(id)) =>
                {
                    Some(x)
                }
                _ => None,
            }
        });
        match victim {
            Some(x) => {
                self.abort(x);
                self.start_p2p(id)
            }
            None => false,
        }
    }

    /// Spread jitter gate (see `p2p-spread-jitter-ms`); arms a wake-up when not yet ready.
    pub(super) fn spread_ready(&mut self, item: &Item) -> bool {
        let jitter = self.cfg.p2p_spread_jitter_ms;
        // Only live streams publish segments that the whole swarm wants at the same moment.
        if jitter == 0 || item.avail.loaded == 0 || !self.live {
            return true;
        }
        let now = self.now_ms;
        let seen = *self.first_seen.entry(item.id).or_insert(now);
        // Never spend more than half the time left before the segment turns urgent: with a
        // short live delay the full jitter would push it to HTTP (measured: bench/swarm.sh
        // live, 8 peers).
        // (Measured from when it was first seen, so the delay stays put while playing.)
        let slack = item
            .until_ms
            .saturating_sub(self.urgent_ms())
            .saturating_add(now.saturating_sub(seen));
        let jitter = jitter.min(slack / 2);
        let mut h = (self.salt ^ item.id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 31;
        let delay = (h % jitter.saturating_add(1)) / u64::from(item.avail.loaded);
        let ready_at = seen.saturating_add(delay);
        if now >= ready_at {
            true
        } else {
            self.wake_in(ready_at.saturating_sub(now));
            false
        }
    }

    pub(super) fn peer_wait_active(&self) -> bool {
        // An unreachable tracker must not slow down every start: see `startup_wait_ms`.
        self.swarm_others() != Some(0)
            && self.now_ms.saturating_sub(self.created_ms) < self.startup_wait_ms()
    }

    /// Ours. Small swarm (our neighbours are most of it, so `p` announcements suppress
    /// duplicates): PML's per-tick lottery with the tracker's swarm size. Large swarm: a
    /// one-shot per-segment lottery (a salted hash, so the same answer every tick) elects
    /// about `swarm-http-seeds` fetchers per segment however long it stays missing around
    /// us; high-demand segments nobody around has get an extra per-tick chance as a safety
    /// net.
    pub(super) fn random_ours(&mut self, mut cands: Vec<(SegmentId, bool)>) {
        // A just-connected peer's holdings are unknown until its announcement arrives, and
        // both HTTP slots stay free for the startup segment.
        if !self.peers.mostly_announced() || !self.delivered_any {
            return;
        }
        let lim = self.cfg.simultaneous_http_downloads;
        let neighbourhood = self.peers.len() as u64 + 1;
        let swarm = neighbourhood.max(self.swarm_total.unwrap_or(0));
        let seeds = self.cfg.swarm_http_seeds.max(0.0);
        let large = swarm > 2 * neighbourhood;
        self.rng.shuffle(&mut cands);
        for (id, hd) in cands {
            if self.http_active >= lim {
                break;
            }
            let p = if !large {
                let base = seeds.min(1.0) / swarm as f64;
                if hd {
                    base * HIGH_DEMAND_SEED_BOOST
                } else {
                    base
                }
            } else if self.elected(id, seeds / swarm as f64) {
                1.0
            } else if hd {
                HIGH_DEMAND_SEED_BOOST / swarm as f64
            } else {
                0.0
            };
            if p > 0.0 && self.rng.next_f64() < p {
                self.start_http(id);
            }
        }
    }

    /// Deterministic per-(instance, segment) lottery with probability `p`.
    pub(super) fn elected(&self, id: SegmentId, p: f64) -> bool {
        let mut h = (self.salt.rotate_left(17) ^ id).wrapping_mul(0xD6E8_FEB8_6659_FD93);
        h ^= h >> 32;
        ((h >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}
