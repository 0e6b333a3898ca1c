//! The simulated swarm: `Params` turned into a mesh of real `gstp2pmedia::swarm::Swarm`s
//! (`gstp2pmedia::swarm::mesh`, the same harness the unit tests use), run, and summarised.
//! No scheduler command is executed here: the `Swarm` the element runs does that.

use gstp2pmedia::p2p::WireFamily;
use gstp2pmedia::schedule::{Policy, Rng, SchedulerConfig};
use gstp2pmedia::swarm::mesh::{Behaviour, Mesh, MeshConfig, NodeSpec, PlayheadReport};
use gstp2pmedia::swarm::SwarmConfig;

use super::params::{Params, SimPolicy, StreamKind};
use super::report::{PeerResult, SimResult};

/// Per-element storage limit of the element (bytes it stands for).
const STORE_LIMIT: u64 = 256 << 20;

pub fn run(p: &Params) -> SimResult {
    let mut rng = Rng::new(p.seed ^ 0x5157_4d00);
    let scheduler = match p.policy {
        SimPolicy::Sched(Policy::Pml) | SimPolicy::HttpOnly => SchedulerConfig::pml(),
        SimPolicy::Sched(Policy::Ours) => SchedulerConfig::ours(),
        SimPolicy::Sched(Policy::Seed) => SchedulerConfig::seed(),
        SimPolicy::Sched(Policy::Mirror) => SchedulerConfig::mirror(),
    };
    let mut scheduler = scheduler;
    for (k, v) in &p.overrides {
        // Validated while parsing the command line.
        let _ = scheduler.set(k, v);
    }
    if let Some(t) = p.http_initial_timeout_ms {
        scheduler.http_download_initial_timeout_ms = t;
    }
    let last_join = ((p.peers.saturating_sub(1)) as f64 * p.stagger_s * 1000.0) as u64;
    let duration_ms = match p.stream {
        StreamKind::Live => (p.duration_s * 1000.0) as u64,
        StreamKind::Vod => {
            let vod_ms = p.vod_segments() * p.segment_ms;
            last_join + ((p.duration_s * 1000.0) as u64).max(vod_ms) + 10_000
        }
    };
    let scale = p.payload_scale.max(1);
    let cfg = MeshConfig {
        seed: p.seed,
        live: p.stream == StreamKind::Live,
        segment_ms: p.segment_ms,
        bitrate_kbps: p.bitrate_kbps,
        vod_segments: p.vod_segments(),
        live_window: p.live_window,
        live_delay_ms: p.live_delay_ms,
        max_buffer_ms: p.max_buffer_ms,
        duration_ms,
        payload_scale: scale,
        origin_latency_ms: p.origin_latency_ms,
        origin_kbps: None,
        loss: p.loss,
        rtt_ms: p.rtt_ms,
        rto_ms: 400,
        setup_ms: p.setup_ms,
        offers: p.offers,
        max_conns: p.max_conns,
        announce_interval_ms: p.announce_interval_ms,
        encrypted: false,
        discontinuity_every: 0,
        p2p: p.policy != SimPolicy::HttpOnly,
        // The element reads its playhead every 200 ms.
        playhead_interval_ms: 200,
        trace: p.trace,
        playhead_report: if p.playhead_taken {
            PlayheadReport::LastTaken
        } else {
            PlayheadReport::Exact
        },
        tracker_down: Vec::new(),
        segment_hashes: false,
        swarm: SwarmConfig {
            scheduler,
            max_peers: p.max_conns,
            store_limit: STORE_LIMIT / scale,
            // A payload message stands for 256 KiB: progress every few hundred ms, as often
            // as the scheduler needs it (one message per segment would look like a silent
            // peer; one per 64 KiB costs four times the events).
            max_message_size: (4 * 65_535 / scale as usize).max(256),
            family: if p.pml06 {
                WireFamily::V06 {
                    stream_swarm_id: "http://sim/master.m3u8+V0".into(),
                    ids: gstp2pmedia::p2p::wire06::Ids06::Sequence,
                }
            } else {
                WireFamily::V2
            },
            ..SwarmConfig::default()
        },
    };
    let kbps = |mbps: f64| (mbps * 1000.0) as u64;
    let node = |join_ms: u64, rng: &mut Rng| {
        let up = p.up_mbps.0 + rng.next_f64() * (p.up_mbps.1 - p.up_mbps.0);
        let down = p.down_mbps.0 + rng.next_f64() * (p.down_mbps.1 - p.down_mbps.0);
        let mut n = NodeSpec::new(join_ms);
        n.up_kbps = p.uplink_kbps.unwrap_or(kbps(up));
        n.down_kbps = p.downlink_kbps.unwrap_or(kbps(down));
        n.latency_ms = rng.range(p.latency_ms.0, p.latency_ms.1);
        n
    };
    let mut specs = Vec::with_capacity(p.seeders + p.peers + p.liars + p.drip);
    // Seeders (`mode=seeder`) join first, run `Policy::Seed` and are not viewers.
    for _ in 0..p.seeders {
        let mut n = node(0, &mut rng);
        n.seeder = true;
        n.up_kbps = p.seeder_up_mbps * 1000;
        n.down_kbps = n.down_kbps.max(n.up_kbps);
        n.measured = false;
        specs.push(n);
    }
    for i in 0..p.peers {
        let t = (i as f64 * p.stagger_s * 1000.0) as u64;
        let mut n = node(t, &mut rng);
        // Churn F: each peer leaves and rejoins F times a minute on average.
        if p.churn > 0.0 {
            let mean_stay = 60_000.0 / p.churn;
            let stay = (-(1.0 - rng.next_f64()).ln() * mean_stay) as u64;
            n.leave_ms = Some(t + stay.max(5_000));
            n.rejoin_after_ms = Some(rng.range(2_000, 10_000));
        }
        specs.push(n);
    }
    // Misbehaving peers join early (so they hold segments to lie about) and are not measured.
    for (count, b) in [(p.liars, Behaviour::LiarGarbage), (p.drip, Behaviour::Drip)] {
        for _ in 0..count {
            let t = rng.range(0, last_join.max(1));
            let mut n = node(t, &mut rng);
            n.behaviour = b;
            n.measured = false;
            specs.push(n);
        }
    }
    let res = Mesh::new(cfg, specs).run();
    let peers = res
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.measured)
        .map(|(i, n)| PeerResult {
            idx: i,
            join_ms: n.join_ms,
            http_bytes: n.http_bytes * scale,
            p2p_bytes: n.p2p_bytes * scale,
            up_bytes: n.upload_bytes * scale,
            startup_ms: n.startup_ms,
            stalls: n.stalls,
            stall_ms: n.stall_ms,
            conns: n.peers_max,
            left: n.left,
            errors: n.load_failures as u32,
            wasted_http_bytes: n.wasted_http_bytes * scale,
            wrong_segments: n.wrong_segments,
        })
        .collect();
    let seeder_http_bytes = res
        .nodes
        .iter()
        .take(p.seeders)
        .map(|n| n.http_bytes * scale)
        .sum();
    SimResult {
        peers,
        unique_bytes: res.unique_bytes * scale,
        seeder_http_bytes,
        events: res.events,
        sim_ms: duration_ms,
    }
}
