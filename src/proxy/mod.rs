//! The network half: an explicit HTTP(S) forward proxy that intercepts TLS.
//!
//! It accepts client connections, serves absolute-form `http://` requests and
//! `CONNECT` tunnels, terminates TLS inside tunnels with certificates from the
//! local CA, forwards every request upstream, and publishes each finished
//! exchange on a broadcast channel. It knows nothing about OAuth.
//!
//! Layout: [`Proxy`] (this file) owns the listener and the shutdown signal;
//! `handler` forwards one request; `tunnel` handles `CONNECT`; `upstream`
//! connects and pools; `body` streams and captures; `headers` strips
//! hop-by-hop headers; `error` explains failures; `io` holds stream adapters.

mod body;
mod error;
mod handler;
mod headers;
mod io;
mod tunnel;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use error::UpstreamError;
pub use headers::strip_hop_by_hop;

use crate::ca::{CaError, CertificateAuthority};
use crate::config::ProxyConfig;
use crate::exchange::{ConnectionInfo, Exchange};
use crate::tls::{InterceptTls, TrustError, UpstreamTls};
use body::Publisher;
use upstream::Upstream;

/// How many exchanges a slow subscriber may lag behind before it misses some.
/// Each may hold up to two capped bodies, so this bounds the memory a stalled
/// subscriber can pin (binary bodies are not copied at all).
const EVENT_BUFFER: usize = 512;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub(crate) config: ProxyConfig,
    pub(crate) local_addr: SocketAddr,
    pub(crate) intercept: InterceptTls,
    pub(crate) upstream: Upstream,
    pub(crate) publisher: Publisher,
    next_connection: AtomicU64,
    next_exchange: AtomicU64,
    /// Cancelled on shutdown: connections finish their current exchange and close.
    pub(crate) shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub(crate) tasks: TaskTracker,
}

impl Shared {
    pub(crate) fn next_exchange_id(&self) -> u64 {
        self.next_exchange.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// The HTTP/1.1 server settings used for every client connection.
    pub(crate) fn http1_server(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.timeouts.header_read)
            .preserve_header_case(true)
            .auto_date_header(false)
            .keep_alive(true);
        builder
    }
}

/// A bound, ready-to-run proxy.
pub struct Proxy {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Subscribes to a proxy's finished exchanges (see [`Proxy::feed`]).
#[derive(Clone)]
pub struct ExchangeFeed(broadcast::Sender<Arc<Exchange>>);

impl ExchangeFeed {
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Exchange>> {
        self.0.subscribe()
    }
}

/// Lets other tasks (tests, signal handlers) stop a running proxy.
#[derive(Clone)]
pub struct ShutdownHandle(CancellationToken);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        self.0.cancel();
    }
}

impl Proxy {
    /// Loads the CA, builds every TLS configuration and binds the listener,
    /// so the first request pays for none of it.
    pub async fn bind(config: ProxyConfig) -> Result<Proxy, StartError> {
        let provider = crate::tls::provider();
        let ca = Arc::new(CertificateAuthority::load_or_create(
            &config.certs_dir,
            &provider,
        )?);
        let upstream_tls =
            UpstreamTls::new(provider.clone(), &config.upstream_cas, config.insecure)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let upstream = Upstream::new(
            upstream_tls,
            config.connect_to.clone(),
            config.timeouts,
            local_addr,
        );
        let intercept = InterceptTls::new(provider, ca);
        // Warm the minting path so the first intercepted host costs only its
        // own signature.
        let _ = intercept.ca().leaf_for("authlens.invalid");
        Ok(Proxy {
            listener,
            shared: Arc::new(Shared {
                config,
                local_addr,
                intercept,
                upstream,
                publisher: Publisher(events),
                next_connection: AtomicU64::new(0),
                next_exchange: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
            }),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The local CA in use.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        self.shared.intercept.ca()
    }

    /// A new receiver of finished exchanges. Subscribe before traffic starts
    /// to see all of it; with no receiver, bodies are not even copied.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Exchange>> {
        self.shared.publisher.0.subscribe()
    }

    /// A handle that subscribes to finished exchanges, usable after the
    /// proxy has moved into its task. It is not a receiver itself, so it
    /// neither pins exchanges in memory nor makes the proxy copy bodies.
    pub fn feed(&self) -> ExchangeFeed {
        ExchangeFeed(self.shared.publisher.0.clone())
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shared.shutdown.clone())
    }

    /// Serves until `shutdown` completes or a [`ShutdownHandle`] fires, then
    /// stops accepting, lets in-flight exchanges finish for the grace period,
    /// and returns.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let shared = self.shared.clone();
        let sweeper = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(15));
                loop {
                    tick.tick().await;
                    shared.upstream.sweep();
                }
            })
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = shared.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let shared = shared.clone();
                        shared.tasks.clone().spawn(serve_client(shared, stream, peer));
                    }
                    Err(e) => {
                        // Usually EMFILE: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(self.listener);
        shared.shutdown.cancel();
        shared.tasks.close();
        let grace = shared.config.timeouts.shutdown_grace;
        if tokio::time::timeout(grace, shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::info!(
                "{} connection(s) still open after {grace:?}; closing them",
                shared.tasks.len()
            );
        }
        sweeper.abort();
    }
}

/// Serves one client connection to the proxy port: absolute-form requests
/// and `CONNECT`.
async fn serve_client(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let info = Arc::new(ConnectionInfo {
        id: shared.next_connection_id(),
        client_addr: Some(peer),
        ..ConnectionInfo::default()
    });
    let activity = io::Activity::new();
    let io = TokioIo::new(io::Watched::new(stream, activity.clone()));
    let ctx = Arc::new(handler::ConnCtx::plain(info));
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handler::handle(shared.clone(), ctx.clone(), req))
    };
    let conn = shared
        .http1_server()
        .serve_connection(io, service)
        .with_upgrades();
    handler::drive(conn, &shared, &activity).await;
}
