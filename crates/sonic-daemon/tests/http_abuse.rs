//! The `--metrics-addr` endpoint under abuse, against the real server over
//! TCP on 127.0.0.1: idle connections (slowloris), a trickling client, a
//! request flood. What must hold: `/healthz` still answers, a client cannot
//! hold a slot past the header timeout, and the daemon's open descriptors
//! stay bounded by the connection cap whatever the clients do.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sonic_daemon::http::{self, Limits};
use sonic_daemon::{Health, Metrics};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Healthy metrics/health pair (so `/healthz` answers 200).
fn healthy(daemon: &'static str) -> (Metrics, Health) {
    let m = Metrics::new(daemon);
    let h = Health::new(&m);
    h.set_netlink_up(true);
    h.set_redis_up();
    (m, h)
}

async fn start(limits: Limits) -> SocketAddr {
    let (m, h) = healthy("neighsyncd");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(http::serve_with(listener, m, h, limits));
    addr
}

/// One `GET path` (HTTP/1.1, `Connection: close`): the whole reply as text.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())
        .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// Reads until the server closes: `Ok(bytes received)`; a reset counts as
/// closed too.
async fn read_until_closed(s: &mut tokio::net::tcp::OwnedReadHalf) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// 200 idle clients (4 × the cap of 50) connect and never send a byte. A
/// `GET /healthz` made meanwhile is answered long before the (here 60 s)
/// header timeout would free a slot: when the cap is full, a pending
/// connection displaces the oldest one that has not sent its request.
#[tokio::test]
async fn healthz_answers_while_idle_clients_fill_the_cap() {
    let limits = Limits {
        max_connections: 50,
        header_timeout: Duration::from_secs(60),
        write_timeout: Duration::from_secs(5),
        eviction_grace: Duration::from_millis(50),
    };
    let addr = start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let reply = tokio::time::timeout(Duration::from_secs(20), get(addr, "/healthz"))
        .await
        .expect("/healthz answered while 200 idle clients hold connections")
        .expect("/healthz reply");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    assert!(reply.contains("\"status\":\"ok\""), "{reply}");

    // The first idle clients were closed by the server (the only way the
    // GET got a slot), without a response.
    let (mut r, _w) = idle.remove(0).into_split();
    let got = tokio::time::timeout(Duration::from_secs(20), read_until_closed(&mut r))
        .await
        .expect("the oldest idle connection is closed by the server");
    assert!(got.is_empty(), "idle client got {got:?}");
}

/// A client trickling its request head one byte every 100 ms is cut off
/// at the header timeout (total, not per read) and gets no response.
#[tokio::test]
async fn trickling_client_is_cut_off_at_the_header_timeout() {
    let header_timeout = Duration::from_secs(1);
    let addr = start(Limits {
        header_timeout,
        ..Limits::default()
    })
    .await;
    let (mut r, mut w) = TcpStream::connect(addr)
        .await
        .expect("connect")
        .into_split();
    let writer = tokio::spawn(async move {
        // An endless header: "GET / HTTP/1.1\r\nX: aaaa..."
        let mut bytes = b"GET / HTTP/1.1\r\nX: "
            .iter()
            .copied()
            .chain(std::iter::repeat(b'a'));
        loop {
            let Some(b) = bytes.next() else { return };
            if w.write_all(&[b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let started = Instant::now();
    let got = tokio::time::timeout(Duration::from_secs(20), read_until_closed(&mut r))
        .await
        .expect("the trickling client is disconnected");
    assert!(got.is_empty(), "trickler got a response: {got:?}");
    assert!(
        started.elapsed() >= header_timeout / 2,
        "closed before the header timeout"
    );
    writer.abort();
}

/// 300 clients send a complete `GET /metrics` at once (6 × the cap): every
/// one is answered, none is dropped.
#[tokio::test]
async fn request_flood_is_answered_in_full() {
    let addr = start(Limits {
        max_connections: 50,
        ..Limits::default()
    })
    .await;
    let mut tasks = Vec::new();
    for _ in 0..300 {
        tasks.push(tokio::spawn(get(addr, "/metrics")));
    }
    for t in tasks {
        let reply = tokio::time::timeout(Duration::from_secs(30), t)
            .await
            .expect("answered")
            .expect("task")
            .expect("reply");
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.contains("neighsyncd_redis_up 1"), "{reply}");
    }
}

/// Oversized and malformed request heads get a 431 / 400 and the
/// connection is closed.
#[tokio::test]
async fn bad_requests_are_refused() {
    let addr = start(Limits::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = b"GET / HTTP/1.1\r\nX-Filler: ".to_vec();
    req.resize(http::MAX_REQUEST_HEAD + 100, b'a');
    req.extend_from_slice(b"\r\n\r\n");
    // The server may close before all is written; the reply still arrives.
    let _ = s.write_all(&req).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 431 "), "{out}");

    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /\x01 HTTP/1.1\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    assert!(out.starts_with("HTTP/1.1 400 Bad Request"), "{out}");
}

/// Set in the environment of the child process that runs the server for
/// [`open_fds_stay_bounded_while_500_clients_connect`].
const CHILD_ENV: &str = "SONIC_DAEMON_HTTP_ABUSE_CHILD";

/// Not a test of its own: the server process of
/// [`open_fds_stay_bounded_while_500_clients_connect`] (this test binary
/// re-run with [`CHILD_ENV`] set). Serves with the production limits
/// ([`http::serve`]) until killed; prints `ADDR <addr>` once listening.
#[test]
fn abuse_child_server() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (m, h) = healthy("portsyncd");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("ADDR {}", listener.local_addr().expect("local addr"));
        std::io::stdout().flush().expect("flush");
        http::serve(listener, m, h).await;
    });
}

struct ChildServer {
    child: Child,
    addr: SocketAddr,
}

impl ChildServer {
    fn spawn() -> ChildServer {
        let exe = std::env::current_exe().expect("test binary");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "abuse_child_server",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the server process");
        let stdout = child.stdout.take().expect("child stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("child printed its address")
                .expect("child stdout");
            // libtest may print "test abuse_child_server ... " first.
            if let Some((_, a)) = line.split_once("ADDR ") {
                break a.trim().parse().expect("address");
            }
        };
        ChildServer { child, addr }
    }

    fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("/proc/<pid>/fd")
            .count()
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Blocking `GET /healthz` with a generous read timeout.
fn healthz_blocking(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// 500 clients connect to a server in another process (production limits:
/// cap 64) and hold their connections, half idle, half with an unfinished
/// request head. The server's open descriptors never exceed its idle count
/// plus the cap plus a few, `/healthz` keeps answering, and the server is
/// still there afterwards.
#[test]
fn open_fds_stay_bounded_while_500_clients_connect() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let server = ChildServer::spawn();
    assert!(healthz_blocking(server.addr)
        .expect("/healthz before")
        .starts_with("HTTP/1.1 200 OK"));
    let idle_fds = server.open_fds();

    let mut clients = Vec::new();
    let mut most = idle_fds;
    for i in 0..500 {
        let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
        if i % 2 == 0 {
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
                .expect("partial head");
        }
        clients.push(s);
        if i % 10 == 0 {
            most = most.max(server.open_fds());
        }
    }
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        most = most.max(server.open_fds());
        std::thread::sleep(Duration::from_millis(20));
    }
    let reply = healthz_blocking(server.addr).expect("/healthz during abuse");
    assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
    most = most.max(server.open_fds());
    eprintln!(
        "server fds: {idle_fds} idle, at most {most} with 500 clients (cap {})",
        http::MAX_CONNECTIONS
    );
    assert!(
        most <= idle_fds + http::MAX_CONNECTIONS + 4,
        "server held {most} fds (idle {idle_fds}, cap {})",
        http::MAX_CONNECTIONS
    );
    drop(clients);
    assert!(healthz_blocking(server.addr)
        .expect("/healthz after")
        .starts_with("HTTP/1.1 200 OK"));
}

/// Log output captured for one test (a `tracing` writer).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

/// Serving on every interface (`0.0.0.0`) logs a WARN that the endpoint is
/// unauthenticated and reachable from the network; serving on 127.0.0.1
/// logs nothing of the kind.
#[tokio::test]
async fn warns_when_not_on_loopback() {
    for (bind, warns) in [("0.0.0.0:0", true), ("127.0.0.1:0", false)] {
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let (m, h) = healthy("portsyncd");
        let listener = TcpListener::bind(bind).await.expect("bind");
        let server = tokio::spawn(http::serve(listener, m, h));
        // The warning is the server's first act; let it run once.
        tokio::task::yield_now().await;
        tokio::task::yield_now().await;
        server.abort();
        let text = logs.text();
        let warned = text.contains("WARN") && text.contains("is not a loopback address");
        assert_eq!(warned, warns, "{bind}: {text:?}");
        if warns {
            assert!(text.contains("no authentication"), "{text}");
        }
    }
}
