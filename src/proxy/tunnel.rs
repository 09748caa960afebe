//! `CONNECT` tunnels: checking the target, splicing `--passthrough` hosts
//! byte-for-byte, and for every other tunnel accepting the client's stream
//! (terminating its TLS with a minted certificate, or taking plain HTTP as
//! is). The accepted stream goes back to the caller to serve: this module
//! never serves HTTP itself.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

use super::Shared;
use super::body::{Body, ResponseBody};
use super::error::{UpstreamError, page};
use super::io::{Activity, Prefixed, Watched};
use super::upstream::{self, Scheme, Target};
use crate::exchange::ConnectionInfo;
use crate::tls::{AlpnOffer, Protocol};

/// TLS records start with this content type (handshake).
const TLS_HANDSHAKE: u8 = 0x16;

/// What became of a `CONNECT`.
pub(crate) enum Opened {
    /// Answer the client with this: a refusal, or the `200` of a spliced
    /// tunnel that already runs on its own.
    Answered(Response<ResponseBody>),
    /// Answer `200`, then accept the client's stream with
    /// [`Intercepting::accept`].
    Intercepting(Intercepting),
}

/// An intercepted tunnel waiting for the client's stream.
pub(crate) struct Intercepting {
    upgrade: OnUpgrade,
    info: Arc<ConnectionInfo>,
    target: Target,
}

/// The tunnel's raw stream, its first byte peeked.
pub(crate) type Inner = Watched<Prefixed<TokioIo<Upgraded>>>;

/// A client stream inside a tunnel, ready to be served.
pub(crate) struct Accepted {
    pub(crate) stream: Stream,
    /// The connection, with the tunnel target and what TLS told of it.
    pub(crate) info: Arc<ConnectionInfo>,
    /// Where every request on this stream goes.
    pub(crate) target: Target,
    pub(crate) offer: AlpnOffer,
    pub(crate) activity: Activity,
    /// Why the upstream could not be reached while the client's handshake
    /// waited: the first request is answered with it.
    pub(crate) failed: Option<UpstreamError>,
}

pub(crate) enum Stream {
    /// Plain HTTP/1.1 inside the tunnel.
    Plain(Inner),
    /// TLS terminated with a minted certificate; `Protocol` is what was
    /// agreed with the client.
    Tls(Box<TlsStream<Inner>>, Protocol),
}

/// Checks a `CONNECT` and sets up its tunnel.
pub(crate) async fn open(
    shared: &Arc<Shared>,
    info: &ConnectionInfo,
    req: Request<Incoming>,
) -> Opened {
    let refuse = |text: String| Opened::Answered(page(StatusCode::BAD_REQUEST, text));
    let Some(authority) = req.uri().authority().cloned() else {
        return refuse(
            "authlens: 400 Bad Request (client side)\nCONNECT needs a host:port target\n".into(),
        );
    };
    let port = match upstream::port_of(&authority) {
        Ok(Some(port)) => port,
        Ok(None) => {
            return refuse(format!(
                "authlens: 400 Bad Request (client side)\nCONNECT target {authority} has no port\n"
            ));
        }
        Err(detail) => {
            return refuse(format!(
                "authlens: 400 Bad Request (client side)\ninvalid CONNECT target: {detail}\n"
            ));
        }
    };
    let host = authority.host().to_string();
    if !valid_host(&host) {
        return refuse(format!(
            "authlens: 400 Bad Request (client side)\ninvalid CONNECT target {authority}\n"
        ));
    }
    let target = Target::new(Scheme::Https, &host, port);
    if let Ok(ip) = target.host.parse::<std::net::IpAddr>()
        && shared.upstream.is_self((ip, port).into())
    {
        return refuse(format!(
            "authlens: 400 Bad Request (client side)\nCONNECT {authority} targets authlens itself; the tunnel would loop\n"
        ));
    }
    let info = Arc::new(ConnectionInfo {
        tunnel: Some(authority.to_string()),
        ..info.clone()
    });

    if shared.config.passthrough.iter().any(|p| p.matches(&host)) {
        return Opened::Answered(splice(shared, req, &target).await);
    }
    Opened::Intercepting(Intercepting {
        upgrade: hyper::upgrade::on(req),
        info,
        target,
    })
}

/// A `--passthrough` tunnel: bytes copied both ways, never decrypted.
async fn splice(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    target: &Target,
) -> Response<ResponseBody> {
    // Connect first so a failure is still an HTTP answer the client sees.
    let upstream = match shared.upstream.raw_tcp(target).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!("passthrough {target}: {e}");
            return e.page();
        }
    };
    tracing::debug!("passthrough tunnel to {target}");
    let upgrade = hyper::upgrade::on(req);
    let idle = shared.config.timeouts.idle;
    let shutdown = shared.shutdown.clone();
    shared.tasks.spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let activity = Activity::new();
            let mut client = Watched::new(TokioIo::new(upgraded), activity.clone());
            let mut upstream = upstream;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {}
                _ = activity.idle(idle) => {}
                _ = shutdown.cancelled() => {}
            }
        }
    });
    Response::new(ResponseBody::unrecorded(Body::empty()))
}

/// A DNS name or an IP literal (IPv6 in brackets), nothing else.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => rustls_pki_types::ServerName::try_from(host).is_ok(),
    }
}

// === impl Intercepting ===

impl Intercepting {
    /// Waits for the client's stream and terminates its TLS (or takes plain
    /// HTTP as is). `None` when the client gave up or failed the handshake
    /// (logged here).
    pub(crate) async fn accept(self, shared: &Shared) -> Option<Accepted> {
        let Intercepting {
            upgrade,
            info,
            target,
        } = self;
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!("CONNECT upgrade failed: {e}");
                return None;
            }
        };
        let header_read = shared.config.timeouts.header_read;
        let mut io = TokioIo::new(upgraded);
        let mut first = [0u8; 1];
        let n = match tokio::time::timeout(header_read, io.read(&mut first)).await {
            Ok(Ok(n)) => n,
            _ => return None,
        };
        if n == 0 {
            return None;
        }
        let activity = Activity::new();
        let stream = Watched::new(
            Prefixed::new(Bytes::copy_from_slice(&first[..n]), io),
            activity.clone(),
        );

        if first[0] != TLS_HANDSHAKE {
            return Some(Accepted {
                stream: Stream::Plain(stream),
                info,
                target: Target::new(Scheme::Http, &target.host, target.port),
                offer: AlpnOffer::Http1,
                activity,
                failed: None,
            });
        }

        let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
        let start = match tokio::time::timeout(header_read, acceptor).await {
            Ok(Ok(start)) => start,
            Ok(Err(e)) => {
                tracing::info!("tunnel to {target}: the client sent an invalid TLS hello: {e}");
                return None;
            }
            Err(_) => return None,
        };
        let hello = start.client_hello();
        let sni = hello.server_name().map(str::to_owned);
        let offer = AlpnOffer::from_client(hello.alpn().into_iter().flatten());

        // Ask the upstream first so the client can be given its exact choice.
        let (chosen, failed) = match shared.upstream.protocol_for(&target, offer).await {
            Ok(protocol) => (protocol, None),
            Err(e) => {
                // Finish the handshake anyway: the first request then gets a
                // page that explains this very failure (and logs it), which
                // beats a dropped connection, and does not wait out a second
                // attempt; later requests try afresh.
                tracing::debug!("tunnel to {target}: {e}");
                (offer.fallback(), Some(e))
            }
        };
        let client_protocol = match (offer, chosen) {
            (AlpnOffer::None, _) => None,
            (AlpnOffer::Http1, _) => Some(Protocol::Http1),
            (AlpnOffer::Http2, _) => Some(Protocol::Http2),
            (AlpnOffer::Both, p) => Some(p),
        };
        let cert_host = sni.clone().unwrap_or_else(|| target.host.to_string());
        let config = match shared.intercept.server_config(&cert_host, client_protocol) {
            Ok(config) => config,
            Err(e) => {
                tracing::warn!("tunnel to {target}: {e}");
                return None;
            }
        };
        let tls = match tokio::time::timeout(header_read, start.into_stream(config)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::info!(
                    "tunnel to {target}: TLS handshake with the client failed ({e}); \
                     does the client trust the authlens CA?"
                );
                return None;
            }
            Err(_) => return None,
        };
        let info = Arc::new(ConnectionInfo {
            sni,
            alpn: client_protocol.map(|p| p.alpn_id().to_string()),
            ..(*info).clone()
        });
        Some(Accepted {
            stream: Stream::Tls(Box::new(tls), client_protocol.unwrap_or(Protocol::Http1)),
            info,
            target,
            offer,
            activity,
            failed,
        })
    }
}
