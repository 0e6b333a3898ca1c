//! HTTP fetching with reqwest: one keep-alive client per element, retries with backoff,
//! an inactivity timeout, byte ranges, and strict length checks so a short body is never
//! mistaken for a whole segment.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::cookie::{CookieStore, Jar};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH, RANGE};
use reqwest::StatusCode;
use url::Url;

use crate::media::{ByteRange, Resource};

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
}

impl HttpError {
    /// Client errors other than timeouts/too-many-requests will not heal by retrying.
    fn is_permanent(&self) -> bool {
        match self {
            HttpError::Config(_) => true,
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
            | HttpError::Length { url, .. } => Some(url),
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
}

impl HttpClient {
    pub fn new(config: HttpConfig) -> Result<Self, HttpError> {
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
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(config.timeout)
            .read_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::limited(10))
            .cookie_provider(Arc::new(Cookies {
                jar: Jar::default(),
                fixed,
            }));
        if let Some(proxy) = config.proxy.as_deref().filter(|p| !p.is_empty()) {
            let proxy = reqwest::Proxy::all(proxy)
                .map_err(|e| HttpError::Config(format!("proxy {proxy:?}: {e}")))?;
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Config(e.to_string()))?;
        Ok(HttpClient { client, config })
    }

    /// Fetches a resource whole, retrying transient failures with exponential backoff.
    /// Cancellation is by dropping the future (the engine aborts its task).
    pub async fn fetch(&self, resource: &Resource) -> Result<Fetched, HttpError> {
        self.fetch_with_progress(resource, &|_| {}).await
    }

    /// [`fetch`](Self::fetch), calling `progress` with the bytes of the body received so far
    /// after every chunk (a slow download that is receiving bytes is alive).
    pub async fn fetch_with_progress(
        &self,
        resource: &Resource,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Fetched, HttpError> {
        let mut attempt: u32 = 0;
        loop {
            match self
                .fetch_once(&resource.url, resource.range, progress)
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

    async fn fetch_once(
        &self,
        url: &Url,
        range: Option<ByteRange>,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Fetched, HttpError> {
        let started = Instant::now();
        let transport = |e: reqwest::Error| HttpError::Transport {
            url: url.clone(),
            reason: if e.is_timeout() {
                format!("no data for {:?}", self.config.timeout)
            } else {
                error_chain(&e)
            },
        };
        let mut request = self.client.get(url.clone());
        if let Some(r) = range {
            request = request.header(RANGE, r.http_header());
        }
        let mut response = request.send().await.map_err(transport)?;
        let final_url = response.url().clone();
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
        // A server that ignores Range answers 200 with the whole resource: cut the range out.
        let (skip, want) = match range {
            Some(r) if status == StatusCode::PARTIAL_CONTENT => (0, Some(r.length)),
            Some(r) => (r.offset, Some(r.length)),
            None => (0, declared),
        };
        let mut body =
            BytesMut::with_capacity(want.or(declared).unwrap_or(64 * 1024).min(64 << 20) as usize);
        let mut seen: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            let start = skip.saturating_sub(seen).min(chunk.len() as u64) as usize;
            seen += chunk.len() as u64;
            let mut part = &chunk[start..];
            if let Some(w) = want {
                let room = w.saturating_sub(body.len() as u64) as usize;
                part = &part[..part.len().min(room)];
            }
            body.extend_from_slice(part);
            progress(body.len() as u64);
            if skip > 0 && want.is_some_and(|w| body.len() as u64 >= w) {
                break; // got our range out of a full response; drop the rest
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

/// Cookies the server set (as souphttpsrc/hlsdemux keep them across requests) plus the
/// `cookies` property's, sent with every request.
struct Cookies {
    jar: Jar,
    fixed: String,
}

impl CookieStore for Cookies {
    fn set_cookies(&self, headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        self.jar.set_cookies(headers, url)
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let stored = self.jar.cookies(url);
        let stored = stored.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("");
        let all = [stored, self.fixed.as_str()]
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
