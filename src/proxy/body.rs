//! Bodies that stream through the proxy while observers get a capped copy.
//!
//! Frames are forwarded as they arrive, untouched; when someone subscribes to
//! exchanges, the first `capture_limit` bytes are copied aside. The response
//! body is the last thing of an exchange to finish, so it carries the pending
//! exchange and publishes it when it ends, breaks off or is dropped.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::exchange::{
    CaptureState, CapturedBody, Exchange, ExchangeError, FailureSide, ResponseRecord,
};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Accumulates the first bytes of a body and counts the rest.
#[derive(Debug)]
pub(crate) struct Recorder {
    buf: BytesMut,
    limit: usize,
    size: u64,
    truncated: bool,
    state: Option<CaptureState>,
    done_at: Option<Duration>,
    /// Counting only: nobody needs this body's bytes.
    skip: bool,
}

impl Recorder {
    pub(crate) fn new(limit: usize) -> Self {
        Recorder {
            buf: BytesMut::new(),
            limit,
            size: 0,
            truncated: false,
            state: None,
            done_at: None,
            skip: false,
        }
    }

    /// A recorder that counts bytes and timing but keeps no copy.
    pub(crate) fn counting_only() -> Self {
        Recorder {
            skip: true,
            ..Recorder::new(0)
        }
    }

    fn push(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    pub(crate) fn end(&mut self, state: CaptureState, at: Duration) {
        if self.state.is_none() {
            self.state = Some(match state {
                _ if self.skip => CaptureState::NotCaptured,
                CaptureState::Complete if self.truncated => CaptureState::Truncated,
                other => other,
            });
            self.done_at = Some(at);
        }
    }

    /// Takes what was captured; a body still streaming counts as aborted.
    fn take(&mut self) -> (CapturedBody, Option<Duration>) {
        (
            CapturedBody {
                bytes: std::mem::take(&mut self.buf).freeze(),
                size: self.size,
                state: self.state.unwrap_or(CaptureState::Aborted),
            },
            self.done_at,
        )
    }
}

/// The request body on its way upstream.
pub(crate) struct RequestBody {
    inner: Option<Incoming>,
    recorder: Option<(Arc<Mutex<Recorder>>, Instant)>,
    /// Fired once the body has been sent (or broke off): the upstream's
    /// response-head timeout only starts counting then.
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RequestBody {
    pub(crate) fn new(inner: Incoming, recorder: Option<(Arc<Mutex<Recorder>>, Instant)>) -> Self {
        RequestBody {
            inner: Some(inner),
            recorder,
            done: None,
        }
    }

    /// Signals `done` when the body has been read to its end.
    pub(crate) fn notify_done(mut self, done: tokio::sync::oneshot::Sender<()>) -> Self {
        self.done = Some(done);
        self
    }

    /// A body with nothing in it (upgrade requests).
    pub(crate) fn empty() -> Self {
        RequestBody {
            inner: None,
            recorder: None,
            done: None,
        }
    }

    fn finished(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(());
        }
    }

    fn record(&self, f: impl FnOnce(&mut Recorder, Duration)) {
        if let Some((rec, start)) = &self.recorder {
            f(
                &mut rec.lock().unwrap_or_else(|e| e.into_inner()),
                start.elapsed(),
            );
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.record(|r, _| r.push(data));
                }
            }
            Poll::Ready(None) => {
                self.record(|r, at| r.end(CaptureState::Complete, at));
                self.finished();
            }
            Poll::Ready(Some(Err(_))) => {
                self.record(|r, at| r.end(CaptureState::Aborted, at));
                self.finished();
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        // A body hyper never polled because it was empty still completed.
        let state = if self.is_end_stream() {
            CaptureState::Complete
        } else {
            CaptureState::Aborted
        };
        self.record(|r, at| r.end(state, at));
        self.finished();
    }
}

/// Everything needed to publish an exchange once its response body is done.
pub(crate) struct PendingExchange {
    pub(crate) exchange: Exchange,
    pub(crate) request_body: Arc<Mutex<Recorder>>,
    pub(crate) start: Instant,
    pub(crate) publish: Publisher,
}

/// Sends finished exchanges to subscribers.
#[derive(Clone)]
pub(crate) struct Publisher(pub(crate) tokio::sync::broadcast::Sender<Arc<Exchange>>);

impl Publisher {
    /// True when anybody listens; capturing is skipped otherwise.
    pub(crate) fn wanted(&self) -> bool {
        self.0.receiver_count() > 0
    }

    pub(crate) fn send(&self, exchange: Exchange) {
        // No receiver is not an error: outputs may have gone.
        let _ = self.0.send(Arc::new(exchange));
    }
}

impl PendingExchange {
    /// Fills in the request body and publishes.
    pub(crate) fn publish(mut self) {
        let (body, done) = self
            .request_body
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        self.exchange.request.body = body;
        self.exchange.timings.request_done = done;
        self.publish.send(self.exchange);
    }

    fn finish_response(
        mut self,
        recorder: Recorder,
        state: CaptureState,
        error: Option<ExchangeError>,
    ) {
        let mut recorder = recorder;
        recorder.end(state, self.start.elapsed());
        let (body, done) = recorder.take();
        if let Some(resp) = self.exchange.response.as_mut() {
            resp.body = body;
        }
        self.exchange.timings.response_done = done;
        if self.exchange.error.is_none() {
            self.exchange.error = error;
        }
        self.publish();
    }
}

/// The response body on its way to the client.
pub(crate) enum ResponseBody {
    Relayed {
        inner: Incoming,
        /// The capture, the exchange to publish, and since when the upstream
        /// has had nothing to give (to blame a stall on the right side).
        observed: Option<Box<(Recorder, PendingExchange, Option<Instant>)>>,
    },
    /// A body the proxy made itself (error pages); already published.
    Synthetic(Option<Bytes>),
}

impl ResponseBody {
    pub(crate) fn text(text: impl Into<Bytes>) -> Self {
        ResponseBody::Synthetic(Some(text.into()))
    }

    pub(crate) fn empty() -> Self {
        ResponseBody::Synthetic(None)
    }

    /// Relays `inner`; when observed, copies up to `limit` bytes (or, when
    /// `limit` is `None`, only counts them).
    pub(crate) fn relayed(
        inner: Incoming,
        pending: Option<PendingExchange>,
        limit: Option<usize>,
    ) -> Self {
        let recorder = || limit.map_or_else(Recorder::counting_only, Recorder::new);
        ResponseBody::Relayed {
            inner,
            observed: pending.map(|p| Box::new((recorder(), p, None))),
        }
    }

    fn finish(&mut self, state: CaptureState, error: Option<ExchangeError>) {
        if let ResponseBody::Relayed { observed, .. } = self
            && let Some(boxed) = observed.take()
        {
            let (recorder, pending, _) = *boxed;
            pending.finish_response(recorder, state, error);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut *self {
            ResponseBody::Synthetic(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            ResponseBody::Relayed { inner, observed } => {
                let polled = Pin::new(inner).poll_frame(cx);
                match polled {
                    Poll::Pending => {
                        if let Some(obs) = observed.as_mut() {
                            obs.2.get_or_insert_with(Instant::now);
                        }
                        Poll::Pending
                    }
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(obs) = observed.as_mut() {
                            obs.2 = None;
                            if let Some(data) = frame.data_ref() {
                                obs.0.push(data);
                            }
                        }
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Poll::Ready(None) => {
                        self.finish(CaptureState::Complete, None);
                        Poll::Ready(None)
                    }
                    Poll::Ready(Some(Err(e))) => {
                        let host = match &*self {
                            ResponseBody::Relayed {
                                observed: Some(obs),
                                ..
                            } => obs
                                .1
                                .exchange
                                .request
                                .uri
                                .authority()
                                .map(|a| a.to_string()),
                            _ => None,
                        };
                        let error = ExchangeError {
                            side: FailureSide::Upstream,
                            message: format!(
                                "upstream {} broke off the response body: {e}",
                                host.as_deref().unwrap_or("server")
                            ),
                        };
                        tracing::warn!("{}", error.message);
                        self.finish(CaptureState::Aborted, Some(error));
                        Poll::Ready(Some(Err(e.into())))
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Synthetic(data) => data.is_none(),
            ResponseBody::Relayed { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Synthetic(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            ResponseBody::Relayed { inner, .. } => inner.size_hint(),
        }
    }
}

/// An upstream silent for this long when the body is dropped is blamed for
/// the cut, rather than the client.
const STALL_BLAME: Duration = Duration::from_secs(10);

impl Drop for ResponseBody {
    fn drop(&mut self) {
        let ended = self.is_end_stream();
        let stalled_for = match self {
            ResponseBody::Relayed {
                observed: Some(obs),
                ..
            } => obs.2.map(|since| since.elapsed()),
            _ => None,
        };
        let error = (!ended).then(|| match stalled_for {
            Some(silent) if silent >= STALL_BLAME => ExchangeError {
                side: FailureSide::Upstream,
                message: format!(
                    "the upstream sent nothing for {} s mid-body, and the connection was closed",
                    silent.as_secs()
                ),
            },
            _ => ExchangeError {
                side: FailureSide::Client,
                message: "the client went away before the response body was complete".into(),
            },
        });
        let state = if ended {
            CaptureState::Complete
        } else {
            CaptureState::Aborted
        };
        self.finish(state, error);
    }
}

/// True when a body with these headers is worth copying for observers:
/// text, JSON, XML, forms and bodies of unknown type. Images, fonts, media
/// and other binary payloads are counted but not copied, which keeps memory
/// and CPU flat on heavy pages.
pub(crate) fn worth_capturing(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    let ct = ct.trim().to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("x-www-form-urlencoded")
        || ct.contains("javascript")
        || ct.contains("graphql")
        || ct.contains("jwt")
        || ct.starts_with("multipart/form-data")
}

/// Builds the response record of an exchange from a response head.
pub(crate) fn response_record(head: &http::response::Parts, synthetic: bool) -> ResponseRecord {
    ResponseRecord {
        status: head.status,
        version: head.version,
        headers: head.headers.clone(),
        body: CapturedBody::default(),
        synthetic,
    }
}
