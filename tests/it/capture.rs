//! What the analysis gets of each body, through the real proxy: a token
//! request answered before its body was read still reaches every output,
//! whole when the client sent it whole and marked partial when not.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use authlens::config::{OutputConfig, Sink};
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
use testkit::{ProxyOptions, TestCa, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A generic IdP: not a provider authlens knows, and `/token` is not a
/// token URL it recognises, so a token request is known by its body alone.
const IDP: &str = "idp.example";

/// A TLS upstream for [`IDP`] (HTTP/1.1 and HTTP/2) that answers every
/// request at once with `400 invalid_request`, without reading the request
/// body: a server refusing a JSON body does this.
async fn refusing_idp(ca: &TestCa) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (chain, key) = ca.server_cert(&[IDP]);
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
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
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(format!("CONNECT {IDP}:443 HTTP/1.1\r\nHost: {IDP}:443\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "CONNECT answered");
        head.push(byte[0]);
    }
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
    let body = body.to_vec();
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
