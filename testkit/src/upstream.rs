//! A local HTTPS (or plain HTTP) upstream server for tests, speaking HTTP/1.1
//! and HTTP/2, with routes that exercise streaming, faults and WebSockets.
//! A custom handler can replace the routes (the mock identity provider).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::{TestCa, pattern_bytes, sha256_hex};

pub type Body = BoxBody<Bytes, io::Error>;
/// A handler over fully-read requests (used for the mock IdP).
pub type Handler = Arc<dyn Fn(Request<Bytes>) -> Response<Bytes> + Send + Sync>;

pub struct TestUpstream {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Connections open now (accepted and not yet ended).
    pub open: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the upstream terminates connections.
#[derive(Clone)]
pub enum Tls {
    /// Plain HTTP.
    None,
    /// TLS with a certificate for these names from the test CA, offering these ALPN ids.
    Ca {
        names: Vec<String>,
        alpn: Vec<Vec<u8>>,
    },
}

impl Tls {
    pub fn names(names: &[&str]) -> Tls {
        Tls::Ca {
            names: names.iter().map(|s| s.to_string()).collect(),
            alpn: vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        }
    }

    pub fn http1_only(names: &[&str]) -> Tls {
        Tls::Ca {
            names: names.iter().map(|s| s.to_string()).collect(),
            alpn: vec![b"http/1.1".to_vec()],
        }
    }
}

impl TestUpstream {
    /// The built-in test routes.
    pub async fn start(ca: &TestCa, tls: Tls) -> TestUpstream {
        Self::serve(ca, tls, None).await
    }

    /// A custom handler instead of the routes.
    pub async fn start_with(ca: &TestCa, tls: Tls, handler: Handler) -> TestUpstream {
        Self::serve(ca, tls, Some(handler)).await
    }

    /// A custom handler on a chosen address, which may be taken (the
    /// error is the listener's).
    pub async fn start_with_addr(
        ca: &TestCa,
        tls: Tls,
        handler: Handler,
        addr: SocketAddr,
    ) -> io::Result<TestUpstream> {
        Self::serve_on(ca, tls, Some(handler), addr).await
    }

    async fn serve(ca: &TestCa, tls: Tls, handler: Option<Handler>) -> TestUpstream {
        Self::serve_on(ca, tls, handler, ([127, 0, 0, 1], 0).into())
            .await
            .unwrap_or_else(|e| panic!("cannot listen on a loopback port: {e}"))
    }

    async fn serve_on(
        ca: &TestCa,
        tls: Tls,
        handler: Option<Handler>,
        addr: SocketAddr,
    ) -> io::Result<TestUpstream> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let acceptor = match tls {
            Tls::None => None,
            Tls::Ca { names, alpn } => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                Some(ca.tls_acceptor(&names, alpn))
            }
        };
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let open = Arc::new(AtomicUsize::new(0));
        let gauge = open.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                counter.fetch_add(1, Ordering::Relaxed);
                gauge.fetch_add(1, Ordering::Relaxed);
                let open = OpenConnection(gauge.clone());
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let _open = open;
                    let service = service_fn(move |req| route(req, handler.clone()));
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                                .await;
                        }
                        None => {
                            let _ = builder
                                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                                .await;
                        }
                    }
                });
            }
        });
        Ok(TestUpstream {
            addr,
            connections,
            open,
            task,
        })
    }
}

/// Counts a connection as open until its task ends.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

fn query_param(req: &Request<Incoming>, name: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

async fn route(
    req: Request<Incoming>,
    handler: Option<Handler>,
) -> Result<Response<Body>, Infallible> {
    if let Some(handler) = handler {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let resp = handler(Request::from_parts(parts, bytes));
        return Ok(resp.map(full));
    }
    let version = format!("{:?}", req.version());
    let resp = match req.uri().path() {
        "/hello" => Response::builder()
            .header("x-upstream-version", version)
            .header("content-type", "text/plain")
            .body(full("hello from upstream"))
            .unwrap(),
        // Hashes the request body; answers with the hash and the size.
        "/sink" => {
            let method = req.method().to_string();
            let mut body = req.into_body();
            let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
            let mut size = 0u64;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else {
                    return Ok(Response::builder()
                        .status(StatusCode::BAD_REQUEST)
                        .body(full("body broke off"))
                        .unwrap());
                };
                if let Some(data) = frame.data_ref() {
                    size += data.len() as u64;
                    sha2::Digest::update(&mut hasher, data);
                }
            }
            let digest = crate::hex(&sha2::Digest::finalize(hasher));
            Response::builder()
                .header("x-body-size", size.to_string())
                .header("x-upstream-version", version)
                .header("x-method", method)
                .body(full(digest))
                .unwrap()
        }
        // Lists the request's headers, one `name: value` per line.
        "/headers" => {
            let text: String = req
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", String::from_utf8_lossy(v.as_bytes())))
                .collect();
            Response::new(full(text))
        }
        // Answers with an `x-big` header of n bytes (a head that large).
        "/big-head" => {
            let n: usize = query_param(&req, "n")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            Response::builder()
                .header("x-big", "b".repeat(n))
                .body(full("big head"))
                .unwrap()
        }
        // Echoes the body back (small bodies).
        "/echo" => {
            let ct = req.headers().get("content-type").cloned();
            let bytes = req.into_body().collect().await.unwrap().to_bytes();
            let mut b = Response::builder().header("x-body-sha256", sha256_hex(&bytes));
            if let Some(ct) = ct {
                b = b.header("content-type", ct);
            }
            b.body(full(bytes)).unwrap()
        }
        // Streams n pattern bytes, with Content-Length unless chunked=1.
        "/bytes" => {
            let n: usize = query_param(&req, "n")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let seed: u64 = query_param(&req, "seed")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            let chunked = query_param(&req, "chunked").as_deref() == Some("1");
            let data = Bytes::from(pattern_bytes(seed, n));
            let stream = futures_util::stream::unfold(0usize, move |offset| {
                let data = data.clone();
                async move {
                    if offset >= data.len() {
                        return None;
                    }
                    let end = (offset + 64 * 1024).min(data.len());
                    Some((
                        Ok::<_, io::Error>(Frame::data(data.slice(offset..end))),
                        end,
                    ))
                }
            });
            let mut b =
                Response::builder().header("x-body-sha256", sha256_hex(&pattern_bytes(seed, n)));
            if !chunked {
                b = b.header("content-length", n.to_string());
            }
            b.body(BodyExt::boxed(StreamBody::new(stream))).unwrap()
        }
        // Promises 1 MiB, sends 100 KiB, then (once that is surely on the
        // wire) breaks the connection.
        "/reset-mid-body" => {
            let stream = futures_util::stream::unfold(0u8, |step| async move {
                match step {
                    0 => Some((Ok(Frame::data(Bytes::from(vec![7u8; 100 * 1024]))), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Some((
                            Err(io::Error::new(io::ErrorKind::ConnectionReset, "test reset")),
                            2,
                        ))
                    }
                    _ => None,
                }
            });
            Response::builder()
                .header("content-length", (1024 * 1024).to_string())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        // Sends 1 KiB of a 1 MiB body, then nothing, forever.
        "/stall" => {
            let stream = futures_util::stream::iter(vec![Ok::<_, io::Error>(Frame::data(
                Bytes::from(vec![1u8; 1024]),
            ))])
            .chain(futures_util::stream::pending());
            Response::builder()
                .header("content-length", (1024 * 1024).to_string())
                .body(BodyExt::boxed(StreamBody::new(stream)))
                .unwrap()
        }
        "/slow" => {
            let ms: u64 = query_param(&req, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full("slow answer"))
        }
        "/ws" => websocket_echo(req),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full("no such test route"))
            .unwrap(),
    };
    Ok(resp)
}

/// Accepts a WebSocket handshake and echoes every message.
fn websocket_echo(mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get("sec-websocket-key").cloned() else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("not a websocket handshake"))
            .unwrap();
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_close() {
                break;
            }
            if ws.send(msg).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .body(full(Bytes::new()))
        .unwrap()
}
