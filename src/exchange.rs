//! The exchange: one finished request/response pair as a plain value.
//!
//! This is the only thing the network half hands to the rest of authlens. It
//! knows nothing about OAuth, sockets or clocks: the live proxy builds it from
//! traffic, and a HAR reader can build the very same value from a file, so the
//! analysis runs unchanged on both.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use time::OffsetDateTime;

/// Default cap on how much of each body is copied for observers.
pub const DEFAULT_CAPTURE_LIMIT: usize = 1024 * 1024;

/// One request and (when there was one) its response.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// Unique within one proxy run (or one imported file), increasing in
    /// request start order per connection.
    pub id: u64,
    /// The client connection the request arrived on. Shared by every exchange
    /// of that connection.
    pub connection: Arc<ConnectionInfo>,
    /// Wall-clock time the request head was received.
    pub started_at: OffsetDateTime,
    pub request: RequestRecord,
    /// `None` when no response head was received or produced (the client went
    /// away, or the proxy failed before it could answer).
    pub response: Option<ResponseRecord>,
    /// Set when the exchange did not complete normally; says which side failed.
    pub error: Option<ExchangeError>,
    pub timings: Timings,
    /// Set when authlens itself rewrote, answered, held, dropped or made this
    /// request (a proxy interceptor was at work); `None` for untouched traffic.
    pub intervention: Option<Intervention>,
}

/// Facts about the client connection an exchange travelled on.
#[derive(Debug, Clone, Default)]
pub struct ConnectionInfo {
    /// Unique within one proxy run.
    pub id: u64,
    /// The client's address, when known.
    pub client_addr: Option<SocketAddr>,
    /// The `CONNECT` target (`host:port`) when the request came through a tunnel.
    pub tunnel: Option<String>,
    /// The TLS server name the client sent, when the tunnel was intercepted.
    pub sni: Option<String>,
    /// The application protocol negotiated with the client (`h2`, `http/1.1`).
    pub alpn: Option<String>,
}

/// The request as the client sent it, or as authlens rewrote it when an
/// interceptor did (see [`Exchange::intervention`]); hop-by-hop headers
/// included.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: Method,
    /// Absolute URI: scheme, authority, path and query.
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: CapturedBody,
}

/// The response as the upstream (or the proxy itself) sent it.
#[derive(Debug, Clone)]
pub struct ResponseRecord {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: CapturedBody,
    /// True when the proxy produced this response itself (an error page, a
    /// refusal) instead of relaying one from upstream.
    pub synthetic: bool,
}

/// A copy of a message body, capped in size.
#[derive(Debug, Clone, Default)]
pub struct CapturedBody {
    /// The first bytes of the body, at most the capture limit.
    pub bytes: Bytes,
    /// How many bytes went through in total (may exceed `bytes.len()`).
    pub size: u64,
    pub state: CaptureState,
}

/// How complete a [`CapturedBody`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaptureState {
    /// The whole body is in `bytes`.
    Complete,
    /// The body was larger than the cap: `bytes` holds a prefix. (A request
    /// body nobody forwarded any more is read only up to the cap, so it may
    /// not have ended yet; `size` then counts what was read.)
    Truncated,
    /// The body stream broke off (a reset, a timeout): `bytes` holds what arrived.
    Aborted,
    /// Nobody asked for a copy, or the source (a HAR file) did not record it.
    #[default]
    NotCaptured,
}

impl CapturedBody {
    /// A complete body held in memory (for tests and file importers).
    pub fn complete(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        CapturedBody {
            size: bytes.len() as u64,
            bytes,
            state: CaptureState::Complete,
        }
    }

    /// True when `bytes` holds the entire body.
    pub fn is_complete(&self) -> bool {
        self.state == CaptureState::Complete
    }
}

/// Offsets from [`Exchange::started_at`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timings {
    /// The request body was fully received from the client.
    pub request_done: Option<Duration>,
    /// The response head was received from upstream (or produced).
    pub response_head: Option<Duration>,
    /// The response body was fully sent to the client, or broke off.
    pub response_done: Option<Duration>,
}

/// Which side an exchange failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSide {
    /// The client misbehaved or went away.
    Client,
    /// The upstream server could not be reached or misbehaved.
    Upstream,
    /// authlens itself refused or failed.
    Proxy,
}

/// Why an exchange did not complete normally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeError {
    pub side: FailureSide,
    /// One line, suitable for a log: names the host and the cause.
    pub message: String,
}

/// What authlens did to an exchange on purpose, and why, in the words of
/// the interceptor that did it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intervention {
    pub kind: InterventionKind,
    /// A short stable name for the action (`reuse-code`), for filters and reports.
    pub label: String,
    /// One line for a person: what was done and why.
    pub note: String,
}

/// The kinds of [`Intervention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterventionKind {
    /// The request was changed before it went upstream; the exchange records
    /// what was actually sent.
    Rewritten,
    /// authlens answered the request itself; the upstream never saw it.
    Answered,
    /// The request was held back for a while, then sent on.
    Held,
    /// authlens failed the request as a network error (the connection was
    /// closed or the stream reset); the upstream never saw it.
    Dropped,
    /// authlens made this request itself (a replay or side request); no
    /// client sent it.
    Made,
}

impl Intervention {
    pub fn new(kind: InterventionKind, label: impl Into<String>, note: impl Into<String>) -> Self {
        Intervention {
            kind,
            label: label.into(),
            note: note.into(),
        }
    }
}

impl Exchange {
    /// When the request went on to the upstream: when it arrived, unless
    /// authlens held it back on purpose (`--fault expire-code`, `slow-idp`,
    /// `reuse-code`). The end of a hold is not recorded; the response head
    /// is the closest bound (the upstream's own processing time later).
    /// The analysis judges a held request at this time, and recordings are
    /// replayed in this order, so a replay sees what the live run saw.
    pub fn sent_at(&self) -> OffsetDateTime {
        let held = self
            .intervention
            .as_ref()
            .is_some_and(|i| i.kind == InterventionKind::Held);
        match self.response_at() {
            Some(at) if held => at,
            _ => self.started_at,
        }
    }

    /// Wall-clock time of the response head, when there was one.
    pub fn response_at(&self) -> Option<OffsetDateTime> {
        self.timings.response_head.map(|d| self.started_at + d)
    }
}
