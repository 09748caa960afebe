//! Where finished exchanges go: to lossless consumers and to watchers.
//!
//! A consumer that must see every exchange that matters to it (the analysis,
//! the HAR recorder) subscribes with [`ExchangeFeed::consume`] and a
//! [`Triage`] that sorts each exchange into a [`Lane`]:
//!
//! - [`Lane::Vital`] exchanges are delivered while their captured bytes
//!   waiting stay within the consumer's vital allowance (large: it is meant
//!   to hold the sign-in traffic of a consumer stalled for minutes, and only
//!   guards memory against one stalled for good). Publication never waits:
//!   it runs inside a response body's poll.
//! - [`Lane::Bulk`] exchanges are delivered while their bytes waiting stay
//!   within the bulk allowance (small), so a burst of page loads cannot pin
//!   much memory.
//!
//! Beyond an allowance exchanges are dropped and counted (vital ones apart),
//! and the consumer learns of each gap (how many were dropped) before the
//! next exchange it gets.
//! - [`Lane::Skip`] exchanges are not sent at all, only counted.
//!
//! Watchers ([`ExchangeFeed::subscribe`]) get a broadcast that may lag: for
//! tests and views that resynchronise themselves.
//!
//! A traffic list needs less than an exchange: [`ExchangeFeed::sight`] turns
//! on [`Sighting`]s, a line's worth of each exchange (method, URL, status,
//! size, time, error) taken from what the proxy has at hand anyway, without
//! building the exchange or copying a body, and kept in a bounded batch
//! that the list takes now and then (no wake-up per exchange).
//!
//! The triage runs on the proxy's hot path: it must be cheap (look at the
//! method, the URL and the headers, not at bodies).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};

use crate::exchange::Exchange;

/// How many exchanges a watcher may lag behind before it misses some. Each
/// may hold up to two capped bodies, so this bounds the memory a stalled
/// watcher can pin (binary bodies are not copied at all).
const WATCH_BUFFER: usize = 512;

/// Sightings waiting to be taken (a few hundred bytes each); beyond it new
/// ones are counted as missed. Taken every few tens of milliseconds, this
/// holds well over 100,000 exchanges a second.
const SIGHT_BUFFER: usize = 8192;

/// How a consumer wants an exchange delivered; see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Vital,
    Bulk,
    Skip,
}

/// Sorts exchanges into lanes, on the proxy's hot path.
pub type Triage = Arc<dyn Fn(&Exchange) -> Lane + Send + Sync>;

/// What a consumer tells from an exchange's heads alone, before the proxy
/// copies anything for it (see [`ExchangeFeed::consume_glancing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Glance {
    /// Build the exchange and offer it to the triage.
    Wanted,
    /// The triage would skip it, whatever follows: nothing is built, the
    /// exchange is only counted as skipped.
    Unwanted,
    /// On a request head: the request alone does not make the exchange
    /// wanted; the response head will tell (an exchange that ends without
    /// one is then unwanted). On a response head: the first bytes of the
    /// body will tell; it is built and captured meanwhile.
    Undecided,
}

/// The heads of an exchange as a glance sees them. The response head is
/// asked about only for requests without a body (a request body is
/// captured for the triage whenever the request head leaves it undecided).
pub struct Heads<'a> {
    pub method: &'a http::Method,
    /// Absolute.
    pub uri: &'a http::Uri,
    pub request_headers: &'a http::HeaderMap,
    /// `None` on the request head.
    pub response: Option<(http::StatusCode, &'a http::HeaderMap)>,
    /// The start of the response body as captured, when a glance at the
    /// response head was [`Glance::Undecided`]: asked once it holds more
    /// than white space, or when the body ends (then it may be empty).
    pub body_start: Option<&'a [u8]>,
}

/// Glances at heads, on the proxy's hot path; it must agree with the
/// consumer's [`Triage`]: never [`Glance::Unwanted`] for an exchange the
/// triage would not skip. A function of the heads alone: one glance shared
/// by several consumers (the same `Arc`) is asked once for all of them.
pub type Glancer = Arc<dyn Fn(&Heads<'_>) -> Glance + Send + Sync>;

/// Who wants the exchanges published now, as the proxy asks before
/// building one.
pub(crate) enum Interest {
    Nobody,
    /// A watcher or a consumer without a glance: build every exchange.
    Everything,
    /// Only consumers that glance: build what one of them wants.
    Glancing(Arc<[Arc<Consumer>]>),
}

/// How many bytes (captured bodies, plus [`OVERHEAD`] per exchange) may wait
/// for a consumer in each lane.
#[derive(Debug, Clone, Copy)]
pub struct Allowance {
    pub vital_bytes: usize,
    pub bulk_bytes: usize,
}

/// What an exchange weighs besides its captured bodies (heads, timings).
pub const OVERHEAD: usize = 1024;

/// Subscribes to a proxy's finished exchanges (see [`crate::proxy::Proxy::feed`]).
/// The handle itself receives nothing: it neither pins exchanges in memory
/// nor makes the proxy copy bodies.
#[derive(Clone)]
pub struct ExchangeFeed {
    inner: Arc<Inner>,
}

/// An [`ExchangeFeed`] that does not keep it open once the proxy and the
/// session are gone.
#[derive(Clone)]
pub struct WeakFeed {
    inner: std::sync::Weak<Inner>,
}

impl WeakFeed {
    /// [`ExchangeFeed::sight`], or `None` once the feed has closed.
    pub fn sight(&self) -> Option<Sightings> {
        self.inner.upgrade().map(|inner| Sightings::new(&inner))
    }
}

/// A line's worth of one finished exchange, for a traffic list; see
/// [`ExchangeFeed::sight`].
#[derive(Debug, Clone)]
pub struct Sighting {
    pub id: u64,
    pub started_at: time::OffsetDateTime,
    pub method: http::Method,
    /// Absolute; as sent, when an interceptor rewrote it.
    pub uri: http::Uri,
    /// `None` when the exchange ended without a response head.
    pub status: Option<http::StatusCode>,
    pub content_type: Option<http::HeaderValue>,
    /// Response body bytes that went through (`None` without a response).
    pub size: Option<u64>,
    /// From the request head to the response's end.
    pub duration: Option<Duration>,
    pub error: Option<String>,
    /// The label of what an interceptor did to it.
    pub intervention: Option<String>,
}

impl Sighting {
    /// The sighting of an exchange built whole.
    pub fn of(exchange: &Exchange) -> Sighting {
        let response = exchange.response.as_ref();
        Sighting {
            id: exchange.id,
            started_at: exchange.started_at,
            method: exchange.request.method.clone(),
            uri: owned_uri(&exchange.request.uri),
            status: response.map(|r| r.status),
            content_type: response
                .and_then(|r| r.headers.get(http::header::CONTENT_TYPE))
                .map(owned_value),
            size: response.map(|r| r.body.size),
            duration: exchange
                .timings
                .response_done
                .or(exchange.timings.response_head),
            error: exchange.error.as_ref().map(|e| e.message.clone()),
            intervention: exchange.intervention.as_ref().map(|i| i.label.clone()),
        }
    }
}

/// A copy of `uri` in memory of its own. The URI of a request shares the
/// buffer hyper read the request head into, so a kept clone keeps that
/// whole buffer alive, and makes hyper allocate a new one for the next
/// request on the connection: a list of 10,000 rows held 60 MiB that way.
pub(crate) fn owned_uri(uri: &http::Uri) -> http::Uri {
    http::Uri::from_maybe_shared(bytes::Bytes::from(uri.to_string()))
        .unwrap_or_else(|_| uri.clone())
}

/// A copy of a header value in memory of its own (see [`owned_uri`]).
pub(crate) fn owned_value(value: &http::HeaderValue) -> http::HeaderValue {
    http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone())
}

/// Sightings turned on (see [`ExchangeFeed::sight`]); they stop once every
/// handle is dropped. Does not keep the feed open.
pub struct Sightings {
    inner: Weak<Inner>,
}

/// Sightings not taken yet, and how many did not fit.
#[derive(Default)]
struct Sighted {
    /// Boxed: a sighting is moved from the record to the list without
    /// copying its fields each time (copies were the largest extra in a
    /// profile of the proxy with a page following).
    #[allow(clippy::vec_box)]
    batch: Vec<Box<Sighting>>,
    missed: u64,
}

struct Inner {
    watchers: broadcast::Sender<Arc<Exchange>>,
    /// How many [`Sightings`] handles are alive: read on every request.
    sighters: AtomicUsize,
    sighted: Mutex<Sighted>,
    /// Copied on write: publication takes a snapshot under a read lock.
    consumers: RwLock<Arc<[Arc<Consumer>]>>,
}

/// One lossless consumer's end of the feed.
pub(crate) struct Consumer {
    triage: Triage,
    glance: Option<Glancer>,
    queue: mpsc::UnboundedSender<Queued>,
    counts: Arc<Counts>,
    allowance: Allowance,
}

/// What happened to a consumer's exchanges, shared with its stream.
#[derive(Debug, Default)]
struct Counts {
    /// Bytes of the exchanges sent and not yet taken, by lane.
    vital_waiting: AtomicUsize,
    bulk_waiting: AtomicUsize,
    /// Exchanges dropped for want of room, ever (vital ones included).
    dropped: AtomicU64,
    /// Vital exchanges among them.
    vital_dropped: AtomicU64,
    /// Exchanges the triage skipped, ever.
    skipped: AtomicU64,
}

/// An exchange on its way to a consumer, with its lane and weight, and the
/// drop count at the time it was queued (so a gap is reported where it
/// happened).
type Queued = (Arc<Exchange>, Lane, usize, u64);

/// What a consumer's stream hands over.
#[derive(Debug)]
pub enum Delivery {
    /// The next exchange.
    Exchange(Arc<Exchange>),
    /// `n` exchanges were dropped here (the consumer fell far behind).
    Gap(u64),
}

/// A consumer's stream of exchanges; see [`ExchangeFeed::consume`].
pub struct ExchangeStream {
    queue: mpsc::UnboundedReceiver<Queued>,
    counts: Arc<Counts>,
    /// The drop count already reported as gaps.
    reported: u64,
    /// An exchange taken while a gap was being reported.
    pending: Option<Arc<Exchange>>,
}

impl ExchangeFeed {
    pub(crate) fn new() -> ExchangeFeed {
        let (watchers, _) = broadcast::channel(WATCH_BUFFER);
        ExchangeFeed {
            inner: Arc::new(Inner {
                watchers,
                sighters: AtomicUsize::new(0),
                sighted: Mutex::new(Sighted::default()),
                consumers: RwLock::new(Arc::from(Vec::new())),
            }),
        }
    }

    /// A broadcast of every exchange from now on, which may lag (and then
    /// says how many it skipped). Subscribe before traffic starts to see
    /// all of it.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Exchange>> {
        self.inner.watchers.subscribe()
    }

    /// Turns on [`Sighting`]s of every exchange from now on (until the
    /// handle is dropped): cheap enough to leave on while a traffic list is
    /// looked at, and nothing at all otherwise.
    pub fn sight(&self) -> Sightings {
        Sightings::new(&self.inner)
    }

    /// Whether anyone takes sightings now (on the proxy's hot path).
    pub(crate) fn sighting(&self) -> bool {
        self.inner.sighters.load(Ordering::Relaxed) > 0
    }

    /// Hands over the sighting of a finished exchange; never waits long
    /// (one short lock).
    pub(crate) fn sighted(&self, sighting: Box<Sighting>) {
        // Begun while sightings were on, ended after: nobody's.
        if !self.sighting() {
            return;
        }
        let mut sighted = self.inner.sighted();
        if sighted.batch.len() < SIGHT_BUFFER {
            sighted.batch.push(sighting);
        } else {
            sighted.missed += 1;
        }
    }

    /// A handle that does not keep the feed open: for a watcher that sights
    /// the traffic only now and then (see [`WeakFeed::sight`]).
    pub fn downgrade(&self) -> WeakFeed {
        WeakFeed {
            inner: Arc::downgrade(&self.inner),
        }
    }

    /// A stream of every exchange `triage` does not skip, from now on,
    /// within `allowance` (beyond it, exchanges are dropped and reported as
    /// gaps).
    pub fn consume(&self, triage: Triage, allowance: Allowance) -> ExchangeStream {
        self.consume_with(triage, None, allowance)
    }

    /// [`ExchangeFeed::consume`] for a consumer that can tell from the heads
    /// alone what its triage would skip: while every consumer glances and
    /// nobody watches, the proxy builds (copies heads, captures bodies,
    /// publishes) only the exchanges some consumer's `glance` wants.
    pub fn consume_glancing(
        &self,
        glance: Glancer,
        triage: Triage,
        allowance: Allowance,
    ) -> ExchangeStream {
        self.consume_with(triage, Some(glance), allowance)
    }

    fn consume_with(
        &self,
        triage: Triage,
        glance: Option<Glancer>,
        allowance: Allowance,
    ) -> ExchangeStream {
        let (queue, rx) = mpsc::unbounded_channel();
        let counts = Arc::new(Counts::default());
        let consumer = Arc::new(Consumer {
            triage,
            glance,
            queue,
            counts: counts.clone(),
            allowance,
        });
        let mut consumers = self
            .inner
            .consumers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let mut list: Vec<_> = consumers.iter().cloned().collect();
        list.push(consumer);
        *consumers = Arc::from(list);
        ExchangeStream {
            queue: rx,
            counts,
            reported: 0,
            pending: None,
        }
    }

    /// True when anyone would receive an exchange published now.
    #[cfg(test)]
    pub(crate) fn is_observed(&self) -> bool {
        !matches!(self.interest(), Interest::Nobody)
    }

    /// Who would receive an exchange published now.
    pub(crate) fn interest(&self) -> Interest {
        let consumers = self.consumers();
        if self.inner.watchers.receiver_count() > 0 || consumers.iter().any(|c| c.glance.is_none())
        {
            Interest::Everything
        } else if consumers.is_empty() {
            Interest::Nobody
        } else {
            Interest::Glancing(consumers)
        }
    }

    fn consumers(&self) -> Arc<[Arc<Consumer>]> {
        self.inner
            .consumers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Hands `exchange` to every consumer and watcher; never waits.
    pub(crate) fn publish(&self, exchange: Exchange) {
        let exchange = Arc::new(exchange);
        let mut gone = false;
        for consumer in self.consumers().iter() {
            gone |= !consumer.offer(&exchange);
        }
        if gone {
            self.forget_closed();
        }
        // No watcher is not an error: views may have gone.
        let _ = self.inner.watchers.send(exchange);
    }

    fn forget_closed(&self) {
        let mut consumers = self
            .inner
            .consumers
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let open: Vec<_> = consumers
            .iter()
            .filter(|c| !c.queue.is_closed())
            .cloned()
            .collect();
        *consumers = Arc::from(open);
    }
}

impl Inner {
    fn sighted(&self) -> std::sync::MutexGuard<'_, Sighted> {
        self.sighted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sightings {
    fn new(inner: &Arc<Inner>) -> Sightings {
        inner.sighters.fetch_add(1, Ordering::Relaxed);
        Sightings {
            inner: Arc::downgrade(inner),
        }
    }

    /// Moves the sightings gathered since the last call into `into` (in the
    /// order the exchanges ended), and says how many did not fit meanwhile;
    /// `None` once the feed has closed.
    pub fn take(&self, into: &mut Vec<Box<Sighting>>) -> Option<u64> {
        let inner = self.inner.upgrade()?;
        let mut sighted = inner.sighted();
        if into.is_empty() {
            // Swapped, so both buffers keep their room.
            std::mem::swap(into, &mut sighted.batch);
        } else {
            into.append(&mut sighted.batch);
        }
        Some(std::mem::take(&mut sighted.missed))
    }
}

impl Drop for Sightings {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade()
            && inner.sighters.fetch_sub(1, Ordering::Relaxed) == 1
        {
            // The last one: what was gathered is nobody's (unless a new
            // handle came meanwhile).
            let mut sighted = inner.sighted();
            if inner.sighters.load(Ordering::Relaxed) == 0 {
                *sighted = Sighted::default();
            }
        }
    }
}

impl Interest {
    /// What the glancing consumers say together: wanted by any, undecided
    /// by any, else unwanted. `Everything` wants all, `Nobody` none.
    pub(crate) fn glance(&self, heads: &Heads<'_>) -> Glance {
        let consumers = match self {
            Interest::Nobody => return Glance::Unwanted,
            Interest::Everything => return Glance::Wanted,
            Interest::Glancing(consumers) => consumers,
        };
        let mut verdict = Glance::Unwanted;
        let glances = consumers.iter().filter_map(|c| c.glance.as_ref());
        for (i, glance) in glances.clone().enumerate() {
            // Consumers sharing one glance get one answer.
            if glances.clone().take(i).any(|g| Arc::ptr_eq(g, glance)) {
                continue;
            }
            match glance(heads) {
                Glance::Wanted => return Glance::Wanted,
                Glance::Undecided => verdict = Glance::Undecided,
                Glance::Unwanted => {}
            }
        }
        verdict
    }

    /// Counts an exchange the glances did not want as skipped by each
    /// consumer, as their triage would have.
    pub(crate) fn skip(&self) {
        if let Interest::Glancing(consumers) = self {
            for consumer in consumers.iter() {
                consumer.counts.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Consumer {
    /// Sends `exchange` down its lane; false when the stream is gone.
    fn offer(&self, exchange: &Arc<Exchange>) -> bool {
        let lane = (self.triage)(exchange);
        let (waiting, allowance) = match lane {
            Lane::Skip => {
                self.counts.skipped.fetch_add(1, Ordering::Relaxed);
                return !self.queue.is_closed();
            }
            Lane::Vital => (&self.counts.vital_waiting, self.allowance.vital_bytes),
            Lane::Bulk => (&self.counts.bulk_waiting, self.allowance.bulk_bytes),
        };
        let weight = weight(exchange);
        let before = waiting.fetch_add(weight, Ordering::AcqRel);
        if before + weight > allowance {
            waiting.fetch_sub(weight, Ordering::AcqRel);
            self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            if lane == Lane::Vital {
                self.counts.vital_dropped.fetch_add(1, Ordering::Relaxed);
            }
            return !self.queue.is_closed();
        }
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        self.queue
            .send((exchange.clone(), lane, weight, dropped))
            .is_ok()
    }
}

/// What an exchange pins in memory while it waits, roughly.
fn weight(exchange: &Exchange) -> usize {
    let response = exchange.response.as_ref().map_or(0, |r| r.body.bytes.len());
    exchange.request.body.bytes.len() + response + OVERHEAD
}

impl ExchangeStream {
    /// The next delivery: a gap is reported before the exchange that follows
    /// it. `None` once the feed is gone and everything was taken.
    pub async fn recv(&mut self) -> Option<Delivery> {
        if let Some(delivery) = self.pending_or_gap() {
            return Some(delivery);
        }
        match self.queue.recv().await {
            Some(item) => Some(self.take(item)),
            None => self.final_gap(),
        }
    }

    /// [`ExchangeStream::recv`] without waiting: `None` when nothing is
    /// queued right now (a final gap is still reported).
    pub fn try_recv(&mut self) -> Option<Delivery> {
        if let Some(delivery) = self.pending_or_gap() {
            return Some(delivery);
        }
        match self.queue.try_recv() {
            Ok(item) => Some(self.take(item)),
            Err(_) => self.final_gap(),
        }
    }

    /// Exchanges the triage skipped so far.
    pub fn skipped(&self) -> u64 {
        self.counts.skipped.load(Ordering::Relaxed)
    }

    /// Exchanges dropped so far (reported or not yet).
    pub fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Vital exchanges among those dropped so far.
    pub fn vital_dropped(&self) -> u64 {
        self.counts.vital_dropped.load(Ordering::Relaxed)
    }

    fn pending_or_gap(&mut self) -> Option<Delivery> {
        self.pending.take().map(Delivery::Exchange)
    }

    fn take(&mut self, (exchange, lane, weight, dropped): Queued) -> Delivery {
        let waiting = match lane {
            Lane::Bulk => &self.counts.bulk_waiting,
            _ => &self.counts.vital_waiting,
        };
        waiting.fetch_sub(weight, Ordering::AcqRel);
        // Drops counted before this exchange was queued happened before it.
        if dropped > self.reported {
            let gap = dropped - self.reported;
            self.reported = dropped;
            self.pending = Some(exchange);
            return Delivery::Gap(gap);
        }
        Delivery::Exchange(exchange)
    }

    /// Drops that no later exchange revealed.
    fn final_gap(&mut self) -> Option<Delivery> {
        let dropped = self.dropped();
        (dropped > self.reported).then(|| {
            let gap = dropped - self.reported;
            self.reported = dropped;
            Delivery::Gap(gap)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(id: u64) -> Exchange {
        Exchange {
            id,
            connection: Arc::default(),
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            request: crate::exchange::RequestRecord {
                method: http::Method::GET,
                uri: http::Uri::from_static("http://app.test/"),
                version: http::Version::HTTP_11,
                headers: http::HeaderMap::new(),
                body: Default::default(),
            },
            response: None,
            error: None,
            timings: Default::default(),
            intervention: None,
        }
    }

    /// Room for `vital` and `bulk` body-less exchanges.
    fn room(vital: usize, bulk: usize) -> Allowance {
        Allowance {
            vital_bytes: vital * OVERHEAD,
            bulk_bytes: bulk * OVERHEAD,
        }
    }

    fn ids(stream: &mut ExchangeStream) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(d) = stream.try_recv() {
            out.push(match d {
                Delivery::Exchange(e) => e.id.to_string(),
                Delivery::Gap(n) => format!("gap {n}"),
            });
        }
        out
    }

    #[test]
    fn consumers_sharing_a_glance_are_asked_once_and_others_each() {
        let feed = ExchangeFeed::new();
        let counting = |calls: Arc<AtomicUsize>, answer: Glance| -> Glancer {
            Arc::new(move |_: &Heads<'_>| {
                calls.fetch_add(1, Ordering::Relaxed);
                answer
            })
        };
        let (shared_calls, own_calls) = (Arc::default(), Arc::default());
        let shared = counting(Arc::clone(&shared_calls), Glance::Undecided);
        let own = counting(Arc::clone(&own_calls), Glance::Unwanted);
        let all: Triage = Arc::new(|_: &Exchange| Lane::Vital);
        let _streams = [
            feed.consume_glancing(shared.clone(), all.clone(), room(1, 0)),
            feed.consume_glancing(own, all.clone(), room(1, 0)),
            feed.consume_glancing(shared, all, room(1, 0)),
        ];
        let (method, uri, headers) = (
            http::Method::GET,
            http::Uri::from_static("http://app.test/"),
            http::HeaderMap::new(),
        );
        let heads = Heads {
            method: &method,
            uri: &uri,
            request_headers: &headers,
            response: None,
            body_start: None,
        };
        // Undecided by one: undecided together.
        assert_eq!(feed.interest().glance(&heads), Glance::Undecided);
        assert_eq!(shared_calls.load(Ordering::Relaxed), 1);
        assert_eq!(own_calls.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn vital_exchanges_are_never_dropped_and_bulk_ones_are_counted_as_gaps() {
        let feed = ExchangeFeed::new();
        // Odd ids are vital, even ones bulk; room for one waiting bulk.
        let triage: Triage = Arc::new(|e: &Exchange| {
            if e.id % 2 == 1 {
                Lane::Vital
            } else {
                Lane::Bulk
            }
        });
        let mut stream = feed.consume(triage, room(usize::MAX / OVERHEAD, 1));
        for id in 1..=1000 {
            feed.publish(exchange(id));
        }
        let got = ids(&mut stream);
        let vital: Vec<_> = got.iter().filter(|s| !s.starts_with("gap")).collect();
        // Every odd id, and the one bulk exchange that fit.
        assert_eq!(vital.len(), 501, "{got:?}");
        assert!((1..=1000).step_by(2).all(|n| got.contains(&n.to_string())));
        // 2 waits (room for one), 4 is dropped: the gap sits between 3 and 5.
        assert_eq!(got[..5], ["1", "2", "3", "gap 1", "5"], "{got:?}");
        let gaps: u64 = got
            .iter()
            .filter_map(|s| s.strip_prefix("gap ")?.parse::<u64>().ok())
            .sum();
        assert_eq!(gaps, 499);
        assert_eq!(stream.dropped(), 499);
    }

    #[test]
    fn vital_exchanges_beyond_their_allowance_are_dropped_counted_and_said() {
        let feed = ExchangeFeed::new();
        let mut stream = feed.consume(Arc::new(|_: &Exchange| Lane::Vital), room(2, 0));
        for id in 1..=5 {
            feed.publish(exchange(id));
        }
        assert_eq!(ids(&mut stream), ["1", "2", "gap 3"]);
        assert_eq!((stream.dropped(), stream.vital_dropped()), (3, 3));
        // Taken exchanges free their room.
        feed.publish(exchange(6));
        assert_eq!(ids(&mut stream), ["6"]);
    }

    #[test]
    fn a_consumer_that_keeps_up_loses_no_bulk_exchange() {
        let feed = ExchangeFeed::new();
        let mut stream = feed.consume(Arc::new(|_: &Exchange| Lane::Bulk), room(0, 2));
        let mut seen = 0;
        for id in 1..=100 {
            feed.publish(exchange(id));
            while let Some(Delivery::Exchange(_)) = stream.try_recv() {
                seen += 1;
            }
        }
        assert_eq!(seen, 100);
        assert_eq!(stream.dropped(), 0);
    }

    #[test]
    fn skipped_exchanges_are_counted_not_sent_and_a_gone_consumer_is_forgotten() {
        let feed = ExchangeFeed::new();
        let mut stream = feed.consume(Arc::new(|_: &Exchange| Lane::Skip), room(0, 0));
        feed.publish(exchange(1));
        assert!(stream.try_recv().is_none());
        assert_eq!(stream.skipped(), 1);
        assert!(feed.is_observed());
        let gone = feed.consume(Arc::new(|_: &Exchange| Lane::Vital), room(1, 0));
        drop(gone);
        feed.publish(exchange(2));
        assert_eq!(feed.consumers().len(), 1);
        drop(stream);
        feed.publish(exchange(3));
        assert!(!feed.is_observed());
    }

    /// A sighting kept in a list must not keep the buffer its request was
    /// read into (hyper would then allocate a new one per request).
    #[test]
    fn a_sighting_holds_no_part_of_the_buffer_its_heads_were_read_into() {
        let head = bytes::Bytes::from(b"http://app.test/x?a=1text/html".to_vec());
        let uri = http::Uri::from_maybe_shared(head.slice(..21)).unwrap();
        let value = http::HeaderValue::from_maybe_shared(head.slice(21..)).unwrap();
        let (uri2, value2) = (owned_uri(&uri), owned_value(&value));
        drop((uri, value));
        assert!(head.is_unique(), "the copies share the read buffer");
        assert_eq!(uri2, "http://app.test/x?a=1");
        assert_eq!(value2, "text/html");
    }
}
