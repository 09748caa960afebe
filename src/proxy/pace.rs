//! Bodies that trickle or stall are cut off: a client's request body must
//! keep a minimum pace, and an upstream's response body must not go silent
//! mid-body for long. Without this, a client sending one byte a second (each
//! byte resetting the idle timer) or an upstream stalling mid-body holds a
//! connection for minutes.
//!
//! Only time spent waiting *on the sender* counts: while the other side is
//! not reading (back-pressure), the body is not polled and no clock runs,
//! so a slow reader is never blamed on the sender.
//!
//! Must not decide what the client is answered: the wrapper fails the body
//! with [`TooSlow`], and the forwarder turns that into a 408 (or a cut
//! response body the record blames on the upstream).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::body::{Body, BoxError};
use super::error::seconds;
use crate::config::Timeouts;

/// A body that did not keep the pace it must.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TooSlow {
    #[error(
        "the client sent {received} bytes of its request body in {}, too slowly: a body may keep authlens waiting {} plus 1 s per {rate} bytes received (--client-body-timeout, --client-body-min-rate)",
        seconds(*elapsed),
        seconds(*grace)
    )]
    Client {
        received: u64,
        elapsed: Duration,
        grace: Duration,
        rate: u64,
    },
    #[error(
        "authlens cut it off: the upstream sent nothing for {} mid-body, after {received} bytes (--upstream-body-stall)",
        seconds(*stall)
    )]
    Upstream { received: u64, stall: Duration },
}

/// The rule a body must keep.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// In all, waiting on the sender may take `grace` plus one second per
    /// `rate` bytes received (Apache's `mod_reqtimeout` `MinRate` model): a
    /// slow but steady upload goes through, a trickle does not.
    MinRate { grace: Duration, rate: u64 },
    /// No single wait may last longer than this.
    Stall(Duration),
}

/// Where a client body that was cut off says so, for the forwarder: the
/// upstream exchange then fails, and the client is the one to blame.
#[derive(Debug, Clone, Default)]
/// Empty (nothing allocated) for a body that is not paced.
pub(crate) struct Tripped(Option<Arc<OnceLock<TooSlow>>>);

impl Tripped {
    pub(crate) fn get(&self) -> Option<&TooSlow> {
        self.0.as_ref().and_then(|t| t.get())
    }
}

/// `body` from the client, cut off with [`TooSlow::Client`] when it falls
/// behind the configured pace (unchanged when the limit is off).
pub(crate) fn client_body(body: Body, timeouts: &Timeouts) -> (Body, Tripped) {
    if timeouts.client_body.is_zero() || http_body::Body::is_end_stream(&body) {
        return (body, Tripped::default());
    }
    let tripped = Tripped(Some(Arc::default()));
    let rule = Rule::MinRate {
        grace: timeouts.client_body,
        rate: timeouts.client_body_min_rate.max(1),
    };
    (
        Body::stream(Paced::new(body, rule, Some(tripped.clone()))),
        tripped,
    )
}

/// `body` from an upstream, cut off with [`TooSlow::Upstream`] when it goes
/// silent mid-body for longer than the configured stall.
pub(crate) fn upstream_body(body: Body, timeouts: &Timeouts) -> Body {
    if timeouts.upstream_body_stall.is_zero() || http_body::Body::is_end_stream(&body) {
        return body;
    }
    Body::stream(Paced::new(
        body,
        Rule::Stall(timeouts.upstream_body_stall),
        None,
    ))
}

/// The wrapper: counts the time spent waiting on `inner` and fails once it
/// exceeds what the rule allows.
struct Paced {
    inner: Body,
    rule: Rule,
    tripped: Option<Tripped>,
    /// Waiting counted so far (the current wait not included).
    waited: Duration,
    /// Since when `inner` has had nothing to give, while asked for more.
    waiting_since: Option<Instant>,
    received: u64,
    /// When the body was first asked for data.
    started: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    failed: bool,
}

impl Paced {
    fn new(inner: Body, rule: Rule, tripped: Option<Tripped>) -> Self {
        Paced {
            inner,
            rule,
            tripped,
            waited: Duration::ZERO,
            waiting_since: None,
            received: 0,
            started: None,
            timer: None,
            failed: false,
        }
    }

    /// How much waiting the rule allows in all, given what arrived.
    fn allowance(&self) -> Duration {
        match self.rule {
            Rule::MinRate { grace, rate } => {
                grace + Duration::from_secs_f64(self.received as f64 / rate as f64)
            }
            Rule::Stall(stall) => stall,
        }
    }

    fn error(&self, now: Instant) -> TooSlow {
        match self.rule {
            Rule::MinRate { grace, rate } => TooSlow::Client {
                received: self.received,
                // To the tenth of a second: it is for people to read.
                elapsed: Duration::from_millis(
                    self.started
                        .map_or(0, |s| (now - s).as_millis() as u64 / 100 * 100),
                ),
                grace,
                rate,
            },
            Rule::Stall(stall) => TooSlow::Upstream {
                received: self.received,
                stall,
            },
        }
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        // The clock is read when a wait starts or ends, not on every poll: a
        // body whose bytes are there when asked for costs no clock read.
        if this.started.is_none() && matches!(this.rule, Rule::MinRate { .. }) {
            this.started = Some(Instant::now());
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                if let Some(since) = this.waiting_since.take() {
                    this.waited += Instant::now() - since;
                }
                if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref)) {
                    let size = data.map_or(0, |d| d.len() as u64);
                    this.received += size;
                    if size > 0 && matches!(this.rule, Rule::Stall(_)) {
                        this.waited = Duration::ZERO;
                    }
                }
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let since = *this.waiting_since.get_or_insert_with(Instant::now);
                let deadline = since + this.allowance().saturating_sub(this.waited);
                match &mut this.timer {
                    Some(timer) if timer.deadline() == deadline => {}
                    Some(timer) => timer.as_mut().reset(deadline),
                    None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                }
                let timer = this.timer.as_mut().expect("set above");
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.failed = true;
                let error = this.error(Instant::now());
                if let Some(tripped) = this.tripped.as_ref().and_then(|t| t.0.as_ref()) {
                    let _ = tripped.set(error.clone());
                }
                Poll::Ready(Some(Err(Box::new(error))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    /// One byte every `gap`, `chunks` times; then the body ends (`ends`) or
    /// goes silent forever.
    struct Trickle {
        left: usize,
        gap: Duration,
        ends: bool,
        next: Pin<Box<Sleep>>,
    }

    fn trickle(chunks: usize, gap: Duration, ends: bool) -> Body {
        Body::stream(Trickle {
            left: chunks,
            gap,
            ends,
            next: Box::pin(tokio::time::sleep(gap)),
        })
    }

    impl http_body::Body for Trickle {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            match self.left {
                0 if self.ends => return Poll::Ready(None),
                0 => return Poll::Pending,
                _ => {}
            }
            if self.next.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.left -= 1;
            let at = Instant::now() + self.gap;
            self.next.as_mut().reset(at);
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"x")))))
        }
    }

    fn timeouts(client_ms: u64, rate: u64, stall_ms: u64) -> Timeouts {
        Timeouts {
            client_body: Duration::from_millis(client_ms),
            client_body_min_rate: rate,
            upstream_body_stall: Duration::from_millis(stall_ms),
            ..Timeouts::default()
        }
    }

    #[tokio::test]
    async fn a_trickling_client_body_is_cut_once_its_allowance_is_spent() {
        // A byte every 100 ms against 500 ms plus 1 ms per byte.
        let slow = trickle(usize::MAX, Duration::from_millis(100), false);
        let (body, tripped) = client_body(slow, &timeouts(500, 1000, 0));
        let started = Instant::now();
        let error = body.collect().await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(30),
            "{elapsed:?}"
        );
        assert!(
            matches!(tripped.get(), Some(TooSlow::Client { received, .. }) if *received >= 1),
            "{error}"
        );
        assert!(
            error.to_string().contains("--client-body-timeout"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_steady_client_body_is_never_cut() {
        // 20 bytes/s for a second against 0.2 s plus 1 s per 10 bytes: each
        // byte earns twice the wait it costs.
        let steady = trickle(20, Duration::from_millis(50), true);
        let (body, tripped) = client_body(steady, &timeouts(200, 10, 0));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 20);
        assert!(tripped.get().is_none());
    }

    #[tokio::test]
    async fn an_upstream_body_may_pause_but_not_stall() {
        // Pauses of 100 ms under a 1 s stall limit, then silence.
        let body = trickle(5, Duration::from_millis(100), false);
        let body = upstream_body(body, &timeouts(0, 1, 1000));
        let started = Instant::now();
        let error = body.collect().await.unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(1500));
        assert!(
            error
                .to_string()
                .contains("nothing for 1 s mid-body, after 5 bytes"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_zero_limit_turns_the_rule_off() {
        let silent = trickle(0, Duration::from_millis(10), false);
        let (body, _) = client_body(silent, &timeouts(0, 1, 0));
        let polled = tokio::time::timeout(Duration::from_millis(300), body.collect()).await;
        assert!(polled.is_err(), "still waiting");
    }
}
