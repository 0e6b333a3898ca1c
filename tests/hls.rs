//! Integration tests for p2phlssrc against GStreamer's own hlsdemux, over a real HTTP origin
//! on 127.0.0.1 serving ffmpeg-made fixtures. One binary so the fixtures are made once.
//!
//! Reference runs use `playbin http://…` (legacy hlsdemux in GStreamer 1.22); candidate runs
//! use `playbin p2phls+http://…` and must decode exactly the same frames.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::fixtures::*;
use common::origin::*;
use common::playback::*;
use common::*;

fn origin() -> Origin {
    Origin::serve_dir(&fixtures().root)
}

fn secs(s: f64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds((s * 1e9) as u64)
}

// ---------------------------------------------------------------------------------------
// A minimal raw HTTP/1.1 client, to prove the origin itself (no GStreamer involved).

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Content-Length advertised.
    length: usize,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Send one request on `s` and read the response; the body read stops at Content-Length,
/// EOF or a 1-s read timeout (for stalls).
fn raw_request(s: &mut TcpStream, method: &str, path: &str, headers: &[&str]) -> RawResponse {
    s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed in head");
        head.push(byte[0]);
    }
    let text = String::from_utf8(head).unwrap();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = Vec::new();
    if method != "HEAD" {
        let mut buf = vec![0u8; 65536];
        while body.len() < length {
            match s.read(&mut buf[..(length - body.len()).min(65536)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
    }
    RawResponse {
        status,
        headers,
        body,
        length,
    }
}

fn connect(o: &Origin) -> TcpStream {
    TcpStream::connect(("127.0.0.1", o.port())).unwrap()
}

#[test]
fn origin_serves_ranges_over_keepalive_and_counts() {
    guard(|| {
        let f = fixtures();
        let o = origin();
        let file = f.read(BYTES_FILE);
        let path = format!("/{BYTES_FILE}");
        let mut s = connect(&o);
        // Three requests on one connection: keep-alive works.
        let r = raw_request(&mut s, "GET", &path, &["User-Agent: raw-test"]);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, file);
        assert_eq!(r.header("Content-Type"), Some("video/mp2t"));
        let r = raw_request(&mut s, "GET", &path, &["Range: bytes=100-199"]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, &file[100..200]);
        assert_eq!(
            r.header("Content-Range"),
            Some(format!("bytes 100-199/{}", file.len()).as_str())
        );
        let r = raw_request(&mut s, "GET", &path, &["Range: bytes=-10"]);
        assert_eq!(r.body, &file[file.len() - 10..]);
        let r = raw_request(&mut s, "HEAD", &path, &[]);
        assert_eq!((r.status, r.length, r.body.len()), (200, file.len(), 0));
        let r = raw_request(
            &mut s,
            "GET",
            &path,
            &[&format!("Range: bytes={}-", file.len())],
        );
        assert_eq!(r.status, 416);
        let r = raw_request(&mut s, "GET", "/nope.ts", &[]);
        assert_eq!(r.status, 404);
        let r = raw_request(&mut s, "GET", "/../etc/passwd", &[]);
        assert_eq!(r.status, 404);
        assert_eq!(o.requests(BYTES_FILE), 5);
        assert_eq!(o.bytes(BYTES_FILE), (file.len() + 100 + 10) as u64);
        let log = o.log();
        assert_eq!(log[0].header("user-agent"), Some("raw-test"));
        assert_eq!(log[1].header("Range"), Some("bytes=100-199"));
    });
}

#[test]
fn origin_injects_faults() {
    guard(|| {
        let f = fixtures();
        let o = origin();
        let seg = "seq/seg100.ts";
        let data = f.read(seg);
        let p = format!("/{seg}");

        // 503 twice, then OK.
        o.set_fault(
            seg,
            Fault::Status {
                status: 503,
                times: 2,
            },
        );
        let mut s = connect(&o);
        assert_eq!(raw_request(&mut s, "GET", &p, &[]).status, 503);
        assert_eq!(raw_request(&mut s, "GET", &p, &[]).status, 503);
        assert_eq!(raw_request(&mut s, "GET", &p, &[]).body, data);
        assert_eq!(o.requests(seg), 3);

        // Redirect prefix: relative URIs must then resolve against /seq/.
        let r = raw_request(&mut s, "GET", "/redir/seq/index.m3u8", &[]);
        assert_eq!(r.status, 302);
        assert_eq!(r.header("Location"), Some("/seq/index.m3u8"));

        // Truncated body: full Content-Length, fewer bytes, then close.
        o.set_fault(seg, Fault::Truncate { after: 1000 });
        let r = raw_request(&mut connect(&o), "GET", &p, &[]);
        assert_eq!((r.length, r.body.len()), (data.len(), 1000));

        // Stall: headers and some bytes, then nothing (the client read times out).
        o.set_fault(seg, Fault::Stall { after: 500 });
        let t = std::time::Instant::now();
        let r = raw_request(&mut connect(&o), "GET", &p, &[]);
        assert_eq!((r.length, r.body.len()), (data.len(), 500));
        assert!(t.elapsed() >= Duration::from_millis(900));

        // Stall only once: the retry gets everything.
        o.set_fault(
            seg,
            Fault::Times {
                fault: Box::new(Fault::Stall { after: 10 }),
                times: 1,
            },
        );
        assert_eq!(raw_request(&mut connect(&o), "GET", &p, &[]).body.len(), 10);
        assert_eq!(raw_request(&mut connect(&o), "GET", &p, &[]).body, data);

        // Shortened file: a range past the new end is clamped, as HTTP requires.
        o.set_fault(BYTES_FILE, Fault::Shorten { len: 1000 });
        let r = raw_request(
            &mut connect(&o),
            "GET",
            &format!("/{BYTES_FILE}"),
            &["Range: bytes=500-1999"],
        );
        assert_eq!(r.status, 206);
        assert_eq!(r.body.len(), 500);

        // Replacement body (HTML with 200) and a sequence of bodies (last one repeats).
        o.set_fault(
            SEQ_MEDIA,
            Fault::Replace {
                status: 200,
                content_type: "text/html".into(),
                body: b"<html>x</html>".to_vec(),
            },
        );
        let r = raw_request(&mut connect(&o), "GET", &format!("/{SEQ_MEDIA}"), &[]);
        assert_eq!((r.status, r.body.as_slice()), (200, &b"<html>x</html>"[..]));
        o.set_fault(
            SEQ_MEDIA,
            Fault::Sequence(vec![b"one".to_vec(), b"two".to_vec()]),
        );
        let mut s = connect(&o);
        let bodies: Vec<Vec<u8>> = (0..3)
            .map(|_| raw_request(&mut s, "GET", &format!("/{SEQ_MEDIA}"), &[]).body)
            .collect();
        assert_eq!(
            bodies,
            vec![b"one".to_vec(), b"two".to_vec(), b"two".to_vec()]
        );

        // Dropping the origin ends even the stalled connection threads.
        let t = std::time::Instant::now();
        drop(o);
        assert!(t.elapsed() < Duration::from_secs(3));
    });
}

#[test]
fn origin_live_window_slides_then_ends() {
    let spec = fixtures().live_spec();
    let at = |s: f64| spec.render(Duration::from_secs_f64(s));
    let p0 = at(0.0);
    assert!(p0.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{p0}");
    assert!(
        p0.contains("seg002.ts") && !p0.contains("seg003.ts"),
        "{p0}"
    );
    assert!(!p0.contains("ENDLIST"));
    let p2 = at(2.5);
    assert!(p2.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{p2}");
    assert!(
        p2.contains("seg004.ts") && !p2.contains("seg005.ts"),
        "{p2}"
    );
    let end = at(100.0);
    assert!(end.contains("#EXT-X-MEDIA-SEQUENCE:7\n") && end.contains("#EXT-X-ENDLIST"));
}

// ---------------------------------------------------------------------------------------
// The reference: every fixture plays through GStreamer's own demuxers.

#[test]
fn hlsdemux_plays_every_fixture() {
    guard(|| {
        let o = origin();
        for (path, frames) in [
            (TS_MASTER, VOD_FRAMES),
            (FMP4_MASTER, VOD_FRAMES),
            (SEQ_MEDIA, VOD_FRAMES),
            (BYTES_MEDIA, VOD_FRAMES),
            (DISC_MEDIA, (FPS * DISC_SECS) as usize),
            (AES_IV_MEDIA, VOD_FRAMES),
            (AES_NOIV_MEDIA, VOD_FRAMES),
            (ALT_MASTER, VOD_FRAMES),
        ] {
            for mode in [Mode::Playbin, Mode::Playbin3] {
                let r = Player::new(mode, o.url(path)).run();
                r.assert_complete();
                assert_eq!(r.video.len(), frames, "{}", r.summary());
                // AAC at 48 kHz: 1024 samples per buffer, ~47 per second.
                let min_audio = frames * 47 / FPS as usize - 2;
                assert!(r.audio.len() >= min_audio, "{}", r.summary());
            }
        }
        // The byte-range fixture really was fetched in ranges.
        assert!(o
            .log()
            .iter()
            .any(|r| r.path == format!("/{BYTES_FILE}") && r.header("range").is_some()));
        assert!(o.requests(AES_KEY) >= 1);
    });
}

#[test]
fn hlsdemux_resolves_relative_uris_against_the_redirect_target() {
    guard(|| {
        let o = origin();
        let r = Player::playbin(o.url("redir/ts/master.m3u8")).run();
        r.assert_complete();
        assert_eq!(r.video.len(), VOD_FRAMES);
        assert!(o.requests("ts/master.m3u8") == 1);
    });
}

#[test]
fn hlsdemux_live_sliding_window() {
    guard(|| {
        let f = fixtures();
        let o = origin();
        o.live(LIVE_MEDIA, f.live_spec());
        let r = Player::playbin(o.url(LIVE_MEDIA))
            .timeout(Duration::from_secs(30))
            .run();
        r.assert_complete();
        assert!(o.requests(LIVE_MEDIA) >= 3, "playlist refreshed");
        eprintln!("{}", r.summary());
    });
}

#[test]
fn hlsdemux_seek() {
    guard(|| {
        let o = origin();
        let r = Player::playbin(o.url(TS_MASTER)).seek(secs(5.0)).run();
        r.assert_complete();
        eprintln!(
            "{} first stream time {:?} segs {:?}",
            r.summary(),
            r.video.first().and_then(|b| b.stream_time),
            r.video_segments
        );
    });
}
