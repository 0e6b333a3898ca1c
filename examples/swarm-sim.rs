//! Deterministic swarm simulator: a mesh of the real `gstp2pmedia::swarm::Swarm` (the object
//! the element runs) over a virtual network.
//!
//! ```text
//! cargo run --release --example swarm-sim -- --peers N --stream vod|live --duration SECONDS \
//!     --stagger SECONDS --seed K [--policy pml|ours|http] [--compare]
//! ```
//! Ends with one line `SIM_RESULT {json}`. `--compare` without a scenario runs the target
//! scenarios for pml, ours and http-only side by side; with a scenario it compares that one.
//! Model defaults are documented in `swarm_sim/params.rs` and in `--help`.

#[path = "swarm_sim/params.rs"]
mod params;
#[path = "swarm_sim/report.rs"]
mod report;
#[path = "swarm_sim/world.rs"]
mod world;

use std::time::Instant;

use gstp2pmedia::schedule::Policy;
use params::{Params, SimPolicy, StreamKind};
use report::Summary;

const HELP: &str = "swarm-sim: deterministic P2P Media Loader swarm simulator

  --peers N            peers (default 4)
  --stream vod|live    stream model (default vod)
  --duration S         VOD: seconds each peer stays (and VOD length unless --vod-length);
                       live: simulated seconds (default 60)
  --stagger S          seconds between joins (default 4)
  --seed K             RNG seed (default 1)
  --policy P           pml | ours | http (HTTP-only baseline) (default ours)
  --compare            run pml, ours and http side by side (target scenarios if no
                       --peers/--stream given)
  --bitrate-kbps B     stream bitrate (default 2500, 720p)
  --segment-ms D       segment duration (default 2000)
  --vod-length S       VOD length in seconds (default = --duration)
  --live-delay-ms L    live playback distance behind the live edge (default 20000)
  --live-window W      live playlist length in segments (default 12)
  --up-mbps A,B        peer uplink range (default 5,20)
  --down-mbps A,B      peer downlink range (default 20,100)
  --latency-ms A,B     one-way latency to the core (default 10,40)
  --setup-ms A,B       data-channel setup after an announce (default 500,1000)
  --max-conns C        connection cap per peer (default 30)
  --churn F            each peer leaves and rejoins F times a minute on average (default 0)
  --rtt-ms MS          extra round trip on every peer link (default 0)
  --loss P             packet loss on peer links, 0..1 (default 0): one round trip per lost
                       packet, the 1-s SCTP RTO for a lost tail packet
  --uplink-kbps K      every peer's uplink (overrides --up-mbps)
  --downlink-kbps K    every peer's downlink (overrides --down-mbps)
  --liars N            extra peers sending garbage of the right size (not measured)
  --seeders N          seeders (mode=seeder: Policy::Seed) joining first, not measured; the
                       origin figures count their pulls
  --seeder-up-mbps M   a seeder's uplink (100)
  --compat F           pml-2 (binary commands, default) | pml-0.6 (JSON commands, string
                       ids, completion by byte count, 10 offers per announce)
  --drip N             extra peers sending one payload byte every 1.9 s (not measured)
  --payload-scale S    stored bytes are S times fewer than simulated ones (default 64)
  --playhead-taken     report the playhead as the element did before it was fixed (the start
                       of the fragment its pad task took last): calibration against it
  --http-initial-timeout-ms T  override http-download-initial-timeout-ms
  --set KEY=VALUE      override a scheduler option (repeatable), e.g.
                       --set rarest-first=false --set peer-wait-ms=0
                       (names as SchedulerConfig::set: PML windows in seconds)
  --quiet              no per-peer table
  --trace              print every HTTP fetch
";

fn parse_pair<T: std::str::FromStr>(v: &str) -> Option<(T, T)> {
    let (a, b) = v.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn parse_args() -> Result<(Params, bool, bool), String> {
    let mut p = Params::default();
    let mut compare = false;
    let mut scenario_given = false;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let flag = |i: usize| -> Result<&str, String> {
            args.get(i + 1)
                .map(|s| s.as_str())
                .ok_or_else(|| format!("{a} needs a value"))
        };
        let bad = |v: &str| format!("bad value for {a}: {v}");
        match a {
            "--help" | "-h" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--compare" => {
                compare = true;
                i += 1;
                continue;
            }
            "--trace" => {
                p.trace = true;
                i += 1;
                continue;
            }
            "--playhead-taken" => {
                p.playhead_taken = true;
                i += 1;
                continue;
            }
            "--quiet" => {
                p.quiet = true;
                i += 1;
                continue;
            }
            _ => {}
        }
        let v = flag(i)?;
        match a {
            "--peers" => {
                p.peers = v.parse().map_err(|_| bad(v))?;
                scenario_given = true;
            }
            "--stream" => {
                p.stream = match v {
                    "vod" => StreamKind::Vod,
                    "live" => StreamKind::Live,
                    _ => return Err(bad(v)),
                };
                scenario_given = true;
            }
            "--duration" => p.duration_s = v.parse().map_err(|_| bad(v))?,
            "--stagger" => p.stagger_s = v.parse().map_err(|_| bad(v))?,
            "--seed" => p.seed = v.parse().map_err(|_| bad(v))?,
            "--policy" => {
                p.policy = match v {
                    "pml" => SimPolicy::Sched(Policy::Pml),
                    "ours" => SimPolicy::Sched(Policy::Ours),
                    "http" => SimPolicy::HttpOnly,
                    _ => return Err(bad(v)),
                }
            }
            "--bitrate-kbps" => p.bitrate_kbps = v.parse().map_err(|_| bad(v))?,
            "--segment-ms" => p.segment_ms = v.parse().map_err(|_| bad(v))?,
            "--vod-length" => p.vod_length_s = Some(v.parse().map_err(|_| bad(v))?),
            "--live-delay-ms" => p.live_delay_ms = v.parse().map_err(|_| bad(v))?,
            "--live-window" => p.live_window = v.parse().map_err(|_| bad(v))?,
            "--up-mbps" => p.up_mbps = parse_pair(v).ok_or_else(|| bad(v))?,
            "--down-mbps" => p.down_mbps = parse_pair(v).ok_or_else(|| bad(v))?,
            "--latency-ms" => p.latency_ms = parse_pair(v).ok_or_else(|| bad(v))?,
            "--setup-ms" => p.setup_ms = parse_pair(v).ok_or_else(|| bad(v))?,
            "--max-conns" => p.max_conns = v.parse().map_err(|_| bad(v))?,
            "--churn" => p.churn = v.parse().map_err(|_| bad(v))?,
            "--rtt-ms" => p.rtt_ms = v.parse().map_err(|_| bad(v))?,
            "--loss" => p.loss = v.parse().map_err(|_| bad(v))?,
            "--uplink-kbps" => p.uplink_kbps = Some(v.parse().map_err(|_| bad(v))?),
            "--downlink-kbps" => p.downlink_kbps = Some(v.parse().map_err(|_| bad(v))?),
            "--liars" => p.liars = v.parse().map_err(|_| bad(v))?,
            "--seeders" => p.seeders = v.parse().map_err(|_| bad(v))?,
            "--seeder-up-mbps" => p.seeder_up_mbps = v.parse().map_err(|_| bad(v))?,
            "--compat" => {
                p.pml06 = match v {
                    "pml-0.6" => true,
                    "pml-2" => false,
                    _ => return Err(bad(v)),
                };
                if p.pml06 {
                    p.offers = 10;
                }
            }
            "--drip" => p.drip = v.parse().map_err(|_| bad(v))?,
            "--payload-scale" => p.payload_scale = v.parse().map_err(|_| bad(v))?,
            "--set" => {
                let (k, val) = v.split_once('=').ok_or_else(|| bad(v))?;
                // Validate now so a typo fails before a long run.
                gstp2pmedia::schedule::SchedulerConfig::pml().set(k, val)?;
                p.overrides.push((k.to_string(), val.to_string()));
            }
            "--http-initial-timeout-ms" => {
                p.http_initial_timeout_ms = Some(v.parse().map_err(|_| bad(v))?)
            }
            _ => return Err(format!("unknown argument {a} (see --help)")),
        }
        i += 2;
    }
    if p.peers == 0 || p.segment_ms == 0 || p.bitrate_kbps == 0 || p.live_window == 0 {
        return Err("peers, segment-ms, bitrate-kbps and live-window must be > 0".into());
    }
    Ok((p, compare, scenario_given))
}

fn run(p: &Params) -> (Summary, report::SimResult) {
    let t0 = Instant::now();
    let res = world::run(p);
    let wall = t0.elapsed().as_millis() as u64;
    (res.summary(p.policy.name(), wall), res)
}

fn scenario_name(p: &Params) -> String {
    format!(
        "{} peers, {} {} s, stagger {} s, seed {}",
        p.peers,
        match p.stream {
            StreamKind::Vod => "VOD",
            StreamKind::Live => "live",
        },
        p.duration_s,
        p.stagger_s,
        p.seed
    )
}

/// Runs http-only, pml and ours on the same scenario (same seed: same peers, links and join
/// times) and prints one table row each. `startup_delta_max` is the largest per-peer startup
/// difference to the HTTP-only run.
fn compare(base: &Params) -> Summary {
    let name = scenario_name(base);
    let mut http_startups: Vec<Option<u64>> = Vec::new();
    let mut last = None;
    for pol in [
        SimPolicy::HttpOnly,
        SimPolicy::Sched(Policy::Pml),
        SimPolicy::Sched(Policy::Ours),
    ] {
        let mut p = base.clone();
        p.policy = pol;
        let (s, res) = run(&p);
        let startups: Vec<Option<u64>> = res.peers.iter().map(|r| r.startup_ms).collect();
        if pol == SimPolicy::HttpOnly {
            http_startups = startups.clone();
        }
        let delta = startups
            .iter()
            .zip(&http_startups)
            .filter_map(|(a, b)| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
            .max()
            .unwrap_or(0);
        println!(
            "{:<47} {:<5} {:>6.1}% {:>6.1}% {:>6.3} {:>6} {:>8} {:>8} {:>11.1} {:>8.1}",
            name,
            s.policy,
            100.0 * s.p2p_share,
            100.0 * s.limit,
            if s.limit > 0.0 {
                s.p2p_share / s.limit
            } else {
                0.0
            },
            s.stalls,
            s.startup_ms_max,
            delta,
            s.origin_bytes as f64 / 1e6,
            s.wall_ms as f64 / 1000.0,
        );
        last = Some(s);
    }
    last.unwrap_or_else(|| unreachable!())
}

fn main() {
    let (p, cmp, scenario_given) = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if cmp {
        let scenarios: Vec<Params> = if scenario_given {
            vec![p.clone()]
        } else {
            let vod = Params {
                seed: p.seed,
                quiet: true,
                ..Params::default()
            };
            let live = |n: usize, stagger: f64| Params {
                peers: n,
                stream: StreamKind::Live,
                duration_s: 600.0,
                stagger_s: stagger,
                seed: p.seed,
                quiet: true,
                ..Params::default()
            };
            vec![vod, live(10, 2.0), live(100, 0.5), live(1000, 0.05)]
        };
        println!(
            "{:<47} {:<5} {:>7} {:>7} {:>6} {:>6} {:>8} {:>8} {:>11} {:>8}",
            "scenario",
            "policy",
            "p2p",
            "limit",
            "xlimit",
            "stalls",
            "start_ms",
            "start_Δ",
            "origin_MB",
            "wall_s"
        );
        let mut last = None;
        for s in &scenarios {
            last = Some(compare(s));
        }
        if let Some(s) = last {
            println!("SIM_RESULT {}", s.json());
        }
        return;
    }
    println!("== {} policy {}", scenario_name(&p), p.policy.name());
    let (s, res) = run(&p);
    if !p.quiet {
        print!("{}", res.table());
    }
    println!("{}", s.line());
    println!("SIM_RESULT {}", s.json());
}
