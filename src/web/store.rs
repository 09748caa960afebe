//! What the web view keeps: the last N sign-in attempts (their events, as
//! the analysis published them) and the last N exchanges (a row each; the
//! redacted HAR entry of the ones that may be sign-in legs, within a byte
//! budget), and the broadcast of updates its pages follow.
//!
//! One more consumer of the session's event stream, of the sign-in legs
//! and of the proxy's sightings: it never analyses anything itself, and it
//! never makes the proxy or the analysis wait (it takes what the lagging
//! broadcasts and the bounded sightings give it, and a page that falls
//! behind is told to resync). A page following asks for the rows that
//! arrived since it last looked ([`Store::rows_since`]): one update per
//! batch, not one per exchange.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::exchange::Exchange;
use crate::har::recorder::Entries;
use crate::oauth::event::{Event, rfc3339};
use crate::output::json_lines;
use crate::proxy::Sighting;

/// Default number of attempts and of exchanges kept (`--web-history`).
pub const DEFAULT_WEB_HISTORY: usize = 10_000;

/// Captured body bytes the kept HAR entries may hold in all; beyond it the
/// oldest entries are dropped (their rows stay).
pub(crate) const ENTRY_BUDGET: usize = 64 << 20;

/// Events kept per attempt (a long run of refreshes keeps its latest).
const EVENTS_PER_ATTEMPT: usize = 512;

/// Rows made into JSON per hold of the lock when a page loads a list (an
/// eighth as many attempts): the feeds wait a millisecond or so at most.
const LIST_CHUNK: usize = 256;

/// Updates a page may fall behind before it is told to resync. Traffic
/// comes as one update per batch (20 a second at most), so this is mostly
/// attempts' rows; the buffer is allocated at start (48 bytes an update).
pub const UPDATE_BUFFER: usize = 1024;

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
    /// New or changed exchange rows: a page asks for them with
    /// [`Store::rows_since`] (one update for a whole batch).
    Traffic,
    /// The store missed events (its own subscription lagged): pages reload.
    Resync,
}

struct State {
    attempts: BTreeMap<u64, Attempt>,
    /// Events of no attempt (an unpaired code or token leg), the latest.
    loose: VecDeque<Arc<Event>>,
    /// By id, oldest first (they arrive almost in order).
    rows: VecDeque<Row>,
    /// The ids of the rows as they arrived or changed, numbered: entry `i`
    /// is arrival `first_arrival + i` (what a page following has seen).
    arrivals: VecDeque<u64>,
    first_arrival: u64,
    /// Ids of the rows holding an entry, oldest first, and their bytes.
    kept: VecDeque<u64>,
    kept_bytes: usize,
    entries: Entries,
    /// Which attempt each leg's exchange belongs to.
    legs: HashMap<u64, u64>,
    /// Events the store missed because its subscription lagged.
    missed: u64,
    /// Sightings that did not fit the proxy's batch (a busy proxy whose
    /// view was not taking them).
    missed_rows: u64,
    /// Times a page that stopped reading was skipped ahead.
    pages_skipped: u64,
}

/// One sign-in attempt: its events, in order, and the same as JSON lines
/// objects (what the page and the summary read).
pub struct Attempt {
    pub id: u64,
    pub events: Vec<Arc<Event>>,
    pub values: Vec<Value>,
}

/// One exchange, as the traffic list shows it: its sighting (plain
/// fields; the JSON, and the redaction of the URL, are made only when a
/// page asks) and, for a sign-in leg, its redacted HAR entry.
struct Row {
    /// The sighting's, at hand for lookups without following the box
    /// (set by [`Row::new`] only).
    id: u64,
    sight: Box<Sighting>,
    oauth: bool,
    entry: Option<(Arc<Value>, usize)>,
}

impl Store {
    pub fn new(history: usize, show_secrets: bool) -> Store {
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        Store {
            state: Mutex::new(State {
                attempts: BTreeMap::new(),
                loose: VecDeque::new(),
                rows: VecDeque::new(),
                arrivals: VecDeque::new(),
                first_arrival: 0,
                kept: VecDeque::new(),
                kept_bytes: 0,
                entries: Entries::new(show_secrets),
                legs: HashMap::new(),
                missed: 0,
                missed_rows: 0,
                pages_skipped: 0,
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

    /// A page that stopped reading was skipped ahead (told to resync).
    pub fn page_skipped(&self) {
        self.state().pages_skipped += 1;
    }

    /// The store's own event subscription lagged: `n` events are missing.
    pub fn missed(&self, n: u64) {
        self.state().missed += n;
        let _ = self.updates.send(Update::Resync);
    }

    /// Takes one finished exchange: a row (or the row its sighting made),
    /// and the redacted HAR entry of one that may be a sign-in leg.
    pub fn exchange(&self, exchange: &Exchange) {
        let vital = crate::oauth::triage::may_matter(exchange);
        {
            let mut state = self.state();
            let state = &mut *state;
            let at = match state.find(exchange.id) {
                // Sighted first (sightings are handed over as the response
                // ends, the exchange once its request body is in): the row
                // gets what only the exchange has.
                Ok(at) if state.rows[at].entry.is_none() && vital => at,
                // Already taken (its budget must not count it twice).
                Ok(_) => return,
                Err(_) => state.insert(Row::new(Box::new(Sighting::of(exchange)))),
            };
            if vital {
                let bytes = exchange.request.body.bytes.len()
                    + exchange.response.as_ref().map_or(0, |r| r.body.bytes.len());
                let entry = Arc::new(state.entries.entry(exchange));
                let row = &mut state.rows[at];
                row.oauth = true;
                row.entry = Some((entry, bytes));
                state.kept_bytes += bytes;
                state.kept.push_back(exchange.id);
            }
            state.arrived(exchange.id, self.history);
        }
        let _ = self.updates.send(Update::Traffic);
    }

    /// Takes a batch of sightings (the traffic besides the sign-in legs,
    /// while a page follows), and the count of those that did not fit.
    pub fn sightings(&self, batch: &mut Vec<Box<Sighting>>, missed: u64) {
        if batch.is_empty() && missed == 0 {
            return;
        }
        {
            let mut state = self.state();
            state.missed_rows += missed;
            for sight in batch.drain(..) {
                let id = sight.id;
                let Err(at) = state.find(id) else {
                    continue;
                };
                state.rows.insert(at, Row::new(sight));
                state.arrived(id, self.history);
            }
        }
        let _ = self.updates.send(Update::Traffic);
    }

    /// Summary rows of the attempts, newest first.
    pub fn attempts(&self) -> Vec<Value> {
        // Made a few at a time: the feeds must not wait for the whole list.
        let ids: Vec<u64> = self.state().attempts.keys().rev().copied().collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LIST_CHUNK / 8) {
            let state = self.state();
            out.extend(
                chunk
                    .iter()
                    .filter_map(|id| state.attempts.get(id))
                    .map(summary),
            );
        }
        out
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
        // Made a few at a time: the feeds must not wait for the whole list.
        let ids: Vec<u64> = {
            let state = self.state();
            state.rows.iter().rev().take(limit).map(|r| r.id).collect()
        };
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LIST_CHUNK) {
            let mut state = self.state();
            let state = &mut *state;
            for id in chunk {
                if let Ok(at) = state.find(*id) {
                    rows.push(state.row_json(at));
                }
            }
        }
        rows
    }

    /// Where a page that is about to load the rows starts following them
    /// (see [`Store::rows_since`]).
    pub fn arrivals(&self) -> u64 {
        let state = self.state();
        state.first_arrival + state.arrivals.len() as u64
    }

    /// What arrived (or changed) since arrival `since`, for a page
    /// following: the newest rows as JSON lines, newest first, at most
    /// `limit` of them and about `max_bytes`, how many arrivals were left
    /// out (a page shown a busy proxy's traffic gets its newest rows, not
    /// every one), and where to go on from.
    pub fn rows_since(
        &self,
        since: u64,
        limit: usize,
        max_bytes: usize,
    ) -> (Vec<String>, u64, u64) {
        let mut state = self.state();
        let state = &mut *state;
        let next = state.first_arrival + state.arrivals.len() as u64;
        let from = since.max(state.first_arrival);
        let fresh = usize::try_from(next.saturating_sub(from)).unwrap_or(usize::MAX);
        let mut lines = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut left_out = state.first_arrival.saturating_sub(since);
        let mut bytes = 0;
        for i in (0..state.arrivals.len()).rev().take(fresh) {
            let id = state.arrivals[i];
            // A row that changed is sent once, as it is now.
            if !seen.insert(id) {
                continue;
            }
            // Full: the rest is only counted.
            if lines.len() == limit || bytes >= max_bytes {
                left_out += 1;
                continue;
            }
            let Ok(at) = state.find(id) else {
                continue;
            };
            let line = state.row_line(at);
            bytes += line.len();
            lines.push(line);
        }
        (lines, left_out, next)
    }

    /// The redacted HAR entry of exchange `id`, when kept.
    pub fn entry(&self, id: u64) -> Option<Arc<Value>> {
        let state = self.state();
        let at = state.find(id).ok()?;
        state.rows[at].entry.as_ref().map(|(e, _)| e.clone())
    }

    /// The row of exchange `id`, when kept.
    pub fn row(&self, id: u64) -> Option<Value> {
        let mut state = self.state();
        let state = &mut *state;
        let at = state.find(id).ok()?;
        Some(state.row_json(at))
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
            "missed_rows": state.missed_rows,
            "pages_skipped": state.pages_skipped,
        })
    }
}

impl State {
    /// Where the row of exchange `id` is, or would go.
    fn find(&self, id: u64) -> Result<usize, usize> {
        // Most lookups are for the newest few (exchanges end almost in
        // the order they began).
        let len = self.rows.len();
        for at in (len.saturating_sub(32)..len).rev() {
            let here = self.rows[at].id;
            if here == id {
                return Ok(at);
            }
            if here < id {
                return Err(at + 1);
            }
        }
        self.rows.binary_search_by_key(&id, |r| r.id)
    }

    /// Puts a new row in its place (the proxy's order); returns where.
    fn insert(&mut self, row: Row) -> usize {
        let at = self.find(row.id).unwrap_or_else(|at| at);
        self.rows.insert(at, row);
        at
    }

    /// Notes that the row of `id` arrived or changed, and forgets the
    /// oldest rows beyond `history`, and the oldest entries beyond the
    /// budget.
    fn arrived(&mut self, id: u64, history: usize) {
        self.arrivals.push_back(id);
        // Arrivals are kept as long as rows (a row may arrive twice).
        while self.arrivals.len() > 2 * history {
            self.arrivals.pop_front();
            self.first_arrival += 1;
        }
        while self.rows.len() > history {
            let Some(old) = self.rows.pop_front() else {
                break;
            };
            if let Some((_, bytes)) = old.entry {
                self.forget_kept(old.id, bytes);
            }
        }
        while self.kept_bytes > ENTRY_BUDGET {
            let Some(old) = self.kept.front().copied() else {
                break;
            };
            if !self.forget_entry(old) {
                self.kept.pop_front();
            }
        }
    }

    /// Drops the HAR entry of exchange `id`; false when it had none.
    fn forget_entry(&mut self, id: u64) -> bool {
        let Some((_, bytes)) = self.find(id).ok().and_then(|at| self.rows[at].entry.take()) else {
            return false;
        };
        self.forget_kept(id, bytes);
        true
    }

    /// An entry of `bytes` kept for `id` is gone.
    fn forget_kept(&mut self, id: u64, bytes: usize) {
        self.kept_bytes = self.kept_bytes.saturating_sub(bytes);
        if let Some(at) = self.kept.iter().position(|k| *k == id) {
            self.kept.remove(at);
        }
    }

    /// The traffic list's row at `at`, its URL redacted as the HAR does.
    fn row_json(&mut self, at: usize) -> Value {
        serde_json::to_value(self.row_view(at)).unwrap_or_default()
    }

    /// The same as one line of JSON, without the tree of values between.
    fn row_line(&mut self, at: usize) -> String {
        serde_json::to_string(&self.row_view(at)).unwrap_or_default()
    }

    /// The row at `at` with the attempt its exchange is a leg of.
    fn row_view(&mut self, at: usize) -> RowView<'_> {
        let row = &self.rows[at];
        let attempt = self.legs.get(&row.id).copied();
        row.view(&mut self.entries, attempt)
    }
}

impl Row {
    /// A new row (not a sign-in leg, no HAR entry yet).
    fn new(sight: Box<Sighting>) -> Row {
        Row {
            id: sight.id,
            sight,
            oauth: false,
            entry: None,
        }
    }

    fn view(&self, entries: &mut Entries, attempt: Option<u64>) -> RowView<'_> {
        let s = &self.sight;
        RowView {
            id: s.id,
            time: rfc3339(s.started_at),
            method: s.method.as_str(),
            url: entries.url(&s.uri.to_string()),
            host: s.uri.host(),
            status: s.status.map(|s| s.as_u16()),
            size: s.size,
            r#type: s.content_type.as_ref().and_then(|v| v.to_str().ok()),
            ms: s
                .duration
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            oauth: self.oauth,
            error: s.error.as_deref(),
            intervention: s.intervention.as_deref(),
            attempt,
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
    /// The sign-in attempt it is a leg of.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u64>,
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
        assert!(matches!(follow.try_recv(), Ok(Update::Traffic)));
        assert_eq!(store.counts()["exchanges"], 3);
    }

    fn sighting(id: u64) -> Box<Sighting> {
        Box::new(Sighting::of(
            &crate::oauth::testing::ex("GET", &format!("https://app.test/{id}"))
                .id(id)
                .status(200)
                .build(),
        ))
    }

    /// A page following gets the newest rows since it last looked, each
    /// once (a leg sighted, then built, changes its row), and how many were
    /// left out.
    #[test]
    fn a_page_gets_the_newest_rows_since_it_looked_and_the_count_left_out() {
        let store = Store::new(100, false);
        let start = store.arrivals();
        let mut batch: Vec<Box<Sighting>> = (1..=10).map(sighting).collect();
        store.sightings(&mut batch, 0);
        assert!(batch.is_empty());
        let (rows, left_out, next) = store.rows_since(start, 4, usize::MAX);
        let ids: Vec<u64> = rows
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(r).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, [10, 9, 8, 7]);
        assert_eq!(left_out, 6);

        // A sign-in leg, sighted first: its exchange makes the row a leg
        // with an entry, and the page is sent the row again, once.
        let leg = crate::oauth::testing::ex("POST", "https://idp.test/oauth2/v2.0/token")
            .id(11)
            .form("grant_type=authorization_code&code=c")
            .status(200)
            .build();
        let mut batch = vec![Box::new(Sighting::of(&leg))];
        store.sightings(&mut batch, 0);
        store.exchange(&leg);
        store.exchange(&leg);
        let (rows, left_out, after) = store.rows_since(next, 10, usize::MAX);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(left_out, 0);
        let row: Value = serde_json::from_str(&rows[0]).unwrap();
        assert_eq!(row["id"], 11);
        assert_eq!(row["oauth"], true);
        assert!(store.entry(11).is_some());
        assert_eq!(store.counts()["entries"], 1, "the entry counts once");
        assert_eq!(store.rows_since(after, 10, usize::MAX), (vec![], 0, after));
        // About `max_bytes`: the row that passes it is the last.
        let (rows, left_out, _) = store.rows_since(start, 10, 1);
        assert_eq!((rows.len(), left_out), (1, 10));

        // Sightings that did not fit are counted; so are arrivals a page
        // looked for too late to get.
        store.sightings(&mut Vec::new(), 3);
        assert_eq!(store.counts()["missed_rows"], 3);
        let small = Store::new(2, false);
        let mut batch: Vec<Box<Sighting>> = (1..=10).map(sighting).collect();
        small.sightings(&mut batch, 0);
        let (rows, left_out, _) = small.rows_since(0, 10, usize::MAX);
        assert_eq!(rows.len(), 2);
        assert_eq!(left_out, 6, "4 arrivals kept for 2 rows: 6 forgotten");
        let ids: Vec<u64> = small
            .rows(10)
            .iter()
            .map(|r| r["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [10, 9]);
    }
}
