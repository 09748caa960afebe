//! Requests addressed to the proxy itself (origin-form requests on the proxy
//! port): the built-in identity route, then the installed [`LocalService`],
//! then a page explaining how to use a proxy.
//!
//! Only requests *for* the proxy come here, never requests *through* it
//! (absolute-form or `CONNECT` to the proxy's own address are refused as
//! loops elsewhere). Local answers are not recorded as exchanges.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::body::{Body, ResponseBody};
use super::error::page;
use super::intercept::BoxFuture;
use crate::ca::CertificateAuthority;

/// The path of the identity route: `GET` answers JSON naming the authlens
/// version, the CA fingerprint and the listening address, so tools can tell
/// a running authlens (and which CA it uses) from anything else.
pub const IDENTITY_PATH: &str = "/authlens/identity";

/// Serves requests addressed to the proxy itself (a web view, say).
///
/// A response body may stream for as long as it likes: a body made with
/// [`Body::stream`] is ended cleanly when the proxy shuts down.
pub trait LocalService: Send + Sync + 'static {
    /// Answers `req`, or declines it with `None` (the client then gets the
    /// proxy's usual 400 page).
    fn serve<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a LocalContext,
    ) -> BoxFuture<'a, Option<Response<Body>>>;
}

/// What a [`LocalService`] knows about a request.
pub struct LocalContext {
    peer: SocketAddr,
    listen: SocketAddr,
    shutdown: CancellationToken,
}

impl LocalContext {
    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The proxy's own listening address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    /// Fires when the proxy shuts down.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }
}

/// Answers a request addressed to the proxy itself.
pub(crate) async fn serve(
    shared: &Arc<Shared>,
    peer: Option<SocketAddr>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    if req.method() == Method::GET && req.uri().path() == IDENTITY_PATH {
        return identity(shared);
    }
    if let Some(service) = &shared.hooks.local {
        let ctx = LocalContext {
            peer: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
            listen: shared.local_addr,
            shutdown: shared.shutdown.clone(),
        };
        if let Some(response) = service.serve(req.map(Body::from), &ctx).await {
            return response.map(|body| ResponseBody::unrecorded(body.ending_at(&shared.shutdown)));
        }
    }
    page(
        StatusCode::BAD_REQUEST,
        "authlens: 400 Bad Request (client side)\n\
         This is an HTTP(S) proxy: configure it as your proxy (HTTPS_PROXY=http://THIS_ADDRESS)\n\
         instead of requesting it directly.\n",
    )
}

fn identity(shared: &Shared) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::unrecorded(Body::full(
        shared.identity.clone(),
    )));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The identity route's answer, made once at start.
pub(crate) fn identity_json(ca: &CertificateAuthority, listen: SocketAddr) -> Bytes {
    serde_json::json!({
        "authlens": env!("CARGO_PKG_VERSION"),
        "ca_sha256": ca.fingerprint_sha256(),
        "listen": listen.to_string(),
    })
    .to_string()
    .into()
}
