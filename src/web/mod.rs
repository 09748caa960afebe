//! The live web view: every sign-in as a timeline in the browser, served by
//! the proxy itself on its own port (a direct `GET /`), through the proxy's
//! local-service hook.
//!
//! One more consumer of a [`Session`]'s event stream (with the session's
//! history of recent events, so a page opened mid-session sees what
//! already happened), of the sign-in legs the analysis reads, and, while a
//! page follows, of the proxy's sightings of the rest of the traffic (a
//! line's worth of each exchange, nothing built or copied): it analyses
//! nothing itself and never makes the proxy or the analysis wait. What it
//! keeps is bounded ([`store`]); each page follows over server-sent events
//! through a small queue, gets at most [`ROWS_PER_BATCH`] traffic rows a
//! chunk (the newest; it is told how many were left out), and one that
//! falls behind is told to resync.
//!
//! Layout: [`auth`] (token, `Host`, `Origin`), [`store`] (the bounded
//! state), [`api`] (the JSON and the downloads), `assets/` (the page,
//! compiled in). Routes: see README ("The web view").

pub mod api;
pub mod auth;
pub mod store;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::ca::CertificateAuthority;
use crate::inject::FaultInjector;
use crate::output::escape::escape_controls;
use crate::proxy::{
    Body, BoxFuture, Buffered, Delivery, ExchangeStream, LocalContext, LocalService, Sightings,
    WeakFeed,
};
use crate::session::Session;
use auth::{Refusal, Token};
use store::{Store, Update};

pub use store::DEFAULT_WEB_HISTORY;

/// The path prefix of the JSON API and the streams.
pub const API_PREFIX: &str = "/api/";

/// How often the sightings of the traffic are taken while a page follows
/// (see `follow_traffic`): one wake-up per round, however busy the proxy.
const SIGHT_ROUND: Duration = Duration::from_millis(50);

/// Traffic rows sent to a page per chunk, the newest: a page following a
/// proxy busier than this (4,000 rows a second) is told how many it was
/// not sent and loads them when asked, so following costs the proxy little
/// however busy it is.
const ROWS_PER_BATCH: usize = 200;

/// How long the traffic is sighted after the last page left (a reload
/// keeps it on).
const FOLLOW_LINGER: Duration = Duration::from_secs(10);

/// A comment line sent on an idle stream, well under the proxy's idle
/// timeout (300 s) and the browsers' own.
const HEARTBEAT: Duration = Duration::from_secs(15);

/// Chunks waiting for one page (each at most [`BATCH_BYTES`], so at most
/// 1 MiB); a page that does not take them is skipped ahead (told to
/// resync), never buffered for.
const STREAM_QUEUE: usize = 16;

/// How long updates are gathered into one chunk, and how much one holds.
const BATCH_WINDOW: Duration = Duration::from_millis(50);
const BATCH_BYTES: usize = 64 << 10;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How the view is set up for a run.
#[derive(Clone)]
pub struct WebOptions {
    /// Attempts and exchanges kept (`--web-history`).
    pub history: usize,
    /// `--show-secrets`: the HAR entries are not redacted (events come from
    /// the analysis already fingerprinted, or not, by the same flag).
    pub show_secrets: bool,
    /// `--code-lifetime`, drawn on the timeline (else the provider's).
    pub code_lifetime: Option<Duration>,
    /// The fault injector, when `--fault` is in use: listed and switched.
    pub faults: Option<Arc<FaultInjector>>,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            history: DEFAULT_WEB_HISTORY,
            show_secrets: false,
            code_lifetime: None,
            faults: None,
        }
    }
}

/// The web view of one run. Plug [`WebView::service`] into the proxy's
/// hooks, start the session, then [`WebView::attach`] it.
#[derive(Clone)]
pub struct WebView {
    inner: Arc<Inner>,
}

struct Inner {
    token: Token,
    store: Store,
    options: WebOptions,
    ca: OnceLock<Arc<CertificateAuthority>>,
    /// The session's exchange feed (not kept open by the view), sighted
    /// whole only while a page follows: see [`Inner::follow_traffic`].
    feed: OnceLock<WeakFeed>,
    traffic: Mutex<Option<JoinHandle<()>>>,
}

impl WebView {
    pub fn new(options: WebOptions) -> WebView {
        WebView {
            inner: Arc::new(Inner {
                token: Token::random(),
                store: Store::new(options.history, options.show_secrets),
                options,
                ca: OnceLock::new(),
                feed: OnceLock::new(),
                traffic: Mutex::new(None),
            }),
        }
    }

    /// The local service answering the view's requests.
    pub fn service(&self) -> Arc<dyn LocalService> {
        Arc::new(self.clone())
    }

    /// The per-run token.
    pub fn token(&self) -> &str {
        self.inner.token.as_str()
    }

    /// What the view keeps.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The URL that opens the view of the proxy listening at `listen`,
    /// token included (what the banner prints).
    pub fn url(&self, listen: SocketAddr) -> String {
        format!(
            "http://{}/?token={}",
            crate::config::connectable(listen),
            self.token()
        )
    }

    /// Starts feeding the view from `session`: its recent events and live
    /// stream, the sign-in legs the analysis reads (always, so a page opened
    /// later has their details and downloads), and the rest of the traffic
    /// while a page follows. The tasks end when the session's streams close
    /// (once it has stopped and is dropped).
    pub fn attach(&self, session: &Session) -> JoinHandle<()> {
        let _ = self.inner.ca.set(session.ca().clone());
        let _ = self.inner.feed.set(session.feed().downgrade());
        let subscription = session.events();
        let legs = session.sign_in_legs(store::ENTRY_BUDGET);
        let inner = self.inner.clone();
        let events_task = tokio::spawn(feed_events(inner.clone(), subscription));
        let legs_task = tokio::spawn(feed_legs(inner, legs));
        tokio::spawn(async move {
            let _ = events_task.await;
            let _ = legs_task.await;
        })
    }
}

async fn feed_events(inner: Arc<Inner>, subscription: crate::session::EventSubscription) {
    for event in subscription.history {
        inner.store.event(event);
    }
    let mut live = subscription.live;
    loop {
        match live.recv().await {
            Ok(event) => inner.store.event(event),
            Err(broadcast::error::RecvError::Lagged(n)) => inner.store.missed(n),
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

/// Takes the sign-in legs as the analysis does: the proxy builds nothing
/// more for them, so a view nobody looks at costs other traffic nothing.
async fn feed_legs(inner: Arc<Inner>, mut legs: ExchangeStream) {
    while let Some(delivery) = legs.recv().await {
        match delivery {
            Delivery::Exchange(exchange) => inner.store.exchange(&exchange),
            // Legs beyond the view's budget: their rows are skipped; the
            // sign-ins themselves come from the event stream.
            Delivery::Gap(_) => {}
        }
    }
}

impl Inner {
    /// Sights the whole traffic (for the traffic list) from now until no
    /// page has followed for [`FOLLOW_LINGER`]. Sightings are on before it
    /// returns, so a page sees every exchange from its stream's start; while
    /// on, they cost each exchange a line's worth of fields, which only a
    /// page looking at them is worth.
    fn follow_traffic(self: &Arc<Self>) {
        let mut traffic = self.traffic.lock().unwrap_or_else(|e| e.into_inner());
        if traffic.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        if let Some(sightings) = self.feed.get().and_then(WeakFeed::sight) {
            *traffic = Some(tokio::spawn(follow_traffic(self.clone(), sightings)));
        }
    }
}

/// Takes the traffic's sightings every [`SIGHT_ROUND`] into the store (the
/// sign-in legs come from the legs stream as well, with their entries).
/// Stops once no page has followed for [`FOLLOW_LINGER`] (a reload keeps
/// it), which turns the sightings off.
async fn follow_traffic(inner: Arc<Inner>, sightings: Sightings) {
    let mut batch = Vec::new();
    let mut round = tokio::time::interval(SIGHT_ROUND);
    round.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unfollowed_since: Option<tokio::time::Instant> = None;
    loop {
        round.tick().await;
        let Some(missed) = sightings.take(&mut batch) else {
            return;
        };
        inner.store.sightings(&mut batch, missed);
        if inner.store.followed() {
            unfollowed_since = None;
        } else {
            let since = *unfollowed_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() >= FOLLOW_LINGER {
                // Decided under the lock a new page's stream takes to start
                // this task: either that page is seen here, or it finds the
                // slot empty and starts a new one.
                let mut slot = inner.traffic.lock().unwrap_or_else(|e| e.into_inner());
                if !inner.store.followed() {
                    *slot = None;
                    return;
                }
                unfollowed_since = None;
            }
        }
    }
}

// === impl LocalService ===

impl LocalService for WebView {
    fn serve<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a LocalContext,
    ) -> BoxFuture<'a, Option<Response<Body>>> {
        // Only the view's own paths: anything else (a client that talks to
        // the proxy as if it were the server) gets the proxy's page saying
        // how to use a proxy.
        let path = req.uri().path();
        if !(path == "/" || path.starts_with("/assets/") || path.starts_with(API_PREFIX)) {
            return Box::pin(async { None });
        }
        Box::pin(async move { Some(self.inner.answer(req, ctx).await) })
    }
}

impl Inner {
    async fn answer(self: &Arc<Self>, req: Request<Body>, ctx: &LocalContext) -> Response<Body> {
        let listen = ctx.local_addr();
        let (parts, body) = req.into_parts();
        if let Err(refusal) = auth::check(&parts, listen, &self.token) {
            return refused(refusal, listen);
        }
        let path = parts.uri.path().to_owned();
        let query = parts.uri.query().map(str::to_owned);
        match (&parts.method, path.as_str()) {
            (&Method::GET, "/") => {
                let mut resp = text(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML);
                if let Ok(v) = HeaderValue::from_str(&auth::set_cookie(listen, &self.token)) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                resp
            }
            (&Method::GET, "/assets/app.js") => {
                text(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS)
            }
            (&Method::GET, "/assets/app.css") => {
                text(StatusCode::OK, "text/css; charset=utf-8", APP_CSS)
            }
            (&Method::GET, "/api/stream") => self.stream(ctx),
            // The whole lists take a while: off the proxy's threads.
            (&Method::GET, "/api/attempts" | "/api/exchanges") => {
                let inner = self.clone();
                tokio::task::spawn_blocking(move || inner.get(&path, query.as_deref()))
                    .await
                    .unwrap_or_else(|_| {
                        text(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "text/plain; charset=utf-8",
                            "authlens web view: the list could not be made\n",
                        )
                    })
            }
            (&Method::GET, p) if p.starts_with(API_PREFIX) => self.get(p, query.as_deref()),
            (&Method::POST, "/api/faults") => self.switch_fault(body).await,
            (_, p) if p.starts_with(API_PREFIX) || p == "/" => text(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain; charset=utf-8",
                "authlens web view: method not allowed here\n",
            ),
            _ => not_found(),
        }
    }

    fn get(&self, path: &str, query: Option<&str>) -> Response<Body> {
        let rest = &path[API_PREFIX.len()..];
        let segments: Vec<&str> = rest.split('/').collect();
        let store = &self.store;
        match segments.as_slice() {
            ["attempts"] => json_response(&json!(store.attempts())),
            ["attempts", id] => match id
                .parse()
                .ok()
                .and_then(|id| api::attempt_detail(store, id, self.options.code_lifetime))
            {
                Some(detail) => json_response(&detail),
                None => not_found(),
            },
            ["attempts", id, file] => {
                let Some((summary, events, _)) = id.parse().ok().and_then(|id| store.attempt(id))
                else {
                    return not_found();
                };
                self.download(id, file, &summary, &events)
            }
            ["exchanges"] => {
                let limit = query
                    .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("limit=")))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                json_response(&json!(store.rows(limit)))
            }
            ["exchanges", id] => {
                let Some(id) = id.parse::<u64>().ok() else {
                    return not_found();
                };
                let Some(row) = store.row(id) else {
                    return not_found();
                };
                let entry = store.entry(id);
                json_response(&json!({
                    "row": row,
                    "curl": entry.as_deref().map(api::curl),
                    "entry": entry.as_deref(),
                }))
            }
            ["loose"] => json_response(&json!(store::event_values(&store.loose()))),
            ["status"] => json_response(&json!({
                "authlens": env!("CARGO_PKG_VERSION"),
                "store": store.counts(),
                "show_secrets": self.options.show_secrets,
                "faults": self.faults(),
            })),
            ["setup"] => self.setup(),
            ["ca.pem"] | ["ca.der"] => self.ca_file(rest == "ca.der"),
            _ => not_found(),
        }
    }

    fn download(
        &self,
        id: &str,
        file: &str,
        summary: &Value,
        events: &[Arc<crate::oauth::Event>],
    ) -> Response<Body> {
        let (kind, name, bytes): (&str, String, Vec<u8>) = match file {
            "har" => {
                let mut entries = Vec::new();
                for x in summary["exchanges"].as_array().into_iter().flatten() {
                    if let Some(entry) = x.as_u64().and_then(|x| self.store.entry(x)) {
                        entries.push(entry);
                    }
                }
                (
                    "application/json",
                    format!("authlens-attempt-{id}.har"),
                    crate::har::write::document(entries.iter().map(|e| &**e)),
                )
            }
            "report.md" => {
                let owned: Vec<crate::oauth::Event> =
                    events.iter().map(|e| (**e).clone()).collect();
                (
                    "text/markdown; charset=utf-8",
                    format!("authlens-attempt-{id}.md"),
                    crate::report::render(&format!("authlens web view, attempt #{id}"), &owned)
                        .into_bytes(),
                )
            }
            "events.jsonl" => (
                "application/x-ndjson",
                format!("authlens-attempt-{id}.jsonl"),
                api::json_lines_download(events).into_bytes(),
            ),
            _ => return not_found(),
        };
        let mut resp = bytes_response(StatusCode::OK, kind, bytes);
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    }

    fn faults(&self) -> Value {
        match &self.options.faults {
            None => Value::Null,
            Some(injector) => json!(
                injector
                    .switches()
                    .into_iter()
                    .enumerate()
                    .map(|(i, (text, on))| json!({"index": i, "fault": text, "on": on}))
                    .collect::<Vec<_>>()
            ),
        }
    }

    /// `POST /api/faults` with `{"index": N, "on": bool}`: switches one
    /// active fault for the sign-ins that start from now on.
    async fn switch_fault(&self, body: Body) -> Response<Body> {
        let Some(injector) = &self.options.faults else {
            return text(
                StatusCode::CONFLICT,
                "text/plain; charset=utf-8",
                "authlens web view: no --fault was given, so there is nothing to switch\n",
            );
        };
        let bad = |why: &str| {
            text(
                StatusCode::BAD_REQUEST,
                "text/plain; charset=utf-8",
                &format!("authlens web view: {why}\n"),
            )
        };
        let bytes = match body.into_bytes(4096).await {
            Ok(Buffered::Bytes(b)) => b,
            _ => return bad("the body must be a small JSON object"),
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return bad("the body is not JSON");
        };
        let (Some(index), Some(on)) = (value["index"].as_u64(), value["on"].as_bool()) else {
            return bad("expected {\"index\": N, \"on\": true|false}");
        };
        if !injector.switch(index as usize, on) {
            return bad("no such fault");
        }
        json_response(&self.faults())
    }

    fn setup(&self) -> Response<Body> {
        let Some(ca) = self.ca.get() else {
            return not_found();
        };
        let path = std::path::absolute(ca.cert_path()).unwrap_or_else(|_| ca.cert_path().into());
        json_response(&json!({
            "name": ca.name(),
            "sha256": ca.fingerprint_sha256(),
            "not_after": crate::oauth::event::rfc3339(ca.not_after()),
            "path": path.display().to_string(),
            "install_help": crate::clients::install_help::text(&path, ca.name(), &ca.fingerprint_sha256()),
        }))
    }

    fn ca_file(&self, der: bool) -> Response<Body> {
        let Some(ca) = self.ca.get() else {
            return not_found();
        };
        let (kind, name, bytes) = if der {
            (
                "application/x-x509-ca-cert",
                "authlens-ca.crt",
                ca.cert_der().to_vec(),
            )
        } else {
            match std::fs::read(ca.cert_path()) {
                Ok(pem) => ("application/x-pem-file", "authlens-ca.pem", pem),
                Err(_) => return not_found(),
            }
        };
        let mut resp = bytes_response(StatusCode::OK, kind, bytes);
        resp.headers_mut().insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
                .unwrap_or(HeaderValue::from_static("attachment")),
        );
        resp
    }

    /// `GET /api/stream`: server-sent events. First `resync` (the page then
    /// loads the lists), then every update gathered for [`BATCH_WINDOW`]
    /// into one chunk: attempts' rows, and the traffic rows that arrived
    /// meanwhile (the newest [`ROWS_PER_BATCH`], and how many were left
    /// out), with a comment line as heartbeat. A page that falls more than
    /// the broadcast's buffer behind gets `resync` again instead of what it
    /// missed; the chunks waiting for it are at most [`STREAM_QUEUE`]. Ends
    /// when the proxy shuts down (the proxy ends the body) or the page goes.
    fn stream(self: &Arc<Self>, ctx: &LocalContext) -> Response<Body> {
        let mut updates = self.store.follow();
        self.follow_traffic();
        let (tx, rx) = mpsc::channel::<Bytes>(STREAM_QUEUE);
        let shutdown = ctx.shutdown().clone();
        let inner = self.clone();
        tokio::spawn(async move {
            let store = &inner.store;
            // The page loads the rows after the resync: it follows from here.
            let mut cursor = store.arrivals();
            if tx.send(frame("resync", "{}")).await.is_err() {
                return;
            }
            let mut beat =
                tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
            let mut full = false;
            loop {
                let first = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tx.closed() => return,
                    _ = beat.tick() => None,
                    update = updates.recv() => match update {
                        Err(broadcast::error::RecvError::Closed) => return,
                        other => Some(other),
                    },
                };
                let batch = match first {
                    None => Bytes::from_static(b": heartbeat\n\n"),
                    Some(first) => {
                        // What else comes within the window goes in the same
                        // chunk: one write for many rows under load. Under a
                        // steady stream of attempts the last chunk was full:
                        // no wait then, the page takes as fast as it reads.
                        if !full {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(BATCH_WINDOW) => {}
                            }
                        }
                        let mut chunk = Chunk::default();
                        chunk.add(first);
                        while chunk.attempts.len() < BATCH_BYTES {
                            match updates.try_recv() {
                                Err(broadcast::error::TryRecvError::Empty)
                                | Err(broadcast::error::TryRecvError::Closed) => break,
                                Ok(update) => chunk.add(Ok(update)),
                                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                                    chunk.add(Err(broadcast::error::RecvError::Lagged(n)))
                                }
                            }
                        }
                        full = chunk.attempts.len() >= BATCH_BYTES;
                        if chunk.resync {
                            cursor = store.arrivals();
                            frame("resync", "{}")
                        } else {
                            let mut bytes = chunk.attempts;
                            if chunk.traffic {
                                let (rows, left_out, next) =
                                    store.rows_since(cursor, ROWS_PER_BATCH, BATCH_BYTES);
                                cursor = next;
                                let data = format!(
                                    "{{\"rows\":[{}],\"left_out\":{left_out}}}",
                                    rows.join(",")
                                );
                                bytes.extend_from_slice(&frame("exchanges", &data));
                            }
                            Bytes::from(bytes)
                        }
                    }
                };
                // A full queue: the page is not reading. Skip ahead rather
                // than wait (the broadcast keeps only its own buffer).
                match tx.try_send(batch) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        // Whatever it still gets next starts with a resync.
                        store.page_skipped();
                        updates = updates.resubscribe();
                        // Before the resync: the page's reload sees at least
                        // every row up to here.
                        cursor = store.arrivals();
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            sent = tx.send(frame("resync", "{}")) => if sent.is_err() { return },
                        }
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
        });
        let mut resp = Response::new(Body::stream(Frames(rx)));
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        security_headers(headers);
        resp
    }
}

/// What one chunk of a page's stream says: attempts' rows as events, and
/// whether traffic rows arrived or the page must reload (it missed updates).
#[derive(Default)]
struct Chunk {
    attempts: Vec<u8>,
    traffic: bool,
    resync: bool,
}

impl Chunk {
    fn add(&mut self, update: Result<Update, broadcast::error::RecvError>) {
        match update {
            Ok(Update::Attempt(row)) => self.attempts.extend_from_slice(&frame("attempt", &row)),
            Ok(Update::Traffic) => self.traffic = true,
            Ok(Update::Resync) | Err(_) => self.resync = true,
        }
    }
}

/// One server-sent event (`data` is one line of JSON).
fn frame(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// The frames of one stream, as a response body.
struct Frames(mpsc::Receiver<Bytes>);

impl http_body::Body for Frames {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

// === answers ===

/// What every answer of the view carries: no caching, no framing, no
/// referrer (the URL may hold the token), only its own scripts.
fn security_headers(headers: &mut http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
}

fn bytes_response(status: StatusCode, kind: &'static str, bytes: Vec<u8>) -> Response<Body> {
    let mut resp = Response::new(Body::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    security_headers(resp.headers_mut());
    resp
}

fn text(status: StatusCode, kind: &'static str, body: &str) -> Response<Body> {
    bytes_response(status, kind, body.as_bytes().to_vec())
}

fn json_response(value: &Value) -> Response<Body> {
    bytes_response(
        StatusCode::OK,
        "application/json",
        value.to_string().into_bytes(),
    )
}

fn not_found() -> Response<Body> {
    text(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "authlens web view: not found\n",
    )
}

/// The answer to a refused request: what was wrong and how to get in.
fn refused(refusal: Refusal, listen: SocketAddr) -> Response<Body> {
    let open = format!(
        "Open the URL authlens printed at start-up (the line starting http://{}/?token=).",
        crate::config::connectable(listen)
    );
    let (status, why) = match refusal {
        Refusal::Host(host) => (
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "the Host {} does not name this authlens (only {} do): refused against DNS rebinding. {open}",
                host.map(|h| format!("{:?}", escape_controls(&h)))
                    .unwrap_or_else(|| "(none)".into()),
                auth::allowed_hosts(listen).join(", ")
            ),
        ),
        Refusal::Token => (
            StatusCode::UNAUTHORIZED,
            format!("this page needs the token of this run. {open}"),
        ),
        Refusal::Origin(origin) => (
            StatusCode::FORBIDDEN,
            format!(
                "a change must come from the view's own page (Origin {}): refused against cross-site requests",
                origin
                    .map(|o| format!("{:?}", escape_controls(&o)))
                    .unwrap_or_else(|| "missing".into())
            ),
        ),
    };
    text(
        status,
        "text/plain; charset=utf-8",
        &format!("authlens web view: {why}\n"),
    )
}
