//! HTTP fetching with reqwest: one keep-alive client per element, retries with backoff,
//! an inactivity timeout, byte ranges, and strict length checks so a short body is never
//! mistaken for a whole segment. Whatever an origin does, a download is bounded: in size (a
//! cap chosen by what is fetched, checked on the declared length and while streaming), and in
//! time (no bytes for `timeout`, or fewer than [`MIN_BYTES_PER_SEC`] on average over any
//! `timeout` window, fails the attempt). The `cookies` and `extra-headers` properties only go
//! to the manifest's origin, and redirects are followed by hand so that https never goes
//! down to http.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, LOCATION, RANGE};
use reqwest::StatusCode;
use url::Url;

use crate::manifest::hls::MAX_PLAYLIST_BYTES;
use crate::media::{ByteRange, Resource};
use crate::payload::SegmentBuf;

/// Largest manifest, init section or segment index without a byte range (the parsers' own
/// limit: nothing bigger could be used anyway).
pub const MAX_DOCUMENT_BYTES: u64 = MAX_PLAYLIST_BYTES as u64;
/// Largest AES-128 key body: a key is 16 bytes, anything much longer is not one.
pub const MAX_KEY_BYTES: u64 = 4096;
/// Default cap on a media segment without a byte range (`max-segment-download-size`): far
/// above any real segment (a 10 s 4K segment is tens of MiB), far below what kills a process.
pub const DEFAULT_MAX_SEGMENT_BYTES: u64 = 256 << 20;
/// Slowest average a download may keep over any `timeout` window (a trickling "slowloris"
/// origin otherwise holds a fetch forever): 4 KiB/s is below any playable stream.
pub const MIN_BYTES_PER_SEC: u64 = 4096;
/// Redirect hops followed for one request.
pub const MAX_REDIRECTS: usize = 10;

/// What a request fetches: decides the body cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// Playlist or MPD.
    Manifest,
    /// AES-128 key.
    Key,
    /// Init section (`EXT-X-MAP`, DASH Initialization).
    Init,
    /// DASH `sidx` (always a byte range in practice).
    Index,
    /// Media segment.
    Segment,
}

/// The largest body accepted for `kind`: a byte range is its own cap (the server must not
/// send more than asked), otherwise a fixed one per kind.
pub fn body_cap(kind: BodyKind, range: Option<ByteRange>, max_segment: u64) -> u64 {
    if let Some(r) = range {
        return r.length;
    }
    match kind {
        BodyKind::Manifest | BodyKind::Init | BodyKind::Index => MAX_DOCUMENT_BYTES,
        BodyKind::Key => MAX_KEY_BYTES,
        BodyKind::Segment => max_segment,
    }
}

/// Does a redirect from `from` to `to` stay safe to follow? Refused: leaving http(s), and
/// going from https down to plain http (a MITM-able hop the user never asked for).
pub fn redirect_allowed(from: &Url, to: &Url) -> Result<(), String> {
    match (from.scheme(), to.scheme()) {
        (_, "http" | "https") if !(from.scheme() == "https" && to.scheme() == "http") => Ok(()),
        ("https", "http") => Err(format!("refusing redirect from https to http ({to})")),
        (_, other) => Err(format!("refusing redirect to scheme {other:?} ({to})")),
    }
}

/// Is `url` on the manifest's origin (scheme, host and port), where the user's cookies and
/// extra headers may go?
pub fn same_origin(scope: &url::Origin, url: &Url) -> bool {
    url.origin() == *scope
}

/// What the element's souphttpsrc-style properties configure.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub user_agent: String,
    /// Extra request headers (`extra-headers`), already flattened to name/value pairs.
    pub extra_headers: Vec<(String, String)>,
    /// `cookies`: each entry `name=value`, sent in one `Cookie` header.
    pub cookies: Vec<String>,
    /// `proxy`: explicit proxy URL; `None` uses the environment (`http_proxy`, ...).
    pub proxy: Option<String>,
    /// No bytes for this long (connect, headers or body) fails the attempt.
    pub timeout: Duration,
    /// Attempts after the first one; negative = unlimited.
    pub retries: i32,
    /// Cap on a media segment's body without a byte range (`max-segment-download-size`).
    pub max_segment_bytes: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            user_agent: format!("GStreamer p2pmedia {}", env!("CARGO_PKG_VERSION")),
            extra_headers: Vec::new(),
            cookies: Vec::new(),
            proxy: None,
            timeout: Duration::from_secs(15),
            retries: 3,
            max_segment_bytes: DEFAULT_MAX_SEGMENT_BYTES,
        }
    }
}

#[derive(Debug, Clone)]
pub enum HttpError {
    /// Could not build the client (bad proxy URL or header).
    Config(String),
    /// The server answered with an error status.
    Status { url: Url, status: u16 },
    /// Connection failed, reset or timed out.
    Transport { url: Url, reason: String },
    /// The body was shorter or longer than promised (Content-Length or byte range).
    Length { url: Url, expected: u64, got: u64 },
    /// The body is (or is declared) larger than its cap: an endless or absurd response.
    TooLarge {
        url: Url,
        limit: u64,
        declared: Option<u64>,
    },
    /// A redirect we do not follow (https to http, too many hops, a bad `Location`).
    Redirect { url: Url, reason: String },
}

impl HttpError {
    /// Client errors other than timeouts/too-many-requests will not heal by retrying.
    fn is_permanent(&self) -> bool {
        match self {
            // The same origin would answer the same way: retrying only costs time and bytes.
            HttpError::Config(_) | HttpError::TooLarge { .. } | HttpError::Redirect { .. } => true,
            HttpError::Status { status, .. } => {
                (400..500).contains(status) && *status != 408 && *status != 429
            }
            _ => false,
        }
    }

    pub fn url(&self) -> Option<&Url> {
        match self {
            HttpError::Config(_) => None,
            HttpError::Status { url, .. }
            | HttpError::Transport { url, .. }
            | HttpError::Length { url, .. }
            | HttpError::TooLarge { url, .. }
            | HttpError::Redirect { url, .. } => Some(url),
        }
    }

    /// HTTP 404/410: the resource is not there (as opposed to a failing server).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            HttpError::Status {
                status: 404 | 410,
                ..
            }
        )
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Config(s) => write!(f, "invalid HTTP configuration: {s}"),
            HttpError::Status { url, status } => {
                let reason = StatusCode::from_u16(*status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                write!(f, "HTTP {status} {reason} for {url}")
            }
            HttpError::Transport { url, reason } => write!(f, "could not fetch {url}: {reason}"),
            HttpError::Length { url, expected, got } => write!(
                f,
                "truncated body from {url}: got {got} of {expected} bytes"
            ),
            HttpError::TooLarge {
                url,
                limit,
                declared: Some(d),
            } => write!(
                f,
                "response from {url} too large: {d} bytes declared, at most {limit} accepted"
            ),
            HttpError::TooLarge { url, limit, .. } => write!(
                f,
                "response from {url} too large: more than {limit} bytes (endless body?)"
            ),
            HttpError::Redirect { url, reason } => write!(f, "redirect from {url}: {reason}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// A completed download.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub data: Bytes,
    /// URL after redirects: the base for relative URIs in playlists.
    pub final_url: Url,
    /// Time from request to last byte, for throughput estimation.
    pub elapsed: Duration,
}

#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    config: HttpConfig,
    /// `extra-headers`, sent to the manifest's origin only.
    headers: HeaderMap,
    /// The manifest's origin: where the user's cookies and headers may go.
    scope: url::Origin,
}

impl HttpClient {
    /// A client for the manifest at `location`: its origin scopes the user's credentials.
    pub fn new(config: HttpConfig, location: &Url) -> Result<Self, HttpError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.extra_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| HttpError::Config(format!("header name {name:?}: {e}")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| HttpError::Config(format!("header value {value:?}: {e}")))?;
            headers.append(name, value);
        }
        let fixed = config.cookies.join("; ");
        HeaderValue::from_str(&fixed)
            .map_err(|e| HttpError::Config(format!("cookie {fixed:?}: {e}")))?;
        let scope = location.origin();
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            // Followed by hand in `send`, hop by hop: scheme check, credentials per origin.
            .redirect(reqwest::redirect::Policy::none())
            .cookie_provider(Arc::new(Cookies {
                jar: Jar::default(),
                fixed,
                scope: scope.clone(),
            }));
        if let Some(proxy) = config.proxy.as_deref().filter(|p| !p.is_empty()) {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|e| HttpError::Config(format!("proxy {proxy:?}: {e}")))?;
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Config(e.to_string()))?;
        Ok(HttpClient {
            client,
            config,
            headers,
            scope,
        })
    }

    /// Fetches a resource whole, retrying transient failures with exponential backoff.
    /// Cancellation is by dropping the future (the engine aborts its task).
    pub async fn fetch(&self, resource: &Resource, kind: BodyKind) -> Result<Fetched, HttpError> {
        self.fetch_with_progress(resource, kind, &|_| {}).await
    }

    /// [`fetch`](Self::fetch), calling `progress` with the bytes of the body received so far
    /// after every chunk (a slow download that is receiving bytes is alive).
    pub async fn fetch_with_progress(
        &self,
        resource: &Resource,
        kind: BodyKind,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Fetched, HttpError> {
        let cap = body_cap(kind, resource.range, self.config.max_segment_bytes);
        let mut attempt: u32 = 0;
        loop {
            match self
                .fetch_once(&resource.url, resource.range, cap, progress)
                .await
            {
                Ok(f) => return Ok(f),
                Err(e) => {
                    let retries = self.config.retries;
                    let exhausted = retries >= 0 && attempt >= retries as u32;
                    if e.is_permanent() || exhausted {
                        return Err(e);
                    }
                    // 250 ms, 500 ms, 1 s, 2 s, 2 s...: quick enough for live, gentle on a sick origin.
                    let backoff = Duration::from_millis(250u64 << attempt.min(3));
                    attempt += 1;
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// Sends the request, following redirects (at most [`MAX_REDIRECTS`], never https to
    /// http); the user's cookies and extra headers go to the manifest's origin only.
    async fn send(
        &self,
        url: &Url,
        range: Option<ByteRange>,
    ) -> Result<(reqwest::Response, Url), HttpError> {
        let mut current = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let transport = |e: reqwest::Error| self.transport(&current, e);
            let mut request = self.client.get(current.clone());
            if same_origin(&self.scope, &current) {
                request = request.headers(self.headers.clone());
            }
            if let Some(r) = range {
                request = request.header(RANGE, r.http_header());
            }
            // The headers must come within `timeout` too (reqwest's read timeout is per read:
            // a server trickling its header bytes would otherwise hold us forever).
            let response = tokio::time::timeout(self.config.timeout, request.send())
                .await
                .map_err(|_| HttpError::Transport {
                    url: current.clone(),
                    reason: format!("no response headers within {:?}", self.config.timeout),
                })?
                .map_err(transport)?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok((response, current));
            }
            let next = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| current.join(l).ok())
                .ok_or_else(|| HttpError::Redirect {
                    url: current.clone(),
                    reason: format!("HTTP {status} without a usable Location"),
                })?;
            redirect_allowed(&current, &next).map_err(|reason| HttpError::Redirect {
                url: current.clone(),
                reason,
            })?;
            current = next;
        }
        Err(HttpError::Redirect {
            url: url.clone(),
            reason: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }

    fn transport(&self, url: &Url, e: reqwest::Error) -> HttpError {
        HttpError::Transport {
            url: url.clone(),
            reason: if e.is_timeout() {
                format!("no data for {:?}", self.config.timeout)
            } else {
                error_chain(&e)
            },
        }
    }

    async fn fetch_once(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        cap: u64,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Fetched, HttpError> {
        let started = Instant::now();
        let (mut response, final_url) = self.send(url, range).await?;
        let transport = |e: reqwest::Error| self.transport(&final_url, e);
        let status = response.status();
        if !status.is_success() {
            return Err(HttpError::Status {
                url: final_url,
                status: status.as_u16(),
            });
        }
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // A server that ignores Range answers 200 with the whole resource: cut the range out
        // (reading no further than its end, so a huge file costs its prefix, never more).
        let ignored_range = range.is_some() && status != StatusCode::PARTIAL_CONTENT;
        let (skip, want) = match range {
            Some(r) if !ignored_range => (0, Some(r.length)),
            Some(r) => (r.offset, Some(r.length)),
            None => (0, declared),
        };
        let too_large = |declared| HttpError::TooLarge {
            url: final_url.clone(),
            limit: cap,
            declared,
        };
        if let Some(d) = declared.filter(|&d| d > cap && !ignored_range) {
            return Err(too_large(Some(d)));
        }
        let initial = want
            .or(declared)
            .unwrap_or(64 * 1024)
            .min(cap)
            .min(64 << 20);
        let mut body = SegmentBuf::with_capacity(initial as usize);
        let mut seen: u64 = 0;
        let mut pace = Pace::new(started, self.config.timeout);
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let start = skip.saturating_sub(seen).min(chunk.len() as u64) as usize;
            seen += chunk.len() as u64;
            let part = &chunk[start..];
            if !ignored_range && seen > cap {
                return Err(too_large(None));
            }
            let room = want.map_or(usize::MAX, |w| w.saturating_sub(body.len() as u64) as usize);
            body.extend_from_slice(&part[..part.len().min(room)]);
            progress(body.len() as u64);
            if ignored_range && want.is_some_and(|w| body.len() as u64 >= w) {
                break; // got our range out of a full response; drop the rest
            }
            if let Err(reason) = pace.check(Instant::now(), chunk.len() as u64) {
                return Err(HttpError::Transport {
                    url: final_url,
                    reason,
                });
            }
        }
        if let Some(d) = declared {
            if range.is_none() && seen != d {
                return Err(HttpError::Length {
                    url: final_url,
                    expected: d,
                    got: seen,
                });
            }
        }
        if let Some(w) = want {
            if body.len() as u64 != w {
                return Err(HttpError::Length {
                    url: final_url,
                    expected: w,
                    got: body.len() as u64,
                });
            }
        }
        Ok(Fetched {
            data: body.freeze(),
            final_url,
            elapsed: started.elapsed(),
        })
    }
}

/// The low-speed rule (curl's `--speed-limit`/`--speed-time`): over every window of `window`
/// (the `timeout` property), at least [`MIN_BYTES_PER_SEC`] per second on average must arrive.
/// Pure: time is an argument.
#[derive(Debug, Clone)]
pub struct Pace {
    window: Duration,
    window_start: Instant,
    window_bytes: u64,
}

impl Pace {
    pub fn new(start: Instant, window: Duration) -> Self {
        Pace {
            window,
            window_start: start,
            window_bytes: 0,
        }
    }

    /// `bytes` just arrived at `now`; `Err` when the window that just closed was too slow.
    pub fn check(&mut self, now: Instant, bytes: u64) -> Result<(), String> {
        self.window_bytes += bytes;
        let spent = now.saturating_duration_since(self.window_start);
        if spent < self.window {
            return Ok(());
        }
        let floor = (MIN_BYTES_PER_SEC as f64 * spent.as_secs_f64()) as u64;
        if self.window_bytes < floor {
            return Err(format!(
                "too slow: {} bytes in {spent:.1?} (at least {MIN_BYTES_PER_SEC} bytes/s needed)",
                self.window_bytes
            ));
        }
        self.window_start = now;
        self.window_bytes = 0;
        Ok(())
    }
}

/// Cookies the server set (as souphttpsrc/hlsdemux keep them across requests, scoped by the
/// cookie rules) plus the `cookies` property's, sent to the manifest's origin only.
struct Cookies {
    jar: Jar,
    fixed: String,
    scope: url::Origin,
}

impl CookieStore for Cookies {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        self.jar.set_cookies(headers, url)
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let stored = self.jar.cookies(url);
        let stored = stored.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        let fixed = if same_origin(&self.scope, url) {
            self.fixed.as_str()
        } else {
            ""
        };
        let all = [stored, fixed]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        (!all.is_empty())
            .then(|| HeaderValue::from_str(&all).ok())
            .flatten()
    }
}

/// reqwest's top-level message hides the cause ("error sending request"); show the chain.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn body_cap_by_kind_and_range() {
        let seg = 100 << 20;
        assert_eq!(body_cap(BodyKind::Manifest, None, seg), MAX_DOCUMENT_BYTES);
        assert_eq!(body_cap(BodyKind::Init, None, seg), MAX_DOCUMENT_BYTES);
        assert_eq!(body_cap(BodyKind::Index, None, seg), MAX_DOCUMENT_BYTES);
        assert_eq!(body_cap(BodyKind::Key, None, seg), MAX_KEY_BYTES);
        assert_eq!(body_cap(BodyKind::Segment, None, seg), seg);
        // A byte range caps at its own length, whatever is fetched.
        let r = Some(ByteRange {
            offset: 1 << 40,
            length: 1234,
        });
        for kind in [BodyKind::Index, BodyKind::Segment, BodyKind::Manifest] {
            assert_eq!(body_cap(kind, r, seg), 1234);
        }
    }

    #[test]
    fn cap_errors_are_permanent() {
        let u = url("http://a/x");
        let big = HttpError::TooLarge {
            url: u.clone(),
            limit: 10,
            declared: Some(10_000_000_000),
        };
        assert!(big.is_permanent());
        assert!(big.to_string().contains("10000000000 bytes declared"));
        let redirect = HttpError::Redirect {
            url: u.clone(),
            reason: "x".into(),
        };
        assert!(redirect.is_permanent());
        let transport = HttpError::Transport {
            url: u,
            reason: "x".into(),
        };
        assert!(!transport.is_permanent());
    }

    #[test]
    fn redirects_never_go_from_https_to_http() {
        let ok = |a: &str, b: &str| redirect_allowed(&url(a), &url(b)).is_ok();
        assert!(ok("http://a/x", "http://b/y"));
        assert!(ok("http://a/x", "https://b/y"));
        assert!(ok("https://a/x", "https://b/y"));
        assert!(!ok("https://a/x", "http://a/x"));
        assert!(!ok("http://a/x", "file:///etc/passwd"));
        assert!(!ok("https://a/x", "ftp://a/x"));
    }

    #[test]
    fn credentials_scoped_to_the_manifest_origin() {
        let scope = url("https://cdn.example:8443/live/master.m3u8").origin();
        assert!(same_origin(
            &scope,
            &url("https://cdn.example:8443/seg/1.ts")
        ));
        assert!(!same_origin(&scope, &url("https://cdn.example/seg/1.ts")));
        assert!(!same_origin(
            &scope,
            &url("http://cdn.example:8443/seg/1.ts")
        ));
        assert!(!same_origin(&scope, &url("https://evil.example:8443/k")));
        let cookies = Cookies {
            jar: Jar::default(),
            fixed: "token=s3cret".into(),
            scope,
        };
        let on = cookies.cookies(&url("https://cdn.example:8443/a.ts"));
        assert_eq!(on.unwrap().to_str().unwrap(), "token=s3cret");
        assert!(cookies.cookies(&url("https://evil.example/key")).is_none());
    }

    #[test]
    fn pace_fails_a_trickle_and_passes_a_slow_but_real_transfer() {
        let t0 = Instant::now();
        let window = Duration::from_secs(2);
        // 1 byte every 100 ms: fails once a whole window has passed.
        let mut p = Pace::new(t0, window);
        let mut failed_at = None;
        for i in 1..=40u64 {
            if p.check(t0 + Duration::from_millis(100 * i), 1).is_err() {
                failed_at = Some(i);
                break;
            }
        }
        assert_eq!(failed_at, Some(20));
        // 20 KiB/s in 100 ms slices: never fails.
        let mut p = Pace::new(t0, window);
        for i in 1..=200u64 {
            p.check(t0 + Duration::from_millis(100 * i), 2048).unwrap();
        }
    }
}
