//! The `--metrics-addr` endpoint: `GET /metrics` (OpenMetrics text) and
//! `GET /healthz` (200 / 503 with a JSON body, [`Health::report`]).
//!
//! A minimal HTTP/1.1 server on tokio with `httparse` for the request head,
//! instead of hyper: two fixed read-only paths for a local scraper need no
//! keep-alive, chunking or bodies, and this keeps the daemons' dependency
//! tree and RSS small. Each connection answers one request and closes
//! (`Connection: close`).
//!
//! # What bounds the descriptors
//!
//! The endpoint shares the daemon's descriptor budget (`RLIMIT_NOFILE`,
//! 1,024 by default under systemd) with Redis and netlink, so it must never
//! exhaust it whatever clients do. It holds at most
//! **2 + [`Limits::max_connections`]** descriptors (66 with [`serve`]'s
//! defaults): the listener, one socket per admitted connection, and one
//! accepted connection waiting for a slot.
//!
//! * a slot (semaphore permit) is taken before `accept(2)`; when none is
//!   free, one more connection is accepted and waits for room while the
//!   rest wait in the kernel's accept queue (the listen backlog), which
//!   costs the daemon no descriptor;
//! * a client has [`Limits::header_timeout`] in total (not per read) to
//!   send its request head of at most [`MAX_REQUEST_HEAD`] bytes, and the
//!   response must be written within [`Limits::write_timeout`]; then the
//!   connection is closed;
//! * when every slot is taken and a connection is waiting for room, the
//!   oldest connection that has not finished its request head, and has had
//!   at least [`Limits::eviction_grace`] to do so, is closed to make room.
//!   Idle connections (slowloris) therefore cannot keep `/healthz` from
//!   answering: a scraper sends its request right after connecting and is
//!   served while idle clients are displaced;
//! * when `accept(2)` fails for lack of descriptors (EMFILE/ENFILE, caused
//!   elsewhere in the process or system), the server backs off (the
//!   daemons' one schedule, 100 ms doubling to 5 s) and warns at most once a minute.
//!
//! The daemon does not raise its `RLIMIT_NOFILE` soft limit: with the
//! endpoint bounded as above, the rest of the daemon holds a fixed handful
//! of descriptors (Redis connections, netlink sockets, the journal), far
//! below 1,024; operators who want more set `LimitNOFILE=` in the unit.
//!
//! There is no authentication: [`serve`] warns when the listener is not on
//! a loopback address ([`exposure_warning`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swss::connector::Backoff;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::health::Health;
use crate::metrics::Metrics;

/// Content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Largest request head accepted, in bytes (request line and headers up to
/// and including the blank line); larger heads get `431`.
pub const MAX_REQUEST_HEAD: usize = 8192;
/// Most header lines accepted in a request head; more get `400`.
pub const MAX_HEADERS: usize = 32;
/// Default [`Limits::max_connections`]: connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Default [`Limits::header_timeout`]: total time a client has to send its
/// request head after its connection is accepted.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
/// Default [`Limits::write_timeout`]: total time to write a response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default [`Limits::eviction_grace`]: how long a connection may stay
/// without a complete request head before it may be displaced by a waiting
/// one when every slot is taken.
pub const EVICTION_GRACE: Duration = Duration::from_millis(200);

/// How many connections the server holds and for how long ([`serve_with`]).
/// [`Limits::default`] is what the daemons use: [`MAX_CONNECTIONS`],
/// [`HEADER_TIMEOUT`], [`WRITE_TIMEOUT`], [`EVICTION_GRACE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (each one descriptor); at least 1 is used
    /// when 0 is given.
    pub max_connections: usize,
    /// Total time from accept to a complete request head; then the
    /// connection is closed without a response.
    pub header_timeout: Duration,
    /// Total time to write the response; then the connection is closed.
    pub write_timeout: Duration,
    /// Minimum age of a connection still sending its request head before it
    /// may be closed to admit a waiting connection (only when every slot is
    /// taken).
    pub eviction_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
            eviction_grace: EVICTION_GRACE,
        }
    }
}

/// The parts of a complete request head the server uses, borrowed from the
/// bytes parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method token, e.g. `GET` (never empty).
    pub method: &'a str,
    /// The request target as sent, e.g. `/metrics?x=1` (never empty).
    pub path: &'a str,
}

/// Why a request head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadRequest {
    /// No complete head within the first [`MAX_REQUEST_HEAD`] bytes
    /// (answered `431`).
    #[error("request head larger than {MAX_REQUEST_HEAD} bytes")]
    TooLarge,
    /// Not an HTTP/1.x request head, or more than [`MAX_HEADERS`] headers
    /// (answered `400`).
    #[error("malformed request head: {0}")]
    Malformed(httparse::Error),
}

/// Parses the request head at the start of `buf` (the bytes received so
/// far; pure, never panics): `Ok(Some(head))` when complete (bytes after
/// the blank line are ignored), `Ok(None)` when more bytes are needed (only
/// while `buf` is shorter than [`MAX_REQUEST_HEAD`]). Only the first
/// [`MAX_REQUEST_HEAD`] bytes are looked at, so feeding a longer prefix of
/// the same stream never changes a complete result or an error.
///
/// Errors: [`BadRequest::TooLarge`] when the first [`MAX_REQUEST_HEAD`]
/// bytes hold no complete head, [`BadRequest::Malformed`] for anything
/// `httparse` rejects (bad tokens, HTTP versions other than 1.0/1.1, more
/// than [`MAX_HEADERS`] headers).
pub fn parse_request_head(buf: &[u8]) -> Result<Option<RequestHead<'_>>, BadRequest> {
    let buf = buf.get(..MAX_REQUEST_HEAD).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => match (req.method, req.path) {
            (Some(method), Some(path)) if !method.is_empty() && !path.is_empty() => {
                Ok(Some(RequestHead { method, path }))
            }
            _ => Err(BadRequest::Malformed(httparse::Error::Token)),
        },
        Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(BadRequest::TooLarge),
        Err(e) => Err(BadRequest::Malformed(e)),
    }
}

/// Whether `ip` only reaches this host: `127.0.0.0/8`, `::1`, or an
/// IPv4-mapped `::ffff:127.x.y.z`. The unspecified addresses (`0.0.0.0`,
/// `::`) are not: they listen on every interface.
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The warning [`serve`] logs for a listener on `addr`: `None` for a
/// loopback address ([`is_loopback`]), otherwise the text saying the
/// unauthenticated endpoint is reachable from the network.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!is_loopback(addr.ip())).then(|| {
        format!(
            "--metrics-addr {addr} is not a loopback address: /metrics and /healthz have no \
             authentication and can be reached from the network; prefer 127.0.0.1"
        )
    })
}

/// One response: status code, content type, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// The body (empty for HEAD on the wire).
    pub body: String,
}

/// Routes one request (pure): `GET`/`HEAD` of `/metrics` or `/healthz`
/// (query string ignored); 404 for other paths, 405 for other methods.
pub fn route(method: &str, path: &str, metrics: &Metrics, health: &Health) -> Response {
    let path = path.split('?').next().unwrap_or(path);
    let text = "text/plain; charset=utf-8";
    if method != "GET" && method != "HEAD" {
        return Response {
            status: 405,
            content_type: text,
            body: "method not allowed\n".into(),
        };
    }
    match path {
        "/metrics" => Response {
            status: 200,
            content_type: OPENMETRICS_CONTENT_TYPE,
            body: metrics.encode(),
        },
        "/healthz" => {
            let (status, body) = health.report();
            Response {
                status,
                content_type: "application/json",
                body,
            }
        }
        _ => Response {
            status: 404,
            content_type: text,
            body: "not found; try /metrics or /healthz\n".into(),
        },
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// The response to a refused request head.
fn refusal(bad: BadRequest) -> Response {
    let (status, body) = match bad {
        BadRequest::TooLarge => (431, "request head too large\n"),
        BadRequest::Malformed(_) => (400, "bad request\n"),
    };
    Response {
        status,
        content_type: "text/plain; charset=utf-8",
        body: body.into(),
    }
}

/// [`serve_with`] with the production [`Limits::default`]: at most
/// [`MAX_CONNECTIONS`] connections (so at most 66 descriptors), request
/// heads within [`HEADER_TIMEOUT`], responses within [`WRITE_TIMEOUT`].
pub async fn serve(listener: TcpListener, metrics: Metrics, health: Health) {
    serve_with(listener, metrics, health, Limits::default()).await
}

/// Accepts connections on `listener` until the runtime shuts down, one
/// task per connection, within `limits` (see the module documentation for
/// what bounds the descriptors). Logs a warning first when the listener is
/// not on a loopback address ([`exposure_warning`]). Accept errors are
/// retried: for lack of descriptors with a back-off and a warning at most
/// once a minute, others (a client gone before accept) at once. Never
/// returns.
pub async fn serve_with(listener: TcpListener, metrics: Metrics, health: Health, limits: Limits) {
    if let Some(warning) = listener.local_addr().ok().and_then(exposure_warning) {
        tracing::warn!("{warning}");
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let pending = Pending::default();
    let mut backoff = AcceptBackoff::default();
    let mut next_id: u64 = 0;
    loop {
        // A free slot is taken before accept(2); when there is none, the
        // next connection is still accepted (one descriptor more) and room
        // is made for it, while the rest wait in the kernel's queue.
        let free = match slots.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(TryAcquireError::Closed) => return,
            Err(TryAcquireError::NoPermits) => None,
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                backoff.failed(&e).await;
                continue;
            }
        };
        backoff.succeeded();
        let permit = match free {
            Some(p) => p,
            None => match make_room(&slots, &pending, limits.eviction_grace).await {
                Some(p) => p,
                None => return,
            },
        };
        next_id = next_id.wrapping_add(1);
        let evicted = pending.insert(next_id);
        let registered = Registered {
            pending: pending.clone(),
            id: next_id,
        };
        let (m, h) = (metrics.clone(), health.clone());
        tokio::spawn(async move {
            connection(stream, registered, evicted, &m, &h, limits).await;
            drop(permit);
        });
    }
}

/// Waits for a slot for a connection already accepted: the first one
/// freed, or the one of the oldest connection still sending its request
/// head, closed once it is `grace` old. `None` only if the semaphore is
/// closed (never).
async fn make_room(
    slots: &Arc<Semaphore>,
    pending: &Pending,
    grace: Duration,
) -> Option<OwnedSemaphorePermit> {
    loop {
        let Some((id, since)) = pending.oldest() else {
            // Every slot is writing a response (bounded by the write timeout).
            return slots.clone().acquire_owned().await.ok();
        };
        tokio::select! {
            p = slots.clone().acquire_owned() => return p.ok(),
            _ = tokio::time::sleep_until((since + grace).into()) => {
                if pending.evict(id) {
                    tracing::debug!("metrics endpoint full: closed the oldest connection without a request");
                    // Its task ends when next polled and frees the slot.
                    return slots.clone().acquire_owned().await.ok();
                }
                // It completed its head meanwhile: look again.
            }
        }
    }
}

/// Connections still sending their request head, oldest first (ids are
/// given in accept order): when they were accepted, and the sender whose
/// drop tells the connection's task to close.
#[derive(Debug, Clone, Default)]
struct Pending(Arc<Mutex<PendingMap>>);

/// Connection id -> (accepted at, eviction sender).
type PendingMap = BTreeMap<u64, (Instant, oneshot::Sender<()>)>;

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingMap> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers connection `id`, accepted now; the receiver completes when
    /// it is evicted.
    fn insert(&self, id: u64) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id, (Instant::now(), tx));
        rx
    }

    fn oldest(&self) -> Option<(u64, Instant)> {
        self.lock()
            .first_key_value()
            .map(|(id, (at, _))| (*id, *at))
    }

    /// Evicts `id` (drops its sender); false when it is no longer pending.
    fn evict(&self, id: u64) -> bool {
        self.lock().remove(&id).is_some()
    }
}

/// A connection's entry in [`Pending`], removed on drop.
struct Registered {
    pending: Pending,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.pending.evict(self.id);
    }
}

/// Back-off (the daemons' one retry schedule, [`Backoff`]) and
/// rate-limited warning for failing `accept(2)`.
#[derive(Debug, Default)]
struct AcceptBackoff {
    backoff: Backoff,
    last_warning: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    const WARN_EVERY: Duration = Duration::from_secs(60);

    /// Handles a failed accept: out of descriptors (or kernel memory) backs
    /// off and warns at most once a minute; anything else (e.g. the client
    /// reset before accept) is logged at debug and retried at once.
    async fn failed(&mut self, e: &std::io::Error) {
        use nix::errno::Errno;
        let exhausted = matches!(
            e.raw_os_error().map(Errno::from_raw),
            Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
        );
        if !exhausted {
            tracing::debug!(error = %e, "metrics endpoint: accept failed");
            return;
        }
        let now = Instant::now();
        let due = match self.last_warning {
            None => true,
            Some(at) => now.duration_since(at) >= Self::WARN_EVERY,
        };
        if due {
            tracing::warn!(
                error = %e,
                suppressed = self.suppressed,
                "metrics endpoint: accept failed, backing off (further failures in the next minute are not logged)"
            );
            self.last_warning = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(self.backoff.next_delay()).await;
    }

    fn succeeded(&mut self) {
        self.backoff.reset();
    }
}

/// One connection: read the head (within the header timeout, unless
/// evicted), answer, close.
async fn connection(
    mut stream: TcpStream,
    registered: Registered,
    evicted: oneshot::Receiver<()>,
    metrics: &Metrics,
    health: &Health,
    limits: Limits,
) {
    let head = tokio::select! {
        r = tokio::time::timeout(limits.header_timeout, read_head(&mut stream)) => r,
        _ = evicted => return,
    };
    drop(registered);
    let (resp, head_only) = match head {
        Err(_elapsed) => {
            tracing::debug!("metrics connection: no request head within the header timeout");
            return;
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "metrics connection ended");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Ok(Some(Ok((method, path))))) => {
            (route(&method, &path, metrics, health), method == "HEAD")
        }
        Ok(Ok(Some(Err(bad)))) => (refusal(bad), false),
    };
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    if !head_only {
        out.push_str(&resp.body);
    }
    let written = tokio::time::timeout(limits.write_timeout, async {
        stream.write_all(out.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("metrics connection: response not written");
    }
}

/// Reads until [`parse_request_head`] gives a result: `Ok(None)` when the
/// client closes first, else the method and path or why the head is
/// refused. Never reads more than [`MAX_REQUEST_HEAD`] bytes.
async fn read_head(
    stream: &mut TcpStream,
) -> std::io::Result<Option<Result<(String, String), BadRequest>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let room = MAX_REQUEST_HEAD.saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            return Ok(Some(Err(BadRequest::TooLarge)));
        }
        let n = stream.read(&mut chunk[..room]).await?;
        let Some(got) = chunk.get(..n).filter(|g| !g.is_empty()) else {
            return Ok(None);
        };
        buf.extend_from_slice(got);
        match parse_request_head(&buf) {
            Ok(Some(h)) => return Ok(Some(Ok((h.method.to_owned(), h.path.to_owned())))),
            Ok(None) => continue,
            Err(bad) => return Ok(Some(Err(bad))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let m = Metrics::new("neighsyncd");
        let h = Health::new(&m);
        let r = route("GET", "/metrics", &m, &h);
        assert_eq!((r.status, r.content_type), (200, OPENMETRICS_CONTENT_TYPE));
        assert!(r.body.contains("neighsyncd_entries 0"));
        let r = route("GET", "/healthz?verbose=1", &m, &h);
        assert_eq!(r.status, 503);
        assert!(r.body.contains("\"status\":\"unhealthy\""));
        assert_eq!(route("GET", "/", &m, &h).status, 404);
        assert_eq!(route("POST", "/metrics", &m, &h).status, 405);
    }

    #[test]
    fn parses_request_heads() {
        let head = |method, path| Ok(Some(RequestHead { method, path }));
        assert_eq!(
            parse_request_head(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            head("GET", "/metrics")
        );
        assert_eq!(
            parse_request_head(b"HEAD /healthz?v=1 HTTP/1.0\r\n\r\nbody ignored"),
            head("HEAD", "/healthz?v=1")
        );
        // Incomplete: more bytes needed.
        assert_eq!(parse_request_head(b""), Ok(None));
        assert_eq!(
            parse_request_head(b"GET /metrics HTTP/1.1\r\nHost"),
            Ok(None)
        );
        // Malformed.
        assert!(matches!(
            parse_request_head(b"garbage\r\n\r\n"),
            Err(BadRequest::Malformed(_))
        ));
        assert!(matches!(
            parse_request_head(b"GET / HTTP/2.0\r\n\r\n"),
            Err(BadRequest::Malformed(_))
        ));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(
            parse_request_head(&many),
            Err(BadRequest::Malformed(httparse::Error::TooManyHeaders))
        );
        // Too large: no complete head in the first MAX_REQUEST_HEAD bytes,
        // however many more follow; one just under the limit is fine.
        let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
        big.resize(MAX_REQUEST_HEAD - 1, b'a');
        assert_eq!(parse_request_head(&big), Ok(None));
        big.push(b'a');
        assert_eq!(parse_request_head(&big), Err(BadRequest::TooLarge));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request_head(&big), Err(BadRequest::TooLarge));
        let mut fits = b"GET / HTTP/1.1\r\nX: ".to_vec();
        fits.resize(MAX_REQUEST_HEAD - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse_request_head(&fits), head("GET", "/"));
    }

    #[test]
    fn warns_only_off_loopback() {
        for quiet in [
            "127.0.0.1:9101",
            "127.1.2.3:1",
            "[::1]:9102",
            "[::ffff:127.0.0.1]:80",
        ] {
            let addr: SocketAddr = quiet.parse().unwrap();
            assert!(is_loopback(addr.ip()), "{quiet}");
            assert_eq!(exposure_warning(addr), None, "{quiet}");
        }
        for loud in [
            "0.0.0.0:9101",
            "[::]:9101",
            "10.1.0.32:9101",
            "[fc00::1]:9101",
            "[::ffff:10.0.0.1]:1",
        ] {
            let addr: SocketAddr = loud.parse().unwrap();
            assert!(!is_loopback(addr.ip()), "{loud}");
            let w = exposure_warning(addr).unwrap();
            assert!(w.contains(&addr.to_string()), "{w}");
            assert!(w.contains("not a loopback address"), "{w}");
            assert!(w.contains("no authentication"), "{w}");
        }
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let m = Metrics::new("portsyncd");
        let h = Health::new(&m);
        h.set_netlink_up(true);
        h.set_redis_up();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, m, h));
        for (req, want) in [
            (
                "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
                "HTTP/1.1 200 OK",
            ),
            ("GET /metrics HTTP/1.0\r\n\r\n", "portsyncd_redis_up 1"),
            ("garbage\r\n\r\n", "HTTP/1.1 400"),
        ] {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            assert!(out.contains(want), "{req:?} -> {out}");
        }
    }
}
