//! The proxy's hooks, driven for real over TCP and TLS on loopback: an
//! interceptor in the forward path, and a local service for requests
//! addressed to the proxy itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use authlens::clients::probe::{self, Listener};
use authlens::config::ProxyConfig;
use authlens::exchange::{FailureSide, InterventionKind};
use authlens::proxy::{
    Body, BoxFuture, Buffered, Hooks, IDENTITY_PATH, InterceptContext, Interceptor, LocalContext,
    LocalService, Verdict,
};
use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::StreamBody;
use hyper::body::Frame;
use testkit::upstream::{Handler, TestUpstream, Tls};
use testkit::{Http, ProxyOptions, TestCa, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// What the upstream received: method, path and body, in order.
type Seen = Arc<Mutex<Vec<(String, String, Bytes)>>>;

/// An upstream for `idp.test` that notes every request and echoes its body.
async fn recording_upstream(ca: &TestCa) -> (TestUpstream, Seen) {
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let handler: Handler = Arc::new(move |req: Request<Bytes>| {
        log.lock().unwrap().push((
            req.method().to_string(),
            req.uri().path().to_string(),
            req.body().clone(),
        ));
        Response::builder()
            .header("content-type", "text/plain")
            .body(req.into_body())
            .unwrap()
    });
    let upstream = TestUpstream::start_with(ca, Tls::names(&["idp.test"]), handler).await;
    (upstream, seen)
}

async fn proxy_with(
    ca: &TestCa,
    upstream: &TestUpstream,
    hooks: Hooks,
    tweak: Option<fn(&mut ProxyConfig)>,
) -> TestProxy {
    TestProxy::start(
        ca,
        ProxyOptions {
            routes: vec![("idp.test".into(), 443, upstream.addr)],
            trust_test_ca: true,
            hooks,
            tweak,
            ..Default::default()
        },
    )
    .await
}

fn intercepting(interceptor: impl Interceptor) -> Hooks {
    Hooks {
        interceptor: Some(Arc::new(interceptor)),
        local: None,
    }
}

fn serving(service: impl LocalService) -> Hooks {
    Hooks {
        interceptor: None,
        local: Some(Arc::new(service)),
    }
}

fn wants_path(head: &http::request::Parts, path: &str) -> bool {
    assert!(
        head.uri.scheme().is_some(),
        "interceptors see absolute URLs"
    );
    head.uri.path() == path
}

const FORM: &str = "grant_type=authorization_code&code=abc";
const SWAPPED: &str = "grant_type=authorization_code&code=xyz-longer";

// === interceptors ===

/// Sends another code in `POST /token`.
struct SwapCode;

impl Interceptor for SwapCode {
    fn wants(&self, head: &http::request::Parts, _: &InterceptContext) -> bool {
        head.method == http::Method::POST && wants_path(head, "/token")
    }

    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let (head, body) = req.into_parts();
            let Ok(Buffered::Bytes(form)) = body.into_bytes(64 * 1024).await else {
                return Verdict::Drop;
            };
            let swapped = String::from_utf8_lossy(&form).replace("code=abc", "code=xyz-longer");
            ctx.mark(
                InterventionKind::Rewritten,
                "swap-code",
                "sent another code",
            );
            Verdict::Forward(Request::from_parts(head, Body::from(swapped)))
        })
    }
}

/// Answers `/token` itself with an OAuth error.
struct AnswerLocally;

impl Interceptor for AnswerLocally {
    fn wants(&self, head: &http::request::Parts, _: &InterceptContext) -> bool {
        wants_path(head, "/token")
    }

    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            // Read to decide (and so the exchange records the request body).
            let _ = req.into_body().into_bytes(64 * 1024).await;
            ctx.mark(
                InterventionKind::Answered,
                "invalid-grant",
                "answered invalid_grant",
            );
            Verdict::Answer(
                Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .header("content-type", "application/json")
                    .body(Body::from(r#"{"error":"invalid_grant"}"#))
                    .unwrap(),
            )
        })
    }
}

/// Holds `/held` for a while, then forwards it.
struct Hold(Duration);

impl Interceptor for Hold {
    fn wants(&self, head: &http::request::Parts, _: &InterceptContext) -> bool {
        wants_path(head, "/held")
    }

    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            ctx.mark(InterventionKind::Held, "slow-idp", "held before forwarding");
            Verdict::Forward(req)
        })
    }
}

/// Holds every request until the proxy shuts down, saying when it holds one.
struct HoldUntilShutdown(Arc<Notify>);

impl Interceptor for HoldUntilShutdown {
    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            self.0.notify_one();
            ctx.shutdown().cancelled().await;
            ctx.mark(
                InterventionKind::Held,
                "until-shutdown",
                "held until shutdown",
            );
            Verdict::Forward(req)
        })
    }
}

/// How much shorter than the client's body the side request's body is.
const SHORTER_BY: usize = 4;

fn short_form() -> &'static str {
    &FORM[..FORM.len() - SHORTER_BY]
}

/// Sends a shortened copy of `POST /token` first, with the client's head
/// (its `Content-Length` no longer true), then the request itself.
struct ReplayFirst(Arc<Mutex<Option<(StatusCode, Bytes)>>>);

impl Interceptor for ReplayFirst {
    fn wants(&self, head: &http::request::Parts, _: &InterceptContext) -> bool {
        wants_path(head, "/token")
    }

    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let (head, body) = req.into_parts();
            let Ok(Buffered::Bytes(form)) = body.into_bytes(64 * 1024).await else {
                return Verdict::Drop;
            };
            let mut copy = Request::builder()
                .method(head.method.clone())
                .uri(head.uri.clone());
            for (name, value) in &head.headers {
                copy = copy.header(name, value);
            }
            let copy = copy
                .body(Body::from(form.slice(..form.len() - SHORTER_BY)))
                .unwrap();
            let side = ctx
                .send_upstream(copy, "replay", "redeemed the code once before the client")
                .await
                .unwrap();
            *self.0.lock().unwrap() = Some((side.status(), side.into_body()));
            Verdict::Forward(Request::from_parts(head, Body::from(form)))
        })
    }
}

/// Fails `/down` as a network error.
struct DropIt;

impl Interceptor for DropIt {
    fn wants(&self, head: &http::request::Parts, _: &InterceptContext) -> bool {
        wants_path(head, "/down")
    }

    fn intercept<'a>(
        &'a self,
        _req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            ctx.mark(InterventionKind::Dropped, "idp-down", "simulated an outage");
            Verdict::Drop
        })
    }
}

// === interceptor tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_body_is_what_the_upstream_gets_and_what_is_recorded() {
    let ca = TestCa::new();
    let (upstream, seen) = recording_upstream(&ca).await;
    let mut proxy = proxy_with(&ca, &upstream, intercepting(SwapCode), None).await;
    for http in [Http::One, Http::Two] {
        let client = proxy.client(http);
        let resp = client
            .post("https://idp.test/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(FORM)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.text().await.unwrap(),
            SWAPPED,
            "echoed by the upstream"
        );
        let exchange = proxy.exchange_for("/token").await;
        assert_eq!(&exchange.request.body.bytes[..], SWAPPED.as_bytes());
        assert_eq!(
            exchange.request.headers["content-length"],
            SWAPPED.len().to_string().as_str()
        );
        let mark = exchange.intervention.as_ref().unwrap();
        assert_eq!(mark.kind, InterventionKind::Rewritten);
        assert_eq!(mark.label, "swap-code");
        assert_eq!(mark.note, "sent another code");
        assert_eq!(
            &exchange.response.as_ref().unwrap().body.bytes[..],
            SWAPPED.as_bytes()
        );

        // Traffic the interceptor does not want passes untouched.
        let resp = client.get("https://idp.test/other").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let exchange = proxy.exchange_for("/other").await;
        assert!(exchange.intervention.is_none());
    }
    let seen = seen.lock().unwrap().clone();
    let tokens: Vec<_> = seen
        .iter()
        .filter(|(_, path, _)| path == "/token")
        .collect();
    assert_eq!(tokens.len(), 2);
    assert!(
        tokens
            .iter()
            .all(|(_, _, body)| &body[..] == SWAPPED.as_bytes())
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_request_never_reaches_the_upstream() {
    let ca = TestCa::new();
    let (upstream, seen) = recording_upstream(&ca).await;
    let mut proxy = proxy_with(&ca, &upstream, intercepting(AnswerLocally), None).await;
    let client = proxy.client(Http::One);
    let resp = client
        .post("https://idp.test/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(FORM)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), r#"{"error":"invalid_grant"}"#);

    let exchange = proxy.exchange_for("/token").await;
    let mark = exchange.intervention.as_ref().unwrap();
    assert_eq!(mark.kind, InterventionKind::Answered);
    assert_eq!(mark.label, "invalid-grant");
    let response = exchange.response.as_ref().unwrap();
    assert!(response.synthetic);
    assert_eq!(response.status, 400);
    assert_eq!(&response.body.bytes[..], br#"{"error":"invalid_grant"}"#);
    assert_eq!(&exchange.request.body.bytes[..], FORM.as_bytes());
    assert!(exchange.error.is_none());
    assert!(seen.lock().unwrap().is_empty(), "the upstream saw nothing");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_longer_than_the_response_head_timeout_is_not_a_timeout() {
    let ca = TestCa::new();
    let (upstream, seen) = recording_upstream(&ca).await;
    // Held for 2.5 s with a 1 s response-head timeout.
    let mut proxy = proxy_with(
        &ca,
        &upstream,
        intercepting(Hold(Duration::from_millis(2500))),
        Some(|c| c.timeouts.response_head = Duration::from_secs(1)),
    )
    .await;
    let resp = proxy
        .client(Http::One)
        .post("https://idp.test/held")
        .body("late")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "late");
    let exchange = proxy.exchange_for("/held").await;
    assert_eq!(
        exchange.intervention.as_ref().unwrap().kind,
        InterventionKind::Held
    );
    assert!(exchange.error.is_none());
    assert_eq!(seen.lock().unwrap().len(), 1);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_held_until_shutdown_does_not_hold_the_proxy() {
    let ca = TestCa::new();
    let (upstream, _seen) = recording_upstream(&ca).await;
    let holding = Arc::new(Notify::new());
    // A grace period far longer than the test waits: stopping must not need it.
    let proxy = proxy_with(
        &ca,
        &upstream,
        intercepting(HoldUntilShutdown(holding.clone())),
        Some(|c| c.timeouts.shutdown_grace = Duration::from_secs(120)),
    )
    .await;
    let client = proxy.client(Http::One);
    let request = tokio::spawn(async move {
        let resp = client.get("https://idp.test/held").send().await?;
        resp.text().await
    });
    holding.notified().await;
    let mut exchanges = proxy.exchanges.resubscribe();
    tokio::time::timeout(Duration::from_secs(30), proxy.session.stop())
        .await
        .expect("the proxy stops without waiting for the grace period");
    // Let go at shutdown, the request was still forwarded and answered.
    assert_eq!(request.await.unwrap().unwrap(), "");
    let exchange = exchanges.recv().await.unwrap();
    assert_eq!(exchange.request.uri.path(), "/held");
    assert_eq!(
        exchange.intervention.as_ref().unwrap().label,
        "until-shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_goes_upstream_first_and_is_published_as_made_by_authlens() {
    let ca = TestCa::new();
    let (upstream, seen) = recording_upstream(&ca).await;
    let side = Arc::new(Mutex::new(None));
    let mut proxy = proxy_with(
        &ca,
        &upstream,
        intercepting(ReplayFirst(side.clone())),
        None,
    )
    .await;
    for http in [Http::One, Http::Two] {
        let resp = proxy
            .client(http)
            .post("https://idp.test/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(FORM)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), FORM);
        assert_eq!(
            side.lock().unwrap().take().unwrap(),
            (StatusCode::OK, Bytes::from(short_form())),
            "the side request's response, read whole"
        );

        let first = proxy.exchange_for("/token").await;
        let mark = first
            .intervention
            .as_ref()
            .expect("the side request is marked");
        assert_eq!(mark.kind, InterventionKind::Made);
        assert_eq!(mark.label, "replay");
        assert_eq!(&first.request.body.bytes[..], short_form().as_bytes());
        assert_eq!(
            &first.response.as_ref().unwrap().body.bytes[..],
            short_form().as_bytes()
        );
        let second = proxy.exchange_for("/token").await;
        assert!(second.intervention.is_none(), "forwarded as it was");
        assert!(
            first.id > second.id,
            "the side request started after the client's, and ended first"
        );
    }
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 4, "two requests upstream per client request");
    assert!(
        seen.iter()
            .all(|(method, path, _)| method == "POST" && path == "/token")
    );
    let shortened = seen
        .iter()
        .filter(|(_, _, body)| &body[..] == short_form().as_bytes())
        .count();
    let whole = seen
        .iter()
        .filter(|(_, _, body)| &body[..] == FORM.as_bytes())
        .count();
    assert_eq!(
        (shortened, whole),
        (2, 2),
        "the copies arrive whole, at their own length"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_request_is_a_network_error_and_the_proxy_keeps_serving() {
    let ca = TestCa::new();
    let (upstream, seen) = recording_upstream(&ca).await;
    let mut proxy = proxy_with(&ca, &upstream, intercepting(DropIt), None).await;
    for http in [Http::One, Http::Two] {
        let client = proxy.client(http);
        let err = client
            .get("https://idp.test/down")
            .send()
            .await
            .expect_err("no answer, only a broken connection");
        assert!(err.is_request() || err.is_connect(), "{err:?}");
        let exchange = proxy.exchange_for("/down").await;
        let mark = exchange.intervention.as_ref().unwrap();
        assert_eq!(mark.kind, InterventionKind::Dropped);
        assert_eq!(mark.label, "idp-down");
        assert!(exchange.response.is_none());
        assert_eq!(exchange.error.as_ref().unwrap().side, FailureSide::Proxy);

        // Still serving: on the same client and on a new one.
        for client in [client, proxy.client(http)] {
            let resp = client.get("https://idp.test/up").send().await.unwrap();
            assert_eq!(resp.status(), 200);
        }
    }
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, path, _)| path == "/up")
    );
    proxy.stop().await;
}

// === local service ===

/// Answers `/`, `/x` and `/events` (an endless Server-Sent Events feed),
/// declines the rest, and counts calls.
#[derive(Default, Clone)]
struct WebView {
    calls: Arc<AtomicUsize>,
}

impl LocalService for WebView {
    fn serve<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a LocalContext,
    ) -> BoxFuture<'a, Option<Response<Body>>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match req.uri().path() {
                "/" => Some(Response::new(Body::from("web view"))),
                "/x" => Some(Response::new(Body::from(format!(
                    "x for {}",
                    ctx.peer_addr().ip()
                )))),
                "/events" => {
                    let first = futures_util::stream::iter(vec![Ok::<_, std::io::Error>(
                        Frame::data(Bytes::from_static(b"data: hello\n\n")),
                    )]);
                    let endless = first.chain(futures_util::stream::pending());
                    Some(
                        Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(Body::stream(StreamBody::new(endless)))
                            .unwrap(),
                    )
                }
                _ => None,
            }
        })
    }
}

fn direct() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

const NOT_A_PROXY_REQUEST: &str = "authlens: 400 Bad Request (client side)\n\
This is an HTTP(S) proxy: configure it as your proxy (HTTPS_PROXY=http://THIS_ADDRESS)\n\
instead of requesting it directly.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_service_answers_requests_for_the_proxy_itself() {
    let ca = TestCa::new();
    let web = WebView::default();
    let mut proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            hooks: serving(web.clone()),
            ..Default::default()
        },
    )
    .await;
    let resp = direct()
        .get(format!("{}/x", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "x for 127.0.0.1");
    let resp = direct().get(proxy.url()).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "web view");

    // Declined: the usual page.
    let resp = direct()
        .get(format!("{}/nothing-here", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.text().await.unwrap(), NOT_A_PROXY_REQUEST);

    assert_eq!(web.calls.load(Ordering::SeqCst), 3);
    assert!(
        proxy.exchanges.try_recv().is_err(),
        "local answers are not exchanges"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_local_service_the_proxy_answers_its_400_page() {
    let ca = TestCa::new();
    let proxy = TestProxy::start(&ca, ProxyOptions::default()).await;
    for path in ["/", "/x"] {
        let resp = direct()
            .get(format!("{}{path}", proxy.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(resp.text().await.unwrap(), NOT_A_PROXY_REQUEST);
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_local_response_ends_when_the_proxy_shuts_down() {
    let ca = TestCa::new();
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            hooks: serving(WebView::default()),
            tweak: Some(|c| c.timeouts.shutdown_grace = Duration::from_secs(120)),
            ..Default::default()
        },
    )
    .await;
    let mut resp = direct()
        .get(format!("{}/events", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.chunk().await.unwrap().unwrap(), "data: hello\n\n");

    let stopping = tokio::spawn(proxy.session.stop());
    let end = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
        .await
        .expect("the feed ends at shutdown");
    assert!(matches!(end, Ok(None)), "it ends cleanly: {end:?}");
    tokio::time::timeout(Duration::from_secs(30), stopping)
        .await
        .expect("the proxy stops without waiting for the grace period")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_identity_route_names_version_ca_and_address_and_probe_uses_it() {
    let ca = TestCa::new();
    // A local service answering everything must not hide the identity.
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            hooks: serving(WebView::default()),
            ..Default::default()
        },
    )
    .await;
    let resp = direct()
        .get(format!("{}{IDENTITY_PATH}", proxy.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let identity: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        identity,
        serde_json::json!({
            "authlens": env!("CARGO_PKG_VERSION"),
            "ca_sha256": proxy.ca.fingerprint_sha256(),
            "listen": proxy.addr.to_string(),
        })
    );
    assert_eq!(probe::probe(proxy.addr).await, Listener::Authlens);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_through_the_proxy_to_itself_never_reach_the_local_service() {
    let ca = TestCa::new();
    let web = WebView::default();
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            hooks: serving(web.clone()),
            ..Default::default()
        },
    )
    .await;
    let client = proxy.client(Http::One);
    for path in ["/x", "/", IDENTITY_PATH] {
        let resp = client
            .get(format!("http://{}{path}", proxy.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("loop"));
    }

    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let authority = proxy.addr.to_string();
    tcp.write_all(format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 400");

    assert_eq!(web.calls.load(Ordering::SeqCst), 0);
    proxy.stop().await;
}
