//! `bench-play liar`: a misbehaving peer for the soak benchmark (bench/soak.sh).
//!
//! Built only from the library's public pieces: it computes the swarm the element peers join
//! (`manifest::hls` + `p2p::identity`, as the element does for a one-variant master playlist),
//! joins it on the real tracker (`net::tracker`), makes and answers WebRTC offers
//! (`net::rtc`) like any peer, announces every segment of the live window (`p2p::wire`), and
//! answers every request wrongly:
//!
//! - `garbage`: the announced size of MPEG-TS-looking junk (0x47 sync bytes, random packets);
//! - `stale`: another segment's real bytes, fetched from the origin (4 segments earlier);
//! - `drip`: the right header, then one real byte every 1.9 s.
//!
//! Prints `LIAR_ID peer=<hex> info_hash=<hex>` once and `LIAR t=.. requests=..` every 10 s.
//! Exits when its stdin closes (the orchestrator holds the pipe) or at `--until-ms`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use gstp2pmedia::manifest::hls::{self, Playlist};
use gstp2pmedia::net::rtc::{DataChannelConn, RtcConfig, RtcFactory, WebRtcFactory};
use gstp2pmedia::net::tracker::{
    InfoHash, OfferId, PeerId, TrackerClient, TrackerConfig, TrackerEvent,
};
use gstp2pmedia::p2p::hls_streams::level_properties;
use gstp2pmedia::p2p::identity::{stream_swarm, swarm_id, Compat, StreamType};
use gstp2pmedia::p2p::wire::{encode_command, Command, Decoder, Incoming, MAX_MESSAGE_SIZE};

use crate::soak::{hex_bytes, http_get};
use crate::swarm::unix_ms;
use crate::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Garbage,
    Stale,
    Drip,
}

impl Behaviour {
    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "garbage" => Behaviour::Garbage,
            "stale" => Behaviour::Stale,
            "drip" => Behaviour::Drip,
            _ => return Err(format!("unknown behaviour {s} (garbage|stale|drip)").into()),
        })
    }
}

#[derive(Default)]
struct Counters {
    channels: AtomicU64,
    requests: AtomicU64,
    cancels: AtomicU64,
    lies_sent: AtomicU64,
    bytes_sent: AtomicU64,
    /// Segment bytes fetched from the origin (to lie with).
    fetched: AtomicU64,
    /// Channels that carried a request and were then closed by the other side.
    closed_after_request: AtomicU64,
}

/// What the liar knows of the live window: media sequence number → segment URL.
#[derive(Default)]
struct Window {
    segs: BTreeMap<i64, url::Url>,
    /// Bumped when the window moves, so open channels re-announce.
    version: u64,
}

struct Shared {
    behaviour: Behaviour,
    window: Mutex<Window>,
    /// Real segment bytes by URL (the last few only).
    cache: Mutex<Vec<(url::Url, Arc<Vec<u8>>)>>,
    counters: Counters,
}

impl Shared {
    fn fetch(&self, url: &url::Url) -> Option<Arc<Vec<u8>>> {
        if let Some((_, b)) = self.cache.lock().unwrap().iter().find(|(u, _)| u == url) {
            return Some(b.clone());
        }
        // Marked, so the soak does not count the liars' fetches as the element peers' origin
        // load.
        let mut marked = url.clone();
        marked.query_pairs_mut().append_pair("by", "liar");
        let body = Arc::new(http_get(marked.as_str()).ok()?);
        self.counters
            .fetched
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let mut c = self.cache.lock().unwrap();
        c.push((url.clone(), body.clone()));
        if c.len() > 8 {
            c.remove(0);
        }
        Some(body)
    }
}

pub fn liar(args: &[String]) -> Result<()> {
    let (mut behaviour, mut master, mut tracker, mut until) = (None, None, None, None::<f64>);
    let mut bind = "127.0.0.1".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().cloned().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--behaviour" => behaviour = Some(Behaviour::parse(&val()?)?),
            "--master" => master = Some(val()?),
            "--tracker" => tracker = Some(val()?),
            "--until-ms" => until = Some(val()?.parse()?),
            "--bind" => bind = val()?,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    let behaviour = behaviour.ok_or("--behaviour is required")?;
    let master = master.ok_or("--master is required")?;
    let tracker = tracker.ok_or("--tracker is required")?;

    // The swarm: what the element computes for a master playlist with one level (PML 2.3
    // compat, the element's default): swarm id from the master URL, the level's properties.
    let master_url = url::Url::parse(&master)?;
    let Playlist::Master(m) = hls::parse(&http_get(&master)?, &master_url)? else {
        return Err("--master is not a master playlist".into());
    };
    let variant = m.variants.first().ok_or("master without variants")?;
    let s = stream_swarm(
        Compat::Pml23,
        &swarm_id(&master, None),
        StreamType::Main,
        &level_properties(variant),
        0,
    );
    let info_hash = InfoHash::from_bytes(s.info_hash.as_bytes()).ok_or("bad info hash")?;
    let peer_id = PeerId::random_with_prefix(Compat::Pml23.pml_peer_id_prefix());
    say(format!(
        "LIAR_ID peer={} info_hash={} behaviour={behaviour:?}",
        hex_bytes(peer_id.as_bytes()),
        hex_bytes(info_hash.as_bytes())
    ));

    let shared = Arc::new(Shared {
        behaviour,
        window: Mutex::default(),
        cache: Mutex::default(),
        counters: Counters::default(),
    });

    // Follow the live window (the media playlist) once a second.
    let media_url = variant.uri.clone();
    let sh = shared.clone();
    std::thread::spawn(move || loop {
        if let Ok(Ok(Playlist::Media(p))) =
            http_get(media_url.as_str()).map(|b| hls::parse(&b, &media_url))
        {
            let mut w = sh.window.lock().unwrap();
            let before = w.segs.keys().next_back().copied();
            for seg in &p.segments {
                w.segs.insert(seg.sequence as i64, seg.resource.url.clone());
            }
            while w.segs.len() > 40 {
                w.segs.pop_first();
            }
            if w.segs.keys().next_back().copied() != before {
                w.version += 1;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    });

    // Stop when the orchestrator closes our stdin, or at the deadline.
    std::thread::spawn(move || {
        let mut s = String::new();
        while std::io::stdin()
            .read_line(&mut s)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            s.clear();
        }
        std::process::exit(0);
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let ip: std::net::IpAddr = bind.parse()?;
    let sh = shared.clone();
    rt.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tick.tick().await;
            let c = &sh.counters;
            say(format!(
                "LIAR t={:.1} behaviour={:?} channels={} requests={} cancels={} lies={} bytes={} closed_after_request={} fetched={}",
                unix_ms(),
                sh.behaviour,
                c.channels.load(Ordering::Relaxed),
                c.requests.load(Ordering::Relaxed),
                c.cancels.load(Ordering::Relaxed),
                c.lies_sent.load(Ordering::Relaxed),
                c.bytes_sent.load(Ordering::Relaxed),
                c.closed_after_request.load(Ordering::Relaxed),
                c.fetched.load(Ordering::Relaxed),
            ));
            if until.is_some_and(|u| unix_ms() >= u) {
                std::process::exit(0);
            }
        }
    });
    rt.block_on(run(tracker, info_hash, peer_id, ip, shared))
}

fn say(line: String) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

/// Joins the swarm like any peer (offers and answers through the tracker) and lies on every
/// data channel that opens.
async fn run(
    tracker_url: String,
    info_hash: InfoHash,
    peer_id: PeerId,
    ip: std::net::IpAddr,
    shared: Arc<Shared>,
) -> Result<()> {
    let (client, mut rx) = TrackerClient::spawn(TrackerConfig {
        announce_urls: vec![tracker_url],
        origin: Some("http://127.0.0.1".into()),
        ..TrackerConfig::default()
    })?;
    client.join(info_hash, peer_id);
    let mut cfg = RtcConfig::loopback();
    cfg.udp_bind = vec![std::net::SocketAddr::new(ip, 0)];
    let rtc = Arc::new(WebRtcFactory::new(cfg));
    let mut pending = HashMap::new();
    while let Some(ev) = rx.recv().await {
        match ev {
            TrackerEvent::NeedOffers { tracker, count, .. } => {
                let mut offers = Vec::new();
                for _ in 0..count {
                    if let Ok((p, sdp)) = rtc.create_offer().await {
                        let id = OfferId::random();
                        pending.insert(id, p);
                        offers.push((id, sdp));
                    }
                }
                client.announce(&tracker, info_hash, offers);
            }
            TrackerEvent::Answer { offer_id, sdp, .. } => {
                if let Some(p) = pending.remove(&offer_id) {
                    if let Ok(conn) = p.accept_answer(&sdp).await {
                        tokio::spawn(serve(Arc::from(conn), shared.clone()));
                    }
                }
            }
            TrackerEvent::Offer {
                tracker,
                peer_id: from,
                offer_id,
                sdp,
                ..
            } => {
                if let Ok((conn, answer)) = rtc.accept_offer(&sdp).await {
                    if client.answer(&tracker, info_hash, from, offer_id, answer) {
                        tokio::spawn(serve(Arc::from(conn), shared.clone()));
                    }
                }
            }
            TrackerEvent::OfferExpired { offer_id, .. } => {
                pending.remove(&offer_id);
            }
            _ => {}
        }
    }
    Ok(())
}

async fn send_cmd(conn: &dyn DataChannelConn, cmd: &Command) -> bool {
    for chunk in encode_command(cmd, MAX_MESSAGE_SIZE) {
        if conn.send(Bytes::from(chunk)).await.is_err() {
            return false;
        }
    }
    true
}

async fn send_payload(conn: &dyn DataChannelConn, data: &[u8]) -> bool {
    for chunk in data.chunks(16 * 1024) {
        if conn.send(Bytes::copy_from_slice(chunk)).await.is_err() {
            return false;
        }
    }
    true
}

/// (segment id, request id) → set when the requester cancels.
type Cancels = HashMap<(i64, i64), Arc<AtomicBool>>;

/// One data channel: announce the window (again whenever it moves), lie on every request.
async fn serve(conn: Arc<dyn DataChannelConn>, shared: Arc<Shared>) {
    if conn.wait_open(Duration::from_secs(15)).await.is_err() {
        return;
    }
    shared.counters.channels.fetch_add(1, Ordering::Relaxed);
    let mut announced = u64::MAX;
    let mut dec = Decoder::default();
    let mut asked = false;
    let cancels: Arc<Mutex<Cancels>> = Arc::default();
    loop {
        let (version, loaded) = {
            let w = shared.window.lock().unwrap();
            (w.version, w.segs.keys().copied().collect::<Vec<_>>())
        };
        if version != announced {
            announced = version;
            let cmd = Command::SegmentsAnnouncement {
                loaded,
                http_loading: Vec::new(),
            };
            if !send_cmd(&*conn, &cmd).await {
                break;
            }
        }
        let msg = match tokio::time::timeout(Duration::from_millis(500), conn.recv()).await {
            Err(_) => continue, // look at the window again
            Ok(None) => break,
            Ok(Some(m)) => m,
        };
        match dec.push(&msg) {
            Incoming::Command(Command::SegmentRequest { id, request_id, .. }) => {
                shared.counters.requests.fetch_add(1, Ordering::Relaxed);
                asked = true;
                let flag = Arc::new(AtomicBool::new(false));
                cancels
                    .lock()
                    .unwrap()
                    .insert((id, request_id), flag.clone());
                // Answer in its own task: a drip takes forever and requests keep coming.
                let (c, sh) = (conn.clone(), shared.clone());
                tokio::spawn(async move { lie(&*c, &sh, id, request_id, &flag).await });
            }
            Incoming::Command(Command::CancelSegmentRequest { id, request_id, .. }) => {
                shared.counters.cancels.fetch_add(1, Ordering::Relaxed);
                if let Some(f) = cancels.lock().unwrap().remove(&(id, request_id)) {
                    f.store(true, Ordering::Relaxed);
                }
            }
            _ => {}
        }
    }
    if asked {
        shared
            .counters
            .closed_after_request
            .fetch_add(1, Ordering::Relaxed);
    }
}

async fn lie(
    conn: &dyn DataChannelConn,
    shared: &Arc<Shared>,
    id: i64,
    request_id: i64,
    cancelled: &AtomicBool,
) {
    let (real_url, other_url) = {
        let w = shared.window.lock().unwrap();
        let real = w.segs.get(&id).cloned();
        // Another segment of the window: 4 earlier, else any other one.
        let other = w
            .segs
            .get(&(id - 4))
            .or_else(|| w.segs.iter().find(|(k, _)| **k != id).map(|(_, u)| u))
            .cloned();
        (real, other)
    };
    let Some(real_url) = real_url else { return };
    let sh = shared.clone();
    let behaviour = shared.behaviour;
    let body = tokio::task::spawn_blocking(move || match behaviour {
        Behaviour::Stale => other_url.and_then(|u| sh.fetch(&u)),
        _ => sh.fetch(&real_url),
    })
    .await
    .ok()
    .flatten();
    let Some(body) = body else { return };
    let data: Vec<u8> = match behaviour {
        Behaviour::Garbage => junk_ts(body.len(), id as u64),
        _ => body.to_vec(),
    };
    let header = Command::SegmentData {
        id,
        request_id,
        size: data.len() as i64,
    };
    if !send_cmd(conn, &header).await {
        return;
    }
    shared.counters.lies_sent.fetch_add(1, Ordering::Relaxed);
    let ok = match behaviour {
        Behaviour::Drip => {
            for b in data.chunks(1) {
                tokio::time::sleep(Duration::from_millis(1900)).await;
                if cancelled.load(Ordering::Relaxed)
                    || conn.send(Bytes::copy_from_slice(b)).await.is_err()
                {
                    return;
                }
                shared.counters.bytes_sent.fetch_add(1, Ordering::Relaxed);
            }
            true
        }
        _ => {
            let ok = send_payload(conn, &data).await;
            if ok {
                shared
                    .counters
                    .bytes_sent
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
            }
            ok
        }
    };
    if ok {
        let done = Command::SegmentDataSendingCompleted { id, request_id };
        send_cmd(conn, &done).await;
    }
}

/// `len` bytes of 188-byte packets that start with the MPEG-TS sync byte and are otherwise
/// noise: passes a sniffer, fails a strict parse (PIDs, continuity).
fn junk_ts(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        if out.len() % 188 == 0 {
            out.push(0x47);
            continue;
        }
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push((x >> 24) as u8);
    }
    out
}
