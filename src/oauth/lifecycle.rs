//! What outlives the first sign-in: refresh tokens seen issued or presented
//! and device codes seen issued or polled, kept in bounded memory.
//!
//! Like codes in [`super::attempt`], they are indexed by their SHA-256 and
//! never kept in clear, dropped after a time-to-live without being touched
//! and beyond a fixed count, so memory does not grow with traffic. Reading
//! them is for the rules; recording a use is the analyzer's job.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::attempt::RedemptionOutcome;
use super::provider::Provider;

/// One use of a refresh token or a device code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub exchange: u64,
    /// When its request was sent.
    pub time: OffsetDateTime,
    /// When its answer arrived (`None`: no answer seen).
    pub answered: Option<OffsetDateTime>,
    pub outcome: RedemptionOutcome,
}

/// What is known about one refresh token.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// When a token response carrying it was seen (`None`: first seen presented).
    pub issued_at: Option<OffsetDateTime>,
    /// Where a lifetime that does not slide started: the first issue of its
    /// family (an Entra SPA token's 24 h run from the sign-in, not from
    /// each rotation). `None` when unknown.
    pub family_issued_at: Option<OffsetDateTime>,
    /// The client it was issued to (as the redemption that got it named it).
    pub client_id: Option<String>,
    /// The scopes granted with it (the response's `scope`, else the request's).
    pub granted_scope: Option<String>,
    /// Issued to a redemption that carried `Origin`: a browser (SPA) token.
    pub spa: bool,
    pub provider: Provider,
    /// The first redemption of it that authlens saw.
    pub first_use: Option<Use>,
    /// The first redemption answered with another refresh token: after it,
    /// under rotation, this one is dead.
    pub rotated_by: Option<Use>,
    pub uses: u32,
    pub last_seen: OffsetDateTime,
}

/// What is known about one device code.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    /// When the device authorization response issued it (`None`: first seen polled).
    pub issued_at: Option<OffsetDateTime>,
    /// Its `expires_in`, when the response gave one.
    pub expires_in: Option<Duration>,
    /// The response's `interval` (5 s when it gave none, RFC 8628 §3.2).
    pub interval: Duration,
    /// False when the response gave no (readable) `interval`.
    pub interval_given: bool,
    /// `slow_down` answers so far: each adds 5 s to the interval.
    pub slow_downs: u32,
    pub client_id: Option<String>,
    /// The previous poll's time.
    pub last_poll: Option<OffsetDateTime>,
    pub polls: u32,
    /// Polls answered `authorization_pending`.
    pub pending: u32,
    /// The poll answered with tokens.
    pub redeemed: Option<Use>,
    pub last_seen: OffsetDateTime,
}

impl DeviceRecord {
    /// The interval a poll must keep now: the response's, plus 5 s for every
    /// `slow_down` (RFC 8628 §3.5).
    pub fn current_interval(&self) -> Duration {
        self.interval
            .saturating_add(Duration::from_secs(5).saturating_mul(self.slow_downs))
    }
}

/// Something kept in a [`Memory`]: when it was last touched.
pub trait Touched {
    fn last_seen(&self) -> OffsetDateTime;
}

impl Touched for RefreshRecord {
    fn last_seen(&self) -> OffsetDateTime {
        self.last_seen
    }
}

impl Touched for DeviceRecord {
    fn last_seen(&self) -> OffsetDateTime {
        self.last_seen
    }
}

/// Records keyed by a secret's SHA-256, bounded by count and by a TTL.
#[derive(Debug)]
pub struct Memory<R> {
    records: HashMap<[u8; 32], R>,
    /// Insertion order, oldest first.
    order: VecDeque<[u8; 32]>,
    max: usize,
    ttl: Duration,
}

impl<R: Touched> Memory<R> {
    pub fn new(max: usize, ttl: Duration) -> Self {
        Memory {
            records: HashMap::new(),
            order: VecDeque::new(),
            max: max.max(1),
            ttl,
        }
    }

    /// Drops the records not touched for longer than the TTL.
    pub fn evict(&mut self, now: OffsetDateTime) {
        let ttl = self.ttl;
        let records = &mut self.records;
        self.order.retain(|k| match records.get(k) {
            Some(r) if now - r.last_seen() > ttl => {
                records.remove(k);
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    pub fn get(&self, secret: &str) -> Option<&R> {
        self.records.get(&key(secret))
    }

    pub fn get_mut(&mut self, secret: &str) -> Option<&mut R> {
        self.records.get_mut(&key(secret))
    }

    /// Records (or replaces) one, dropping the oldest beyond the bound.
    pub fn insert(&mut self, secret: &str, record: R) {
        let k = key(secret);
        if self.records.insert(k, record).is_none() {
            self.order.push_back(k);
        }
        while self.order.len() > self.max {
            if let Some(old) = self.order.pop_front() {
                self.records.remove(&old);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

fn key(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::testing::T0;

    fn device(at: OffsetDateTime) -> DeviceRecord {
        DeviceRecord {
            issued_at: Some(at),
            expires_in: None,
            interval: Duration::from_secs(5),
            interval_given: false,
            slow_downs: 2,
            client_id: None,
            last_poll: None,
            polls: 0,
            pending: 0,
            redeemed: None,
            last_seen: at,
        }
    }

    #[test]
    fn bounded_by_count_and_ttl() {
        let mut memory = Memory::new(4, Duration::from_secs(60));
        for i in 0..100 {
            memory.insert(&format!("dc{i}"), device(T0));
        }
        assert_eq!(memory.len(), 4);
        assert!(memory.get("dc99").is_some());
        assert!(memory.get("dc0").is_none());
        memory.evict(T0 + Duration::from_secs(61));
        assert!(memory.is_empty());
    }

    #[test]
    fn slow_down_adds_five_seconds_each() {
        assert_eq!(device(T0).current_interval(), Duration::from_secs(15));
    }
}
