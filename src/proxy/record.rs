//! The exchange being built for one request, and its publication.
//!
//! A [`Record`] is published exactly once, by [`Record::publish`], however
//! the exchange ends: its response body ends or breaks off, the proxy
//! answers with an error page, an interceptor drops the request, or the
//! client goes away (the record is dropped unpublished). It knows nothing of
//! sockets or body types: the bodies report their bytes and their end here.
//! With nobody subscribed, a record holds nothing and copies nothing.
//!
//! An exchange is published once both sides are done. An upstream may
//! answer before it read the request body (a server refusing a JSON body
//! does), and the response may reach the client while the rest of the body
//! is still on its way: the body is then read on for the analysis (see
//! `body::drain`), and the record waits for its end, a short while at most
//! ([`REQUEST_BODY_WAIT`]; on shutdown, only until the proxy stops waiting
//! for connections, when it flushes every waiting record, so each one is
//! published before the proxy returns), so the analysis gets the whole body. A body that did not end by then is published as it
//! is, marked [`CaptureState::Aborted`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::Uri;
use time::OffsetDateTime;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};
use tokio_util::task::TaskTracker;

use super::feed::{ExchangeFeed, Glance, Heads, Interest, Sighting, owned_uri, owned_value};
use crate::exchange::{
    CaptureState, CapturedBody, ConnectionInfo, Exchange, ExchangeError, FailureSide, Intervention,
    RequestRecord, ResponseRecord, Timings,
};

/// An upstream silent for this long when the response body is dropped is
/// blamed for the cut, rather than the client.
const STALL_BLAME: Duration = Duration::from_secs(10);

/// How long a finished response waits for the rest of its request body
/// before the exchange is published without it. Generous for a body that
/// is already on its way (read at memory speed), short enough that a client
/// still uploading after its answer cannot hold the exchange back.
const REQUEST_BODY_WAIT: Duration = Duration::from_secs(2);

/// Where a proxy's records come from and go to: exchange numbers, the
/// capture limit, and the subscribers.
pub(crate) struct Recording {
    publisher: Publisher,
    capture_limit: usize,
    next_id: AtomicU64,
}

/// Sends finished exchanges to subscribers.
#[derive(Clone)]
struct Publisher(ExchangeFeed);

impl Recording {
    pub(crate) fn new(events: ExchangeFeed, capture_limit: usize) -> Self {
        Recording {
            publisher: Publisher(events),
            capture_limit,
            next_id: AtomicU64::new(0),
        }
    }

    /// The feed itself, to subscribe later without being a receiver.
    pub(crate) fn feed(&self) -> ExchangeFeed {
        self.publisher.0.clone()
    }

    /// Starts the record of a request whose head is `head`, sent to `uri`
    /// (absolute). Copies the head only when someone observes.
    ///
    /// When only glancing consumers listen (see [`Interest`]), a request
    /// without a body that its head leaves undecided is only noted
    /// ([`Pending`]): the response head decides whether the exchange is
    /// built at all. `body_follows`: a request body comes after the head.
    pub(crate) fn begin(
        &self,
        connection: &Arc<ConnectionInfo>,
        head: &http::request::Parts,
        uri: &Uri,
        body_follows: bool,
    ) -> Record {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let feed = &self.publisher.0;
        let sight = feed
            .sighting()
            .then(|| Box::new(Sight::new(id, head, uri, feed.clone())));
        let interest = feed.interest();
        // Nobody listens: capture nothing.
        if matches!(interest, Interest::Nobody) {
            return Record::new(id, None, None, sight);
        }
        let glance = interest.glance(&Heads {
            method: &head.method,
            uri,
            request_headers: &head.headers,
            response: None,
            body_start: None,
        });
        if glance == Glance::Unwanted {
            interest.skip();
            return Record::new(id, None, None, sight);
        }
        let pending = Box::new(Pending {
            connection: connection.clone(),
            started_at: OffsetDateTime::now_utc(),
            start: Instant::now(),
            request: request_record(head, uri),
            capture_limit: self.capture_limit,
            publisher: self.publisher.clone(),
            settle: None,
            interest,
        });
        if glance == Glance::Wanted || body_follows {
            Record::new(id, Some(Box::new(pending.build_open(id))), None, sight)
        } else {
            Record::new(id, None, Some(pending), sight)
        }
    }
}

/// An exchange noted on its request head, not built yet: for a request
/// without a body that only its response can make wanted. Nothing is
/// captured or copied beyond the request head until then.
struct Pending {
    connection: Arc<ConnectionInfo>,
    started_at: OffsetDateTime,
    start: Instant,
    request: RequestRecord,
    capture_limit: usize,
    publisher: Publisher,
    settle: Option<Settle>,
    /// The consumers that glanced, asked again on the response head.
    interest: Interest,
}

impl Pending {
    /// The exchange from here on, as if it had been built from the start.
    /// The request had no body: its capture is complete and empty.
    fn build(self, id: u64) -> Building {
        let building = self.build_open(id);
        building.request_body.end(CaptureState::Complete);
        building
    }

    /// The exchange with its request body still to come.
    fn build_open(self, id: u64) -> Building {
        let Pending {
            connection,
            started_at,
            start,
            request,
            capture_limit,
            publisher,
            settle,
            interest: _,
        } = self;
        let request_body = RequestCapture::new(
            Recorder::for_headers(&request.headers, capture_limit),
            start,
        );
        Building {
            exchange: Exchange {
                id,
                connection,
                started_at,
                request,
                response: None,
                error: None,
                timings: Timings::default(),
                intervention: None,
            },
            start,
            capture_limit,
            request_body,
            response_body: None,
            waiting_since: None,
            settle,
            publisher,
            body_glance: None,
        }
    }

    /// What the glancing consumers say of this response head.
    fn glance(&self, status: http::StatusCode, headers: &http::HeaderMap) -> Glance {
        self.interest.glance(&Heads {
            method: &self.request.method,
            uri: &self.request.uri,
            request_headers: &self.request.headers,
            response: Some((status, headers)),
            body_start: None,
        })
    }
}

impl Publisher {
    fn send(&self, exchange: Exchange) {
        self.0.publish(exchange);
    }
}

/// The capture of a request body, shared by the record and the body on its
/// way upstream, which may still stream after the response head arrived,
/// or even after the response ended (then it is read on for the capture
/// alone).
#[derive(Clone)]
pub(crate) struct RequestCapture {
    recorder: Arc<Mutex<Recorder>>,
    /// When the exchange started.
    start: Instant,
    /// Cancelled once the body ended (however it did), or once the record
    /// was published without waiting for it: nobody wants more of it.
    closed: CancellationToken,
}

/// What a record needs to wait for its request body after the response
/// ended: the proxy's tracker of such waits (its shutdown waits for them)
/// and its flush signal (the proxy fires it when it stops waiting for
/// connections: every wait then publishes at once, with what it has, before
/// the proxy returns).
struct Settle {
    tasks: TaskTracker,
    flush: CancellationToken,
    /// [`REQUEST_BODY_WAIT`].
    wait: Duration,
}

/// The exchange being built for one request; see the module docs.
pub(crate) struct Record {
    id: u64,
    /// `None` when nobody observes, while pending, and once published.
    building: Option<Box<Building>>,
    /// Set while the response head is awaited to decide (see
    /// [`Recording::begin`]).
    pending: Option<Box<Pending>>,
    /// Set while sightings are on (see [`ExchangeFeed::sight`]), until
    /// published: built or not, every exchange is sighted.
    sight: Option<Box<Sight>>,
}

/// The sighting of an exchange on its way, and what it needs to finish it.
struct Sight {
    row: Box<Sighting>,
    start: Instant,
    /// The response was made by authlens.
    synthetic: bool,
    waiting_since: Option<Instant>,
    feed: ExchangeFeed,
}

struct Building {
    exchange: Exchange,
    start: Instant,
    capture_limit: usize,
    request_body: RequestCapture,
    /// Set with the response head.
    response_body: Option<Recorder>,
    /// Since when the response body has had nothing to give (to blame a
    /// stall on the right side).
    waiting_since: Option<Instant>,
    /// Set by [`Record::settle_with`]; without it the record is published
    /// at once, whatever the request body's state.
    settle: Option<Settle>,
    publisher: Publisher,
    /// Set while the glancing consumers wait for the first bytes of the
    /// response body to decide (a page without a type): the exchange is let
    /// go, not published, if they do not want it.
    body_glance: Option<Interest>,
}

/// How the exchange ended.
enum End {
    /// The response body ended (or broke off).
    Body {
        state: CaptureState,
        error: Option<ExchangeError>,
    },
    /// No response body follows: the exchange failed.
    Failed(ExchangeError),
}

// === impl Record ===

impl Record {
    /// A record of nothing: for answers that are not exchanges (the proxy's
    /// own pages and services).
    pub(crate) fn none() -> Record {
        Record::none_with(0)
    }

    fn none_with(id: u64) -> Record {
        Record::new(id, None, None, None)
    }

    fn new(
        id: u64,
        building: Option<Box<Building>>,
        pending: Option<Box<Pending>>,
        sight: Option<Box<Sight>>,
    ) -> Record {
        Record {
            id,
            building,
            pending,
            sight,
        }
    }

    /// Builds a pending exchange now: something only a built exchange can
    /// hold happens to it (an interceptor's mark or rewrite).
    fn promote(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.building = Some(Box::new(pending.build(self.id)));
        }
    }

    /// A pending exchange whose response head (real or made) is `head`:
    /// built when a glancing consumer wants it, else let go (and counted
    /// as skipped).
    fn decide(&mut self, status: http::StatusCode, headers: &http::HeaderMap) {
        let Some(mut pending) = self.pending.take() else {
            return;
        };
        let verdict = pending.glance(status, headers);
        if verdict == Glance::Unwanted {
            pending.interest.skip();
            return;
        }
        // Undecided on the response head: the body's first bytes decide.
        let interest = std::mem::replace(&mut pending.interest, Interest::Nobody);
        let mut building = pending.build(self.id);
        if verdict == Glance::Undecided {
            building.body_glance = Some(interest);
        }
        self.building = Some(Box::new(building));
    }

    /// A pending exchange ended without a response head: nobody wants it.
    fn let_go(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.interest.skip();
        }
    }

    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Lets the record wait, once its response ended, for the end of a
    /// request body still on its way (see the module docs): the wait is a
    /// task of `tasks`, and ends at once when `flush` fires.
    pub(crate) fn settle_with(&mut self, tasks: &TaskTracker, flush: &CancellationToken) {
        let settle = || Settle {
            tasks: tasks.clone(),
            flush: flush.clone(),
            wait: REQUEST_BODY_WAIT,
        };
        if let Some(b) = self.building.as_mut() {
            b.settle = Some(settle());
        } else if let Some(p) = self.pending.as_mut() {
            p.settle = Some(settle());
        }
    }

    /// The request actually sent differs from the one received (an
    /// interceptor rewrote it): record what is sent.
    pub(crate) fn request_sent(&mut self, head: &http::request::Parts, uri: &Uri) {
        if let Some(s) = self.sight.as_mut() {
            s.row.method = head.method.clone();
            s.row.uri = owned_uri(uri);
        }
        self.promote();
        if let Some(b) = self.building.as_mut() {
            b.exchange.request = request_record(head, uri);
            // What was read of the received body is not what is sent.
            b.request_body.closed.cancel();
            b.request_body = RequestCapture::new(
                Recorder::for_headers(&head.headers, b.capture_limit),
                b.start,
            );
        }
    }

    pub(crate) fn intervention(&mut self, intervention: Intervention) {
        if let Some(s) = self.sight.as_mut() {
            s.row.intervention = Some(intervention.label.clone());
        }
        self.promote();
        if let Some(b) = self.building.as_mut() {
            b.exchange.intervention = Some(intervention);
        }
    }

    /// Where the request body reports its bytes, when anyone observes.
    pub(crate) fn request_capture(&self) -> Option<RequestCapture> {
        self.building.as_ref().map(|b| b.request_body.clone())
    }

    /// The response head arrived (or was made): its body follows.
    pub(crate) fn response_head(&mut self, head: &http::response::Parts, synthetic: bool) {
        if let Some(s) = self.sight.as_mut() {
            s.response(head, synthetic);
        }
        self.decide(head.status, &head.headers);
        if let Some(b) = self.building.as_mut() {
            b.exchange.response = Some(response_record(head, synthetic));
            b.exchange.timings.response_head = Some(b.start.elapsed());
            b.response_body = Some(Recorder::for_headers(&head.headers, b.capture_limit));
        }
    }

    pub(crate) fn response_data(&mut self, data: &[u8]) {
        if let Some(s) = self.sight.as_mut() {
            s.waiting_since = None;
            *s.row.size.get_or_insert(0) += data.len() as u64;
        }
        if let Some(b) = self.building.as_mut() {
            b.waiting_since = None;
            if let Some(r) = b.response_body.as_mut() {
                r.push(data);
            }
            if b.body_glance.is_some() && b.body_glance_done() == Some(Glance::Unwanted) {
                self.let_go_unwanted();
            }
        }
    }

    /// The glancing consumers did not want the exchange after all.
    fn let_go_unwanted(&mut self) {
        if let Some(b) = self.building.take()
            && let Some(interest) = &b.body_glance
        {
            interest.skip();
        }
    }

    /// The response body has nothing to give right now.
    pub(crate) fn response_waiting(&mut self) {
        if let Some(b) = self.building.as_mut() {
            b.waiting_since.get_or_insert_with(Instant::now);
        }
        if let Some(s) = self.sight.as_mut() {
            s.waiting_since.get_or_insert_with(Instant::now);
        }
    }

    /// The response body ended normally.
    pub(crate) fn response_done(&mut self) {
        self.publish(End::Body {
            state: CaptureState::Complete,
            error: None,
        });
    }

    /// The response body broke off with `cause`.
    pub(crate) fn response_broke(&mut self, cause: &dyn std::fmt::Display) {
        let local = match (&self.building, &self.sight) {
            (Some(b), _) => b.exchange.response.as_ref().is_some_and(|r| r.synthetic),
            (None, Some(s)) => s.synthetic,
            (None, None) => false,
        };
        let error = if local {
            ExchangeError {
                side: FailureSide::Proxy,
                message: format!("a response made by authlens broke off: {cause}"),
            }
        } else {
            let uri = match (&self.building, &self.sight) {
                (Some(b), _) => Some(&b.exchange.request.uri),
                (None, Some(s)) => Some(&s.row.uri),
                (None, None) => None,
            };
            let host = uri.and_then(|u| u.authority().map(|a| a.to_string()));
            ExchangeError {
                side: FailureSide::Upstream,
                message: format!(
                    "upstream {} broke off the response body: {cause}",
                    host.as_deref().unwrap_or("server")
                ),
            }
        };
        tracing::warn!(exchange = self.id, "{}", error.message);
        self.publish(End::Body {
            state: CaptureState::Aborted,
            error: Some(error),
        });
    }

    /// The exchange failed before any response body: `page` is the answer
    /// the client got instead (an error page), if any.
    pub(crate) fn fail(
        &mut self,
        error: ExchangeError,
        page: Option<(&http::response::Parts, Bytes)>,
    ) {
        match &page {
            Some((head, text)) => {
                if let Some(s) = self.sight.as_mut() {
                    s.response(head, true);
                    s.row.size = Some(text.len() as u64);
                }
                self.decide(head.status, &head.headers);
            }
            None => self.let_go(),
        }
        if let Some(b) = self.building.as_mut()
            && let Some((head, text)) = page
        {
            let elapsed = b.start.elapsed();
            let mut record = response_record(head, true);
            record.body = CapturedBody::complete(text);
            b.exchange.response = Some(record);
            b.exchange.timings.response_head = Some(elapsed);
            b.exchange.timings.response_done = Some(elapsed);
        }
        self.publish(End::Failed(error));
    }

    /// The one place an exchange is published; later calls do nothing. The
    /// response side is settled now; the request side when its body ended,
    /// or was given up on (see the module docs).
    fn publish(&mut self, end: End) {
        if let Some(sight) = self.sight.take() {
            sight.finish(&end);
        }
        // Still waiting for the body to decide: what was captured decides.
        if let Some(b) = self.building.as_mut()
            && b.body_glance.is_some()
            && b.body_glance_now() == Glance::Unwanted
        {
            self.let_go_unwanted();
            return;
        }
        let Some(mut b) = self.building.take() else {
            return;
        };
        b.response_ended(end);
        match b.settle.take() {
            Some(Settle { tasks, flush, wait })
                if !b.request_body.is_closed()
                    && !flush.is_cancelled()
                    && tokio::runtime::Handle::try_current().is_ok() =>
            {
                tasks.spawn(async move {
                    tokio::select! {
                        _ = b.request_body.closed() => {}
                        _ = tokio::time::sleep(wait) => {}
                        _ = flush.cancelled() => {}
                    }
                    b.send();
                });
            }
            _ => b.send(),
        }
    }
}

// === impl Building ===

impl Building {
    /// The glancing consumers' verdict once the captured start of the
    /// response body has something besides white space (or the capture is
    /// full); `None` until then. Decided once.
    fn body_glance_done(&mut self) -> Option<Glance> {
        let recorder = self.response_body.as_ref()?;
        if !recorder.truncated && recorder.buf.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        Some(self.body_glance_now())
    }

    /// The glancing consumers' verdict on the response body captured so
    /// far; once they want it, they are not asked again.
    fn body_glance_now(&mut self) -> Glance {
        let Some(interest) = &self.body_glance else {
            return Glance::Wanted;
        };
        let response = self.exchange.response.as_ref();
        let verdict = interest.glance(&Heads {
            method: &self.exchange.request.method,
            uri: &self.exchange.request.uri,
            request_headers: &self.exchange.request.headers,
            response: response.map(|r| (r.status, &r.headers)),
            body_start: Some(self.response_body.as_ref().map_or(&[][..], |r| &r.buf[..])),
        });
        if verdict != Glance::Unwanted {
            self.body_glance = None;
        }
        verdict
    }

    /// Records how the response side ended.
    fn response_ended(&mut self, end: End) {
        let error = match end {
            End::Body { state, error } => {
                if let Some(mut recorder) = self.response_body.take() {
                    recorder.end(state, self.start.elapsed());
                    let (body, done) = recorder.take();
                    if let Some(response) = self.exchange.response.as_mut() {
                        response.body = body;
                    }
                    self.exchange.timings.response_done = done;
                }
                error
            }
            End::Failed(error) => Some(error),
        };
        if self.exchange.error.is_none() {
            self.exchange.error = error;
        }
    }

    /// Takes the request body as far as it came, and publishes.
    fn send(mut self) {
        let (body, done) = self.request_body.take();
        self.exchange.request.body = body;
        self.exchange.timings.request_done = done;
        self.publisher.send(self.exchange);
    }
}

impl Drop for Record {
    /// Dropped unpublished: the request future was dropped before a response
    /// head (the client closed or reset the stream, the connection was cut),
    /// or the response body was dropped before its end. The request may well
    /// have reached the upstream, so it is still published, blaming the side
    /// that most likely went away.
    fn drop(&mut self) {
        // Pending, it ends without a response head: nobody wants it.
        self.let_go();
        let (responded, waiting_since) = match (&self.building, &self.sight) {
            (Some(b), _) => (b.response_body.is_some(), b.waiting_since),
            // Not built, but sighted.
            (None, Some(s)) => (s.row.status.is_some(), s.waiting_since),
            (None, None) => return,
        };
        let end = if !responded {
            End::Failed(ExchangeError {
                side: FailureSide::Client,
                message: "the client went away before the response arrived".into(),
            })
        } else {
            let error = match waiting_since.map(|since| since.elapsed()) {
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
            };
            End::Body {
                state: CaptureState::Aborted,
                error: Some(error),
            }
        };
        self.publish(end);
    }
}

// === impl Sight ===

impl Sight {
    fn new(id: u64, head: &http::request::Parts, uri: &Uri, feed: ExchangeFeed) -> Sight {
        Sight {
            row: Box::new(Sighting {
                id,
                started_at: OffsetDateTime::now_utc(),
                method: head.method.clone(),
                uri: owned_uri(uri),
                status: None,
                content_type: None,
                size: None,
                duration: None,
                error: None,
                intervention: None,
            }),
            start: Instant::now(),
            synthetic: false,
            waiting_since: None,
            feed,
        }
    }

    fn response(&mut self, head: &http::response::Parts, synthetic: bool) {
        self.row.status = Some(head.status);
        self.row.content_type = head
            .headers
            .get(http::header::CONTENT_TYPE)
            .map(owned_value);
        self.row.size = Some(0);
        self.synthetic = synthetic;
    }

    /// Hands the sighting over, ended as `end` says.
    fn finish(self, end: &End) {
        let Sight {
            mut row,
            start,
            feed,
            ..
        } = self;
        let error = match end {
            End::Body { error, .. } => error.as_ref(),
            End::Failed(error) => Some(error),
        };
        row.error = error.map(|e| e.message.clone());
        row.duration = Some(start.elapsed());
        feed.sighted(row);
    }
}

// === impl RequestCapture ===

impl RequestCapture {
    pub(crate) fn new(recorder: Recorder, start: Instant) -> Self {
        RequestCapture {
            recorder: Arc::new(Mutex::new(recorder)),
            start,
            closed: CancellationToken::new(),
        }
    }

    pub(crate) fn push(&self, data: &[u8]) {
        lock(&self.recorder).push(data);
    }

    /// The body ended with `state`; only the first end counts.
    pub(crate) fn end(&self, state: CaptureState) {
        lock(&self.recorder).end(state, self.start.elapsed());
        self.closed.cancel();
    }

    /// True once the body ended or nobody wants more of it.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Completes once the body ended or nobody wants more of it.
    pub(crate) fn closed(&self) -> WaitForCancellationFuture<'_> {
        self.closed.cancelled()
    }

    /// True when this capture copies bytes (it does not only count them).
    pub(crate) fn copies(&self) -> bool {
        !lock(&self.recorder).skip
    }

    /// True once more bytes arrived than the capture holds.
    pub(crate) fn is_full(&self) -> bool {
        lock(&self.recorder).truncated
    }

    /// Takes what was captured (a body still streaming counts as aborted),
    /// and closes the capture.
    pub(crate) fn take(&self) -> (CapturedBody, Option<Duration>) {
        self.closed.cancel();
        lock(&self.recorder).take()
    }
}

// === impl Recorder ===

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

    /// A recorder that copies up to `limit` bytes of a body worth reading
    /// (see [`worth_capturing`]), and only counts the bytes of others.
    fn for_headers(headers: &http::HeaderMap, limit: usize) -> Self {
        if worth_capturing(headers) {
            Recorder::new(limit)
        } else {
            Recorder {
                skip: true,
                ..Recorder::new(0)
            }
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.size += data.len() as u64;
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Records how the body ended; only the first end counts.
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
    pub(crate) fn take(&mut self) -> (CapturedBody, Option<Duration>) {
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

/// Locks a capture shared with a body, ignoring poisoning (a panicking
/// observer must not stop the traffic).
fn lock(recorder: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    recorder.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when a body with these headers is worth copying for observers:
/// text, JSON, XML, forms and bodies of unknown type. Images, fonts, media
/// and other binary payloads are counted but not copied, which keeps memory
/// and CPU flat on heavy pages.
fn worth_capturing(headers: &http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    // Compared without a lower-case copy: this runs for every body.
    let ct = ct.trim().as_bytes();
    let starts = |p: &str| ct.len() >= p.len() && ct[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    let has = |p: &str| {
        ct.windows(p.len())
            .any(|w| w.eq_ignore_ascii_case(p.as_bytes()))
    };
    starts("text/")
        || has("json")
        || has("xml")
        || has("x-www-form-urlencoded")
        || has("javascript")
        || has("graphql")
        || has("jwt")
        || starts("multipart/form-data")
}

fn request_record(head: &http::request::Parts, uri: &Uri) -> RequestRecord {
    RequestRecord {
        method: head.method.clone(),
        uri: uri.clone(),
        version: head.version,
        headers: head.headers.clone(),
        body: CapturedBody::default(),
    }
}

fn response_record(head: &http::response::Parts, synthetic: bool) -> ResponseRecord {
    ResponseRecord {
        status: head.status,
        version: head.version,
        headers: head.headers.clone(),
        body: CapturedBody::default(),
        synthetic,
    }
}

#[cfg(test)]
mod tests;
