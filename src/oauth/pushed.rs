//! Pushed authorization requests (RFC 9126) by their `request_uri`, kept in
//! bounded memory so an /authorize naming one can be read as if its
//! parameters had been on it, and a second or late use can be told apart.
//!
//! Kept like refresh tokens in a [`Memory`]: by the request_uri's SHA-256,
//! dropped after a time-to-live and beyond a fixed count. Pure: times come
//! from the exchanges.

use std::time::Duration;

use time::OffsetDateTime;

use super::lifecycle::{Memory, Touched};
use super::params::Params;

/// Earlier uses remembered per request_uri (the first ones matter).
const MAX_USES: usize = 8;

/// One pushed request and what happened to its request_uri.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub params: Params,
    /// Why its parameters are not all known (a request object in the push
    /// that could not be read), carried to the /authorize that names it.
    pub note: Option<String>,
    /// The exchange that pushed it.
    pub exchange: u64,
    pub pushed_at: OffsetDateTime,
    /// The IdP's `expires_in`, seconds.
    pub expires_in: Option<u64>,
    /// /authorize requests that named it: (exchange, time), oldest first.
    pub uses: Vec<(u64, OffsetDateTime)>,
    pub last_seen: OffsetDateTime,
}

/// What authlens knew of a request_uri when an /authorize named it: the
/// facts an `invalid_request_uri` refusal is explained with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUriUse {
    pub request_uri: String,
    pub exchange: u64,
    pub time: OffsetDateTime,
    /// `None` when authlens did not see it pushed.
    pub pushed_at: Option<OffsetDateTime>,
    pub push_exchange: Option<u64>,
    pub expires_in: Option<u64>,
    /// Earlier /authorize requests that named it: (exchange, time).
    pub earlier_uses: Vec<(u64, OffsetDateTime)>,
}

impl Touched for Pushed {
    fn last_seen(&self) -> OffsetDateTime {
        self.last_seen
    }
}

/// Bounded store of pushed requests: a [`Memory`] (keyed by the
/// request_uri's SHA-256, bounded by count and TTL) that records uses.
#[derive(Debug)]
pub struct PushedStore {
    memory: Memory<Pushed>,
}

impl PushedStore {
    pub fn new(max: usize, ttl: Duration) -> Self {
        PushedStore {
            memory: Memory::new(max, ttl),
        }
    }

    /// Drops entries not touched for longer than the TTL.
    pub fn evict(&mut self, now: OffsetDateTime) {
        self.memory.evict(now);
    }

    /// Remembers a push (dropping the oldest beyond the bound).
    pub fn insert(&mut self, request_uri: &str, pushed: Pushed) {
        self.memory.insert(request_uri, pushed);
    }

    /// Records that an /authorize named `request_uri`; returns the push (if
    /// it was seen) and what was known before this use.
    pub fn use_uri(
        &mut self,
        request_uri: &str,
        exchange: u64,
        time: OffsetDateTime,
    ) -> (Option<Pushed>, RequestUriUse) {
        let mut facts = RequestUriUse {
            request_uri: request_uri.to_owned(),
            exchange,
            time,
            pushed_at: None,
            push_exchange: None,
            expires_in: None,
            earlier_uses: Vec::new(),
        };
        let Some(p) = self.memory.get_mut(request_uri) else {
            return (None, facts);
        };
        facts.pushed_at = Some(p.pushed_at);
        facts.push_exchange = Some(p.exchange);
        facts.expires_in = p.expires_in;
        facts.earlier_uses = p.uses.clone();
        if p.uses.len() < MAX_USES {
            p.uses.push((exchange, time));
        }
        p.last_seen = time;
        (Some(p.clone()), facts)
    }

    #[cfg(test)]
    pub fn size(&self) -> usize {
        self.memory.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::testing::T0;

    fn pushed(at: OffsetDateTime) -> Pushed {
        Pushed {
            params: Params::parse("client_id=c&response_type=code"),
            note: None,
            exchange: 1,
            pushed_at: at,
            expires_in: Some(60),
            uses: Vec::new(),
            last_seen: at,
        }
    }

    #[test]
    fn uses_are_counted_and_memory_is_bounded() {
        let mut store = PushedStore::new(4, Duration::from_secs(600));
        store.insert("urn:a", pushed(T0));
        let (params, first) = store.use_uri("urn:a", 2, T0 + Duration::from_secs(1));
        assert!(params.is_some());
        assert!(first.earlier_uses.is_empty());
        let (_, second) = store.use_uri("urn:a", 3, T0 + Duration::from_secs(2));
        assert_eq!(second.earlier_uses, [(2, T0 + Duration::from_secs(1))]);
        assert_eq!(second.expires_in, Some(60));
        let (none, unknown) = store.use_uri("urn:b", 4, T0);
        assert!(none.is_none() && unknown.pushed_at.is_none());
        for i in 0..100 {
            store.insert(&format!("urn:{i}"), pushed(T0));
        }
        assert_eq!(store.size(), 4);
        store.evict(T0 + Duration::from_secs(601));
        assert_eq!(store.size(), 0);
    }
}
