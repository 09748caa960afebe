//! Sign-in attempts and the codes they were issued, kept in bounded memory.
//!
//! An attempt starts at an authorization request; its code joins by `state`
//! (or, without one, by the most recent open attempt for that redirect URI);
//! token requests join by the exact code. Attempts and codes are dropped
//! after a time-to-live and beyond a fixed count, so memory does not grow
//! with traffic. Codes are indexed by their SHA-256, never kept in clear.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::event::{AttemptId, Pairing};
use super::message::{AuthorizeRequest, strip_query};
use super::provider::Provider;
use super::redirect_uri::compare;

/// One sign-in attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: AttemptId,
    pub authorize: AuthorizeRequest,
    pub started_at: OffsetDateTime,
    pub last_seen: OffsetDateTime,
    /// Authorization request seen, no code (nor authorize error) yet: a code
    /// arriving without `state` can still be paired with it.
    pub awaiting_code: bool,
    /// Findings raised on this attempt so far, by severity.
    pub errors: usize,
    pub warnings: usize,
}

/// How a redemption ended, for `code-reused` evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedemptionOutcome {
    /// Still waiting for (or never got) a response.
    Pending,
    TokensIssued,
    /// The IdP error (`AADSTS54005`, `invalid_grant`, `HTTP 500`), given
    /// after the IdP may have read the code.
    Refused(String),
    /// Refused for the request's shape (`AADSTS900144`, `invalid_request`):
    /// the IdP stopped before it read the code, so the code is still unused.
    RefusedMalformed(String),
}

impl RedemptionOutcome {
    pub fn describe(&self) -> String {
        match self {
            RedemptionOutcome::Pending => "no response seen".to_owned(),
            RedemptionOutcome::TokensIssued => "tokens issued".to_owned(),
            RedemptionOutcome::Refused(e) => format!("refused with {e}"),
            RedemptionOutcome::RefusedMalformed(e) => format!("refused as malformed with {e}"),
        }
    }

    /// True unless the IdP refused the request before reading its code. A
    /// redemption without an answer counts: the IdP may have consumed it.
    pub fn consumes_code(&self) -> bool {
        !matches!(self, RedemptionOutcome::RefusedMalformed(_))
    }
}

/// The first redemption of a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub exchange: u64,
    pub time: OffsetDateTime,
    pub outcome: RedemptionOutcome,
}

/// What is known about one code.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    pub attempt: Option<AttemptId>,
    /// `None` when the code was first seen at /token.
    pub issued_at: Option<OffsetDateTime>,
    /// The provider that issued it (for the default lifetime).
    pub provider: Provider,
    /// The first redemption that may have consumed the code.
    pub first_redemption: Option<Redemption>,
    /// Redemptions that may have consumed the code.
    pub redemptions: u32,
    /// Redemptions refused as malformed, which left the code unused (a JSON
    /// body, a GET, a missing parameter).
    pub refused_as_malformed: u32,
    pub last_seen: OffsetDateTime,
}

/// Bounded store of attempts and codes.
#[derive(Debug)]
pub struct AttemptStore {
    /// Oldest first.
    attempts: VecDeque<Attempt>,
    codes: HashMap<[u8; 32], CodeRecord>,
    /// Insertion order of `codes`, oldest first.
    code_order: VecDeque<[u8; 32]>,
    next_id: u64,
    max_attempts: usize,
    max_codes: usize,
    ttl: Duration,
}

impl AttemptStore {
    pub fn new(max_attempts: usize, ttl: Duration) -> Self {
        let max_attempts = max_attempts.max(1);
        AttemptStore {
            attempts: VecDeque::new(),
            codes: HashMap::new(),
            code_order: VecDeque::new(),
            next_id: 1,
            max_attempts,
            max_codes: max_attempts * 2 + 16,
            ttl,
        }
    }

    /// Drops attempts and codes not touched for longer than the TTL.
    pub fn evict(&mut self, now: OffsetDateTime) {
        let ttl = self.ttl;
        let expired = |last: OffsetDateTime| now - last > ttl;
        self.attempts.retain(|a| !expired(a.last_seen));
        let codes = &mut self.codes;
        self.code_order.retain(|k| match codes.get(k) {
            Some(r) if expired(r.last_seen) => {
                codes.remove(k);
                false
            }
            Some(_) => true,
            None => false,
        });
    }

    /// Starts a new attempt (dropping the oldest beyond the bound).
    pub fn start(&mut self, authorize: AuthorizeRequest, time: OffsetDateTime) -> AttemptId {
        let id = AttemptId(self.next_id);
        self.next_id += 1;
        self.attempts.push_back(Attempt {
            id,
            authorize,
            started_at: time,
            last_seen: time,
            awaiting_code: true,
            errors: 0,
            warnings: 0,
        });
        while self.attempts.len() > self.max_attempts {
            self.attempts.pop_front();
        }
        id
    }

    /// An open attempt whose authorization request was exactly `raw` (the
    /// browser re-entering /authorize during login is not a new attempt).
    pub fn reentry(&self, authorize: &AuthorizeRequest) -> Option<AttemptId> {
        self.attempts
            .iter()
            .rev()
            .find(|a| a.awaiting_code && a.authorize.raw == authorize.raw)
            .map(|a| a.id)
    }

    pub fn get(&self, id: AttemptId) -> Option<&Attempt> {
        self.attempts.iter().find(|a| a.id == id)
    }

    pub fn get_mut(&mut self, id: AttemptId) -> Option<&mut Attempt> {
        self.attempts.iter_mut().find(|a| a.id == id)
    }

    /// Finds the attempt an authorization response belongs to: by `state`,
    /// else the most recent open attempt for the same redirect URI.
    pub fn pair(&self, state: Option<&str>, target: Option<&str>) -> Option<(AttemptId, Pairing)> {
        let open = || self.attempts.iter().rev().filter(|a| a.awaiting_code);
        if let Some(state) = state
            && let Some(a) = open().find(|a| a.authorize.state.as_deref() == Some(state))
        {
            return Some((a.id, Pairing::State));
        }
        open()
            // A response with a state never joins an attempt with another state.
            .filter(|a| state.is_none() || a.authorize.state.is_none())
            .find(|a| match (a.authorize.redirect_uri.as_deref(), target) {
                (Some(r), Some(t)) => same_redirect(r, t),
                _ => true,
            })
            .map(|a| (a.id, Pairing::Heuristic))
    }

    /// The most recent attempt (any status) with this `state`, for
    /// recognising callback requests.
    pub fn by_state(&self, state: &str) -> Option<&Attempt> {
        self.attempts
            .iter()
            .rev()
            .find(|a| a.authorize.state.as_deref() == Some(state))
    }

    /// True when `url` (no query) is the redirect URI of a known attempt.
    pub fn is_redirect_uri(&self, url: &str) -> bool {
        self.attempts.iter().any(|a| {
            a.authorize
                .redirect_uri
                .as_deref()
                .is_some_and(|r| same_redirect(r, url))
        })
    }

    pub fn code(&self, code: &str) -> Option<&CodeRecord> {
        self.codes.get(&code_key(code))
    }

    pub fn code_mut(&mut self, code: &str) -> Option<&mut CodeRecord> {
        self.codes.get_mut(&code_key(code))
    }

    /// Records a code (dropping the oldest beyond the bound).
    pub fn insert_code(&mut self, code: &str, record: CodeRecord) {
        let key = code_key(code);
        if self.codes.insert(key, record).is_none() {
            self.code_order.push_back(key);
        }
        while self.code_order.len() > self.max_codes {
            if let Some(old) = self.code_order.pop_front() {
                self.codes.remove(&old);
            }
        }
    }

    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize) {
        (self.attempts.len(), self.codes.len())
    }
}

/// Same redirect URI once query and fragment are dropped; on loopback any port.
fn same_redirect(registered: &str, seen: &str) -> bool {
    let (r, s) = (strip_query(registered), strip_query(seen));
    match compare(&r, &s) {
        None => true,
        Some(d) => d.loopback_port_only,
    }
}

fn code_key(code: &str) -> [u8; 32] {
    Sha256::digest(code.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::testing::{T0, ex};

    fn authorize(query: &str) -> AuthorizeRequest {
        let url = format!("https://idp.example/authorize?response_type=code&client_id=c&{query}");
        AuthorizeRequest::parse(&ex("GET", &url).build().request).unwrap()
    }

    #[test]
    fn pairs_by_state_then_heuristic() {
        let mut store = AttemptStore::new(8, Duration::from_secs(600));
        let a = store.start(authorize("state=s1&redirect_uri=https://app/cb"), T0);
        let b = store.start(authorize("redirect_uri=https://app/cb"), T0);
        let c = store.start(authorize("redirect_uri=http://localhost:3000/cb"), T0);
        assert_eq!(store.pair(Some("s1"), None), Some((a, Pairing::State)));
        assert_eq!(
            store.pair(None, Some("https://app/cb")),
            Some((b, Pairing::Heuristic))
        );
        assert_eq!(
            store.pair(Some("zz"), Some("https://app/cb")),
            Some((b, Pairing::Heuristic))
        );
        assert_eq!(
            store.pair(None, Some("http://localhost:4000/cb")),
            Some((c, Pairing::Heuristic))
        );
        assert_eq!(store.pair(None, Some("https://other/cb")), None);
        assert!(store.is_redirect_uri("https://app/cb"));
        assert!(!store.is_redirect_uri("https://app/cb2"));
    }

    #[test]
    fn memory_is_bounded_by_count_and_ttl() {
        let mut store = AttemptStore::new(4, Duration::from_secs(60));
        for i in 0..100 {
            store.start(authorize(&format!("state={i}")), T0);
            store.insert_code(
                &format!("code{i}"),
                CodeRecord {
                    attempt: None,
                    issued_at: Some(T0),
                    provider: Provider::Generic,
                    first_redemption: None,
                    redemptions: 0,
                    refused_as_malformed: 0,
                    last_seen: T0,
                },
            );
        }
        assert_eq!(store.sizes(), (4, 24));
        assert!(store.code("code99").is_some());
        assert!(store.code("code0").is_none());
        store.evict(T0 + Duration::from_secs(61));
        assert_eq!(store.sizes(), (0, 0));
    }
}
