//! The interceptor hook: code outside the proxy may forward, rewrite, hold,
//! replay, answer or drop each request on its way upstream (hudsucker's
//! `HttpHandler` is the model).
//!
//! The proxy decides nothing here: it asks the installed [`Interceptor`] and
//! carries out its [`Verdict`]. This module must not know about any protocol
//! on top of HTTP. [`InterceptContext::send_upstream`] lives in `forward.rs`,
//! beside the machinery it reuses.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::body::Body;
use super::upstream::Target;
use crate::exchange::{ConnectionInfo, Intervention, InterventionKind};
use crate::tls::AlpnOffer;

/// A boxed future, so hook traits stay object-safe (`Arc<dyn Interceptor>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sees every request the proxy forwards (intercepted tunnels and plain
/// HTTP; never spliced `--passthrough` tunnels) before an upstream
/// connection is chosen, and decides its fate.
///
/// Time spent in [`Interceptor::intercept`] is not counted against the
/// upstream's response-head timeout, so holding a request is simply
/// awaiting before returning. A hold must end when
/// [`InterceptContext::shutdown`] fires; past the shutdown grace period the
/// proxy stops without it.
pub trait Interceptor: Send + Sync + 'static {
    /// A cheap prefilter: only requests it wants reach
    /// [`Interceptor::intercept`]; the others are forwarded at no cost.
    /// `head.uri` is absolute (`https://host/path?query`).
    fn wants(&self, head: &http::request::Parts, ctx: &InterceptContext) -> bool {
        let _ = (head, ctx);
        true
    }

    /// Decides what happens to `req`, whose URI is absolute. Whatever the
    /// verdict, the connection's target (scheme, host, port) stays the one
    /// the client asked for: a rewritten URI's authority is ignored.
    /// Call [`InterceptContext::mark`] to say what was done and why.
    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict>;

    /// Sees the head of the upstream's response to a request it intercepted,
    /// as it goes to the client.
    fn response(&self, head: &http::response::Parts, ctx: &InterceptContext) {
        let _ = (head, ctx);
    }
}

/// What becomes of an intercepted request.
#[derive(Debug)]
pub enum Verdict {
    /// Send it upstream: unchanged, or rewritten (method, path and query,
    /// headers, body). The exchange records what is actually sent. A body of
    /// known size gets a matching `Content-Length` if the head has one.
    Forward(Request<Body>),
    /// Answer the client with this; the upstream is never contacted.
    Answer(Response<Body>),
    /// Fail it as a network error: the client's connection is closed
    /// (HTTP/1.1) or its stream reset (HTTP/2), without any answer.
    Drop,
}

/// What an interceptor knows about the request in hand, and what it can do
/// besides deciding its fate.
pub struct InterceptContext {
    pub(crate) shared: Arc<Shared>,
    pub(crate) connection: Arc<ConnectionInfo>,
    /// The upstream the client asked for, and the ALPN offer for it.
    pub(crate) target: Target,
    pub(crate) offer: AlpnOffer,
    mark: Mutex<Option<Intervention>>,
}

// === impl InterceptContext ===

impl InterceptContext {
    pub(crate) fn new(
        shared: Arc<Shared>,
        connection: Arc<ConnectionInfo>,
        target: Target,
        offer: AlpnOffer,
    ) -> Self {
        InterceptContext {
            shared,
            connection,
            target,
            offer,
            mark: Mutex::new(None),
        }
    }

    /// The client connection the request arrived on.
    pub fn connection(&self) -> &ConnectionInfo {
        &self.connection
    }

    /// Fires when the proxy shuts down: a held request must be let go then.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shared.shutdown
    }

    /// Records on the exchange what authlens did and why: `label` is a short
    /// stable name (`reuse-code`), `note` one line for a person. The last
    /// mark wins. An [`Verdict::Answer`] is always recorded as
    /// [`InterventionKind::Answered`] and a [`Verdict::Drop`] as
    /// [`InterventionKind::Dropped`], keeping the label and note; a
    /// forwarded request left unmarked is recorded as untouched.
    pub fn mark(&self, kind: InterventionKind, label: impl Into<String>, note: impl Into<String>) {
        *self.mark.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Intervention::new(kind, label, note));
    }

    /// The mark for a verdict of `kind` (see [`InterceptContext::mark`]).
    pub(crate) fn take_mark(&self, forced: Option<InterventionKind>) -> Option<Intervention> {
        let mark = self.mark.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (mark, forced) {
            (Some(mut mark), Some(kind)) => {
                mark.kind = kind;
                Some(mark)
            }
            (None, Some(kind)) => Some(Intervention::new(kind, "interceptor", "")),
            (mark, None) => mark,
        }
    }
}
