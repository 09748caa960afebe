//! What the web view keeps: the last N sign-in attempts (their events, as
//! the analysis published them) and the last N exchanges (a row each; the
//! redacted HAR entry of the ones that may be sign-in legs, within a byte
//! budget), and the broadcast of updates its pages follow.
//!
//! One more consumer of the session's event stream and a watcher of the
//! exchange feed: it never analyses anything itself, and it never makes the
//! proxy or the analysis wait (it takes what the lagging broadcasts give it,
//! and a page that falls behind is told to resync).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::exchange::Exchange;
use crate::har::recorder::Entries;
use crate::oauth::event::{Event, rfc3339};
use crate::output::json_lines;

/// Default number of attempts and of exchanges kept (`--web-history`).
pub const DEFAULT_WEB_HISTORY: usize = 10_000;

/// Captured body bytes the kept HAR entries may hold in all; beyond it the
/// oldest entries are dropped (their rows stay).
pub(crate) const ENTRY_BUDGET: usize = 64 << 20;

/// Events kept per attempt (a long run of refreshes keeps its latest).
const EVENTS_PER_ATTEMPT: usize = 512;

/// Updates a page may fall behind before it is told to resync.
pub const UPDATE_BUFFER: usize = 4096;

/// The view's bounded state, shared by the feeding tasks and the requests.
pub struct Store {
    state: Mutex<State>,
    updates: broadcast::Sender<Update>,
    history: usize,
}

/// One change a following page is told about.
#[derive(Clone, Debug)]
pub enum Update {
    /// An attempt's summary row, new or changed.
    Attempt(Arc<str>),
    /// A new exchange row.
    Exchange(Arc<str>),
    /// The store missed events (its own subscription lagged): pages reload.
    Resync,
}

struct State {
    attempts: BTreeMap<u64, Attempt>,
    /// Events of no attempt (an unpaired code or token leg), the latest.
    loose: VecDeque<Arc<Event>>,
    rows: BTreeMap<u64, Row>,
    /// Row ids in arrival order, for eviction.
    order: VecDeque<u64>,
    /// Ids of the rows holding an entry, oldest first, and their bytes.
    kept: VecDeque<u64>,
    kept_bytes: usize,
    entries: Entries,
    /// Which attempt each leg's exchange belongs to.
    legs: HashMap<u64, u64>,
    /// Events the store missed because its subscription lagged.
    missed: u64,
}

/// One sign-in attempt: its events, in order, and the same as JSON lines
/// objects (what the page and the summary read).
pub struct Attempt {
    pub id: u64,
    pub events: Vec<Arc<Event>>,
    pub values: Vec<Value>,
}

/// One exchange, as the traffic list shows it.
///
/// Plain fields, cheap to take from an exchange: its JSON (and the
/// redaction of its URL) is made only when a page asks or follows.
struct Row {
    id: u64,
    time: time::OffsetDateTime,
    method: http::Method,
    uri: http::Uri,
    status: Option<u16>,
    size: Option<u64>,
    content_type: Option<http::HeaderValue>,
    ms: Option<u64>,
    oauth: bool,
    error: Option<String>,
    intervention: Option<String>,
    entry: Option<(Arc<Value>, usize)>,
}

impl Store {
    pub fn new(history: usize, show_secrets: bool) -> Store {
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        Store {
            state: Mutex::new(State {
                attempts: BTreeMap::new(),
                loose: VecDeque::new(),
                rows: BTreeMap::new(),
                order: VecDeque::new(),
                kept: VecDeque::new(),
                kept_bytes: 0,
                entries: Entries::new(show_secrets),
                legs: HashMap::new(),
                missed: 0,
            }),
            updates,
            history: history.max(1),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates from now on (a lagging receiver means: resync).
    pub fn follow(&self) -> broadcast::Receiver<Update> {
        self.updates.subscribe()
    }

    /// True while a page follows the updates.
    pub fn followed(&self) -> bool {
        self.updates.receiver_count() > 0
    }

    /// Takes one analysis event.
    pub fn event(&self, event: Arc<Event>) {
        let update = {
            let mut state = self.state();
            let Some(id) = event.attempt().map(|a| a.0) else {
                if state.loose.len() == self.history {
                    state.loose.pop_front();
                }
                state.loose.push_back(event);
                return;
            };
            let value = json_lines::to_value(&event);
            let exchange = value["exchange"].as_u64();
            let attempt = state.attempts.entry(id).or_insert_with(|| Attempt {
                id,
                events: Vec::new(),
                values: Vec::new(),
            });
            let mut trimmed = None;
            if attempt.events.len() == EVENTS_PER_ATTEMPT {
                attempt.events.remove(1);
                trimmed = attempt.values.remove(1)["exchange"].as_u64();
            }
            attempt.events.push(event);
            attempt.values.push(value);
            let summary = summary(attempt).to_string();
            // The legs map follows the events kept (a long-lived attempt
            // refreshing for hours must not grow it).
            if let Some(gone) = trimmed {
                state.legs.remove(&gone);
            }
            if let Some(exchange) = exchange {
                state.legs.insert(exchange, id);
            }
            while state.attempts.len() > self.history {
                if let Some((_, old)) = state.attempts.pop_first() {
                    for v in &old.values {
                        if let Some(x) = v["exchange"].as_u64() {
                            state.legs.remove(&x);
                        }
                    }
                }
            }
            Update::Attempt(summary.into())
        };
        // Nobody following is fine.
        let _ = self.updates.send(update);
    }

    /// The store's own event subscription lagged: `n` events are missing.
    pub fn missed(&self, n: u64) {
        self.state().missed += n;
        let _ = self.updates.send(Update::Resync);
    }

    /// Takes one finished exchange: a row, and the redacted HAR entry of
    /// one that may be a sign-in leg.
    pub fn exchange(&self, exchange: &Exchange) {
        if self.state().rows.contains_key(&exchange.id) {
            // Already taken (the two ways in never overlap; if they ever
            // did, the budget's books must not count it twice).
            return;
        }
        let vital = crate::oauth::triage::may_matter(exchange);
        let following = self.updates.receiver_count() > 0;
        let line = {
            let mut state = self.state();
            let entry = vital.then(|| {
                let bytes = exchange.request.body.bytes.len()
                    + exchange.response.as_ref().map_or(0, |r| r.body.bytes.len());
                (Arc::new(state.entries.entry(exchange)), bytes)
            });
            if let Some((_, bytes)) = &entry {
                state.kept_bytes += bytes;
                state.kept.push_back(exchange.id);
            }
            let row = Row::new(exchange, vital, entry);
            // Only a page following needs the row now.
            let line = following.then(|| row.line(&mut state.entries));
            state.rows.insert(exchange.id, row);
            // Legs and the rest of the traffic arrive by two ways (see
            // `WebView::attach`): keep the list in the proxy's order.
            let at = state.order.partition_point(|&id| id < exchange.id);
            state.order.insert(at, exchange.id);
            while state.order.len() > self.history {
                if let Some(old) = state.order.pop_front() {
                    state.forget_entry(old);
                    state.rows.remove(&old);
                }
            }
            while state.kept_bytes > ENTRY_BUDGET {
                let Some(old) = state.kept.front().copied() else {
                    break;
                };
                if !state.forget_entry(old) {
                    state.kept.pop_front();
                }
            }
            line
        };
        if let Some(line) = line {
            let _ = self.updates.send(Update::Exchange(line.into()));
        }
    }

    /// Summary rows of the attempts, newest first.
    pub fn attempts(&self) -> Vec<Value> {
        self.state().attempts.values().rev().map(summary).collect()
    }

    /// One attempt's summary and events (as JSON lines objects), or `None`
    /// when it is unknown or was forgotten.
    pub fn attempt(&self, id: u64) -> Option<(Value, Vec<Arc<Event>>, Vec<Value>)> {
        let state = self.state();
        let attempt = state.attempts.get(&id)?;
        Some((
            summary(attempt),
            attempt.events.clone(),
            attempt.values.clone(),
        ))
    }

    /// The events of no attempt.
    pub fn loose(&self) -> Vec<Arc<Event>> {
        self.state().loose.iter().cloned().collect()
    }

    /// Exchange rows, newest first, at most `limit`.
    pub fn rows(&self, limit: usize) -> Vec<Value> {
        let mut state = self.state();
        let state = &mut *state;
        let mut rows = Vec::new();
        for id in state.order.iter().rev().take(limit) {
            let Some(row) = state.rows.get(id) else {
                continue;
            };
            let mut json = row.json(&mut state.entries);
            if let Some(attempt) = state.legs.get(id) {
                json["attempt"] = json!(attempt);
            }
            rows.push(json);
        }
        rows
    }

    /// The redacted HAR entry of exchange `id`, when kept.
    pub fn entry(&self, id: u64) -> Option<Arc<Value>> {
        let state = self.state();
        state.rows.get(&id)?.entry.as_ref().map(|(e, _)| e.clone())
    }

    /// The row of exchange `id`, when kept.
    pub fn row(&self, id: u64) -> Option<Value> {
        let mut state = self.state();
        let state = &mut *state;
        state.rows.get(&id).map(|r| r.json(&mut state.entries))
    }

    /// How much the store holds (for the page's footer and the tests).
    pub fn counts(&self) -> Value {
        let state = self.state();
        json!({
            "attempts": state.attempts.len(),
            "exchanges": state.rows.len(),
            "entries": state.kept.len(),
            "entry_bytes": state.kept_bytes,
            "history": self.history,
            "missed_events": state.missed,
        })
    }
}

impl State {
    /// Drops the HAR entry of exchange `id`; false when it had none.
    fn forget_entry(&mut self, id: u64) -> bool {
        let Some((_, bytes)) = self.rows.get_mut(&id).and_then(|row| row.entry.take()) else {
            return false;
        };
        self.kept_bytes = self.kept_bytes.saturating_sub(bytes);
        if let Some(at) = self.kept.iter().position(|k| *k == id) {
            self.kept.remove(at);
        }
        true
    }
}

impl Row {
    fn new(exchange: &Exchange, oauth: bool, entry: Option<(Arc<Value>, usize)>) -> Row {
        let response = exchange.response.as_ref();
        Row {
            id: exchange.id,
            time: exchange.started_at,
            method: exchange.request.method.clone(),
            uri: exchange.request.uri.clone(),
            status: response.map(|r| r.status.as_u16()),
            size: response.map(|r| r.body.size),
            content_type: response.and_then(|r| r.headers.get(http::header::CONTENT_TYPE).cloned()),
            ms: exchange
                .timings
                .response_done
                .or(exchange.timings.response_head)
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            oauth,
            error: exchange.error.as_ref().map(|e| e.message.clone()),
            intervention: exchange.intervention.as_ref().map(|i| i.label.clone()),
            entry,
        }
    }

    /// The traffic list's row, its URL redacted as the HAR does.
    fn json(&self, entries: &mut Entries) -> Value {
        serde_json::to_value(self.view(entries)).unwrap_or_default()
    }

    /// The row as one line of JSON (for a page following), without the
    /// tree of values in between.
    fn line(&self, entries: &mut Entries) -> String {
        serde_json::to_string(&self.view(entries)).unwrap_or_default()
    }

    fn view(&self, entries: &mut Entries) -> RowView<'_> {
        RowView {
            id: self.id,
            time: rfc3339(self.time),
            method: self.method.as_str(),
            url: entries.url(&self.uri.to_string()),
            host: self.uri.host(),
            status: self.status,
            size: self.size,
            r#type: self.content_type.as_ref().and_then(|v| v.to_str().ok()),
            ms: self.ms,
            oauth: self.oauth,
            error: self.error.as_deref(),
            intervention: self.intervention.as_deref(),
        }
    }
}

/// A traffic row as the API and the stream show it.
#[derive(serde::Serialize)]
struct RowView<'a> {
    id: u64,
    time: String,
    method: &'a str,
    url: String,
    host: Option<&'a str>,
    status: Option<u16>,
    size: Option<u64>,
    r#type: Option<&'a str>,
    ms: Option<u64>,
    oauth: bool,
    error: Option<&'a str>,
    intervention: Option<&'a str>,
}

/// An attempt's row in the sign-in list, from its events as JSON lines
/// objects (so legs and fields the analysis adds later count without a
/// change here): where it stands, who and where, when and how long, what
/// was found.
pub fn summary(attempt: &Attempt) -> Value {
    let mut s = json!({
        "id": attempt.id,
        "status": "in-progress",
        "failed_at": null,
        "provider": null,
        "host": null,
        "tenant": null,
        "client_id": null,
        "user": null,
        "start": null,
        "duration_ms": null,
        "findings": { "error": 0, "warning": 0, "info": 0 },
        "rules": [],
        "idp_codes": [],
        "injected": [],
        "exchanges": [],
        "summary": null,
    });
    let mut rules: Vec<Value> = Vec::new();
    let mut codes: Vec<Value> = Vec::new();
    let mut injected: Vec<Value> = Vec::new();
    let mut exchanges: Vec<Value> = Vec::new();
    let add = |list: &mut Vec<Value>, v: &Value| {
        if !v.is_null() && !list.contains(v) {
            list.push(v.clone());
        }
    };
    for e in &attempt.values {
        let kind = e["type"].as_str().unwrap_or("");
        add(&mut injected, &e["injected"]);
        add(&mut exchanges, &e["exchange"]);
        for code in e["error_codes"].as_array().into_iter().flatten() {
            add(&mut codes, code);
        }
        // The first value of each fact wins, except where a later leg knows better.
        for key in ["provider", "host", "tenant", "client_id"] {
            if s[key].is_null() && !e[key].is_null() {
                s[key] = e[key].clone();
            }
        }
        if s["start"].is_null() {
            s["start"] = e["time"].clone();
        }
        let failed = e["failed"] == true || (kind != "finding" && !e["error"].is_null());
        if failed {
            s["failed_at"] = json!(match kind {
                "code" => "authorize",
                "token-response" => "token",
                other => other,
            });
        }
        for token in e["decoded_tokens"].as_array().into_iter().flatten() {
            if token["token"] == "id_token" {
                let claims = &token["claims"];
                let user = [
                    &claims["preferred_username"],
                    &claims["upn"],
                    &claims["sub"],
                    &claims["oid"],
                ]
                .into_iter()
                .find(|v| !v.is_null());
                if let Some(user) = user {
                    s["user"] = user.clone();
                }
            }
        }
        match kind {
            "finding" => {
                if let Some(sev) = e["severity"].as_str() {
                    let n = &mut s["findings"][sev];
                    *n = json!(n.as_u64().unwrap_or(0) + 1);
                }
                add(&mut rules, &e["rule"]);
            }
            "verdict" => {
                s["status"] = e["outcome"].clone();
                s["duration_ms"] = e["duration_ms"].clone();
                s["summary"] = e["summary"].clone();
            }
            _ => {}
        }
    }
    s["rules"] = json!(rules);
    s["idp_codes"] = json!(codes);
    s["injected"] = json!(injected);
    s["exchanges"] = json!(exchanges);
    s
}

/// The events as JSON lines objects (what `--json` writes).
pub fn event_values(events: &[Arc<Event>]) -> Vec<Value> {
    events.iter().map(|e| json_lines::to_value(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traffic_list_is_bounded_and_forgets_the_oldest() {
        let store = Store::new(3, false);
        let mut follow = store.follow();
        for id in 0..5u64 {
            let exchange = crate::oauth::testing::ex("GET", "https://app.test/x?a=1")
                .id(id)
                .status(200)
                .build();
            store.exchange(&exchange);
        }
        let rows = store.rows(100);
        let ids: Vec<u64> = rows.iter().map(|r| r["id"].as_u64().unwrap()).collect();
        assert_eq!(ids, [4, 3, 2]);
        assert!(matches!(follow.try_recv(), Ok(Update::Exchange(_))));
        assert_eq!(store.counts()["exchanges"], 3);
    }
}
