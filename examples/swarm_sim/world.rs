//! The event-driven swarm: virtual time, peers running the real scheduler and store, an
//! origin, a tracker and bandwidth-shared flows. Everything is seeded and deterministic.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;

use gstp2pmedia::schedule::{
    Command, PeerKey, Rng, Scheduler, SegmentStore, StreamId, TransferError, TransferId,
};

use super::params::{Params, SimPolicy, StreamKind};
use super::report::{PeerResult, SimResult};

#[path = "flows.rs"]
mod flows;
#[path = "membership.rs"]
mod membership;
#[path = "player.rs"]
mod player;

const STREAM: StreamId = StreamId(0);
/// How often a running transfer reports its byte count to the scheduler.
const PROGRESS_MS: u64 = 500;
/// Per-element storage limit (far above what a 10-min live window needs).
const STORE_LIMIT: u64 = 512 << 20;

#[derive(Debug)]
struct Snap {
    loaded: Vec<u64>,
    http: Vec<u64>,
}

#[derive(Debug)]
enum Ev {
    Join(u32),
    TrackerReply(u32),
    Reannounce(u32),
    ConnOpen(u32, u32),
    Tick(u32),
    PlayheadEnd(u32, u32),
    Timer(u32, u64),
    Broadcast(u32),
    AnnounceArrive {
        to: u32,
        from: u32,
        snap: Rc<Snap>,
    },
    P2pReq {
        up: u32,
        down: u32,
        xfer: TransferId,
        seg: u64,
    },
    Absent {
        down: u32,
        xfer: TransferId,
    },
    FlowStart(u32, u64),
    FlowDone(u32, u64),
    FlowProgress(u32, u64),
    Leave(u32),
}

struct Entry {
    t: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        (self.t, self.seq) == (o.t, o.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        // Min-heap on (time, insertion order).
        (o.t, o.seq).cmp(&(self.t, self.seq))
    }
}

struct Flow {
    uid: u64,
    src: Option<u32>,
    dst: u32,
    xfer: TransferId,
    total: u64,
    done: f64,
    /// bytes per ms
    rate: f64,
    last: u64,
    /// Time of the pending FlowDone event (a later rate change keeps it and it re-arms).
    due: u64,
    active: bool,
}

struct Node {
    joined: bool,
    left: bool,
    join_ms: u64,
    down: f64,
    up: f64,
    lat: u64,
    sched: Option<Scheduler>,
    store: SegmentStore<u64>,
    neighbors: Vec<u32>,
    /// Our downloads by transfer: `Some(flow)` once data flows.
    inflight: HashMap<TransferId, Option<u32>>,
    up_flows: Vec<u32>,
    down_flows: Vec<u32>,
    timer_at: Option<u64>,
    broadcast_pending: bool,
    // player
    first_seg: u64,
    next_req: u64,
    requested: Option<u64>,
    buffered_end: u64,
    started: bool,
    startup_ms: Option<u64>,
    pos: u64,
    pos_at: u64,
    playing: bool,
    finished: bool,
    play_gen: u32,
    stalls: u32,
    stall_ms: u64,
    stall_since: u64,
    known_upto: u64,
    http_bytes: u64,
    p2p_bytes: u64,
    up_bytes: u64,
    errors: u32,
}

pub struct World {
    p: Params,
    rng: Rng,
    now: u64,
    seq: u64,
    heap: BinaryHeap<Entry>,
    nodes: Vec<Node>,
    flows: Vec<Option<Flow>>,
    free_flows: Vec<u32>,
    next_uid: u64,
    swarm: Vec<u32>,
    end_ms: u64,
    events: u64,
}

fn mbps_to_bpms(mbps: f64) -> f64 {
    mbps * 1_000_000.0 / 8.0 / 1000.0
}

impl World {
    pub fn new(p: Params) -> Self {
        let mut rng = Rng::new(p.seed ^ 0x5157_4d00);
        let mut nodes = Vec::with_capacity(p.peers);
        for _ in 0..p.peers {
            let down = p.down_mbps.0 + rng.next_f64() * (p.down_mbps.1 - p.down_mbps.0);
            let up = p.up_mbps.0 + rng.next_f64() * (p.up_mbps.1 - p.up_mbps.0);
            let lat = rng.range(p.latency_ms.0, p.latency_ms.1);
            nodes.push(Node {
                joined: false,
                left: false,
                join_ms: 0,
                down: mbps_to_bpms(down),
                up: mbps_to_bpms(up),
                lat,
                sched: None,
                store: SegmentStore::new(STORE_LIMIT),
                neighbors: Vec::new(),
                inflight: HashMap::new(),
                up_flows: Vec::new(),
                down_flows: Vec::new(),
                timer_at: None,
                broadcast_pending: false,
                first_seg: 0,
                next_req: 0,
                requested: None,
                buffered_end: 0,
                started: false,
                startup_ms: None,
                pos: 0,
                pos_at: 0,
                playing: false,
                finished: false,
                play_gen: 0,
                stalls: 0,
                stall_ms: 0,
                stall_since: 0,
                known_upto: 0,
                http_bytes: 0,
                p2p_bytes: 0,
                up_bytes: 0,
                errors: 0,
            });
        }
        let last_join = ((p.peers.saturating_sub(1)) as f64 * p.stagger_s * 1000.0) as u64;
        let end_ms = match p.stream {
            StreamKind::Live => (p.duration_s * 1000.0) as u64,
            StreamKind::Vod => {
                let vod_ms = p.vod_segments() * p.segment_ms;
                last_join + ((p.duration_s * 1000.0) as u64).max(vod_ms) + 10_000
            }
        };
        let mut w = World {
            p,
            rng,
            now: 0,
            seq: 0,
            heap: BinaryHeap::new(),
            nodes,
            flows: Vec::new(),
            free_flows: Vec::new(),
            next_uid: 0,
            swarm: Vec::new(),
            end_ms,
            events: 0,
        };
        for i in 0..w.p.peers {
            let t = (i as f64 * w.p.stagger_s * 1000.0) as u64;
            w.push(t, Ev::Join(i as u32));
            if w.p.churn > 0.0 && w.rng.next_f64() < w.p.churn {
                let leave = t + w.rng.range(1, w.end_ms.saturating_sub(t).max(2) - 1);
                w.push(leave, Ev::Leave(i as u32));
            }
        }
        w
    }

    fn push(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            t: t.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    pub fn run(mut self) -> SimResult {
        while let Some(e) = self.heap.pop() {
            if e.t > self.end_ms {
                break;
            }
            self.now = e.t;
            self.events += 1;
            self.dispatch(e.ev);
        }
        self.now = self.end_ms;
        self.finish()
    }

    fn p2p_enabled(&self) -> bool {
        self.p.policy != SimPolicy::HttpOnly
    }

    fn link_lat(&self, a: u32, b: u32) -> u64 {
        self.nodes[a as usize].lat + self.nodes[b as usize].lat
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Join(i) => self.on_join(i),
            Ev::TrackerReply(i) => {
                if self.alive(i) {
                    let n = self.swarm.len() as u64;
                    let now = self.now;
                    if let Some(s) = self.nodes[i as usize].sched.as_mut() {
                        s.handle_swarm_counts(now, 0, n);
                    }
                    self.drive(i);
                }
            }
            Ev::Reannounce(i) => {
                if self.alive(i) {
                    self.offer(i);
                    let t = self.now + 2 * self.nodes[i as usize].lat + 5;
                    self.push(t, Ev::TrackerReply(i));
                    let t = self.now + self.p.announce_interval_ms;
                    self.push(t, Ev::Reannounce(i));
                }
            }
            Ev::ConnOpen(a, b) => self.on_conn_open(a, b),
            Ev::Tick(i) => self.on_tick(i),
            Ev::PlayheadEnd(i, gen) => self.on_playhead_end(i, gen),
            Ev::Timer(i, at) => {
                if self.alive(i) && self.nodes[i as usize].timer_at == Some(at) {
                    self.nodes[i as usize].timer_at = None;
                    let now = self.now;
                    if let Some(s) = self.nodes[i as usize].sched.as_mut() {
                        // The timer may have been armed for an earlier deadline that went
                        // away; only fire when the scheduler is actually due.
                        if s.poll_timeout().is_some_and(|t| t <= now) {
                            s.handle_timeout(now);
                        }
                    }
                    self.drive(i);
                }
            }
            Ev::Broadcast(i) => self.on_broadcast(i),
            Ev::AnnounceArrive { to, from, snap } => {
                if self.alive(to) && self.nodes[to as usize].neighbors.contains(&from) {
                    let now = self.now;
                    if let Some(s) = self.nodes[to as usize].sched.as_mut() {
                        s.handle_peer_announce(now, PeerKey(from as u64), &snap.loaded, &snap.http);
                    }
                    self.drive(to);
                }
            }
            Ev::P2pReq {
                up,
                down,
                xfer,
                seg,
            } => self.on_p2p_req(up, down, xfer, seg),
            Ev::Absent { down, xfer } => {
                if self.alive(down) && self.nodes[down as usize].inflight.remove(&xfer).is_some() {
                    let now = self.now;
                    if let Some(s) = self.nodes[down as usize].sched.as_mut() {
                        s.handle_transfer_failed(now, xfer, TransferError::PeerAbsent);
                    }
                    self.drive(down);
                }
            }
            Ev::FlowStart(f, uid) => self.on_flow_start(f, uid),
            Ev::FlowDone(f, uid) => self.on_flow_done(f, uid),
            Ev::FlowProgress(f, uid) => self.on_flow_progress(f, uid),
            Ev::Leave(i) => self.on_leave(i),
        }
    }

    fn alive(&self, i: u32) -> bool {
        let n = &self.nodes[i as usize];
        n.joined && !n.left
    }

    // ------------------------------------------------------------------ scheduler glue

    fn snapshot(&self, i: u32) -> Rc<Snap> {
        let n = &self.nodes[i as usize];
        Rc::new(Snap {
            loaded: n.store.ids(STREAM),
            http: n
                .sched
                .as_ref()
                .map(|s| s.http_loading_ids())
                .unwrap_or_default(),
        })
    }

    fn on_broadcast(&mut self, i: u32) {
        if !self.alive(i) {
            return;
        }
        self.nodes[i as usize].broadcast_pending = false;
        let snap = self.snapshot(i);
        let neigh = self.nodes[i as usize].neighbors.clone();
        for j in neigh {
            let t = self.now + self.link_lat(i, j);
            self.push(
                t,
                Ev::AnnounceArrive {
                    to: j,
                    from: i,
                    snap: snap.clone(),
                },
            );
        }
    }

    /// Execute the scheduler's commands for node `i`, then re-arm its timer.
    fn drive(&mut self, i: u32) {
        if !self.alive(i) {
            return;
        }
        let mut announce = false;
        loop {
            let cmd = match self.nodes[i as usize].sched.as_mut() {
                Some(s) => s.poll_command(),
                None => None,
            };
            let Some(cmd) = cmd else { break };
            if self.p.trace && !matches!(cmd, Command::HttpFetch { .. } | Command::Announce) {
                println!("trace t={} peer={} {:?}", self.now, i, cmd);
            }
            match cmd {
                Command::HttpFetch { xfer, id } => self.start_http(i, xfer, id),
                Command::P2pRequest { xfer, peer, id } => {
                    let up = peer.0 as u32;
                    self.nodes[i as usize].inflight.insert(xfer, None);
                    let t = self.now + self.link_lat(i, up);
                    self.push(
                        t,
                        Ev::P2pReq {
                            up,
                            down: i,
                            xfer,
                            seg: id,
                        },
                    );
                }
                Command::Abort { xfer, .. } => {
                    if let Some(Some(f)) = self.nodes[i as usize].inflight.remove(&xfer) {
                        self.kill_flow(f, false);
                    }
                }
                Command::Deliver { id } => self.on_deliver(i, id),
                Command::PlayerError { .. } => self.nodes[i as usize].errors += 1,
                Command::DisconnectPeer { peer } => self.disconnect(i, peer.0 as u32),
                Command::Announce => announce = true,
            }
        }
        let changed = !self.nodes[i as usize].store.take_changed().is_empty();
        if (announce || changed)
            && !self.nodes[i as usize].broadcast_pending
            && !self.nodes[i as usize].neighbors.is_empty()
        {
            self.nodes[i as usize].broadcast_pending = true;
            self.push(self.now, Ev::Broadcast(i));
        }
        let t = self.nodes[i as usize]
            .sched
            .as_mut()
            .and_then(|s| s.poll_timeout());
        if let Some(t) = t {
            let t = t.max(self.now + 1);
            // Keep only the earliest pending timer event; it re-arms when it fires.
            if self.nodes[i as usize].timer_at.is_none_or(|cur| t < cur) {
                self.nodes[i as usize].timer_at = Some(t);
                self.push(t, Ev::Timer(i, t));
            }
        }
    }

    fn disconnect(&mut self, a: u32, b: u32) {
        let now = self.now;
        for (x, y) in [(a, b), (b, a)] {
            let nx = &mut self.nodes[x as usize];
            nx.neighbors.retain(|&z| z != y);
            if let Some(s) = nx.sched.as_mut() {
                s.handle_peer_disconnected(now, PeerKey(y as u64));
            }
            self.sync_inflight(x);
        }
        self.drive(b);
    }

    // ------------------------------------------------------------------ results

    fn finish(mut self) -> SimResult {
        let now = self.now;
        let fids: Vec<u32> = (0..self.flows.len() as u32)
            .filter(|&f| self.flows[f as usize].is_some())
            .collect();
        for f in fids {
            self.settle(f);
            if let Some(fl) = self.flows[f as usize].take() {
                let b = fl.done as u64;
                self.account(&fl, b);
            }
        }
        let peers = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let stall_ms = n.stall_ms
                    + if n.started && !n.playing && !n.finished && !n.left {
                        now.saturating_sub(n.stall_since)
                    } else {
                        0
                    };
                PeerResult {
                    idx: i,
                    join_ms: n.join_ms,
                    http_bytes: n.http_bytes,
                    p2p_bytes: n.p2p_bytes,
                    up_bytes: n.up_bytes,
                    startup_ms: n.startup_ms,
                    stalls: n.stalls,
                    stall_ms,
                    conns: n.neighbors.len(),
                    left: n.left,
                    errors: n.errors,
                }
            })
            .collect();
        let unique_bytes = self.unique_bytes();
        SimResult {
            peers,
            unique_bytes,
            events: self.events,
            sim_ms: self.end_ms,
        }
    }

    /// Bytes of the distinct segments the swarm needed (the "origin ×" denominator).
    fn unique_bytes(&self) -> u64 {
        let d = self.p.segment_ms;
        let (lo, hi) = match self.p.stream {
            StreamKind::Vod => (0, self.p.vod_segments() - 1),
            StreamKind::Live => {
                let lo = self
                    .nodes
                    .iter()
                    .filter(|n| n.joined)
                    .map(|n| n.first_seg)
                    .min()
                    .unwrap_or(0);
                let hi = self.p.live_published_upto(self.end_ms);
                let _ = d;
                (lo, hi)
            }
        };
        (lo..=hi).map(|id| self.p.segment_bytes(id)).sum()
    }
}
