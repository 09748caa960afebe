//! The one driver of "stream in, consumer out": it feeds the analysis from
//! the exchange stream, the HAR recorder from the same stream, and every
//! outlet from the event stream, and drains each of them on shutdown. Also
//! the event hub (the broadcast plus a bounded history for late
//! subscribers) and the tally of what a run found.
//!
//! Nothing here formats an event or knows a rule.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::oauth::{AttemptId, Event, Outcome, Severity};
use crate::proxy::{Delivery, ExchangeStream};

/// How many events a watcher (a web page, a test) may fall behind before it
/// misses some; outlets never miss any (see [`EventHub::outlet`]).
const EVENT_BUFFER: usize = 4096;

/// How many events may wait for one outlet before the analysis waits for it.
const OUTLET_BUFFER: usize = 1024;

/// Where a consumer takes its items from: a channel that can be waited on,
/// and emptied without waiting once the run is over.
pub(crate) trait Source {
    type Item;
    /// The next item; `None` once the channel is closed and empty.
    async fn next(&mut self) -> Option<Self::Item>;
    /// The next item already sent, without waiting.
    fn next_now(&mut self) -> Option<Self::Item>;
}

/// Takes every item of a source, in order, until it closes or `done` is
/// cancelled; after `done`, what was already sent is still taken (nothing
/// captured before Ctrl-C is lost), then it ends.
pub(crate) struct Drain<'a, S> {
    source: &'a mut S,
    done: &'a CancellationToken,
    over: bool,
}

impl<'a, S: Source> Drain<'a, S> {
    pub(crate) fn new(source: &'a mut S, done: &'a CancellationToken) -> Self {
        Drain {
            source,
            done,
            over: false,
        }
    }

    /// The next item, or `None` when the source is closed or `done` was
    /// cancelled and nothing more was sent.
    pub(crate) async fn next(&mut self) -> Option<S::Item> {
        if self.over {
            return self.source.next_now();
        }
        tokio::select! {
            biased;
            received = self.source.next() => received,
            _ = self.done.cancelled() => {
                self.over = true;
                self.source.next_now()
            }
        }
    }
}

impl Source for ExchangeStream {
    type Item = Delivery;
    async fn next(&mut self) -> Option<Delivery> {
        self.recv().await
    }
    fn next_now(&mut self) -> Option<Delivery> {
        self.try_recv()
    }
}

impl<T> Source for mpsc::Receiver<T> {
    type Item = T;
    async fn next(&mut self) -> Option<T> {
        self.recv().await
    }
    fn next_now(&mut self) -> Option<T> {
        self.try_recv().ok()
    }
}

/// The event stream of a run. Outlets (the live log, the JSON lines, the
/// report) each get every event, in order: when one falls behind, the
/// analysis waits for it, and the exchanges wait in the analysis's own
/// queue (bounded by sign-in traffic, see [`crate::proxy::Lane`]). Watchers
/// get a broadcast that may lag, after a bounded history of recent events,
/// so one that joins late (a web page opened mid-session) first gets what
/// already happened.
#[derive(Clone)]
pub struct EventHub {
    sender: broadcast::Sender<Arc<Event>>,
    outlets: Vec<mpsc::Sender<Arc<Event>>>,
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
            outlets: Vec::new(),
            history: Arc::new(Mutex::new(History {
                recent: VecDeque::new(),
                capacity,
            })),
        }
    }

    /// A lossless stream for one outlet, from the next event on. Register
    /// every outlet before cloning the hub for the analysis.
    pub(crate) fn outlet(&mut self) -> mpsc::Receiver<Arc<Event>> {
        let (tx, rx) = mpsc::channel(OUTLET_BUFFER);
        self.outlets.push(tx);
        rx
    }

    /// Hands `event` to every outlet (waiting for room), the history and
    /// the watchers.
    pub(crate) async fn publish(&self, event: Event) {
        let event = Arc::new(event);
        {
            let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
            if history.capacity > 0 {
                if history.recent.len() == history.capacity {
                    history.recent.pop_front();
                }
                history.recent.push_back(event.clone());
            }
            // No watcher is not an error: views may have gone.
            let _ = self.sender.send(event.clone());
        }
        for outlet in &self.outlets {
            // A closed outlet failed and said so when it stopped.
            let _ = outlet.send(event.clone()).await;
        }
    }

    /// The history so far and the live stream after it.
    pub fn subscribe(&self) -> EventSubscription {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        EventSubscription {
            history: history.recent.iter().cloned().collect(),
            live: self.sender.subscribe(),
        }
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
    /// Findings a `--fault` caused (also counted above).
    pub injected: usize,
    /// Errors and warnings a `--fault` did not cause: the app's own, what
    /// `--fail-on` looks at.
    pub app_errors: usize,
    pub app_warnings: usize,
    /// Findings by rule id.
    pub by_rule: BTreeMap<&'static str, usize>,
    /// Answered token requests of the grants that are not a sign-in's code
    /// redemption (refresh, device code, client_credentials, ...), by
    /// `grant_type`: how many were answered and how many of those failed.
    /// A device code's `authorization_pending` answers are not counted.
    pub other_grants: BTreeMap<String, GrantCount>,
    /// Exchanges that may have been sign-in legs but were dropped before
    /// the analysis (an output stalled for good; see the session).
    pub unanalysed: usize,
    /// Recent attempts whose last verdict a `--fault` caused: judged again
    /// (a `reuse-code` copy signed in, then the app's own redemption
    /// failed), such an attempt counts once, as the app saw it end.
    injected_outcomes: BTreeMap<AttemptId, Outcome>,
}

/// Token requests of one grant type answered in a session.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct GrantCount {
    pub answered: usize,
    pub failed: usize,
}

/// Distinct grant types the tally names (a session sending garbage
/// `grant_type`s still ends with one short line).
const COUNTED_GRANTS: usize = 16;

/// How many attempts' verdicts the tally remembers to count a later verdict
/// of the same attempt in its place (a few MiB at most).
const REMEMBERED_OUTCOMES: usize = 100_000;

impl Tally {
    /// True when the app's own findings (not injected) reach `at_least`.
    pub fn fails_at(&self, at_least: Severity) -> bool {
        match at_least {
            Severity::Error => self.app_errors > 0,
            Severity::Warning => self.app_errors + self.app_warnings > 0,
            Severity::Info => self.by_rule.values().sum::<usize>() > self.injected,
        }
    }

    pub(crate) fn count(&mut self, event: &Event) {
        match event {
            Event::Authorize(_) => self.attempts += 1,
            Event::Finding(f) => {
                *self.by_rule.entry(f.rule.id()).or_default() += 1;
                match (f.injected.is_some(), f.severity) {
                    (true, _) => self.injected += 1,
                    (false, Severity::Error) => self.app_errors += 1,
                    (false, Severity::Warning) => self.app_warnings += 1,
                    (false, Severity::Info) => {}
                }
                match f.severity {
                    Severity::Error => self.errors += 1,
                    Severity::Warning => self.warnings += 1,
                    Severity::Info => {}
                }
            }
            Event::TokenResponse(r) if r.pending_poll.is_none() => {
                let grant = match r.grant_type.as_deref() {
                    None | Some("authorization_code") => return,
                    Some(name) if self.other_grants.contains_key(name) => name.to_owned(),
                    Some(_) if self.other_grants.len() >= COUNTED_GRANTS => "other".to_owned(),
                    Some(name) => name.to_owned(),
                };
                let count = self.other_grants.entry(grant).or_default();
                count.answered += 1;
                count.failed += usize::from(r.failed);
            }
            Event::Verdict(v) => {
                let earlier = v.attempt.and_then(|id| self.injected_outcomes.remove(&id));
                match earlier {
                    Some(Outcome::SignedIn) => self.signed_in -= 1,
                    Some(Outcome::Failed) => self.failed -= 1,
                    None => {}
                }
                match v.outcome {
                    Outcome::SignedIn => self.signed_in += 1,
                    Outcome::Failed => self.failed += 1,
                }
                if let (Some(id), Some(_)) = (v.attempt, &v.injected) {
                    self.injected_outcomes.insert(id, v.outcome);
                    if self.injected_outcomes.len() > REMEMBERED_OUTCOMES {
                        self.injected_outcomes.pop_first();
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::Verdict;
    use time::OffsetDateTime;

    fn verdict(n: u64) -> Event {
        Event::Verdict(Verdict {
            injected: None,
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

    #[test]
    fn an_attempt_judged_again_after_an_injected_verdict_counts_once_as_it_ended() {
        let failed = |n| {
            let mut e = verdict(n);
            if let Event::Verdict(v) = &mut e {
                v.outcome = Outcome::Failed;
            }
            e
        };
        let mut tally = Tally::default();
        // The app's own double redemption: it signed in, then failed.
        tally.count(&verdict(1));
        tally.count(&failed(1));
        assert_eq!((tally.signed_in, tally.failed), (1, 1));
        // A reuse-code copy signed in for attempt 2, then the app failed.
        let mut copy = verdict(2);
        if let Event::Verdict(v) = &mut copy {
            v.injected = Some(crate::oauth::event::Injected {
                fault: "reuse-code".into(),
                note: String::new(),
            });
        }
        tally.count(&copy);
        tally.count(&failed(2));
        assert_eq!((tally.signed_in, tally.failed), (1, 2));
    }

    #[tokio::test]
    async fn a_late_subscriber_gets_the_history_then_the_live_stream_without_gap_or_overlap() {
        let hub = EventHub::new(2);
        for n in 1..=3 {
            hub.publish(verdict(n)).await;
        }
        let mut sub = hub.subscribe();
        hub.publish(verdict(4)).await;
        let attempts: Vec<_> = sub.history.iter().map(|e| e.attempt()).collect();
        assert_eq!(attempts, [Some(AttemptId(2)), Some(AttemptId(3))]);
        assert_eq!(sub.live.recv().await.unwrap().attempt(), Some(AttemptId(4)));
        assert!(sub.live.try_recv().is_err());
    }

    #[tokio::test]
    async fn an_outlet_that_falls_behind_makes_the_publisher_wait_and_misses_nothing() {
        let mut hub = EventHub::new(0);
        let mut outlet = hub.outlet();
        let publisher = hub.clone();
        let total = OUTLET_BUFFER as u64 * 3;
        let feeding = tokio::spawn(async move {
            for n in 1..=total {
                publisher.publish(verdict(n)).await;
            }
        });
        // The outlet reads only once the publisher had to wait for it.
        tokio::task::yield_now().await;
        let mut seen = Vec::new();
        let never = CancellationToken::new();
        let mut drained = Drain::new(&mut outlet, &never);
        while (seen.len() as u64) < total {
            seen.push(drained.next().await.unwrap().attempt());
        }
        feeding.await.unwrap();
        let expected: Vec<_> = (1..=total).map(|n| Some(AttemptId(n))).collect();
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn drain_hands_over_what_was_sent_before_done() {
        let (tx, mut rx) = mpsc::channel(8);
        let done = CancellationToken::new();
        for n in 0..5 {
            tx.send(n).await.unwrap();
        }
        done.cancel();
        let mut seen = Vec::new();
        let mut drained = Drain::new(&mut rx, &done);
        while let Some(n) = drained.next().await {
            seen.push(n);
        }
        assert_eq!(seen, [0, 1, 2, 3, 4]);
        drop(tx);
    }

    #[tokio::test]
    async fn drain_ends_when_the_source_closes() {
        let (tx, mut rx) = mpsc::channel(8);
        for n in 0..3 {
            tx.send(n).await.unwrap();
        }
        drop(tx);
        let never = CancellationToken::new();
        let mut drained = Drain::new(&mut rx, &never);
        let mut seen = Vec::new();
        while let Some(n) = drained.next().await {
            seen.push(n);
        }
        assert_eq!(seen, [0, 1, 2]);
    }
}
