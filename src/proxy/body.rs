//! Bodies: [`Body`], the one type every request and response body travels
//! in (a client's or upstream's stream, owned bytes, nothing, or a stream
//! made by authlens), and the wrappers that report what passes to the
//! exchange's [`Record`].
//!
//! Frames are forwarded as they arrive, untouched: nothing here buffers or
//! copies a body unless someone observes (then the first `capture_limit`
//! bytes are copied aside), or an interceptor asks for the whole body.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use tokio::sync::oneshot;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::record::{Record, RequestCapture};
use crate::exchange::CaptureState;

/// The error type of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A request or response body: what a client or upstream is sending
/// ([`From<Incoming>`]), owned bytes ([`Body::full`]: rewritten or made
/// locally), nothing ([`Body::empty`]), or any stream ([`Body::stream`]: a
/// Server-Sent Events feed, say).
pub struct Body {
    kind: Kind,
}

enum Kind {
    Empty,
    Full(Bytes),
    Incoming(Incoming),
    Stream(UnsyncBoxBody<Bytes, BoxError>),
}

/// The outcome of [`Body::into_bytes`].
#[derive(Debug)]
pub enum Buffered {
    /// The whole body.
    Bytes(Bytes),
    /// The body is larger than the limit: here it is whole again (the bytes
    /// already read come first), so it can still be sent on untouched.
    TooLarge(Body),
}

/// A body stream broke off while it was being read.
#[derive(Debug, thiserror::Error)]
#[error("the body broke off: {0}")]
pub struct BodyError(#[source] BoxError);

// === impl Body ===

impl Body {
    pub fn empty() -> Body {
        Body { kind: Kind::Empty }
    }

    /// A body of owned bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body {
            kind: Kind::Full(bytes.into()),
        }
    }

    /// A body streamed from any [`http_body::Body`] (boxed).
    pub fn stream<B>(body: B) -> Body
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Stream(body.map_err(Into::into).boxed_unsync()),
        }
    }

    /// The bytes of a body made of owned bytes (`None` for a stream, which
    /// [`Body::into_bytes`] reads).
    pub fn as_bytes(&self) -> Option<&Bytes> {
        match &self.kind {
            Kind::Full(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Reads the whole body into memory, up to `limit` bytes. A larger body
    /// comes back unharmed as [`Buffered::TooLarge`]. Trailers are dropped.
    pub async fn into_bytes(self, limit: usize) -> Result<Buffered, BodyError> {
        match self.kind {
            Kind::Empty => return Ok(Buffered::Bytes(Bytes::new())),
            Kind::Full(bytes) if bytes.len() <= limit => return Ok(Buffered::Bytes(bytes)),
            Kind::Full(bytes) => return Ok(Buffered::TooLarge(Body::full(bytes))),
            _ => {}
        }
        let mut body = self;
        match read_capped(&mut body, limit).await.map_err(BodyError)? {
            Ok(bytes) => Ok(Buffered::Bytes(bytes)),
            Err(prefix) => Ok(Buffered::TooLarge(Body::stream(Replay {
                prefix: Some(prefix),
                rest: body,
            }))),
        }
    }

    /// This body, ending early (cleanly) once `shutdown` fires when it is a
    /// stream made by authlens: an endless feed must not hold a closing
    /// connection open.
    pub(crate) fn ending_at(self, shutdown: &CancellationToken) -> Body {
        match self.kind {
            Kind::Stream(inner) => Body::stream(Until {
                inner,
                shutdown: Box::pin(shutdown.clone().cancelled_owned()),
            }),
            kind => Body { kind },
        }
    }
}

impl From<Incoming> for Body {
    fn from(incoming: Incoming) -> Body {
        Body {
            kind: Kind::Incoming(incoming),
        }
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Body {
        Body::full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Body {
        Body::full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Body {
        Body::full(text)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Body {
        Body::full(text)
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Empty => "empty",
            Kind::Full(_) => "bytes",
            Kind::Incoming(_) => "incoming",
            Kind::Stream(_) => "stream",
        };
        f.debug_struct("Body")
            .field("kind", &kind)
            .field("size_hint", &http_body::Body::size_hint(self))
            .finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.kind {
            Kind::Empty => Poll::Ready(None),
            Kind::Full(_) => match std::mem::replace(&mut self.kind, Kind::Empty) {
                Kind::Full(bytes) if !bytes.is_empty() => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                _ => Poll::Ready(None),
            },
            Kind::Incoming(inner) => Pin::new(inner).poll_frame(cx).map_err(Into::into),
            Kind::Stream(inner) => Pin::new(inner).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(bytes) => bytes.is_empty(),
            Kind::Incoming(inner) => inner.is_end_stream(),
            Kind::Stream(inner) => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(bytes) => SizeHint::with_exact(bytes.len() as u64),
            Kind::Incoming(inner) => inner.size_hint(),
            Kind::Stream(inner) => inner.size_hint(),
        }
    }
}

/// Reads `body` to its end, or until more than `limit` bytes arrived: then
/// `Err` holds the bytes read so far (the rest is still in `body`).
pub(crate) async fn read_capped<B>(
    body: &mut B,
    limit: usize,
) -> Result<Result<Bytes, Bytes>, B::Error>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    // One frame (the common case for a small body) is kept without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    let mut size = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        size += data.len();
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            Some(previous) => {
                joined.extend_from_slice(&previous);
                joined.extend_from_slice(&data);
            }
            None => joined.extend_from_slice(&data),
        }
        if size > limit {
            return Ok(Err(first.unwrap_or_else(|| joined.freeze())));
        }
    }
    Ok(Ok(first.unwrap_or_else(|| joined.freeze())))
}

/// Bytes already read from `rest`, then the rest.
struct Replay {
    prefix: Option<Bytes>,
    rest: Body,
}

impl http_body::Body for Replay {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.prefix.take() {
            Some(prefix) => Poll::Ready(Some(Ok(Frame::data(prefix)))),
            None => Pin::new(&mut self.rest).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.prefix.is_none() && self.rest.is_end_stream()
    }
}

/// A stream that ends when the proxy shuts down.
struct Until {
    inner: UnsyncBoxBody<Bytes, BoxError>,
    shutdown: Pin<Box<WaitForCancellationFutureOwned>>,
}

impl http_body::Body for Until {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.shutdown.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // It may end early: only the upper bound still holds.
        let mut hint = SizeHint::new();
        if let Some(upper) = self.inner.size_hint().upper() {
            hint.set_upper(upper);
        }
        hint
    }
}

// === impl RequestBody ===

/// A request body on its way upstream (or into an interceptor), copying
/// its bytes into the exchange's capture as they pass.
pub(crate) struct RequestBody {
    body: Body,
    capture: Option<RequestCapture>,
    /// Fired once the body has been sent (or broke off): the upstream's
    /// response-head timeout only starts counting then.
    done: Option<oneshot::Sender<()>>,
    /// Set when reading the body failed: the client's upload broke off.
    broke: Option<UploadBroke>,
}

/// Why the client's upload broke off, if it did: set by the
/// [`RequestBody`] that failed to read it, asked by the forwarder when the
/// upstream exchange then fails, so the fault is the client's, not the
/// upstream's.
#[derive(Debug, Clone, Default)]
/// The default watches nothing (and allocates nothing): for a request
/// without a body.
pub(crate) struct UploadBroke(Option<Arc<OnceLock<String>>>);

impl UploadBroke {
    /// A watch for an upload that may break off.
    pub(crate) fn new() -> Self {
        UploadBroke(Some(Arc::default()))
    }

    /// The read error, with its causes, when the upload broke off.
    pub(crate) fn cause(&self) -> Option<&str> {
        self.0.as_ref().and_then(|c| c.get()).map(String::as_str)
    }

    fn set(&self, error: &BoxError) {
        let mut cause = error.to_string();
        let mut source = error.source();
        while let Some(e) = source {
            cause.push_str(": ");
            cause.push_str(&e.to_string());
            source = e.source();
        }
        if let Some(slot) = &self.0 {
            let _ = slot.set(cause);
        }
    }
}

impl RequestBody {
    pub(crate) fn new(body: Body, capture: Option<RequestCapture>) -> Self {
        RequestBody {
            body,
            capture,
            done: None,
            broke: None,
        }
    }

    /// Reports to `broke` if reading the body fails.
    pub(crate) fn watch_upload(mut self, broke: UploadBroke) -> Self {
        self.broke = Some(broke);
        self
    }

    /// Signals `done` when the body has been read to its end.
    pub(crate) fn notify_done(mut self, done: oneshot::Sender<()>) -> Self {
        self.done = Some(done);
        self
    }

    /// Lets go of a body that goes nowhere (its upstream is unreachable):
    /// it is still read for `capture` (see [`drain`]).
    pub(crate) fn discard(body: Body, capture: Option<RequestCapture>) {
        drop(RequestBody::new(body, capture));
    }

    /// `body`, reporting to `capture` as it is read (for an interceptor
    /// that may read it, or answer without forwarding it).
    pub(crate) fn tap(body: Body, capture: Option<RequestCapture>) -> Body {
        match capture {
            Some(capture) => Body::stream(RequestBody::new(body, Some(capture))),
            None => body,
        }
    }

    fn ended(&mut self, state: CaptureState) {
        if let Some(capture) = &self.capture {
            capture.end(state);
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(capture), Some(data)) = (&self.capture, frame.data_ref()) {
                    capture.push(data);
                }
            }
            Poll::Ready(None) => self.ended(CaptureState::Complete),
            Poll::Ready(Some(Err(e))) => {
                if let Some(broke) = &self.broke {
                    broke.set(e);
                }
                self.ended(CaptureState::Aborted)
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for RequestBody {
    /// Let go of before its end: the upstream answered without reading all
    /// of it (or the exchange failed, or an interceptor answered). The
    /// upload is over, but the analysis still wants the whole body: it is
    /// read on, for the capture alone (see [`drain`]).
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
        let Some(capture) = self.capture.take() else {
            return;
        };
        if capture.is_closed() {
            return;
        }
        // A body hyper never polled because it was empty still completed.
        if self.body.is_end_stream() {
            capture.end(CaptureState::Complete);
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if capture.copies() => {
                runtime.spawn(drain(std::mem::take(&mut self.body), capture));
            }
            _ => capture.end(CaptureState::Aborted),
        }
    }
}

/// Reads the rest of a request body nobody forwards any more into its
/// capture: until it ends or breaks off, until more arrived than the
/// capture holds (the client is not made to upload more than that for
/// nothing), or until the record stops waiting for it (then it counts as
/// aborted). The bytes go nowhere else.
async fn drain(mut body: Body, capture: RequestCapture) {
    loop {
        let frame = tokio::select! {
            biased;
            _ = capture.closed() => return,
            frame = body.frame() => frame,
        };
        match frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    capture.push(data);
                }
                // Every byte its length announced is here: complete, even
                // if the client goes away before its connection says so.
                if body.is_end_stream() {
                    return capture.end(CaptureState::Complete);
                }
                if capture.is_full() {
                    return capture.end(CaptureState::Truncated);
                }
            }
            Some(Err(_)) => return capture.end(CaptureState::Aborted),
            None => return capture.end(CaptureState::Complete),
        }
    }
}

// === impl ResponseBody ===

/// A response body on its way to the client. It carries the exchange's
/// [`Record`], since the response body is the last thing of an exchange to
/// finish: the record is published when the body ends, breaks off or is
/// dropped.
pub(crate) struct ResponseBody {
    body: Body,
    record: Record,
}

impl ResponseBody {
    pub(crate) fn new(body: Body, record: Record) -> Self {
        ResponseBody { body, record }
    }

    /// A body that is not part of a recorded exchange (the proxy's own
    /// pages and services, or a page already recorded).
    pub(crate) fn unrecorded(body: Body) -> Self {
        ResponseBody::new(body, Record::none())
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Pending => this.record.response_waiting(),
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.record.response_data(data);
                }
            }
            Poll::Ready(None) => this.record.response_done(),
            Poll::Ready(Some(Err(e))) => this.record.response_broke(e),
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // A body hyper never polled because it was empty still completed;
        // otherwise the record, dropped next, tells who went away.
        if self.body.is_end_stream() {
            self.record.response_done();
        }
    }
}

#[cfg(test)]
mod tests;
