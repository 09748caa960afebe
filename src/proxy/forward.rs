//! Forwarding one request upstream: resolving its target, letting the
//! interceptor decide, rewriting the head for the next hop's HTTP version,
//! sending it through the pool, and relaying protocol upgrades.
//!
//! Must not handle connections (`conn`) nor answer requests addressed to the
//! proxy itself (`local`); what an interceptor does is its own business.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme as UriScheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use super::Shared;
use super::body::{Body, RequestBody, ResponseBody, UploadBroke, read_capped};
use super::error::{Dropped, UpstreamError, page};
use super::headers::{is_upgrade_request, strip_hop_by_hop, strip_own_cookies};
use super::intercept::{InterceptContext, Interceptor, Verdict};
use super::io::{Activity, Watched};
use super::pace;
use super::record::{Record, RequestCapture};
use super::upstream::{self, Scheme, Target};
use crate::exchange::{ConnectionInfo, ExchangeError, FailureSide, Intervention, InterventionKind};
use crate::tls::{AlpnOffer, Protocol};

/// How much of the response to a side request
/// ([`InterceptContext::send_upstream`]) is read.
const SIDE_RESPONSE_LIMIT: usize = 16 * 1024 * 1024;

/// A request on its way upstream.
struct Outgoing {
    head: http::request::Parts,
    body: Body,
    /// The request's URL, absolute.
    absolute: Uri,
    target: Target,
    offer: AlpnOffer,
}

/// Forwards one request and streams the answer back; when the upstream is
/// already known to be unreachable (`failed`), the answer explains that
/// instead, unless the interceptor answers first. `Err` fails the request
/// as a network error (an interceptor dropped it).
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    connection: &Arc<ConnectionInfo>,
    req: Request<Incoming>,
    target: Target,
    offer: AlpnOffer,
    failed: Option<UpstreamError>,
) -> Result<Response<ResponseBody>, Dropped> {
    let client_version = req.version();
    let (mut head, body) = req.into_parts();
    strip_own_cookies(&mut head.headers);
    let absolute = absolute_uri(&head, &target);
    let body_follows = !http_body::Body::is_end_stream(&body);
    let mut record = shared
        .recording
        .begin(connection, &head, &absolute, body_follows);
    record.settle_with(&shared.settles, &shared.flush);
    let mut out = Outgoing {
        head,
        body: Body::from(body),
        absolute,
        target,
        offer,
    };

    let mut hooked = None;
    if let Some(interceptor) = &shared.hooks.interceptor {
        let ctx = InterceptContext::new(
            shared.clone(),
            connection.clone(),
            out.target.clone(),
            offer,
        );
        out = match Box::pin(intercept(interceptor.as_ref(), &ctx, &mut record, out)).await {
            Decided::Untouched(out) => out,
            Decided::Forward(out) => {
                hooked = Some((interceptor, ctx));
                out
            }
            Decided::Answer(response) => {
                return Ok(answer(shared, record, response, client_version));
            }
            Decided::Drop => return Err(Dropped),
        };
    }

    if let Some(error) = failed {
        // Not sent anywhere, but still read for the capture.
        RequestBody::discard(out.body, record.request_capture());
        return Ok(fail(record, &error));
    }
    if relays_upgrade(&out, client_version) {
        return Ok(Box::pin(relay_upgrade(shared, record, out)).await);
    }
    let response = match send(shared, out, record.request_capture()).await {
        Ok(response) => response,
        Err(error) => return Ok(fail(record, &error)),
    };
    let response = respond(record, response, client_version, false);
    let Some((interceptor, ctx)) = hooked else {
        return Ok(response);
    };
    let (head, body) = response.into_parts();
    interceptor.response(&head, &ctx);
    Ok(Response::from_parts(head, body))
}

// === steps ===

/// What the interceptor decided, in the proxy's terms.
enum Decided {
    /// It did not want the request.
    Untouched(Outgoing),
    /// Send this (possibly rewritten) request on.
    Forward(Outgoing),
    Answer(Response<Body>),
    Drop,
}

/// Asks the interceptor about `out`, and records what it did.
async fn intercept(
    interceptor: &dyn Interceptor,
    ctx: &InterceptContext,
    record: &mut Record,
    out: Outgoing,
) -> Decided {
    let Outgoing {
        mut head,
        body,
        absolute,
        target,
        offer,
    } = out;
    // Interceptors see the absolute URL; the next hop's form is set later.
    head.uri = absolute.clone();
    if !interceptor.wants(&head, ctx) {
        return Decided::Untouched(Outgoing {
            head,
            body,
            absolute,
            target,
            offer,
        });
    }
    // Copy what the client sends while the interceptor reads it, so an
    // answered request still records its body.
    let body = RequestBody::tap(body, record.request_capture());
    match interceptor
        .intercept(Request::from_parts(head, body), ctx)
        .await
    {
        Verdict::Forward(req) => {
            let (mut head, body) = req.into_parts();
            // Only the path and query may change: the target stays the
            // one the client asked for.
            let absolute = with_path_of(&absolute, &head.uri);
            head.uri = absolute.clone();
            fit_content_length(&mut head.headers, &body);
            record.request_sent(&head, &absolute);
            if let Some(mark) = ctx.take_mark(None) {
                record.intervention(mark);
            }
            Decided::Forward(Outgoing {
                head,
                body,
                absolute,
                target,
                offer,
            })
        }
        Verdict::Answer(response) => {
            if let Some(mark) = ctx.take_mark(Some(InterventionKind::Answered)) {
                record.intervention(mark);
            }
            Decided::Answer(response)
        }
        Verdict::Drop => {
            let mark = ctx.take_mark(Some(InterventionKind::Dropped));
            let label = mark.as_ref().map_or("", |m| m.label.as_str()).to_string();
            tracing::info!(
                exchange = record.id(),
                "an interceptor dropped the request ({label})"
            );
            if let Some(mark) = mark {
                record.intervention(mark);
            }
            record.fail(
                ExchangeError {
                    side: FailureSide::Proxy,
                    message: format!("authlens dropped the request on purpose ({label})"),
                },
                None,
            );
            Decided::Drop
        }
    }
}

/// Answers the client with an interceptor's response.
fn answer(
    shared: &Shared,
    mut record: Record,
    response: Response<Body>,
    version: Version,
) -> Response<ResponseBody> {
    let (mut head, body) = response.into_parts();
    head.version = version;
    record.response_head(&head, true);
    Response::from_parts(
        head,
        ResponseBody::new(body.ending_at(&shared.shutdown), record),
    )
}

/// Sends `out` through the pool and waits for the response head. The
/// response-head timeout counts from the end of the upload, so a slow large
/// upload is not mistaken for a silent upstream.
async fn send(
    shared: &Shared,
    out: Outgoing,
    capture: Option<RequestCapture>,
) -> Result<Response<Body>, UpstreamError> {
    let Outgoing {
        mut head,
        body,
        absolute,
        target,
        offer,
    } = out;
    // Paced (a client too slow gets a 408), and wrapped first: if no
    // upstream connection can be had, the body, dropped unsent, is still
    // read for the capture.
    let (body, slow) = pace::client_body(body, &shared.config.timeouts);
    // Nothing to break off (nor to allocate for) without a body.
    let mut broke = UploadBroke::default();
    let mut body = RequestBody::new(body, capture);
    if !http_body::Body::is_end_stream(&body) {
        broke = UploadBroke::new();
        body = body.watch_upload(broke.clone());
    }
    let sender = shared.upstream.sender(&target, offer).await?;
    strip_hop_by_hop(&mut head.headers, false);
    adapt_for(sender.protocol(), &mut head, &absolute);
    let uploaded = if http_body::Body::is_end_stream(&body) {
        None
    } else {
        let (done, uploaded) = tokio::sync::oneshot::channel();
        body = body.notify_done(done);
        Some(uploaded)
    };
    let head_timeout = shared.config.timeouts.response_head;
    let deadline = async move {
        if let Some(uploaded) = uploaded {
            let _ = uploaded.await;
        }
        tokio::time::sleep(head_timeout).await;
    };
    let request = Request::from_parts(head, body);
    let sent = tokio::select! {
        sent = upstream::send(&shared.upstream, &target, offer, sender, request) => sent,
        _ = deadline => Err(UpstreamError::ResponseTimeout {
            host: target.to_string(),
            secs: head_timeout.as_secs(),
        }),
    };
    // The upstream exchange failed because the client's upload did (hyper
    // reports it as a failed send): the fault is the client's.
    let (response, sender) = sent.map_err(|error| match (slow.get(), broke.cause()) {
        (Some(slow), _) => UpstreamError::ClientTooSlow {
            host: target.to_string(),
            detail: slow.to_string(),
        },
        (None, Some(cause)) => UpstreamError::ClientUpload {
            host: target.to_string(),
            detail: cause.to_owned(),
        },
        (None, None) => error,
    })?;
    shared.upstream.release(&target, offer, sender);
    Ok(response.map(|body| pace::upstream_body(body.into(), &shared.config.timeouts)))
}

/// The upstream's response, ready for the client: hop-by-hop headers gone,
/// the client's HTTP version, the body reporting to `record`.
fn respond(
    mut record: Record,
    response: Response<impl Into<Body>>,
    version: Version,
    upgrading: bool,
) -> Response<ResponseBody> {
    let (mut head, body) = response.into_parts();
    record.response_head(&head, false);
    strip_hop_by_hop(&mut head.headers, upgrading);
    head.version = version;
    Response::from_parts(head, ResponseBody::new(body.into(), record))
}

/// Answers the client with an explained error page, and records it.
fn fail(mut record: Record, error: &UpstreamError) -> Response<ResponseBody> {
    tracing::warn!(exchange = record.id(), "{error}");
    let text = Bytes::from(error.body());
    let (head, body) = page(error.status(), text.clone()).into_parts();
    record.fail(exchange_error(error), Some((&head, text)));
    Response::from_parts(head, body)
}

fn exchange_error(error: &UpstreamError) -> ExchangeError {
    ExchangeError {
        side: error.side(),
        message: error.to_string(),
    }
}

// === upgrades ===

/// True for an HTTP/1.1 upgrade (WebSocket) handshake that is relayed as
/// one. `Upgrade: h2c` asks for cleartext HTTP/2, which authlens does not
/// relay: such requests are forwarded as plain HTTP/1.1 (the upgrade is
/// stripped), as are upgrade requests with a body.
fn relays_upgrade(out: &Outgoing, client_version: Version) -> bool {
    client_version <= Version::HTTP_11
        && is_upgrade_request(&out.head.headers)
        && http_body::Body::is_end_stream(&out.body)
        && !out
            .head
            .headers
            .get_all(header::UPGRADE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c")))
}

/// Relays an upgrade handshake on a dedicated upstream connection and, on
/// `101`, splices the two upgraded streams.
async fn relay_upgrade(
    shared: &Arc<Shared>,
    record: Record,
    out: Outgoing,
) -> Response<ResponseBody> {
    let Outgoing {
        head,
        body,
        absolute,
        target,
        ..
    } = out;
    let mut req = Request::from_parts(head, ());
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (mut head, ()) = req.into_parts();
    strip_hop_by_hop(&mut head.headers, true);
    let mut sender = match shared.upstream.upgradable(&target).await {
        Ok(sender) => sender,
        Err(e) => return fail(record, &e),
    };
    adapt_for(Protocol::Http1, &mut head, &absolute);
    let body = RequestBody::new(body, record.request_capture());
    let head_timeout = shared.config.timeouts.response_head;
    let sent = tokio::time::timeout(
        head_timeout,
        sender.send_request(Request::from_parts(head, body)),
    )
    .await;
    let mut response = match sent {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            let error = UpstreamError::Protocol {
                host: target.to_string(),
                detail: e.to_string(),
            };
            return fail(record, &error);
        }
        Err(_) => {
            let error = UpstreamError::ResponseTimeout {
                host: target.to_string(),
                secs: head_timeout.as_secs(),
            };
            return fail(record, &error);
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
    respond(record, response, Version::HTTP_11, switching)
}

// === impl InterceptContext (side requests) ===

impl InterceptContext {
    /// Sends a request of authlens's own upstream, through the proxy's
    /// upstream pool, before (or instead of) the request in hand: a replay,
    /// say. Its URI is absolute, or origin-form for the intercepted
    /// request's own target. It is published as an exchange of its own,
    /// marked [`InterventionKind::Made`] with `label` and `note`. The
    /// response is read whole (up to 16 MiB).
    pub async fn send_upstream(
        &self,
        req: Request<Body>,
        label: &str,
        note: &str,
    ) -> Result<Response<Bytes>, UpstreamError> {
        let (mut head, body) = req.into_parts();
        // A head copied from another request may announce another length.
        fit_content_length(&mut head.headers, &body);
        let target = match (head.uri.scheme(), head.uri.authority()) {
            (Some(_), Some(_)) => {
                target_of(&head.uri).map_err(|detail| UpstreamError::BadTarget {
                    target: head.uri.to_string(),
                    detail,
                })?
            }
            _ => self.target.clone(),
        };
        let offer = match target.scheme {
            _ if target == self.target => self.offer,
            Scheme::Https => AlpnOffer::Both,
            Scheme::Http => AlpnOffer::Http1,
        };
        let absolute = absolute_uri(&head, &target);
        let host = target.to_string();
        let mut record = self.shared.recording.begin(
            &self.connection,
            &head,
            &absolute,
            !http_body::Body::is_end_stream(&body),
        );
        record.settle_with(&self.shared.settles, &self.shared.flush);
        record.intervention(Intervention::new(InterventionKind::Made, label, note));
        let capture = record.request_capture();
        let out = Outgoing {
            head,
            body,
            absolute,
            target,
            offer,
        };
        let response = match send(&self.shared, out, capture).await {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(exchange = record.id(), "side request: {error}");
                record.fail(exchange_error(&error), None);
                return Err(error);
            }
        };
        let version = response.version();
        let (mut head, mut body) = respond(record, response, version, false).into_parts();
        head.version = version;
        match read_capped(&mut body, SIDE_RESPONSE_LIMIT).await {
            Ok(Ok(bytes)) => Ok(Response::from_parts(head, bytes)),
            Ok(Err(_)) => Err(UpstreamError::TooLarge {
                host,
                limit: SIDE_RESPONSE_LIMIT,
            }),
            Err(e) => Err(UpstreamError::Protocol {
                host,
                detail: e.to_string(),
            }),
        }
    }
}

// === targets and heads ===

/// The upstream of an absolute-form request on the proxy port, or the page
/// refusing its scheme.
pub(crate) fn plain_target(uri: &Uri) -> Result<Target, Box<Response<ResponseBody>>> {
    target_of(uri).map_err(|detail| {
        Box::new(page(
            StatusCode::BAD_REQUEST,
            format!("authlens: 400 Bad Request (client side)\n{detail}\n"),
        ))
    })
}

/// The upstream an absolute URI names; `Err` says why it names none.
fn target_of(uri: &Uri) -> Result<Target, String> {
    let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
        return Err(format!("{uri} is not an absolute URL"));
    };
    let scheme = if *scheme == UriScheme::HTTPS {
        Scheme::Https
    } else if *scheme == UriScheme::HTTP {
        Scheme::Http
    } else {
        return Err(format!("unsupported scheme {scheme}"));
    };
    let default_port = if scheme == Scheme::Https { 443 } else { 80 };
    let port = upstream::port_of(authority)?.unwrap_or(default_port);
    Ok(Target::new(scheme, authority.host(), port))
}

/// RFC 9112 §3.2.2: a proxy forwarding an absolute-form request replaces
/// `Host` with the URI's authority; userinfo never travels on.
pub(crate) fn absolute_form_host(mut req: Request<Incoming>, target: &Target) -> Request<Incoming> {
    let default_port = if target.scheme == Scheme::Https {
        443
    } else {
        80
    };
    let authority = if target.port == default_port {
        if target.host.contains(':') {
            format!("[{}]", target.host)
        } else {
            target.host.to_string()
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

/// The request's URL as an absolute URI, whatever form it arrived in.
fn absolute_uri(head: &http::request::Parts, target: &Target) -> Uri {
    let uri = &head.uri;
    if uri.scheme().is_some() && uri.authority().is_some() {
        return uri.clone();
    }
    let authority = head
        .headers
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

/// `absolute` with the path and query of `uri`.
fn with_path_of(absolute: &Uri, uri: &Uri) -> Uri {
    let mut parts = absolute.clone().into_parts();
    parts.path_and_query = Some(
        uri.path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/")),
    );
    Uri::from_parts(parts).unwrap_or_else(|_| absolute.clone())
}

/// A rewritten body of known size must not travel under the old body's
/// `Content-Length`: the header is corrected when present.
fn fit_content_length(headers: &mut http::HeaderMap, body: &Body) {
    match http_body::Body::size_hint(body).exact() {
        Some(size)
            if headers
                .get(header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() != size.to_string().as_bytes()) =>
        {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
        }
        Some(_) => {}
        // A body of unknown size (a rewritten stream) goes chunked: the
        // client's length would no longer be true.
        None => {
            headers.remove(header::CONTENT_LENGTH);
        }
    }
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
