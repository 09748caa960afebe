//! The one driver of "stream in, consumer out": it feeds the analysis from
//! the exchange stream, the HAR recorder from the same stream, and every
//! outlet from the event stream, and drains each of them on shutdown. Also
//! the event hub (the broadcast plus a bounded history for late
//! subscribers) and the tally of what a run found.
//!
//! Nothing here formats an event or knows a rule.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_util::sync::CancellationToken;

use crate::oauth::{Event, Outcome, Severity};

/// How many events a subscriber may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

/// Hands `each` every item of `rx`, in order, until the channel closes or
/// `done` is cancelled; after `done`, what was already sent is still handed
/// over (nothing captured before Ctrl-C is lost). Stops early, returning the
/// error, when `each` fails. `what` names the consumer in a warning when it
/// falls behind.
pub(crate) async fn drain<T: Clone, E>(
    rx: &mut broadcast::Receiver<T>,
    done: &CancellationToken,
    what: &str,
    mut each: impl FnMut(T) -> Result<(), E>,
) -> Result<(), E> {
    loop {
        tokio::select! {
            biased;
            received = rx.recv() => match received {
                Ok(item) => each(item)?,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("the {what} fell behind and skipped {n} item(s)");
                }
                Err(RecvError::Closed) => return Ok(()),
            },
            _ = done.cancelled() => loop {
                match rx.try_recv() {
                    Ok(item) => each(item)?,
                    Err(TryRecvError::Lagged(n)) => {
                        tracing::warn!("the {what} fell behind and skipped {n} item(s)");
                    }
                    Err(_) => return Ok(()),
                }
            },
        }
    }
}

/// The event stream of a run: every event is broadcast to the outlets and
/// kept in a bounded history, so a subscriber that joins late (a web page
/// opened mid-session) first gets what already happened.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<Event>>,
    /// Held while publishing and while subscribing, so a new subscriber's
    /// history and live stream neither overlap nor leave a gap.
    history: Arc<Mutex<History>>,
}

struct History {
    recent: VecDeque<Arc<Event>>,
    capacity: usize,
}

/// What a late subscriber gets: the recent history, then the live stream
/// from exactly the next event on.
pub struct EventSubscription {
    pub history: Vec<Arc<Event>>,
    pub live: broadcast::Receiver<Arc<Event>>,
}

impl EventHub {
    /// A hub keeping the last `capacity` events.
    pub(crate) fn new(capacity: usize) -> EventHub {
        let (sender, _) = broadcast::channel(EVENT_BUFFER);
        EventHub {
            sender,
            history: Arc::new(Mutex::new(History {
                recent: VecDeque::new(),
                capacity,
            })),
        }
    }

    pub(crate) fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.capacity > 0 {
            if history.recent.len() == history.capacity {
                history.recent.pop_front();
            }
            history.recent.push_back(event.clone());
        }
        // No subscriber is not an error: outlets may have gone.
        let _ = self.sender.send(event);
    }

    /// The history so far and the live stream after it.
    pub fn subscribe(&self) -> EventSubscription {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        EventSubscription {
            history: history.recent.iter().cloned().collect(),
            live: self.sender.subscribe(),
        }
    }

    /// The live stream only (outlets subscribed before traffic flows).
    pub(crate) fn live(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

/// What a run (or a replayed recording) found, for the closing line and the
/// exit status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Exchanges analysed.
    pub exchanges: usize,
    /// Authorization requests seen (sign-in attempts).
    pub attempts: usize,
    /// Attempts that ended with tokens, and attempts that failed.
    pub signed_in: usize,
    pub failed: usize,
    pub errors: usize,
    pub warnings: usize,
    /// Findings by rule id.
    pub by_rule: BTreeMap<&'static str, usize>,
}

impl Tally {
    pub(crate) fn count(&mut self, event: &Event) {
        match event {
            Event::Authorize(_) => self.attempts += 1,
            Event::Finding(f) => {
                *self.by_rule.entry(f.rule.id()).or_default() += 1;
                match f.severity {
                    Severity::Error => self.errors += 1,
                    Severity::Warning => self.warnings += 1,
                    Severity::Info => {}
                }
            }
            Event::Verdict(v) => match v.outcome {
                Outcome::SignedIn => self.signed_in += 1,
                Outcome::Failed => self.failed += 1,
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{AttemptId, Verdict};
    use time::OffsetDateTime;

    fn verdict(n: u64) -> Event {
        Event::Verdict(Verdict {
            time: OffsetDateTime::UNIX_EPOCH,
            attempt: Some(AttemptId(n)),
            host: "idp.test".into(),
            client_id: None,
            outcome: Outcome::SignedIn,
            summary: String::new(),
            errors: 0,
            warnings: 0,
            duration: None,
        })
    }

    #[tokio::test]
    async fn a_late_subscriber_gets_the_history_then_the_live_stream_without_gap_or_overlap() {
        let hub = EventHub::new(2);
        for n in 1..=3 {
            hub.publish(verdict(n));
        }
        let mut sub = hub.subscribe();
        hub.publish(verdict(4));
        let attempts: Vec<_> = sub.history.iter().map(|e| e.attempt()).collect();
        assert_eq!(attempts, [Some(AttemptId(2)), Some(AttemptId(3))]);
        assert_eq!(sub.live.recv().await.unwrap().attempt(), Some(AttemptId(4)));
        assert!(sub.live.try_recv().is_err());
    }

    #[tokio::test]
    async fn drain_hands_over_what_was_sent_before_done() {
        let (tx, mut rx) = broadcast::channel(8);
        let done = CancellationToken::new();
        for n in 0..5 {
            tx.send(n).unwrap();
        }
        done.cancel();
        let mut seen = Vec::new();
        drain(&mut rx, &done, "test", |n| {
            seen.push(n);
            Ok::<_, ()>(())
        })
        .await
        .unwrap();
        assert_eq!(seen, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn drain_stops_at_the_first_failure() {
        let (tx, mut rx) = broadcast::channel(8);
        for n in 0..5 {
            tx.send(n).unwrap();
        }
        drop(tx);
        let mut seen = Vec::new();
        let result = drain(&mut rx, &CancellationToken::new(), "test", |n| {
            seen.push(n);
            if n == 2 { Err(n) } else { Ok(()) }
        })
        .await;
        assert_eq!(result, Err(2));
        assert_eq!(seen, [0, 1, 2]);
    }
}
