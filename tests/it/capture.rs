//! What the analysis gets of each body, through the real proxy: a token
//! request answered before its body was read still reaches every output,
//! whole when the client sent it whole and marked partial when not.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use authlens::config::{OutputConfig, ProxyConfig, Sink};
use authlens::exchange::CaptureState;
use authlens::oauth::AnalyzerConfig;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls_pki_types::ServerName;
use serde_json::Value;
use testkit::lab::{authorize_params, findings, token_form};
use testkit::upstream::TestUpstream;
use testkit::{ProxyOptions, TestCa, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A generic IdP: not a provider authlens knows, and `/token` is not a
/// token URL it recognises, so a token request is known by its body alone.
const IDP: &str = "idp.example";

/// The mock Entra ID's host.
const ENTRA: &str = testkit::lab::IDP;

/// A TLS upstream for [`IDP`] (HTTP/1.1 and HTTP/2) that answers every
/// request at once with `400 invalid_request`, without reading the request
/// body: a server refusing a JSON body does this.
async fn refusing_idp(ca: &TestCa) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = ca.tls_acceptor(&[IDP], vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .status(StatusCode::BAD_REQUEST)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from_static(
                                br#"{"error":"invalid_request","error_description":"the request body must be form-encoded"}"#,
                            )))
                            .unwrap(),
                    )
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, task)
}

/// A JSON token request for `client_id`, padded to about `size` bytes.
fn json_token_request(client_id: &str, size: usize) -> Vec<u8> {
    let mut body = serde_json::json!({
        "grant_type": "authorization_code",
        "code": format!("code-{client_id}"),
        "client_id": client_id,
        "redirect_uri": "https://app.example/callback",
    });
    let used = body.to_string().len();
    if size > used + 16 {
        body["padding"] = Value::String("p".repeat(size - used - 16));
    }
    body.to_string().into_bytes()
}

/// Sends `body` as a JSON POST to `https://IDP/token` on a fresh HTTP/1.1
/// connection through the proxy (writing the whole request while reading
/// the answer, as an HTTP client does), reads the answer, then goes away
/// at once. Returns the answer's status line.
async fn post_and_leave(proxy: &TestProxy, body: &[u8]) -> String {
    post_part_and_leave(proxy, body, body.len()).await
}

/// [`post_and_leave`], the request announcing all of `body` but sending
/// only its first `sent` bytes.
async fn post_part_and_leave(proxy: &TestProxy, body: &[u8], sent: usize) -> String {
    let (tcp, head) = proxy.connect_tunnel(&format!("{IDP}:443")).await;
    assert!(head.starts_with(b"HTTP/1.1 200"), "{head:?}");
    let connector = tokio_rustls::TlsConnector::from(testkit::client_config(
        proxy.ca_pem.as_bytes(),
        &[b"http/1.1"],
    ));
    let tls = connector
        .connect(ServerName::try_from(IDP).unwrap(), tcp)
        .await
        .unwrap();
    let (mut rd, mut wr) = tokio::io::split(tls);
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {IDP}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let body = body[..sent].to_vec();
    // The head, then the body, as two writes (as Node's and Python's
    // clients do).
    let writer = tokio::spawn(async move {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.flush().await;
        let _ = wr.write_all(&body).await;
        let _ = wr.flush().await;
        wr
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
            if complete_response(&answer) {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within 30 s");
    // The whole request was handed to the connection, then the client stops.
    let _ = tokio::time::timeout(Duration::from_secs(30), writer).await;
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().unwrap_or_default().to_owned()
}

/// True once `data` holds a response head and its Content-Length body.
fn complete_response(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    body.len() >= length
}

/// Outputs for a capture test: JSON lines and a HAR file in `dir`.
fn outputs(dir: &Path) -> OutputConfig {
    let mut output = OutputConfig::silent(AnalyzerConfig::default());
    output.json = Some(Sink::File(dir.join("events.jsonl")));
    output.har = Some(dir.join("session.har"));
    output
}

async fn start(ca: &TestCa, idp: SocketAddr, dir: &Path) -> TestProxy {
    TestProxy::start_with_output(
        ca,
        ProxyOptions {
            routes: vec![(IDP.into(), 443, idp)],
            trust_test_ca: true,
            ..Default::default()
        },
        &dir.join("certs"),
        outputs(dir),
    )
    .await
}

/// The `client_id`s of the token legs in the JSON lines file.
fn json_legs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["type"] == "token")
        .filter_map(|l| l["client_id"].as_str().map(str::to_owned))
        .collect()
}

/// The HAR entries for `/token`: (request body size, capture state).
fn har_token_entries(dir: &Path) -> Vec<(u64, String)> {
    let har: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("session.har")).unwrap()).unwrap();
    har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["request"]["url"]
                .as_str()
                .unwrap_or("")
                .ends_with("/token")
        })
        .map(|e| {
            (
                e["request"]["bodySize"].as_u64().unwrap_or(0),
                e["_authlens"]["requestBody"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect()
}

/// One proxy per round; every round's leg must be in the events, the JSON
/// lines and the HAR, with the body whole. Half the rounds stop the proxy
/// once the exchange was published, the other half as soon as the client
/// got its answer (the user presses Ctrl-C right after the failure shows):
/// 20 rounds of each, so that losing 1 leg in 6 fails the test.
async fn every_leg_reaches_every_output(size: usize) {
    const ROUNDS: usize = 40;
    let ca = TestCa::new();
    let (idp, _server) = refusing_idp(&ca).await;
    let mut lost = Vec::new();
    for round in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let mut proxy = start(&ca, idp, dir.path()).await;
        let mut events = proxy.session.events().live;
        let mut exchanges = proxy.session.exchanges();
        let client_id = format!("client-{size}-{round}");
        let body = json_token_request(&client_id, size);
        let status = post_and_leave(&proxy, &body).await;
        let stop_at_once = round % 2 == 1;
        if !stop_at_once {
            proxy.exchange_for("/token").await;
        }
        proxy.stop().await;
        let exchange = std::iter::from_fn(|| exchanges.try_recv().ok())
            .find(|e| e.request.uri.path() == "/token");
        let stop = if stop_at_once {
            "stopped at once"
        } else {
            "stopped after"
        };
        let Some(exchange) = exchange else {
            lost.push(format!(
                "round {round} ({status}, {stop}): no exchange published"
            ));
            continue;
        };

        let mut seen = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let authlens::oauth::Event::Token(token) = &*event {
                seen.extend(token.client_id.clone());
            }
        }
        let json = json_legs(dir.path());
        let har = har_token_entries(dir.path());
        let whole =
            exchange.request.body.bytes.len() == body.len() && exchange.request.body.is_complete();
        if seen != [client_id.clone()]
            || json != [client_id.clone()]
            || har.len() != 1
            || har[0].1 != "complete"
            || har[0].0 != body.len() as u64
            || !whole
        {
            lost.push(format!(
                "round {round} ({status}, {stop}): events {seen:?}, JSON lines {json:?}, HAR {har:?}, captured {} of {} bytes ({:?})",
                exchange.request.body.bytes.len(),
                body.len(),
                exchange.request.body.state,
            ));
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} rounds lost or cut the leg:\n{}",
        lost.len(),
        lost.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_json_token_request_answered_before_its_body_was_read_reaches_every_output() {
    every_leg_reaches_every_output(200 * 1024).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_json_token_request_answered_before_its_body_was_read_reaches_every_output() {
    every_leg_reaches_every_output(300).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_request_whose_client_stops_mid_body_still_reaches_the_analysis_marked_incomplete()
{
    let ca = TestCa::new();
    let (idp, _server) = refusing_idp(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let mut proxy = start(&ca, idp, dir.path()).await;
    let mut events = proxy.session.events().live;
    let body = json_token_request("client-cut", 64 * 1024);
    let status = post_part_and_leave(&proxy, &body, 32 * 1024).await;
    assert!(status.starts_with("HTTP/1.1 "), "{status:?}");
    let exchange = proxy.exchange_for("/token").await;
    proxy.stop().await;

    let body_seen = &exchange.request.body;
    assert_eq!(body_seen.state, CaptureState::Aborted, "{body_seen:?}");
    assert_eq!(body_seen.bytes.len(), 32 * 1024, "what the client sent");
    let lines: Vec<Value> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| serde_json::from_str(&authlens::output::json_lines::to_line(&e)).unwrap())
        .collect();
    let token = lines
        .iter()
        .find(|l| l["type"] == "token")
        .unwrap_or_else(|| panic!("no token leg: {lines:#?}"));
    assert_eq!(token["client_id"], "client-cut");
    let findings = findings(&lines);
    assert!(
        findings.contains(&(
            "body-not-analysed".to_owned(),
            "warning".to_owned(),
            Some("body".to_owned())
        )),
        "{lines:#?}"
    );
    let note = lines
        .iter()
        .find(|l| l["rule"] == "body-not-analysed")
        .unwrap();
    assert!(
        note["message"].as_str().unwrap().contains("incomplete"),
        "{note}"
    );
    assert_eq!(note["evidence"]["size"], body.len(), "{note}");
    assert_eq!(json_legs(dir.path()), ["client-cut"]);
    assert_eq!(har_token_entries(dir.path())[0].1, "aborted");
}

// === findings on bodies read in part ===

/// The mock Entra IdP, and authlens in front of it with `tweak` applied.
async fn entra_lab(
    tweak: Option<fn(&mut ProxyConfig)>,
) -> (TestCa, TestUpstream, TestProxy, reqwest::Client, String) {
    let ca = TestCa::new();
    let (idp, server) = testkit::lab::default_mock_idp(&ca).await;
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![(ENTRA.into(), 443, server.addr)],
            trust_test_ca: true,
            tweak,
            ..Default::default()
        },
    )
    .await;
    let client = testkit::client_through(&proxy.url(), proxy.ca_pem.as_bytes());
    let tenant = idp.config().tenant.clone();
    (ca, server, proxy, client, tenant)
}

/// A sign-in whose token request carries `padding` after its parameters:
/// the JSON lines from the authorize request to the verdict.
async fn sign_in_with_padding(
    proxy: &mut TestProxy,
    client: &reqwest::Client,
    tenant: &str,
    padding: usize,
) -> Vec<Value> {
    let mut events = proxy.session.events().live;
    let endpoint = |leaf: &str| format!("https://{ENTRA}/{tenant}/oauth2/v2.0/{leaf}");
    let authorize =
        reqwest::Url::parse_with_params(&endpoint("authorize"), authorize_params("st-big", &[]))
            .unwrap();
    let code = testkit::lab::code_from_authorize(client, authorize).await;
    let pad = "x".repeat(padding);
    let mut form = token_form(&code);
    form.push(("padding", pad.as_str()));
    let status = client
        .post(endpoint("token"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the IdP read the whole request");
    let mut lines = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("the verdict within 30 s")
            .unwrap();
        let line: Value =
            serde_json::from_str(&authlens::output::json_lines::to_line(&event)).unwrap();
        let done = line["type"] == "verdict";
        lines.push(line);
        if done {
            return lines;
        }
    }
}

fn only_note(lines: &[Value]) -> &Value {
    assert_eq!(
        findings(lines),
        [(
            "body-not-analysed".to_owned(),
            "warning".to_owned(),
            Some("body".to_owned())
        )],
        "one note, no finding about what was not read: {lines:#?}"
    );
    lines
        .iter()
        .find(|l| l["rule"] == "body-not-analysed")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_request_too_large_to_analyse_says_so_instead_of_false_findings() {
    let (_ca, _server, mut proxy, client, tenant) = entra_lab(None).await;
    let lines = sign_in_with_padding(&mut proxy, &client, &tenant, 300 * 1024).await;
    let note = only_note(&lines);
    let message = note["message"].as_str().unwrap();
    assert!(message.contains("too large to analyse"), "{message}");
    assert!(message.contains("KiB"), "names the size: {message}");
    assert!(
        note["evidence"]["size"].as_u64().unwrap() > 300 * 1024,
        "{note}"
    );
    assert_eq!(note["evidence"]["analysed"], 256 * 1024, "{note}");
    // What was read still pairs the legs: the sign-in is judged.
    let token = lines.iter().find(|l| l["type"] == "token").unwrap();
    assert_eq!(token["client_id"], testkit::lab::WEB_CLIENT);
    assert_eq!(token["grant_type"], "authorization_code");
    let verdict = lines.last().unwrap();
    assert_eq!(verdict["outcome"], "signed-in", "{verdict}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_capture_limit_0_a_token_request_is_not_analysed_and_says_so() {
    let (_ca, _server, mut proxy, client, tenant) =
        entra_lab(Some(|c: &mut ProxyConfig| c.capture_limit = 0)).await;
    let lines = sign_in_with_padding(&mut proxy, &client, &tenant, 0).await;
    let note = only_note(&lines);
    assert!(
        note["message"].as_str().unwrap().contains("too large"),
        "{note}"
    );
    assert_eq!(note["evidence"]["analysed"], 0, "{note}");
    assert!(note["evidence"]["size"].as_u64().unwrap() > 100, "{note}");
    proxy.stop().await;
}

// === compression bombs ===

/// A gzip body of `size` bytes of `a`: a few KiB that expand a thousandfold.
fn gzip_bomb(size: usize) -> Bytes {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let block = vec![b'a'; 1024 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(block.len());
        gz.write_all(&block[..n]).unwrap();
        left -= n;
    }
    Bytes::from(gz.finish().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compression_bomb_is_forwarded_whole_but_recorded_bounded_and_marked_truncated() {
    const EXPANDS_TO: usize = 32 * 1024 * 1024;
    let bomb = gzip_bomb(EXPANDS_TO);
    let ca = TestCa::new();
    let served = bomb.clone();
    let handler: testkit::upstream::Handler = Arc::new(move |req: Request<Bytes>| {
        if req.uri().path() == "/bomb" {
            Response::builder()
                .header("content-type", "text/plain")
                .header("content-encoding", "gzip")
                .body(served.clone())
                .unwrap()
        } else {
            Response::new(Bytes::from_static(b"still here"))
        }
    });
    let upstream =
        TestUpstream::start_with(&ca, testkit::upstream::Tls::names(&["bomb.test"]), handler).await;
    let dir = tempfile::tempdir().unwrap();
    let mut output = OutputConfig::silent(AnalyzerConfig::default());
    output.har = Some(dir.path().join("session.har"));
    let proxy = TestProxy::start_with_output(
        &ca,
        ProxyOptions {
            routes: vec![("bomb.test".into(), 443, upstream.addr)],
            trust_test_ca: true,
            ..Default::default()
        },
        &dir.path().join("certs"),
        output,
    )
    .await;
    let client = proxy.client(testkit::Http::One);
    let got = client
        .get("https://bomb.test/bomb")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got, bomb, "forwarded exactly as sent, still compressed");
    let after = client
        .get("https://bomb.test/after")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(after, "still here", "the proxy still serves");
    proxy.stop().await;

    let text = std::fs::read_to_string(dir.path().join("session.har")).unwrap();
    assert!(
        text.len() < 2 * 1024 * 1024,
        "the HAR holds {} bytes for a {} byte response",
        text.len(),
        bomb.len()
    );
    let har: Value = serde_json::from_str(&text).unwrap();
    let entry = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["request"]["url"] == "https://bomb.test/bomb")
        .expect("the bomb's entry");
    assert_eq!(entry["_authlens"]["responseBody"], "truncated");
    let recorded = entry["response"]["content"]["text"].as_str().unwrap();
    assert_eq!(recorded.len(), authlens::exchange::DEFAULT_CAPTURE_LIMIT);
    assert!(recorded.bytes().all(|b| b == b'a'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_request_to_an_unreachable_idp_is_published_with_its_whole_body() {
    let ca = TestCa::new();
    // Nothing listens on the discard port of loopback: connections are refused.
    let nowhere: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut proxy = start(&ca, nowhere, dir.path()).await;
    let client = proxy.client(testkit::Http::One);
    let form = "grant_type=authorization_code&code=c-1&client_id=unreachable&redirect_uri=https%3A%2F%2Fapp.example%2Fcb";
    // The first request answers the tunnel's failed connection, the second
    // fails to connect on its own.
    for _ in 0..2 {
        let status = client
            .post(format!("https://{IDP}/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 502);
        let exchange = proxy.exchange_for("/token").await;
        let body = &exchange.request.body;
        assert_eq!(&body.bytes[..], form.as_bytes(), "{body:?}");
        assert_eq!(body.state, CaptureState::Complete);
    }
    proxy.stop().await;
    assert_eq!(json_legs(dir.path()), ["unreachable", "unreachable"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_request_over_http2_answered_before_its_body_was_read_reaches_the_analysis() {
    const ROUNDS: usize = 20;
    let ca = TestCa::new();
    let (idp, _server) = refusing_idp(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = start(&ca, idp, dir.path()).await;
    for round in 0..ROUNDS {
        // A client of its own each time, gone once it has the answer.
        let client = proxy.client(testkit::Http::Two);
        let body = json_token_request(&format!("h2-{round}"), 200 * 1024);
        let answer = client
            .post(format!("https://{IDP}/token"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.version(), http::Version::HTTP_2);
        let _ = answer.bytes().await;
    }
    proxy.stop().await;
    let legs = json_legs(dir.path());
    let want: Vec<String> = (0..ROUNDS).map(|r| format!("h2-{r}")).collect();
    let lost: Vec<&String> = want.iter().filter(|w| !legs.contains(w)).collect();
    assert!(
        lost.is_empty(),
        "{} of {ROUNDS} legs lost: {lost:?}",
        lost.len()
    );
}
