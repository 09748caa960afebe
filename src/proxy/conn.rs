//! Client connections: the per-connection context, dispatching each request
//! (`CONNECT` to `tunnel`, requests for the proxy itself to `local`, the
//! rest to `forward`), serving HTTP/1.1 and HTTP/2 on a stream, and driving
//! a connection to its end, its idle timeout or a graceful shutdown.
//!
//! Must not look into requests beyond routing them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::Shared;
use super::body::{Body, BoxError, ResponseBody};
use super::error::{Dropped, UpstreamError};
use super::forward::{absolute_form_host, forward, plain_target};
use super::io::{Activity, Watched};
use super::local;
use super::tunnel::{self, Accepted, Opened, Stream};
use super::upstream::Target;
use crate::exchange::ConnectionInfo;
use crate::tls::{AlpnOffer, Protocol};

/// Per-connection context carried into every request of that connection.
struct ConnCtx {
    info: Arc<ConnectionInfo>,
    mode: Mode,
}

enum Mode {
    /// The proxy port itself: absolute-form requests, `CONNECT`, and
    /// requests for the proxy itself.
    Plain,
    /// Inside an intercepted tunnel: every request goes to `target`.
    Tunnel {
        target: Target,
        offer: AlpnOffer,
        /// Why the upstream was unreachable when the tunnel was accepted,
        /// until the first request takes it as its answer.
        failed: Mutex<Option<UpstreamError>>,
    },
}

/// The future answering one request. Boxed so its type is nameable: a
/// tunnel's connection is served with this very function, which would
/// otherwise make the future's type recursive.
///
/// It is made and copied into its box for every request, so it is kept
/// small: what only some requests do (a `CONNECT`, the proxy's own pages,
/// an interceptor when one is set, an upgrade, a new upstream connection)
/// runs in a future boxed apart. With connections opened inline it was
/// 36 KiB, copied at every level up to its box on every request; it is
/// under 4 KiB (clippy's `large_futures` keeps it so, see `lib.rs`).
type HandleFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Dropped>> + Send>>;

/// Serves one client connection to the proxy port.
pub(crate) async fn serve_client(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let info = Arc::new(ConnectionInfo {
        id: shared.next_connection_id(),
        client_addr: Some(peer),
        ..ConnectionInfo::default()
    });
    let activity = Activity::new();
    let stream = Watched::new(stream, activity.clone());
    let ctx = ConnCtx {
        info,
        mode: Mode::Plain,
    };
    serve_http1(shared, ctx, stream, activity).await;
}

/// Entry point for every request a client sends.
fn handle(shared: Arc<Shared>, ctx: Arc<ConnCtx>, req: Request<Incoming>) -> HandleFuture {
    Box::pin(async move {
        match &ctx.mode {
            Mode::Plain if req.method() == Method::CONNECT => {
                Ok(Box::pin(connect(&shared, &ctx, req)).await)
            }
            Mode::Plain if req.uri().scheme().is_none() || req.uri().authority().is_none() => {
                Ok(Box::pin(local::serve(&shared, ctx.info.client_addr, req)).await)
            }
            Mode::Plain => match plain_target(req.uri()) {
                Ok(target) => {
                    let req = absolute_form_host(req, &target);
                    forward(&shared, &ctx.info, req, target, AlpnOffer::Http1, None).await
                }
                Err(page) => Ok(*page),
            },
            Mode::Tunnel {
                target,
                offer,
                failed,
            } => {
                let failed = failed.lock().unwrap_or_else(|e| e.into_inner()).take();
                forward(&shared, &ctx.info, req, target.clone(), *offer, failed).await
            }
        }
    })
}

/// Answers a `CONNECT`; an intercepted tunnel's stream is then served here.
async fn connect(
    shared: &Arc<Shared>,
    ctx: &ConnCtx,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    match tunnel::open(shared, &ctx.info, req).await {
        Opened::Answered(response) => response,
        Opened::Intercepting(tunnel) => {
            let task_shared = shared.clone();
            shared.tasks.spawn(async move {
                if let Some(accepted) = tunnel.accept(&task_shared).await {
                    Box::pin(serve_tunnel(task_shared, accepted)).await;
                }
            });
            Response::new(ResponseBody::unrecorded(Body::empty()))
        }
    }
}

async fn serve_tunnel(shared: Arc<Shared>, accepted: Accepted) {
    let Accepted {
        stream,
        info,
        target,
        offer,
        activity,
        failed,
    } = accepted;
    let ctx = ConnCtx {
        info,
        mode: Mode::Tunnel {
            target,
            offer,
            failed: Mutex::new(failed),
        },
    };
    match stream {
        Stream::Plain(stream) => serve_http1(shared, ctx, stream, activity).await,
        Stream::Tls(tls, Protocol::Http2) => {
            Box::pin(serve_http2(shared, ctx, *tls, activity)).await;
        }
        Stream::Tls(tls, Protocol::Http1) => {
            Box::pin(serve_http1(shared, ctx, *tls, activity)).await;
        }
    }
}

async fn serve_http1<S>(shared: Arc<Shared>, ctx: ConnCtx, stream: S, activity: Activity)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ctx = Arc::new(ctx);
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handle(shared.clone(), ctx.clone(), req))
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.timeouts.header_read)
        .max_buf_size(super::MAX_BUFFER)
        .preserve_header_case(true)
        .auto_date_header(false)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    drive(conn, &shared, &activity).await;
}

async fn serve_http2<S>(shared: Arc<Shared>, ctx: ConnCtx, stream: S, activity: Activity)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let ctx = Arc::new(ctx);
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handle(shared.clone(), ctx.clone(), req))
    };
    let conn = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .auto_date_header(false)
        .initial_stream_window_size(super::H2_WINDOWS.client_side.0)
        .initial_connection_window_size(super::H2_WINDOWS.client_side.1)
        .max_frame_size(super::H2_MAX_FRAME)
        .serve_connection(TokioIo::new(stream), service);
    drive(conn, &shared, &activity).await;
}

// === drive ===

/// A served connection that can be asked to finish gracefully.
trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn graceful(self: Pin<&mut Self>);
}

impl<I, S, B> Graceful for http1::UpgradeableConnection<I, S>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: http_body::Body + 'static,
    B::Error: Into<BoxError>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, B, E> Graceful for http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<BoxError>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: http_body::Body + 'static,
    B::Error: Into<BoxError>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Runs a served connection until it ends, goes idle, or the proxy shuts
/// down (then it finishes in-flight exchanges within the grace period;
/// streams made by authlens end at shutdown, so they do not hold it open).
async fn drive<C: Graceful>(conn: C, shared: &Shared, activity: &Activity) {
    tokio::pin!(conn);
    let idle = shared.config.timeouts.idle;
    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                tracing::debug!("client connection ended: {e}");
            }
        }
        _ = shared.shutdown.cancelled() => {
            conn.as_mut().graceful();
            let _ = tokio::time::timeout(shared.config.timeouts.shutdown_grace, conn).await;
        }
        _ = activity.idle(idle) => {
            tracing::debug!("closing a client connection idle for {idle:?}");
        }
    }
}
