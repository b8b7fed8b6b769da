//! The `--metrics-addr` endpoint: `GET /metrics` (OpenMetrics text) and
//! `GET /healthz` (200 / 503 with a JSON body, [`Health::report`]).
//!
//! A minimal HTTP/1.1 server on tokio's `TcpListener` with `httparse` for
//! the request head, instead of hyper: two fixed read-only paths for a
//! local scraper need no keep-alive, chunking or bodies, and this keeps the
//! daemons' dependency tree and RSS small. Each connection answers one
//! request and closes (`Connection: close`); the request head is limited to
//! [`MAX_REQUEST_HEAD`] bytes and [`READ_TIMEOUT`].

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::health::Health;
use crate::metrics::Metrics;

/// Content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Largest request head read.
pub const MAX_REQUEST_HEAD: usize = 8192;
/// How long a client may take to send its request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

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
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Accepts connections forever, one task per connection. Accept errors
/// (e.g. EMFILE) are logged and retried after a short pause.
pub async fn serve(listener: TcpListener, metrics: Metrics, health: Health) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (m, h) = (metrics.clone(), health.clone());
                tokio::spawn(async move {
                    if let Err(e) = handle(stream, &m, &h).await {
                        tracing::debug!(error = %e, "metrics connection ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, metrics: &Metrics, health: &Health) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let parsed = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            match req.parse(&buf) {
                Ok(httparse::Status::Complete(_)) => {
                    return Ok(Some((
                        req.method.unwrap_or("").to_string(),
                        req.path.unwrap_or("").to_string(),
                    )))
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD => continue,
                _ => return Ok(Some((String::new(), String::new()))),
            }
        }
    })
    .await;
    let (method, path) = match parsed {
        Ok(Ok(Some(mp))) => mp,
        Ok(Ok(None)) | Err(_) => return Ok(()),
        Ok(Err(e)) => return Err(e),
    };
    let resp = if method.is_empty() {
        Response {
            status: 400,
            content_type: "text/plain; charset=utf-8",
            body: "bad request\n".into(),
        }
    } else {
        route(&method, &path, metrics, health)
    };
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    if method != "HEAD" {
        stream.write_all(resp.body.as_bytes()).await?;
    }
    stream.shutdown().await
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
