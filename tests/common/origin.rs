//! A small, real HTTP/1.1 origin on 127.0.0.1 for tests, the demo and the benchmark.
//!
//! It serves a directory (with `Range`, `HEAD` and keep-alive), can synthesise dynamic
//! responses (e.g. a sliding live playlist), injects faults per path, and records every
//! request (headers included) and the bytes sent per path. Dropping the [`Origin`] stops and
//! joins all its threads, including connections that were told to stall.
//!
//! Self-contained on purpose (std only): examples include it with
//! `#[path = "../tests/common/origin.rs"] mod origin;`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Socket timeouts used to poll the shutdown flag; short so `Drop` is quick.
const POLL: Duration = Duration::from_millis(100);
const CHUNK: usize = 64 * 1024;

/// A fault injected on one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer `status` (with a tiny body) to the next `times` requests, then serve normally.
    Status { status: u16, times: usize },
    /// Answer `status` forever.
    StatusAlways { status: u16 },
    /// Send headers and the first `after` body bytes, then hang until the origin is dropped.
    Stall { after: usize },
    /// Advertise the full Content-Length, send only `after` bytes, then close the connection.
    Truncate { after: usize },
    /// Replace the response (status, content type and body); e.g. an HTML page with 200.
    Replace {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// Serve the file as if it were only `len` bytes long (ranges clamped as HTTP requires),
    /// e.g. a segment shorter than its playlist byte range.
    Shorten { len: u64 },
    /// Serve these bodies in turn (with the file's content type); the last one repeats.
    Sequence(Vec<Vec<u8>>),
    /// Wait this long before answering.
    Delay(Duration),
    /// Send the body at about this many bytes per second (in 10 slices a second).
    Throttle { bytes_per_sec: usize },
    /// Ignore `Range` and answer 200 with the whole body, as some servers do.
    IgnoreRange,
    /// Apply `fault` to the next `times` requests only, then serve normally.
    Times { fault: Box<Fault>, times: usize },
}

/// A request as the origin saw it.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    /// Path without the query string, percent-decoded.
    pub path: String,
    pub query: Option<String>,
    /// Header names are lower-cased.
    pub headers: Vec<(String, String)>,
    pub at: Instant,
}

impl RequestRecord {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response built by a dynamic route.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Response {
            status,
            content_type: content_type.to_string(),
            body: body.into(),
            headers: Vec::new(),
        }
    }

    pub fn playlist(text: impl Into<String>) -> Self {
        Self::new(
            200,
            "application/vnd.apple.mpegurl",
            text.into().into_bytes(),
        )
    }
}

type Handler = Arc<dyn Fn(&RequestRecord) -> Response + Send + Sync>;

/// A sliding-window live playlist synthesised over a fixed list of segments as wall time
/// passes; the clock starts at the first request for the playlist.
#[derive(Clone, Debug)]
pub struct LiveSpec {
    /// (URI as written in the playlist, duration in seconds)
    pub segments: Vec<(String, f64)>,
    /// Segments listed at once.
    pub window: usize,
    pub target_duration: u32,
    /// EXT-X-VERSION (7 for EXT-X-MAP).
    pub version: u32,
    /// Append EXT-X-ENDLIST once every segment has been published.
    pub endlist: bool,
    /// Lines inserted after the header (e.g. EXT-X-MAP), verbatim.
    pub extra_header: String,
}

impl LiveSpec {
    /// The playlist `elapsed` after the first request: the first `window` segments are
    /// available at once, then one more each time the previous one's duration has passed.
    pub fn render(&self, elapsed: Duration) -> String {
        let t = elapsed.as_secs_f64();
        let mut avail = self.window.min(self.segments.len());
        let mut acc = 0.0;
        while avail < self.segments.len() {
            acc += self.segments[avail].1;
            if acc > t {
                break;
            }
            avail += 1;
        }
        let first = avail.saturating_sub(self.window);
        let mut s = format!(
            "#EXTM3U\n#EXT-X-VERSION:{}\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:{}\n{}",
            self.version, self.target_duration, first, self.extra_header
        );
        for (uri, dur) in &self.segments[first..avail] {
            s.push_str(&format!("#EXTINF:{dur:.6},\n{uri}\n"));
        }
        if self.endlist && avail == self.segments.len() {
            s.push_str("#EXT-X-ENDLIST\n");
        }
        s
    }
}

#[derive(Default)]
struct PathStats {
    requests: usize,
    bytes: u64,
}

#[derive(Default)]
struct Inner {
    faults: HashMap<String, Fault>,
    /// How many times a `Sequence` fault has been served, per path.
    seq_pos: HashMap<String, usize>,
    routes: HashMap<String, Handler>,
    stats: HashMap<String, PathStats>,
    log: Vec<RequestRecord>,
}

struct State {
    root: Option<PathBuf>,
    shutdown: AtomicBool,
    connections: AtomicUsize,
    inner: Mutex<Inner>,
    conns: Mutex<Vec<JoinHandle<()>>>,
}

/// The origin server. Cheap to query from any thread; stops when dropped.
pub struct Origin {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Origin {
    /// Serve files under `root` (and any routes added later).
    pub fn serve_dir(root: impl Into<PathBuf>) -> Origin {
        Self::start(Some(root.into()))
    }

    /// Serve only dynamic routes.
    pub fn empty() -> Origin {
        Self::start(None)
    }

    fn start(root: Option<PathBuf>) -> Origin {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            root,
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            inner: Mutex::new(Inner::default()),
            conns: Mutex::new(Vec::new()),
        });
        let st = state.clone();
        let accept = thread::Builder::new()
            .name("origin-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if st.shutdown.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    st.connections.fetch_add(1, Ordering::SeqCst);
                    let st2 = st.clone();
                    let h = thread::Builder::new()
                        .name("origin-conn".into())
                        .spawn(move || {
                            let _ = serve_connection(&st2, stream);
                        })
                        .expect("spawn origin connection thread");
                    let mut conns = st.conns.lock().unwrap();
                    conns.retain(|h| !h.is_finished());
                    conns.push(h);
                }
            })
            .expect("spawn origin accept thread");
        Origin {
            addr,
            state,
            accept: Some(accept),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Absolute URL for `path` (leading `/` optional).
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url(), path.trim_start_matches('/'))
    }

    /// Install (or replace) the fault for `path` (leading `/` optional).
    pub fn set_fault(&self, path: &str, fault: Fault) {
        let p = norm(path);
        let fault = match fault {
            Fault::Status { status, times } => Fault::Times {
                fault: Box::new(Fault::StatusAlways { status }),
                times,
            },
            f => f,
        };
        let mut inner = self.state.inner.lock().unwrap();
        inner.seq_pos.remove(&p);
        inner.faults.insert(p, fault);
    }

    pub fn clear_fault(&self, path: &str) {
        self.state.inner.lock().unwrap().faults.remove(&norm(path));
    }

    /// Answer requests for `path` with `handler` instead of a file.
    pub fn route(
        &self,
        path: &str,
        handler: impl Fn(&RequestRecord) -> Response + Send + Sync + 'static,
    ) {
        self.state
            .inner
            .lock()
            .unwrap()
            .routes
            .insert(norm(path), Arc::new(handler));
    }

    /// Serve a sliding-window live playlist at `path`; its clock starts at the first request.
    pub fn live(&self, path: &str, spec: LiveSpec) {
        let start: Mutex<Option<Instant>> = Mutex::new(None);
        self.route(path, move |_| {
            let t0 = *start.lock().unwrap().get_or_insert_with(Instant::now);
            Response::playlist(spec.render(t0.elapsed()))
        });
    }

    /// Requests received for `path` (any method, any status).
    pub fn requests(&self, path: &str) -> usize {
        let inner = self.state.inner.lock().unwrap();
        inner.stats.get(&norm(path)).map_or(0, |s| s.requests)
    }

    /// Body bytes sent for `path`.
    pub fn bytes(&self, path: &str) -> u64 {
        let inner = self.state.inner.lock().unwrap();
        inner.stats.get(&norm(path)).map_or(0, |s| s.bytes)
    }

    /// TCP connections accepted so far (keep-alive reuse shows as fewer than requests).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    pub fn total_requests(&self) -> usize {
        self.state.inner.lock().unwrap().log.len()
    }

    pub fn total_bytes(&self) -> u64 {
        let inner = self.state.inner.lock().unwrap();
        inner.stats.values().map(|s| s.bytes).sum()
    }

    /// Every request so far, in arrival order.
    pub fn log(&self) -> Vec<RequestRecord> {
        self.state.inner.lock().unwrap().log.clone()
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        let conns = std::mem::take(&mut *self.state.conns.lock().unwrap());
        for h in conns {
            let _ = h.join();
        }
    }
}

/// A `http://127.0.0.1:PORT` base URL where nothing listens.
pub fn dead_base_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn norm(path: &str) -> String {
    format!("/{}", path.trim_start_matches('/'))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "mp4" | "m4s" => "video/mp4",
        "aac" => "audio/aac",
        "html" => "text/html",
        "mpd" => "application/dash+xml",
        _ => "application/octet-stream",
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Read one request head; `Ok(None)` on a clean close or shutdown.
fn read_head(st: &State, s: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<Option<Vec<u8>>> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf[..pos].to_vec();
            buf.drain(..pos + 4);
            return Ok(Some(head));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let mut tmp = [0u8; 4096];
        match s.read(&mut tmp) {
            Ok(0) => return Ok(None),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if st.shutdown.load(Ordering::SeqCst) {
                    return Ok(None);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `write_all` that keeps polling the shutdown flag while the peer is slow to read.
fn write_all(st: &State, s: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    write_all_unless(&st.shutdown, s, data)
}

/// Writes all of `data` on a socket with a write timeout, giving up once `shutdown` is set
/// (a test server must stop promptly even towards a client that does not read).
pub fn write_all_unless(
    shutdown: &AtomicBool,
    s: &mut TcpStream,
    mut data: &[u8],
) -> io::Result<()> {
    while !data.is_empty() {
        if shutdown.load(Ordering::SeqCst) {
            return Err(io::Error::other("shutdown"));
        }
        match s.write(data) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "peer closed")),
            Ok(n) => data = &data[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn hang_until_shutdown(st: &State) {
    while !st.shutdown.load(Ordering::SeqCst) {
        thread::sleep(POLL);
    }
}

/// Parse `bytes=a-b`, `bytes=a-`, `bytes=-n` against a body of `len`; `Err` = 416.
fn parse_range(v: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // multi-range: ignore, serve everything
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || len == 0 {
            return Some(Err(()));
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let start: u64 = a.parse().ok()?;
        let end: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(len.saturating_sub(1))
        };
        if start >= len || end < start {
            return Some(Err(()));
        }
        (start, end)
    };
    Some(Ok(r))
}

enum Plan {
    Normal,
    Throttle(usize),
    Stall(usize),
    Truncate(usize),
}

fn serve_connection(st: &State, mut s: TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(POLL))?;
    s.set_write_timeout(Some(POLL))?;
    s.set_nodelay(true)?;
    let mut buf = Vec::new();
    loop {
        let Some(head) = read_head(st, &mut s, &mut buf)? else {
            return Ok(());
        };
        if st.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let mut lines = text.split("\r\n");
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("/").to_string();
        let version = parts.next().unwrap_or("HTTP/1.1").to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        // Request bodies are not expected; skip one if announced.
        if let Some(len) = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            while buf.len() < len {
                let mut tmp = [0u8; 4096];
                match s.read(&mut tmp) {
                    Ok(0) => return Ok(()),
                    Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    Err(e) if st.shutdown.load(Ordering::SeqCst) => return Err(e),
                    Err(_) => {}
                }
            }
            buf.drain(..len);
        }
        let (raw_path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target.clone(), None),
        };
        // Accept absolute-form targets (requests sent through a proxy).
        let raw_path = match raw_path.strip_prefix("http://") {
            Some(rest) => rest
                .find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string()),
            None => raw_path,
        };
        let path = percent_decode(&raw_path);
        let rec = RequestRecord {
            method: method.clone(),
            path: path.clone(),
            query,
            headers: headers.clone(),
            at: Instant::now(),
        };
        let conn_hdr = rec.header("connection").unwrap_or("").to_ascii_lowercase();
        let keep_alive = if version == "HTTP/1.0" {
            conn_hdr == "keep-alive"
        } else {
            conn_hdr != "close"
        };
        let range_hdr = rec.header("range").map(str::to_string);

        // Decide what to send, under the lock; send outside it.
        let (fault, route) = {
            let mut inner = st.inner.lock().unwrap();
            inner.log.push(rec.clone());
            inner.stats.entry(path.clone()).or_default().requests += 1;
            let mut fault = inner.faults.get(&path).cloned();
            if let Some(Fault::Times { fault: f, times }) = fault.clone() {
                if times == 0 {
                    inner.faults.remove(&path);
                    fault = None;
                } else {
                    let left = Fault::Times {
                        fault: f.clone(),
                        times: times - 1,
                    };
                    inner.faults.insert(path.clone(), left);
                    fault = Some(*f);
                }
            }
            if let Some(Fault::Sequence(bodies)) = &fault {
                let pos = inner.seq_pos.entry(path.clone()).or_insert(0);
                let i = (*pos).min(bodies.len().saturating_sub(1));
                *pos += 1;
                let body = bodies.get(i).cloned().unwrap_or_default();
                fault = Some(Fault::Replace {
                    status: 200,
                    content_type: content_type(&path).to_string(),
                    body,
                });
            }
            (fault, inner.routes.get(&path).cloned())
        };

        let mut plan = Plan::Normal;
        let mut status = 200u16;
        let mut ctype = content_type(&path).to_string();
        let mut extra: Vec<(String, String)> = Vec::new();
        let mut body: Vec<u8> = Vec::new();
        let mut shorten: Option<u64> = None;
        let mut ignore_range = false;
        let mut have_body = false;

        match fault {
            Some(Fault::Status { status: s2, .. }) | Some(Fault::StatusAlways { status: s2 }) => {
                status = s2;
                ctype = "text/plain".into();
                body = format!("{} {}\n", s2, reason(s2)).into_bytes();
                have_body = true;
            }
            Some(Fault::Replace {
                status: s2,
                content_type: c,
                body: b,
            }) => {
                status = s2;
                ctype = c;
                body = b;
                have_body = true;
            }
            Some(Fault::Stall { after }) => plan = Plan::Stall(after),
            Some(Fault::Truncate { after }) => plan = Plan::Truncate(after),
            Some(Fault::Throttle { bytes_per_sec }) => plan = Plan::Throttle(bytes_per_sec),
            Some(Fault::Shorten { len }) => shorten = Some(len),
            Some(Fault::IgnoreRange) => ignore_range = true,
            Some(Fault::Delay(d)) => {
                let until = Instant::now() + d;
                while Instant::now() < until && !st.shutdown.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Some(Fault::Sequence(_)) | Some(Fault::Times { .. }) | None => {}
        }

        if !have_body {
            if let Some(h) = &route {
                let r = h(&rec);
                status = r.status;
                ctype = r.content_type;
                body = r.body;
                extra = r.headers;
                have_body = true;
            } else if let Some(target) = path.strip_prefix("/redir/") {
                // `/redir/x/y` -> 302 to `/x/y`, so relative URIs must resolve against
                // the final URL, not the requested one.
                status = 302;
                ctype = "text/plain".into();
                extra.push(("Location".into(), format!("/{target}")));
                body = b"redirect\n".to_vec();
                have_body = true;
            }
        }
        if !have_body {
            match st.root.as_ref().and_then(|r| resolve(r, &path)) {
                Some(file) => match std::fs::read(&file) {
                    Ok(b) => body = b,
                    Err(_) => {
                        status = 404;
                        ctype = "text/plain".into();
                        body = b"404 Not Found\n".to_vec();
                    }
                },
                None => {
                    status = 404;
                    ctype = "text/plain".into();
                    body = b"404 Not Found\n".to_vec();
                }
            }
        }
        if let Some(len) = shorten {
            body.truncate(len as usize);
        }
        // Ranges apply to successful full responses only.
        let mut content_range = None;
        if status == 200 && !ignore_range {
            extra.push(("Accept-Ranges".into(), "bytes".into()));
            if let Some(r) = range_hdr
                .as_deref()
                .and_then(|v| parse_range(v, body.len() as u64))
            {
                match r {
                    Ok((a, b)) => {
                        content_range = Some(format!("bytes {a}-{b}/{}", body.len()));
                        body = body[a as usize..=b as usize].to_vec();
                        status = 206;
                    }
                    Err(()) => {
                        content_range = Some(format!("bytes */{}", body.len()));
                        status = 416;
                        body = Vec::new();
                    }
                }
            }
        }

        let mut resp = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            status,
            reason(status),
            ctype,
            body.len()
        );
        if let Some(cr) = content_range {
            resp.push_str(&format!("Content-Range: {cr}\r\n"));
        }
        for (n, v) in &extra {
            resp.push_str(&format!("{n}: {v}\r\n"));
        }
        let close = !keep_alive || matches!(plan, Plan::Stall(_) | Plan::Truncate(_));
        resp.push_str(if close {
            "Connection: close\r\n\r\n"
        } else {
            "Connection: keep-alive\r\n\r\n"
        });
        write_all(st, &mut s, resp.as_bytes())?;
        if method == "HEAD" {
            if close {
                return Ok(());
            }
            continue;
        }
        let (send_len, chunk_len) = match plan {
            Plan::Normal => (body.len(), CHUNK),
            Plan::Throttle(rate) => (body.len(), (rate / 10).max(1)),
            Plan::Stall(n) | Plan::Truncate(n) => (n.min(body.len()), CHUNK),
        };
        for chunk in body[..send_len].chunks(chunk_len) {
            if matches!(plan, Plan::Throttle(_)) {
                let until = Instant::now() + Duration::from_millis(100);
                while Instant::now() < until {
                    if st.shutdown.load(Ordering::SeqCst) {
                        return Ok(());
                    }
                    thread::sleep(Duration::from_millis(10));
                }
            }
            write_all(st, &mut s, chunk)?;
            let mut inner = st.inner.lock().unwrap();
            inner.stats.entry(path.clone()).or_default().bytes += chunk.len() as u64;
        }
        match plan {
            Plan::Normal | Plan::Throttle(_) => {}
            Plan::Stall(_) => {
                let _ = s.flush();
                hang_until_shutdown(st);
                return Ok(());
            }
            Plan::Truncate(_) => {
                let _ = s.flush();
                let _ = s.shutdown(Shutdown::Both);
                return Ok(());
            }
        }
        if close {
            let _ = s.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}

/// Map a URL path onto a file under `root`, refusing anything that escapes it.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let mut p = root.to_path_buf();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(x) => p.push(x),
            Component::CurDir => {}
            _ => return None,
        }
    }
    p.is_file().then_some(p)
}
