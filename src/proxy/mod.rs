//! The network half: an explicit HTTP(S) forward proxy that intercepts TLS.
//!
//! It accepts client connections, serves absolute-form `http://` requests and
//! `CONNECT` tunnels, terminates TLS inside tunnels with certificates from the
//! local CA, forwards every request upstream, and publishes each finished
//! exchange on its feed (`feed`). It knows nothing about OAuth.
//!
//! It offers two hooks, installed with [`Proxy::bind_with`]: an
//! [`Interceptor`] in the forward path (forward, rewrite, hold, replay,
//! answer locally or drop each request) and a [`LocalService`] for requests
//! addressed to the proxy itself. What plugs into them lives outside.
//!
//! Layout: [`Proxy`] (this file) owns the listener, the hooks and the
//! shutdown signal; `conn` serves client connections and dispatches each
//! request; `tunnel` handles `CONNECT`; `forward` sends one request upstream
//! (calling the interceptor); `intercept` and `local` define the two hooks;
//! `record` builds and publishes each exchange exactly once; `body` holds
//! [`Body`] and the capturing wrappers; `upstream` connects and pools;
//! `headers` strips hop-by-hop headers; `error` explains failures; `io`
//! holds stream adapters; `pace` cuts off bodies that trickle or stall;
//! `accept` copes with running out of descriptors.

mod accept;
mod body;
mod conn;
mod error;
mod feed;
mod forward;
mod headers;
mod intercept;
mod io;
mod local;
mod pace;
mod record;
mod tunnel;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use accept::{FdLimit, raise_open_files_limit};
pub use body::{Body, BodyError, BoxError, Buffered};
pub use error::{ConnectStage, UpstreamError};
pub use feed::{
    Allowance, Delivery, ExchangeFeed, ExchangeStream, Glance, Glancer, Heads, Lane, Sighting,
    Sightings, Triage, WeakFeed,
};
pub use headers::{OWN_COOKIE_PREFIX, strip_hop_by_hop};
pub use intercept::{BoxFuture, InterceptContext, Interceptor, Verdict};
pub use local::{IDENTITY_PATH, LocalContext, LocalService};

use crate::ca::{CaError, CertificateAuthority};
use crate::config::ProxyConfig;
use crate::tls::{InterceptTls, TrustError, UpstreamTls};
use record::Recording;
use upstream::Upstream;

/// The most an HTTP/1.1 connection buffers of what it reads, each side: a
/// request's or response's head must fit (hyper's default is about 400
/// KiB). Below it, hyper's read buffer grows with what a read brings, and a
/// TLS stream brings a 16 KiB record or a few at a time: capped at 64 KiB,
/// each connection moving a large body keeps 64 KiB instead of up to 400
/// KiB. The trade-off: a head over 64 KiB is refused (431 to a client, a
/// 502 that says so for an upstream's). That is four times what Entra, IIS,
/// Node and nginx's defaults take, but less than some servers and browsers
/// accept (Go reads 1 MiB request heads, Chrome 256 KiB response heads).
/// And a CPU cost: a large body passes from one connection's task to the
/// other in chunks of at most this, each a round of wake-ups; 256 KiB on
/// the upstream side saved 15-20% of the proxy's CPU on 1 MiB downloads at
/// c=1, but raised the bench's peak RSS from 12.9 to 18.5 MiB, since each
/// pooled connection keeps the buffer it grew (docs/performance.md).
const MAX_BUFFER: usize = 64 * 1024;

/// The largest HTTP/2 DATA frame authlens accepts, on both legs (the
/// protocol's default is 16 KiB). Each frame received is one trip through
/// h2's flow control and one wake of the stream's reader, so an upstream
/// sending 64 KiB frames costs a quarter of the work per byte; frames still
/// go out at the size each peer asks for. h2 buffers a whole frame before
/// decoding it, so this is also the most one frame makes a connection hold;
/// larger frames (256 KiB, 1 MiB) were no faster. On the 1 MiB HTTP/2 row of
/// `examples/bench.rs` this and [`H2_WINDOWS`] took authlens's CPU per MiB
/// from 0.70-0.95x hudsucker's (median 0.80) to 0.59-0.75x (median 0.67)
/// (docs/performance.md).
const H2_MAX_FRAME: u32 = 64 * 1024;

/// HTTP/2 flow-control windows, fixed rather than adaptive: (stream,
/// connection) for what a client sends authlens and for what an upstream
/// sends it. They are hyper's defaults, which hudsucker uses too. The
/// adaptive windows authlens used before start at the protocol's 64 KiB and
/// grow by measuring with PING frames, which costs a PING round trip and a
/// few window updates on every busy connection; fixed windows bound what a
/// stalled reader can leave buffered in authlens (1 MiB per client
/// connection, 5 MiB per upstream one) where adaptive ones grow to 16 MiB.
const H2_WINDOWS: H2Windows = H2Windows {
    client_side: (1024 * 1024, 1024 * 1024),
    upstream_side: (2 * 1024 * 1024, 5 * 1024 * 1024),
};

/// See [`H2_WINDOWS`].
struct H2Windows {
    client_side: (u32, u32),
    upstream_side: (u32, u32),
}

/// How long shutdown waits for records publishing at the flush (they only
/// hand an exchange over, so this is a generous bound).
const FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The cause is part of the message and deliberately not also a
    /// `source()`: whoever prints the chain of sources would say it twice.
    #[error("cannot listen on {addr}: {cause}{}", listen_hint(cause))]
    Listen {
        addr: SocketAddr,
        cause: std::io::Error,
    },
}

/// What to do about a listen error the user can act on.
fn listen_hint(error: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::AddrInUse => {
            "; is another authlens (or another program) using that port? Stop it, or pass --listen with another address (127.0.0.1:0 picks a free port)"
        }
        ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: pass --listen with a higher port"
        }
        ErrorKind::AddrNotAvailable => {
            "; that address is not one of this machine's: pass --listen with one that is (127.0.0.1 for this machine only)"
        }
        _ => "",
    }
}

/// The hooks a proxy calls; none by default.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Sees every forwarded request (not spliced `--passthrough` tunnels).
    pub interceptor: Option<Arc<dyn Interceptor>>,
    /// Answers requests addressed to the proxy itself.
    pub local: Option<Arc<dyn LocalService>>,
}

/// State shared by every connection of one proxy.
pub(crate) struct Shared {
    pub(crate) config: ProxyConfig,
    pub(crate) hooks: Hooks,
    /// The identity route's answer (see [`IDENTITY_PATH`]).
    pub(crate) identity: Bytes,
    pub(crate) local_addr: SocketAddr,
    pub(crate) intercept: InterceptTls,
    pub(crate) upstream: Upstream,
    /// Numbers, builds and publishes exchanges.
    pub(crate) recording: Recording,
    next_connection: AtomicU64,
    /// Cancelled on shutdown: connections finish their current exchange and close.
    pub(crate) shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub(crate) tasks: TaskTracker,
    /// Records waiting for the rest of a request body after their response
    /// ended (see `record`), so shutdown can wait for them too.
    pub(crate) settles: TaskTracker,
    /// Fired when shutdown stops waiting for connections: every record still
    /// waiting publishes at once, with what it has.
    pub(crate) flush: CancellationToken,
}

impl Shared {
    pub(crate) fn next_connection_id(&self) -> u64 {
        self.next_connection.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A bound, ready-to-run proxy.
pub struct Proxy {
    listener: TcpListener,
    shared: Arc<Shared>,
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
    /// so the first request pays for none of it. No hooks are installed.
    pub async fn bind(config: ProxyConfig) -> Result<Proxy, StartError> {
        Proxy::bind_with(config, Hooks::default()).await
    }

    /// [`Proxy::bind`], with `hooks` installed.
    pub async fn bind_with(config: ProxyConfig, hooks: Hooks) -> Result<Proxy, StartError> {
        let provider = crate::tls::provider();
        let ca = Arc::new(CertificateAuthority::load_or_create(
            &config.certs_dir,
            &provider,
            config.open_key,
        )?);
        let upstream_tls =
            UpstreamTls::new(provider.clone(), &config.upstream_cas, config.insecure)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|cause| StartError::Listen {
                    addr: config.listen,
                    cause,
                })?;
        let local_addr = listener.local_addr().map_err(|cause| StartError::Listen {
            addr: config.listen,
            cause,
        })?;
        let upstream = Upstream::new(
            upstream_tls,
            config.connect_to.clone(),
            config.timeouts,
            config.resolver.clone(),
            local_addr,
        );
        let intercept = InterceptTls::new(provider, ca);
        // Warm the minting path so the first intercepted host costs only its
        // own signature.
        let _ = intercept.ca().leaf_for("authlens.invalid");
        let identity = local::identity_json(intercept.ca(), local_addr);
        let capture_limit = config.capture_limit;
        Ok(Proxy {
            listener,
            shared: Arc::new(Shared {
                config,
                hooks,
                identity,
                local_addr,
                intercept,
                upstream,
                recording: Recording::new(ExchangeFeed::new(), capture_limit),
                next_connection: AtomicU64::new(0),
                shutdown: CancellationToken::new(),
                tasks: TaskTracker::new(),
                settles: TaskTracker::new(),
                flush: CancellationToken::new(),
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

    /// A handle that subscribes to finished exchanges (losslessly or as a
    /// watcher, see [`ExchangeFeed`]), also after the proxy has moved into
    /// its task. Subscribe before traffic starts to see all of it; with no
    /// subscriber, bodies are not even copied.
    pub fn feed(&self) -> ExchangeFeed {
        self.shared.recording.feed()
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
                let mut tick = tokio::time::interval(upstream::SWEEP_EVERY);
                loop {
                    tick.tick().await;
                    shared.upstream.sweep();
                }
            })
        };
        tokio::pin!(shutdown);
        let mut failures = accept::AcceptFailures::default();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = shared.shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        failures.accepted();
                        let shared = shared.clone();
                        shared.tasks.clone().spawn(conn::serve_client(shared, stream, peer));
                    }
                    // Usually out of descriptors: pause (said once), not spin.
                    Err(e) => if let Some(pause) = failures.failed(&e) {
                        tokio::select! {
                            _ = &mut shutdown => break,
                            _ = shared.shutdown.cancelled() => break,
                            _ = tokio::time::sleep(pause) => {}
                        }
                    },
                },
            }
        }
        drop(self.listener);
        shared.shutdown.cancel();
        shared.tasks.close();
        let stopping = std::time::Instant::now();
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
        // Records still waiting for the rest of a request body (read on by
        // its own task, which may still hold buffered bytes after the
        // connection ended) get what is left of the grace period; then
        // whatever still waits publishes at once, so every exchange whose
        // response reached the client is out before the consumers drain
        // (they take only what was published).
        shared.settles.close();
        let left = grace.saturating_sub(stopping.elapsed());
        let _ = tokio::time::timeout(left, shared.settles.wait()).await;
        shared.flush.cancel();
        if tokio::time::timeout(FLUSH_WAIT, shared.settles.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "{} exchange(s) could not be published in time",
                shared.settles.len()
            );
        }
        sweeper.abort();
    }
}
