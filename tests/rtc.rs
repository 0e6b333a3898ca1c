//! WebRTC adapter between two in-process Rust peers over 127.0.0.1 (no STUN, no browser).
//! Every test is bounded by a timeout; setup time and throughput are printed
//! (`cargo test --test rtc -- --nocapture`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstp2pmedia::net::rtc::{
    DataChannelConn, RtcConfig, RtcError, RtcFactory, WebRtcFactory, MAX_MESSAGE_SIZE,
};
use sha1::{Digest, Sha1};

const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

type Conn = Arc<dyn DataChannelConn>;

/// Offer → answer → both channels open, as the tracker would relay it. Returns
/// (offerer, answerer, setup time).
async fn connect(f: &dyn RtcFactory) -> (Conn, Conn, Duration) {
    let (a, b, t) = connect_timed(f).await;
    (a, b, t.total)
}

struct SetupTimes {
    /// Offer made → both channels open.
    total: Duration,
    /// Answer received → the offerer's channel open.
    offerer: Duration,
    /// Answer sent → the answerer's channel open.
    answerer: Duration,
}

async fn connect_timed(f: &dyn RtcFactory) -> (Conn, Conn, SetupTimes) {
    let t0 = Instant::now();
    let (pending, offer) = f.create_offer().await.expect("create_offer");
    let (answerer, answer) = f.accept_offer(&offer).await.expect("accept_offer");
    let t_answer = Instant::now();
    let offerer = pending.accept_answer(&answer).await.expect("accept_answer");
    let (a, b) = tokio::join!(
        async {
            offerer.wait_open(OPEN_TIMEOUT).await.expect("offerer open");
            t_answer.elapsed()
        },
        async {
            answerer
                .wait_open(OPEN_TIMEOUT)
                .await
                .expect("answerer open");
            t_answer.elapsed()
        }
    );
    let times = SetupTimes {
        total: t0.elapsed(),
        offerer: a,
        answerer: b,
    };
    (Arc::from(offerer), Arc::from(answerer), times)
}

async fn bounded<F: std::future::Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out")
}

/// Deterministic message stream: sizes cycle through edge cases (1 byte, exactly
/// MAX_MESSAGE_SIZE) and pseudo-random sizes; contents are pseudo-random.
struct Stream {
    seed: u64,
    index: u64,
}

impl Stream {
    fn new(seed: u64) -> Self {
        Stream { seed, index: 0 }
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn next_message(&mut self) -> Bytes {
        let len = match self.index % 4 {
            0 | 1 => MAX_MESSAGE_SIZE,
            2 => 1 + (self.next_u64() % MAX_MESSAGE_SIZE as u64) as usize,
            _ => 1 + (self.next_u64() % 64) as usize,
        };
        self.index += 1;
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(len);
        Bytes::from(v)
    }
}

/// Sends `total` bytes of `Stream::new(seed)`; returns (messages, sha1).
async fn send_stream(conn: Conn, seed: u64, total: usize) -> (u64, [u8; 20]) {
    let mut stream = Stream::new(seed);
    let mut sha = Sha1::new();
    let (mut sent, mut count) = (0, 0);
    while sent < total {
        let msg = stream.next_message();
        sha.update(&msg);
        sent += msg.len();
        count += 1;
        conn.send(msg).await.expect("send");
    }
    (count, sha.finalize().into())
}

/// Receives `count` messages and checks each against `Stream::new(seed)`; returns sha1.
async fn recv_stream(conn: Conn, seed: u64, count: u64) -> [u8; 20] {
    let mut stream = Stream::new(seed);
    let mut sha = Sha1::new();
    for i in 0..count {
        let got = conn.recv().await.expect("channel closed early");
        let want = stream.next_message();
        assert_eq!(got.len(), want.len(), "message {i}: length");
        assert!(got == want, "message {i}: contents differ");
        sha.update(&got);
    }
    sha.finalize().into()
}

fn count_messages(seed: u64, total: usize) -> u64 {
    let mut stream = Stream::new(seed);
    let (mut sent, mut count) = (0, 0);
    while sent < total {
        sent += stream.next_message().len();
        count += 1;
    }
    count
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// 10 MB each way at the same time (20 MB total), max-size messages included, byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchange_20mb_both_ways() {
    bounded(120, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (a, b, setup) = connect(&f).await;
        println!("setup: {:.0} ms", setup.as_secs_f64() * 1e3);

        const EACH: usize = 10_000_000;
        let n_ab = count_messages(1, EACH);
        let n_ba = count_messages(2, EACH);
        let t0 = Instant::now();
        let (s_ab, s_ba, r_ab, r_ba) = tokio::join!(
            tokio::spawn(send_stream(a.clone(), 1, EACH)),
            tokio::spawn(send_stream(b.clone(), 2, EACH)),
            tokio::spawn(recv_stream(b.clone(), 1, n_ab)),
            tokio::spawn(recv_stream(a.clone(), 2, n_ba)),
        );
        let elapsed = t0.elapsed();
        let (s_ab, s_ba) = (s_ab.expect("task"), s_ba.expect("task"));
        let (r_ab, r_ba) = (r_ab.expect("task"), r_ba.expect("task"));
        assert_eq!(s_ab.0, n_ab);
        assert_eq!(s_ba.0, n_ba);
        assert_eq!(s_ab.1, r_ab, "a→b checksum");
        assert_eq!(s_ba.1, r_ba, "b→a checksum");

        let (sa, sb) = (a.stats(), b.stats());
        assert_eq!(sa.bytes_received, sb.bytes_sent);
        assert_eq!(sb.bytes_received, sa.bytes_sent);
        assert_eq!(sa.messages_sent, n_ab);
        assert_eq!(sb.messages_received, n_ab);
        let total = sa.bytes_sent + sb.bytes_sent;
        println!(
            "exchanged {total} bytes in {} + {} messages in {:.2} s: {:.1} MB/s aggregate \
             (a→b sha1 {}, b→a sha1 {})",
            n_ab,
            n_ba,
            elapsed.as_secs_f64(),
            total as f64 / elapsed.as_secs_f64() / 1e6,
            hex(&r_ab),
            hex(&r_ba),
        );
        a.close().await;
        b.close().await;
    })
    .await;
}

/// One direction only, for a throughput figure comparable to the browser measurements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_way_throughput() {
    bounded(120, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (a, b, _) = connect(&f).await;
        const TOTAL: usize = 20_000_000;
        let n = count_messages(7, TOTAL);
        let t0 = Instant::now();
        let (s, r) = tokio::join!(
            tokio::spawn(send_stream(a.clone(), 7, TOTAL)),
            tokio::spawn(recv_stream(b.clone(), 7, n)),
        );
        let elapsed = t0.elapsed();
        assert_eq!(s.expect("task").1, r.expect("task"));
        println!(
            "one way: {} bytes in {:.2} s = {:.1} MB/s",
            a.stats().bytes_sent,
            elapsed.as_secs_f64(),
            a.stats().bytes_sent as f64 / elapsed.as_secs_f64() / 1e6
        );
    })
    .await;
}

/// Sequential setups on loopback: answer → channel open per role, sorted times printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_time() {
    bounded(90, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (mut offerer, mut answerer, mut total) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..9 {
            let (a, b, t) = connect_timed(&f).await;
            // Each side saw ICE connect, then DTLS finish (the phases a slow setup's
            // `GST_DEBUG` line reports).
            for conn in [&a, &b] {
                let p = conn.setup_phases();
                let (ice, dtls) = (p.ice_connected.expect("ice"), p.secured.expect("dtls"));
                assert!(ice <= dtls, "{p:?}");
            }
            // Prove the channel works, not just that it reported open.
            a.send(Bytes::from_static(b"ping")).await.expect("send");
            assert_eq!(b.recv().await.as_deref(), Some(&b"ping"[..]));
            offerer.push(t.offerer);
            answerer.push(t.answerer);
            total.push(t.total);
            a.close().await;
            b.close().await;
        }
        for (name, v) in [
            ("offerer", &mut offerer),
            ("answerer", &mut answerer),
            ("offer to open", &mut total),
        ] {
            v.sort();
            let ms: Vec<String> = v
                .iter()
                .map(|t| format!("{:.0}", t.as_secs_f64() * 1e3))
                .collect();
            println!("setup {name} (ms, sorted): {}", ms.join(", "));
        }
        // Issue 12's target: answer → open ≤ 250 ms median for both roles (~605 ms before
        // patches/, 3–6 ms after on an idle machine).
        for (name, v) in [("offerer", &offerer), ("answerer", &answerer)] {
            assert!(
                v[4] < Duration::from_millis(250),
                "{name} setup median {:?}",
                v[4]
            );
        }
        assert!(total[4] < Duration::from_secs(5));
    })
    .await;
}

/// A reader that stops reading stalls the writer (bounded buffering), and nothing is lost
/// once it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_bounds_buffering() {
    bounded(120, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (a, b, _) = connect(&f).await;
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let writer = {
            let (a, sent) = (a.clone(), sent.clone());
            tokio::spawn(async move {
                let msg = Bytes::from(vec![0x5a; MAX_MESSAGE_SIZE]);
                // Far more than any buffer on the path: 64 MB.
                for _ in 0..1000 {
                    if a.send(msg.clone()).await.is_err() {
                        break;
                    }
                    sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            })
        };
        // Wait until the writer makes no progress for 1.5 s (how long it takes to get there
        // depends on the machine's load).
        let deadline = Instant::now() + Duration::from_secs(40);
        let (mut stalled_at, mut stable_since) = (0, Instant::now());
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            assert!(!writer.is_finished(), "writer never blocked");
            let now = sent.load(std::sync::atomic::Ordering::Relaxed);
            if now != stalled_at {
                (stalled_at, stable_since) = (now, Instant::now());
            } else if stable_since.elapsed() >= Duration::from_millis(1500) {
                break;
            }
            assert!(Instant::now() < deadline, "writer never stalled");
        }
        let stalled_bytes = stalled_at * MAX_MESSAGE_SIZE as u64;
        println!(
            "writer stalled after {stalled_at} messages ({:.1} MB) with the reader idle",
            stalled_bytes as f64 / 1e6
        );
        // Where it piles up: our 32 KiB send limit, the peer's 1 MiB SCTP window, webrtc-rs'
        // per-channel queue of 256 events (up to 16 MiB of 64 KiB messages) plus what its
        // driver holds back, and our 16-message queue. Measured: ~37 MB.
        assert!(stalled_bytes < 48_000_000, "{stalled_bytes} bytes buffered");

        for i in 0..1000 {
            let m = b.recv().await.expect("closed early");
            assert_eq!(m.len(), MAX_MESSAGE_SIZE, "message {i}");
        }
        writer.await.expect("writer");
        assert_eq!(b.stats().messages_received, 1000);
        assert_eq!(a.stats().messages_sent, 1000);
    })
    .await;
}

/// Closing one side ends the other's recv promptly; sends then fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_seen_by_peer() {
    bounded(60, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (a, b, _) = connect(&f).await;
        a.send(Bytes::from_static(b"last words"))
            .await
            .expect("send");
        let t_close = Instant::now();
        a.close().await;
        println!(
            "close() took {:.0} ms",
            t_close.elapsed().as_secs_f64() * 1e3
        );
        assert!(a.send(Bytes::from_static(b"x")).await.is_err());
        assert_eq!(a.recv().await, None);

        let t0 = Instant::now();
        let first = tokio::time::timeout(Duration::from_secs(5), b.recv())
            .await
            .expect("recv hung");
        assert_eq!(first.as_deref(), Some(&b"last words"[..]));
        let end = tokio::time::timeout(Duration::from_secs(5), b.recv())
            .await
            .expect("recv hung after peer close");
        assert_eq!(end, None);
        println!(
            "peer saw close after {:.0} ms",
            t0.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(
            b.send(Bytes::from_static(b"x")).await,
            Err(RtcError::Closed)
        );
        assert_eq!(
            b.wait_open(Duration::from_secs(1)).await,
            Err(RtcError::Closed)
        );
    })
    .await;
}

/// Dropping a connection (no explicit close) also closes it for the peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_is_seen_by_peer() {
    bounded(60, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (a, b, _) = connect(&f).await;
        let t0 = Instant::now();
        drop(a);
        let end = tokio::time::timeout(Duration::from_secs(10), b.recv())
            .await
            .expect("recv hung after peer drop");
        assert_eq!(end, None);
        println!(
            "peer saw drop after {:.0} ms",
            t0.elapsed().as_secs_f64() * 1e3
        );
    })
    .await;
}

/// Garbage in gives errors, never panics or hangs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_input_is_an_error() {
    bounded(60, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        for bad in [
            "",
            "garbage",
            "v=0\r\n",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP \
             webrtc-datachannel\r\n",
            "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n",
        ] {
            let r = f.accept_offer(bad).await;
            assert!(
                matches!(r, Err(RtcError::InvalidSdp(_))),
                "offer {bad:?} gave {:?}",
                r.as_ref().map(|_| ())
            );
        }

        // Wrong answers. Each needs a fresh offer: the first failure consumes it.
        for bad in ["", "garbage", "v=0\r\n"] {
            let (pending, _offer) = f.create_offer().await.expect("offer");
            let r = pending.accept_answer(bad).await;
            assert!(r.is_err(), "answer {bad:?} was accepted");
        }

        // An answer that never connects (ICE credentials of a connection that is gone):
        // wait_open times out instead of hanging.
        let (pending, offer) = f.create_offer().await.expect("offer");
        let (stale, answer) = f.accept_offer(&offer).await.expect("answer");
        stale.close().await;
        drop(stale);
        let conn = pending.accept_answer(&answer).await.expect("accept");
        let r = conn.wait_open(Duration::from_secs(3)).await;
        assert!(
            matches!(r, Err(RtcError::Timeout(_)) | Err(RtcError::Closed)),
            "{r:?}"
        );

        // Sizes and state.
        let (a, b, _) = connect(&f).await;
        assert_eq!(
            a.send(Bytes::from(vec![0; MAX_MESSAGE_SIZE + 1])).await,
            Err(RtcError::MessageTooLarge(MAX_MESSAGE_SIZE + 1))
        );
        a.send(Bytes::new()).await.ok();
        a.send(Bytes::from_static(b"after")).await.expect("send");
        // An empty message is either delivered or skipped, never corrupts the stream.
        let mut got = b.recv().await.expect("recv");
        if got.is_empty() {
            got = b.recv().await.expect("recv");
        }
        assert_eq!(&got[..], b"after");

        let (pending, offer) = f.create_offer().await.expect("offer");
        let (answerer, _answer) = f.accept_offer(&offer).await.expect("answer");
        assert_eq!(
            answerer.send(Bytes::from_static(b"early")).await,
            Err(RtcError::NotOpen)
        );
        drop(pending);
    })
    .await;
}

/// mDNS on needs multicast, which this host may lack: building then fails with an error
/// (webrtc-rs' behaviour), or works. Either way, no panic or hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mdns_on_is_error_or_works() {
    bounded(30, async {
        let f = WebRtcFactory::new(RtcConfig {
            mdns: true,
            ..RtcConfig::loopback()
        });
        match f.create_offer().await {
            Ok((_pending, sdp)) => {
                println!("mDNS on: offer built");
                assert!(sdp.contains("a=candidate:"));
            }
            Err(e) => {
                println!("mDNS on: {e}");
                assert!(matches!(e, RtcError::Setup(_)), "{e:?}");
            }
        }
    })
    .await;
}

/// UDP port of the first candidate in an SDP.
fn candidate_port(sdp: &str) -> u16 {
    let line = sdp
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .expect("candidate line");
    line.split_whitespace()
        .nth(5)
        .and_then(|p| p.parse().ok())
        .expect("candidate port")
}

/// Waits until nobody holds `port` any more (bindable again).
async fn port_released(port: u16) -> bool {
    for _ in 0..100 {
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    false
}

/// Dropping a pending offer or a connection stops webrtc-rs' driver: its socket is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_frees_sockets() {
    bounded(60, async {
        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (pending, offer) = f.create_offer().await.expect("offer");
        let port = candidate_port(&offer);
        assert!(std::net::UdpSocket::bind(("127.0.0.1", port)).is_err());
        drop(pending);
        assert!(port_released(port).await, "pending offer kept its socket");

        let (pending, offer) = f.create_offer().await.expect("offer");
        let (answerer, answer) = f.accept_offer(&offer).await.expect("answer");
        let offerer = pending.accept_answer(&answer).await.expect("accept");
        offerer.wait_open(OPEN_TIMEOUT).await.expect("open");
        answerer.wait_open(OPEN_TIMEOUT).await.expect("open");
        let (port_o, port_a) = (candidate_port(&offer), candidate_port(&answer));
        drop(answerer);
        assert!(
            port_released(port_a).await,
            "dropped answerer kept its socket"
        );
        assert_eq!(offerer.recv().await, None);
        // The offerer's own pump closes its connection once the channel is gone.
        assert!(
            port_released(port_o).await,
            "closed offerer kept its socket"
        );
    })
    .await;
}

/// An offer whose caller went away (its swarm stopped) stops waiting for ICE gathering and
/// closes its PeerConnection at once. Without this every stopped session kept one for up to
/// the gather timeout, and fast start/stop cycles piled them up (`tests/churn.rs` RSS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offer_stops_gathering_when_its_caller_is_gone() {
    // A STUN server that never answers: gathering lasts the whole gather timeout.
    let blackhole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let f = WebRtcFactory::new(RtcConfig {
        ice_servers: vec![format!("stun:{}", blackhole.local_addr().unwrap())],
        gather_timeout: Duration::from_secs(2),
        ..RtcConfig::loopback()
    });
    // Control: nobody cancels, so the offer waits for gathering (else the rest proves nothing).
    let t = Instant::now();
    let never = Box::pin(std::future::pending::<()>());
    let made = bounded(20, f.create_offer_until(never)).await;
    assert!(made.is_ok(), "{:?}", made.err());
    assert!(
        t.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    drop(made);
    // The caller goes away 100 ms in: the offer ends well before the gather timeout.
    let t = Instant::now();
    let gone = Box::pin(tokio::time::sleep(Duration::from_millis(100)));
    let made = bounded(20, f.create_offer_until(gone)).await;
    let took = t.elapsed();
    assert!(matches!(made, Err(RtcError::Closed)), "{:?}", made.err());
    assert!(
        took < Duration::from_millis(1000),
        "cancelled offer took {took:?}"
    );
    eprintln!("cancelled offer ended after {took:?}");
}

/// Drops counted by the kernel for the UDP socket bound to 127.0.0.1:`port` (the `drops`
/// column of /proc/net/udp): datagrams that arrived while its receive buffer was full.
/// Datagrams the kernel dropped at the socket bound to 127.0.0.1:`port` (it must still be
/// open: a socket not found fails the test rather than reading as no drop).
fn udp_drops(port: u16) -> u64 {
    let want = format!("0100007F:{port:04X}");
    std::fs::read_to_string("/proc/net/udp")
        .expect("read /proc/net/udp")
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() > 12 && f[1] == want)
        .and_then(|f| f[12].parse().ok())
        .unwrap_or_else(|| panic!("no UDP socket on 127.0.0.1:{port} in /proc/net/udp"))
}

/// An upload towards a peer that reads its socket in fits and starts, through a socket receive
/// buffer as small as a browser's, with our defaults (send-buffer limit, upload message size):
/// no datagram is dropped and no gap between messages comes near SCTP's retransmission timeout.
/// Chrome reads a peer connection's UDP socket through a 64 KiB SO_RCVBUF; a browser short of
/// CPU leaves it unread for tens of ms. Before the limits were cut (1 MiB in flight, 64 KiB
/// messages) bursts overflowed it and lost packets cost ≥ 1 s stalls: PML's
/// `bytes-receiving-timeout` in `tests/interop.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_to_a_starved_reader_with_a_small_socket_buffer_does_not_stall() {
    const TOTAL: usize = 6 << 20;
    const BLOCKED: Duration = Duration::from_millis(60);
    const READING: Duration = Duration::from_millis(40);
    let chunk = gstp2pmedia::swarm::UPLOAD_CHUNK_SIZE;
    let messages = TOTAL.div_ceil(chunk);
    bounded(120, async move {
        // The reader: its own single-threaded runtime, on a thread that sleeps 60 ms in every
        // 100 (its webrtc-rs driver, which reads the socket, runs on that thread too).
        let (offer_tx, offer_rx) = std::sync::mpsc::channel::<String>();
        let (answer_tx, answer_rx) = tokio::sync::oneshot::channel::<String>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<(usize, Duration, u64)>();
        let reader = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let f = WebRtcFactory::new(RtcConfig {
                    socket_buffer: 64 << 10,
                    ..RtcConfig::loopback()
                });
                let offer = offer_rx.recv().expect("offer");
                let (conn, answer) = f.accept_offer(&offer).await.expect("accept_offer");
                let port = candidate_port(&answer);
                answer_tx.send(answer).expect("answer");
                conn.wait_open(OPEN_TIMEOUT).await.expect("answerer open");
                let starver = tokio::spawn(async {
                    loop {
                        std::thread::sleep(BLOCKED);
                        tokio::time::sleep(READING).await;
                    }
                });
                let (mut bytes, mut longest, mut last) = (0, Duration::ZERO, None::<Instant>);
                while bytes < TOTAL {
                    let Some(m) = conn.recv().await else { break };
                    bytes += m.len();
                    let now = Instant::now();
                    if let Some(t) = last {
                        longest = longest.max(now - t);
                    }
                    last = Some(now);
                }
                starver.abort();
                let _ = done_tx.send((bytes, longest, udp_drops(port)));
                conn.close().await;
            });
        });

        let f = WebRtcFactory::new(RtcConfig::loopback());
        let (pending, offer) = f.create_offer().await.expect("create_offer");
        offer_tx.send(offer).expect("offer");
        let answer = answer_rx.await.expect("answer");
        let writer = pending.accept_answer(&answer).await.expect("accept_answer");
        writer.wait_open(OPEN_TIMEOUT).await.expect("offerer open");
        let t0 = Instant::now();
        let msg = Bytes::from(vec![0xa5; chunk]);
        for _ in 0..messages {
            writer.send(msg.clone()).await.expect("send");
        }
        let (bytes, longest, drops) = done_rx.await.expect("reader");
        println!(
            "starved reader: {bytes} bytes in {:.2} s, longest gap {} ms, {drops} datagrams \
             dropped at its socket",
            t0.elapsed().as_secs_f64(),
            longest.as_millis()
        );
        reader.join().expect("reader thread");
        assert!(bytes >= TOTAL, "{bytes} of {TOTAL} bytes arrived");
        // Before: 4–11 datagrams dropped per run. A lost tail packet costs at least SCTP's
        // minimum RTO (400 ms, patches/); a gap under that is the reader's own naps.
        assert_eq!(drops, 0, "datagrams dropped at the reader's socket");
        assert!(
            longest < Duration::from_millis(350),
            "a {longest:?} gap ({drops} datagrams dropped)"
        );
    })
    .await;
}
