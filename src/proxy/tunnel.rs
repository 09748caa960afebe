//! `CONNECT` tunnels: intercepted with a minted certificate (the default),
//! spliced byte-for-byte for `--passthrough` hosts, or served as plain HTTP
//! when the client speaks HTTP inside the tunnel.

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::AsyncReadExt;
use tokio_rustls::LazyConfigAcceptor;

use super::Shared;
use super::body::ResponseBody;
use super::handler::{self, ConnCtx, Mode, text_response};
use super::io::{Activity, Prefixed, Watched};
use super::upstream::{Scheme, Target};
use crate::exchange::ConnectionInfo;
use crate::tls::{AlpnOffer, Protocol};

/// TLS records start with this content type (handshake).
const TLS_HANDSHAKE: u8 = 0x16;

/// Answers a `CONNECT` and takes over the connection once it is upgraded.
pub(crate) async fn connect(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    let Some(authority) = req.uri().authority().cloned() else {
        return text_response(
            StatusCode::BAD_REQUEST,
            "authlens: 400 Bad Request (client side)\nCONNECT needs a host:port target\n",
        );
    };
    let Some(port) = authority.port_u16() else {
        return text_response(
            StatusCode::BAD_REQUEST,
            format!(
                "authlens: 400 Bad Request (client side)\nCONNECT target {authority} has no port\n"
            ),
        );
    };
    let host = authority.host().to_string();
    if port == 0 || !valid_host(&host) {
        return text_response(
            StatusCode::BAD_REQUEST,
            format!(
                "authlens: 400 Bad Request (client side)\ninvalid CONNECT target {authority}\n"
            ),
        );
    }
    let target = Target::new(Scheme::Https, &host, port);
    if let Ok(ip) = target.host.parse::<std::net::IpAddr>()
        && shared.upstream.is_self((ip, port).into())
    {
        return text_response(
            StatusCode::BAD_REQUEST,
            format!(
                "authlens: 400 Bad Request (client side)\nCONNECT {authority} targets authlens itself; the tunnel would loop\n"
            ),
        );
    }
    let info = Arc::new(ConnectionInfo {
        tunnel: Some(authority.to_string()),
        ..(*ctx.info).clone()
    });

    if shared.config.passthrough.iter().any(|p| p.matches(&host)) {
        // Connect first so a failure is still an HTTP answer the client sees.
        let upstream = match shared.upstream.raw_tcp(&target).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("passthrough {target}: {e}");
                return text_response(e.status(), e.body());
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
        return Response::new(ResponseBody::empty());
    }

    let upgrade = hyper::upgrade::on(req);
    let task_shared = shared.clone();
    shared.tasks.spawn(async move {
        match upgrade.await {
            Ok(upgraded) => intercept(task_shared, info, upgraded, target).await,
            Err(e) => tracing::debug!("CONNECT upgrade failed: {e}"),
        }
    });
    Response::new(ResponseBody::empty())
}

/// A DNS name or an IP literal (IPv6 in brackets), nothing else.
fn valid_host(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => rustls_pki_types::ServerName::try_from(host).is_ok(),
    }
}

/// Terminates the client's TLS (or serves plain HTTP) inside a tunnel.
async fn intercept(
    shared: Arc<Shared>,
    info: Arc<ConnectionInfo>,
    upgraded: Upgraded,
    target: Target,
) {
    let header_read = shared.config.timeouts.header_read;
    let mut io = TokioIo::new(upgraded);
    let mut first = [0u8; 1];
    let n = match tokio::time::timeout(header_read, io.read(&mut first)).await {
        Ok(Ok(n)) => n,
        _ => return,
    };
    if n == 0 {
        return;
    }
    let activity = Activity::new();
    let stream = Watched::new(
        Prefixed::new(Bytes::copy_from_slice(&first[..n]), io),
        activity.clone(),
    );

    if first[0] != TLS_HANDSHAKE {
        let target = Target::new(Scheme::Http, &target.host, target.port);
        let ctx = Arc::new(ConnCtx {
            info,
            mode: Mode::Tunnel {
                target,
                offer: AlpnOffer::Http1,
            },
        });
        serve_http1(shared, ctx, stream, activity).await;
        return;
    }

    let acceptor = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream);
    let start = match tokio::time::timeout(header_read, acceptor).await {
        Ok(Ok(start)) => start,
        Ok(Err(e)) => {
            tracing::info!("tunnel to {target}: the client sent an invalid TLS hello: {e}");
            return;
        }
        Err(_) => return,
    };
    let hello = start.client_hello();
    let sni = hello.server_name().map(str::to_owned);
    let offer = AlpnOffer::from_client(hello.alpn().into_iter().flatten());

    // Ask the upstream first so the client can be given its exact choice.
    let chosen = match shared.upstream.protocol_for(&target, offer).await {
        Ok(protocol) => protocol,
        Err(e) => {
            // Finish the handshake anyway: each request then gets a 502 page
            // that explains the failure (and logs it), which beats a dropped
            // connection.
            tracing::debug!("tunnel to {target}: {e}");
            offer.fallback()
        }
    };
    let client_protocol = match (offer, chosen) {
        (AlpnOffer::None, _) => None,
        (AlpnOffer::Http1, _) => Some(Protocol::Http1),
        (AlpnOffer::Http2, _) => Some(Protocol::Http2),
        (AlpnOffer::Both, p) => Some(p),
    };
    let cert_host = sni.clone().unwrap_or_else(|| target.host.clone());
    let config = match shared.intercept.server_config(&cert_host, client_protocol) {
        Ok(config) => config,
        Err(e) => {
            tracing::warn!("tunnel to {target}: {e}");
            return;
        }
    };
    let tls = match tokio::time::timeout(header_read, start.into_stream(config)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(
                "tunnel to {target}: TLS handshake with the client failed ({e}); \
                 does the client trust the authlens CA?"
            );
            return;
        }
        Err(_) => return,
    };
    let info = Arc::new(ConnectionInfo {
        sni,
        alpn: client_protocol.map(|p| p.alpn_id().to_string()),
        ..(*info).clone()
    });
    let ctx = Arc::new(ConnCtx {
        info,
        mode: Mode::Tunnel { target, offer },
    });
    match client_protocol {
        Some(Protocol::Http2) => {
            let service = {
                let shared = shared.clone();
                service_fn(move |req| handler::handle(shared.clone(), ctx.clone(), req))
            };
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .auto_date_header(false)
                .adaptive_window(true)
                .serve_connection(TokioIo::new(tls), service);
            handler::drive(conn, &shared, &activity).await;
        }
        _ => serve_http1(shared, ctx, tls, activity).await,
    }
}

async fn serve_http1<S>(shared: Arc<Shared>, ctx: Arc<ConnCtx>, stream: S, activity: Activity)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        service_fn(move |req| handler::handle(shared.clone(), ctx.clone(), req))
    };
    let conn = shared
        .http1_server()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    handler::drive(conn, &shared, &activity).await;
}
