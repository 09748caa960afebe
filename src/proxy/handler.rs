//! Forwarding one request: pick the upstream, rewrite the head for the next
//! hop's HTTP version, stream both bodies, and record the exchange.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use time::OffsetDateTime;

use super::Shared;
use super::body::{
    PendingExchange, Recorder, RequestBody, ResponseBody, response_record, worth_capturing,
};
use super::error::UpstreamError;
use super::headers::{is_upgrade_request, strip_hop_by_hop};
use super::io::{Activity, Watched};
use super::upstream::{self, Scheme, Target};
use crate::exchange::{
    CapturedBody, ConnectionInfo, Exchange, ExchangeError, RequestRecord, Timings,
};
use crate::tls::{AlpnOffer, Protocol};

/// Per-connection context carried into every request of that connection.
pub(crate) struct ConnCtx {
    pub(crate) info: Arc<ConnectionInfo>,
    pub(crate) mode: Mode,
}

pub(crate) enum Mode {
    /// The proxy port itself: absolute-form requests and `CONNECT`.
    Plain,
    /// Inside an intercepted tunnel: every request goes to `target`.
    Tunnel { target: Target, offer: AlpnOffer },
}

impl ConnCtx {
    pub(crate) fn plain(info: Arc<ConnectionInfo>) -> Self {
        ConnCtx {
            info,
            mode: Mode::Plain,
        }
    }
}

/// The future answering one request. Boxed so its type is nameable: the
/// tunnel serves requests with this very function, which would otherwise make
/// the future's type recursive.
pub(crate) type HandleFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// Entry point for every request a client sends.
pub(crate) fn handle(
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
) -> HandleFuture {
    Box::pin(async move {
        Ok(match &ctx.mode {
            Mode::Plain if req.method() == Method::CONNECT => {
                super::tunnel::connect(shared, ctx.clone(), req).await
            }
            Mode::Plain => match plain_target(req.uri()) {
                Ok(target) => {
                    let req = absolute_form_host(req, &target);
                    forward(&shared, &ctx, req, target, AlpnOffer::Http1).await
                }
                Err(response) => *response,
            },
            Mode::Tunnel { target, offer } => {
                forward(&shared, &ctx, req, target.clone(), *offer).await
            }
        })
    })
}

/// The upstream of an absolute-form request on the proxy port, or the answer
/// to a request that was addressed to the proxy itself.
fn plain_target(uri: &Uri) -> Result<Target, Box<Response<ResponseBody>>> {
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(Box::new(text_response(
            StatusCode::BAD_REQUEST,
            "authlens: 400 Bad Request (client side)\n\
             This is an HTTP(S) proxy: configure it as your proxy (HTTPS_PROXY=http://THIS_ADDRESS)\n\
             instead of requesting it directly.\n",
        )));
    };
    let scheme = if *scheme == UriScheme::HTTPS {
        Scheme::Https
    } else if *scheme == UriScheme::HTTP {
        Scheme::Http
    } else {
        return Err(Box::new(text_response(
            StatusCode::BAD_REQUEST,
            format!("authlens: 400 Bad Request (client side)\nunsupported scheme {scheme}\n"),
        )));
    };
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    Ok(Target::new(
        scheme,
        authority.host(),
        authority.port_u16().unwrap_or(default_port),
    ))
}

/// RFC 9112 §3.2.2: a proxy forwarding an absolute-form request replaces
/// `Host` with the URI's authority; userinfo never travels on.
fn absolute_form_host(mut req: Request<Incoming>, target: &Target) -> Request<Incoming> {
    let default_port = if target.scheme == Scheme::Https {
        443
    } else {
        80
    };
    let authority = if target.port == default_port {
        if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.clone()
        }
    } else {
        target.authority()
    };
    if req
        .uri()
        .authority()
        .is_some_and(|a| a.as_str().contains('@'))
        && let Ok(clean) = authority.parse::<Authority>()
    {
        let mut parts = req.uri().clone().into_parts();
        parts.authority = Some(clean);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    if let Ok(value) = HeaderValue::from_str(&authority) {
        req.headers_mut().insert(header::HOST, value);
    }
    req
}

pub(crate) fn text_response(status: StatusCode, text: impl Into<Bytes>) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::text(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The request's URL as an absolute URI, whatever form it arrived in.
fn absolute_uri(req: &Request<Incoming>, target: &Target) -> Uri {
    let uri = req.uri();
    if uri.scheme().is_some() && uri.authority().is_some() {
        return uri.clone();
    }
    let authority = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<Authority>().ok())
        .or_else(|| target.authority().parse().ok());
    let scheme = match target.scheme {
        Scheme::Http => UriScheme::HTTP,
        Scheme::Https => UriScheme::HTTPS,
    };
    let mut parts = uri.clone().into_parts();
    parts.scheme = Some(scheme);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    Uri::from_parts(parts).unwrap_or_else(|_| uri.clone())
}

/// Rewrites the head for the upstream connection's HTTP version.
fn adapt_for(protocol: Protocol, parts: &mut http::request::Parts, absolute: &Uri) {
    match protocol {
        Protocol::Http1 => {
            parts.version = Version::HTTP_11;
            join_cookies(&mut parts.headers);
            parts.uri = absolute
                .path_and_query()
                .map(|pq| Uri::from(pq.clone()))
                .unwrap_or_else(|| Uri::from_static("/"));
            if !parts.headers.contains_key(header::HOST)
                && let Some(authority) = absolute.authority()
                && let Ok(value) = HeaderValue::from_str(authority.as_str())
            {
                parts.headers.insert(header::HOST, value);
            }
        }
        Protocol::Http2 => {
            parts.version = Version::HTTP_2;
            parts.uri = absolute.clone();
            parts.headers.remove(header::HOST);
        }
    }
}

/// HTTP/2 clients may split `Cookie` into several fields; HTTP/1.1 servers
/// expect one, joined with `"; "` (RFC 9113 §8.2.3).
fn join_cookies(headers: &mut http::HeaderMap) {
    if headers.get_all(header::COOKIE).iter().nth(1).is_none() {
        return;
    }
    let joined: Vec<&[u8]> = headers
        .get_all(header::COOKIE)
        .iter()
        .map(HeaderValue::as_bytes)
        .collect();
    if let Ok(value) = HeaderValue::from_bytes(&joined.join(&b"; "[..])) {
        headers.insert(header::COOKIE, value);
    }
}

/// Forwards one request and streams the answer back.
async fn forward(
    shared: &Arc<Shared>,
    ctx: &Arc<ConnCtx>,
    req: Request<Incoming>,
    target: Target,
    offer: AlpnOffer,
) -> Response<ResponseBody> {
    let start = Instant::now();
    let started_at = OffsetDateTime::now_utc();
    let observe = shared.publisher.wanted();
    let absolute = absolute_uri(&req, &target);
    let client_version = req.version();
    let record = Record {
        shared: shared.clone(),
        observe,
        id: shared.next_exchange_id(),
        connection: ctx.info.clone(),
        started_at,
        start,
        request: observe.then(|| RequestRecord {
            method: req.method().clone(),
            uri: absolute.clone(),
            version: req.version(),
            headers: req.headers().clone(),
            body: CapturedBody::default(),
        }),
        recorder: Arc::new(Mutex::new(if worth_capturing(req.headers()) {
            Recorder::new(shared.config.capture_limit)
        } else {
            Recorder::counting_only()
        })),
    };

    if client_version <= Version::HTTP_11
        && is_upgrade_request(req.headers())
        && http_body::Body::is_end_stream(req.body())
        && !upgrades_to_h2c(req.headers())
    {
        return relay_upgrade(record, req, target, absolute).await;
    }

    let sender = match shared.upstream.sender(&target, offer).await {
        Ok(sender) => sender,
        Err(e) => return record.fail(e),
    };
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers, false);
    adapt_for(sender.protocol(), &mut parts, &absolute);
    // The response-head timeout counts from the end of the upload, so a
    // slow large upload is not mistaken for a silent upstream.
    let mut body = RequestBody::new(body, observe.then(|| (record.recorder.clone(), start)));
    let uploaded = if http_body::Body::is_end_stream(&body) {
        None
    } else {
        let (done, uploaded) = tokio::sync::oneshot::channel();
        body = body.notify_done(done);
        Some(uploaded)
    };
    let request = Request::from_parts(parts, body);

    let head_timeout = shared.config.timeouts.response_head;
    let deadline = async move {
        if let Some(uploaded) = uploaded {
            let _ = uploaded.await;
        }
        tokio::time::sleep(head_timeout).await;
    };
    let sent = tokio::select! {
        sent = upstream::send(&shared.upstream, &target, offer, sender, request) => Ok(sent),
        _ = deadline => Err(()),
    };
    let (response, sender) = match sent {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => return record.fail(e),
        Err(()) => {
            return record.fail(UpstreamError::ResponseTimeout {
                host: target.to_string(),
                secs: head_timeout.as_secs(),
            });
        }
    };
    shared.upstream.release(&target, offer, sender);

    let (mut head, body) = response.into_parts();
    let limit = worth_capturing(&head.headers).then_some(shared.config.capture_limit);
    let pending = record.pending(&head);
    strip_hop_by_hop(&mut head.headers, false);
    head.version = client_version;
    Response::from_parts(head, ResponseBody::relayed(body, pending, limit))
}

/// `Upgrade: h2c` asks for cleartext HTTP/2, which authlens does not relay:
/// such requests are forwarded as plain HTTP/1.1 (the upgrade is stripped).
fn upgrades_to_h2c(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c")))
}

/// Relays an HTTP/1.1 upgrade (WebSocket) handshake on a dedicated upstream
/// connection and, on `101`, splices the two upgraded streams.
async fn relay_upgrade(
    record: Record,
    mut req: Request<Incoming>,
    target: Target,
    absolute: Uri,
) -> Response<ResponseBody> {
    let shared = record.shared.clone();
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (mut parts, _body) = req.into_parts();
    // The handshake has no body (checked by the caller): record it complete.
    record
        .recorder
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .end(crate::exchange::CaptureState::Complete, Duration::ZERO);
    strip_hop_by_hop(&mut parts.headers, true);
    let mut sender = match shared.upstream.upgradable(&target).await {
        Ok(sender) => sender,
        Err(e) => return record.fail(e),
    };
    adapt_for(Protocol::Http1, &mut parts, &absolute);
    let head_timeout = shared.config.timeouts.response_head;
    let sent = tokio::time::timeout(
        head_timeout,
        sender.send_request(Request::from_parts(parts, RequestBody::empty())),
    )
    .await;
    let mut response = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return record.fail(UpstreamError::Protocol {
                host: target.to_string(),
                detail: e.to_string(),
            });
        }
        Err(_) => {
            return record.fail(UpstreamError::ResponseTimeout {
                host: target.to_string(),
                secs: head_timeout.as_secs(),
            });
        }
    };
    let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
    if switching {
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let host = target.to_string();
        let idle = shared.config.timeouts.idle;
        let shutdown = shared.shutdown.clone();
        shared.tasks.spawn(async move {
            let (client, upstream) = match tokio::try_join!(client_upgrade, upstream_upgrade) {
                Ok(pair) => pair,
                Err(e) => {
                    tracing::debug!(upstream = %host, "upgrade did not complete: {e}");
                    return;
                }
            };
            let activity = Activity::new();
            let mut client = Watched::new(TokioIo::new(client), activity.clone());
            let mut upstream = TokioIo::new(upstream);
            tokio::select! {
                result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
                    if let Err(e) = result {
                        tracing::debug!(upstream = %host, "upgraded stream ended: {e}");
                    }
                }
                _ = activity.idle(idle) => {
                    tracing::debug!(upstream = %host, "closing an upgraded stream idle for {idle:?}");
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }
    let (mut head, body) = response.into_parts();
    let limit = worth_capturing(&head.headers).then_some(shared.config.capture_limit);
    let pending = record.pending(&head);
    strip_hop_by_hop(&mut head.headers, switching);
    Response::from_parts(head, ResponseBody::relayed(body, pending, limit))
}

/// The exchange being built for one request.
struct Record {
    shared: Arc<Shared>,
    observe: bool,
    id: u64,
    connection: Arc<ConnectionInfo>,
    started_at: OffsetDateTime,
    start: Instant,
    request: Option<RequestRecord>,
    recorder: Arc<Mutex<Recorder>>,
}

impl Record {
    fn exchange(&mut self) -> Option<Exchange> {
        let request = self.request.take()?;
        Some(Exchange {
            id: self.id,
            connection: self.connection.clone(),
            started_at: self.started_at,
            request,
            response: None,
            error: None,
            timings: Timings::default(),
        })
    }

    /// The exchange waiting for its response body, when anyone observes.
    fn pending(mut self, head: &http::response::Parts) -> Option<PendingExchange> {
        let mut exchange = self.exchange()?;
        exchange.response = Some(response_record(head, false));
        exchange.timings.response_head = Some(self.start.elapsed());
        Some(self.pending_for(exchange))
    }

    /// `exchange`, waiting for this request's body capture to publish.
    fn pending_for(&self, exchange: Exchange) -> PendingExchange {
        PendingExchange {
            exchange,
            request_body: self.recorder.clone(),
            start: self.start,
            publish: self.shared.publisher.clone(),
        }
    }

    /// Answers the client with an explained error page and records it.
    fn fail(mut self, error: UpstreamError) -> Response<ResponseBody> {
        tracing::warn!(exchange = self.id, "{error}");
        let body = error.body();
        let response = text_response(error.status(), body.clone());
        if self.observe
            && let Some(mut exchange) = self.exchange()
        {
            let elapsed = self.start.elapsed();
            let (head, _) = text_response(error.status(), "").into_parts();
            let mut record = response_record(&head, true);
            record.body = CapturedBody::complete(body);
            exchange.response = Some(record);
            exchange.error = Some(ExchangeError {
                side: error.side(),
                message: error.to_string(),
            });
            exchange.timings.response_head = Some(elapsed);
            exchange.timings.response_done = Some(elapsed);
            self.pending_for(exchange).publish();
        }
        response
    }
}

impl Drop for Record {
    /// The request future was dropped before a response head: the client
    /// went away (closed, reset the stream) or the connection was cut. The
    /// request may well have reached the upstream, so it is still published.
    fn drop(&mut self) {
        if !self.observe {
            return;
        }
        if let Some(mut exchange) = self.exchange() {
            exchange.error = Some(ExchangeError {
                side: crate::exchange::FailureSide::Client,
                message: "the client went away before the response arrived".into(),
            });
            self.pending_for(exchange).publish();
        }
    }
}

/// A served connection that can be asked to finish gracefully.
pub(crate) trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn graceful(self: Pin<&mut Self>);
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<I, S, B> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
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

impl<I, S, B, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
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
/// down (then it finishes in-flight exchanges within the grace period).
pub(crate) async fn drive<C: Graceful>(conn: C, shared: &Shared, activity: &Activity) {
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
