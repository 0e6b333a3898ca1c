//! A hostile HTTP/1.1 origin on 127.0.0.1 for the fault matrix (`tests/faults_origin.rs`):
//! bodies that never end, lie about their length, trickle, or ignore `Range` on a huge
//! resource that is generated lazily (never held in memory). One thread per connection;
//! every behaviour stops writing when the client goes away or the server is dropped, and
//! counts the body bytes it wrote, per path.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// What the server does for one path.
#[derive(Clone, Debug)]
pub enum Evil {
    /// `Transfer-Encoding: chunked` body that never ends (`fill` repeated); answers 206 with a
    /// `Content-Range` when a Range was asked (as a broken server that "honours" it would).
    Endless { fill: Vec<u8> },
    /// Declares `len` bytes (e.g. 10 GB) and sends `prefix` then zeros, lazily, until the
    /// client leaves or `len` is reached. Ignores `Range`: always 200 with the whole thing.
    Huge { len: u64, prefix: Arc<Vec<u8>> },
    /// `body` with its real Content-Length, one byte every `every`.
    Trickle { body: Vec<u8>, every: Duration },
}

struct State {
    routes: Mutex<HashMap<String, Evil>>,
    sent: Mutex<HashMap<String, u64>>,
    requests: Mutex<Vec<(String, Option<String>)>>,
    shutdown: AtomicBool,
}

pub struct EvilOrigin {
    addr: SocketAddr,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl EvilOrigin {
    pub fn start() -> EvilOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            routes: Mutex::default(),
            sent: Mutex::default(),
            requests: Mutex::default(),
            shutdown: AtomicBool::new(false),
        });
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (st, cs) = (state.clone(), conns.clone());
        let accept = thread::spawn(move || {
            for s in listener.incoming() {
                if st.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(s) = s else { continue };
                let st = st.clone();
                let h = thread::spawn(move || {
                    let _ = serve(&st, s);
                });
                cs.lock().unwrap().push(h);
            }
        });
        EvilOrigin {
            addr,
            state,
            accept: Some(accept),
            conns,
        }
    }

    pub fn set(&self, path: &str, evil: Evil) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_string(), evil);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Body bytes written for `path` (what reached the socket, not what the client read).
    pub fn sent(&self, path: &str) -> u64 {
        *self.state.sent.lock().unwrap().get(path).unwrap_or(&0)
    }

    pub fn requests(&self, path: &str) -> usize {
        let r = self.state.requests.lock().unwrap();
        r.iter().filter(|(p, _)| p == path).count()
    }

    /// (path, Range header) of every request.
    pub fn log(&self) -> Vec<(String, Option<String>)> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for EvilOrigin {
    fn drop(&mut self) {
        self.state.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for h in std::mem::take(&mut *self.conns.lock().unwrap()) {
            let _ = h.join();
        }
    }
}

fn serve(st: &State, mut s: TcpStream) -> io::Result<()> {
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    s.set_write_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = Vec::new();
    loop {
        // One request head.
        let head = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let h = String::from_utf8_lossy(&buf[..p]).into_owned();
                buf.drain(..p + 4);
                break h;
            }
            let mut tmp = [0u8; 4096];
            match s.read(&mut tmp) {
                Ok(0) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
                Err(_) if st.shutdown.load(Ordering::SeqCst) => return Ok(()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        };
        let mut lines = head.split("\r\n");
        let path = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_string();
        let range = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("range"))
            .map(|(_, v)| v.trim().to_string());
        st.requests
            .lock()
            .unwrap()
            .push((path.clone(), range.clone()));
        let evil = st.routes.lock().unwrap().get(&path).cloned();
        let count = |n: usize| {
            *st.sent.lock().unwrap().entry(path.clone()).or_default() += n as u64;
        };
        match evil {
            None => {
                write_all(
                    st,
                    &mut s,
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                )?;
            }
            Some(Evil::Endless { fill }) => {
                let status = match &range {
                    Some(r) => format!(
                        "206 Partial Content\r\nContent-Range: bytes {}/*",
                        r.trim_start_matches("bytes=")
                    ),
                    None => "200 OK".to_string(),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\n\
                     Transfer-Encoding: chunked\r\n\r\n"
                );
                write_all(st, &mut s, head.as_bytes())?;
                let mut chunk = format!("{:x}\r\n", fill.len()).into_bytes();
                chunk.extend_from_slice(&fill);
                chunk.extend_from_slice(b"\r\n");
                loop {
                    write_all(st, &mut s, &chunk)?; // ends when the client goes away
                    count(fill.len());
                }
            }
            Some(Evil::Huge { len, prefix }) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {len}\r\n\r\n"
                );
                write_all(st, &mut s, head.as_bytes())?;
                let zeros = vec![0u8; 64 * 1024];
                let mut at: u64 = 0;
                while at < len {
                    let piece: &[u8] = if (at as usize) < prefix.len() {
                        &prefix[at as usize..prefix.len().min(at as usize + 64 * 1024)]
                    } else {
                        &zeros[..zeros.len().min((len - at) as usize)]
                    };
                    write_all(st, &mut s, piece)?;
                    count(piece.len());
                    at += piece.len() as u64;
                }
            }
            Some(Evil::Trickle { body, every }) => {
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: video/mp2t\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                write_all(st, &mut s, head.as_bytes())?;
                for b in body.chunks(1) {
                    let until = Instant::now() + every;
                    while Instant::now() < until {
                        if st.shutdown.load(Ordering::SeqCst) {
                            return Ok(());
                        }
                        thread::sleep(Duration::from_millis(10));
                    }
                    write_all(st, &mut s, b)?;
                    count(1);
                }
            }
        }
    }
}

fn write_all(st: &State, s: &mut TcpStream, data: &[u8]) -> io::Result<()> {
    super::origin::write_all_unless(&st.shutdown, s, data)
}

/// Resident set size of this process, from /proc (Linux).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
