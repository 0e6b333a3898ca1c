//! Transfers: HTTP and P2P flows sharing up/down links (processor sharing at both ends).

use gstp2pmedia::schedule::{TransferError, TransferId};

use super::{Ev, Flow, World, PROGRESS_MS, STREAM};

impl World {
    pub(super) fn new_flow(
        &mut self,
        src: Option<u32>,
        dst: u32,
        xfer: TransferId,
        total: u64,
    ) -> (u32, u64) {
        self.next_uid += 1;
        let fl = Flow {
            uid: self.next_uid,
            src,
            dst,
            xfer,
            total,
            done: 0.0,
            rate: 0.0,
            last: self.now,
            due: u64::MAX,
            active: false,
        };
        let f = match self.free_flows.pop() {
            Some(f) => {
                self.flows[f as usize] = Some(fl);
                f
            }
            None => {
                self.flows.push(Some(fl));
                (self.flows.len() - 1) as u32
            }
        };
        (f, self.next_uid)
    }

    pub(super) fn start_http(&mut self, i: u32, xfer: TransferId, id: u64) {
        if self.p.trace {
            let n = &self.nodes[i as usize];
            println!(
                "trace t={} peer={} http seg={} pos={} conns={}",
                self.now,
                i,
                id,
                self.pos_now(i),
                n.neighbors.len()
            );
        }
        let size = self.p.segment_bytes(id);
        let (f, uid) = self.new_flow(None, i, xfer, size);
        self.nodes[i as usize].inflight.insert(xfer, Some(f));
        // Request + first byte: one RTT to the origin.
        let rtt = 2 * (self.nodes[i as usize].lat + self.p.origin_latency_ms);
        self.push(self.now + rtt, Ev::FlowStart(f, uid));
    }

    pub(super) fn on_p2p_req(&mut self, up: u32, down: u32, xfer: TransferId, seg: u64) {
        if !self.alive(up) || !self.alive(down) {
            return;
        }
        if !self.nodes[down as usize].inflight.contains_key(&xfer)
            || !self.nodes[up as usize].neighbors.contains(&down)
        {
            return;
        }
        let lat = self.link_lat(up, down);
        if self.nodes[up as usize].store.contains(STREAM, seg) {
            let size = self.p.segment_bytes(seg);
            let (f, uid) = self.new_flow(Some(up), down, xfer, size);
            self.nodes[down as usize].inflight.insert(xfer, Some(f));
            self.push(self.now + lat, Ev::FlowStart(f, uid));
        } else {
            self.push(self.now + lat, Ev::Absent { down, xfer });
        }
    }

    pub(super) fn flow_ok(&self, f: u32, uid: u64) -> bool {
        matches!(&self.flows[f as usize], Some(fl) if fl.uid == uid)
    }

    pub(super) fn on_flow_start(&mut self, f: u32, uid: u64) {
        if !self.flow_ok(f, uid) {
            return;
        }
        let (src, dst) = {
            let fl = self.flows[f as usize]
                .as_mut()
                .unwrap_or_else(|| unreachable!());
            fl.active = true;
            fl.last = self.now;
            (fl.src, fl.dst)
        };
        if let Some(s) = src {
            if !self.alive(s) {
                self.kill_flow(f, true);
                return;
            }
            self.nodes[s as usize].up_flows.push(f);
        }
        self.nodes[dst as usize].down_flows.push(f);
        self.reflow(src, dst);
        // First report once the first 64 KiB chunk is in (as a data channel would), then
        // periodically.
        let first = self.flows[f as usize]
            .as_ref()
            .map_or(1, |fl| (65_536.0 / fl.rate.max(1e-9)).ceil() as u64)
            .clamp(1, PROGRESS_MS);
        self.push(self.now + first, Ev::FlowProgress(f, uid));
    }

    pub(super) fn settle(&mut self, f: u32) {
        let now = self.now;
        if let Some(fl) = self.flows[f as usize].as_mut() {
            if fl.active {
                fl.done = (fl.done + fl.rate * (now - fl.last) as f64).min(fl.total as f64);
            }
            fl.last = now;
        }
    }

    /// Recompute rates of every active flow touching `a` or `b` (processor sharing at both
    /// ends: a flow gets min(uplink share, downlink share)).
    pub(super) fn reflow(&mut self, a: Option<u32>, b: u32) {
        let mut fs: Vec<u32> = Vec::new();
        if let Some(a) = a {
            fs.extend(&self.nodes[a as usize].up_flows);
            fs.extend(&self.nodes[a as usize].down_flows);
        }
        fs.extend(&self.nodes[b as usize].up_flows);
        fs.extend(&self.nodes[b as usize].down_flows);
        fs.sort_unstable();
        fs.dedup();
        for f in fs {
            self.settle(f);
            let Some(fl) = self.flows[f as usize].as_ref() else {
                continue;
            };
            let dn = &self.nodes[fl.dst as usize];
            let mut rate = dn.down / dn.down_flows.len().max(1) as f64;
            if let Some(s) = fl.src {
                let sn = &self.nodes[s as usize];
                rate = rate.min(sn.up / sn.up_flows.len().max(1) as f64);
            }
            let remaining = fl.total as f64 - fl.done;
            let at = self.now + (remaining / rate).ceil().max(1.0) as u64;
            let (uid, due) = (fl.uid, fl.due);
            let fl = self.flows[f as usize]
                .as_mut()
                .unwrap_or_else(|| unreachable!());
            fl.rate = rate;
            // Only an earlier completion needs a new event; a later one is re-armed when the
            // pending event fires (keeps the heap small).
            if at < due {
                fl.due = at;
                self.push(at, Ev::FlowDone(f, uid));
            }
        }
    }

    pub(super) fn on_flow_progress(&mut self, f: u32, uid: u64) {
        if !self.flow_ok(f, uid) {
            return;
        }
        self.settle(f);
        let Some(fl) = self.flows[f as usize].as_ref() else {
            return;
        };
        let (dst, xfer, done, total) = (fl.dst, fl.xfer, fl.done as u64, fl.total);
        let now = self.now;
        if let Some(s) = self.nodes[dst as usize].sched.as_mut() {
            s.handle_transfer_progress(now, xfer, done, Some(total));
        }
        self.push(now + PROGRESS_MS, Ev::FlowProgress(f, uid));
        self.drive(dst);
    }

    /// Remove a flow, accounting the bytes moved so far. `notify`: tell the downloader's
    /// scheduler the transfer failed (uploader vanished).
    pub(super) fn kill_flow(&mut self, f: u32, notify: bool) {
        self.settle(f);
        let Some(fl) = self.flows[f as usize].take() else {
            return;
        };
        self.free_flows.push(f);
        let moved = fl.done as u64;
        self.account(&fl, moved);
        self.nodes[fl.dst as usize].down_flows.retain(|&x| x != f);
        if let Some(s) = fl.src {
            self.nodes[s as usize].up_flows.retain(|&x| x != f);
        }
        self.reflow(fl.src, fl.dst);
        if notify
            && self.nodes[fl.dst as usize]
                .inflight
                .remove(&fl.xfer)
                .is_some()
        {
            let now = self.now;
            if let Some(s) = self.nodes[fl.dst as usize].sched.as_mut() {
                s.handle_transfer_failed(now, fl.xfer, TransferError::PeerFailed);
            }
            self.drive(fl.dst);
        }
    }

    pub(super) fn account(&mut self, fl: &Flow, bytes: u64) {
        match fl.src {
            None => self.nodes[fl.dst as usize].http_bytes += bytes,
            Some(s) => {
                self.nodes[fl.dst as usize].p2p_bytes += bytes;
                self.nodes[s as usize].up_bytes += bytes;
            }
        }
    }

    pub(super) fn on_flow_done(&mut self, f: u32, uid: u64) {
        if !self.flow_ok(f, uid) {
            return;
        }
        self.settle(f);
        let now = self.now;
        if let Some(fl) = self.flows[f as usize].as_mut() {
            if fl.due != now {
                return; // superseded by an earlier event
            }
            let remaining = fl.total as f64 - fl.done;
            if remaining > 0.5 {
                let at = now + (remaining / fl.rate.max(1e-9)).ceil().max(1.0) as u64;
                fl.due = at;
                self.push(at, Ev::FlowDone(f, uid));
                return;
            }
        }
        let Some(fl) = self.flows[f as usize].take() else {
            return;
        };
        self.free_flows.push(f);
        self.account(&fl, fl.total);
        let dst = fl.dst;
        self.nodes[dst as usize].down_flows.retain(|&x| x != f);
        if let Some(s) = fl.src {
            self.nodes[s as usize].up_flows.retain(|&x| x != f);
        }
        self.reflow(fl.src, dst);
        if self.nodes[dst as usize].inflight.remove(&fl.xfer).is_none() {
            return;
        }
        let now = self.now;
        let d = self.p.segment_ms;
        let pos = self.pos_now(dst);
        let n = &mut self.nodes[dst as usize];
        let Some(s) = n.sched.as_mut() else { return };
        if let Some((id, _src)) = s.handle_transfer_done(now, fl.xfer, fl.total) {
            n.store.set_playhead(STREAM, pos);
            if let Ok(ev) = n.store.insert(STREAM, id, id * d, (id + 1) * d, fl.total) {
                if !ev.is_empty() {
                    let ids: Vec<u64> = ev.iter().map(|e| e.1).collect();
                    s.handle_segments_evicted(now, &ids);
                }
            }
        }
        self.drive(dst);
    }
}
