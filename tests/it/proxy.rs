//! The proxy core, driven for real over TCP and TLS on loopback.

use std::time::Duration;

use authlens::exchange::{CaptureState, FailureSide};
use futures_util::{SinkExt, StreamExt};
use http::StatusCode;
use testkit::upstream::{TestUpstream, Tls};
use testkit::{Http, ProxyOptions, TestCa, TestProxy, pattern_bytes, sha256_hex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_get_and_post_over_http1_and_http2_with_mirrored_alpn() {
    let (_ca, _upstream, mut proxy) = testkit::proxied_upstream().await;
    for (http, want_version, want_alpn) in [
        (Http::One, "HTTP/1.1", "http/1.1"),
        (Http::Two, "HTTP/2.0", "h2"),
    ] {
        let client = proxy.client(http);
        let resp = client.get("https://idp.test/hello").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-upstream-version"], want_version);
        assert_eq!(resp.text().await.unwrap(), "hello from upstream");

        let exchange = proxy.exchange_for("/hello").await;
        assert_eq!(exchange.request.method, "GET");
        assert_eq!(exchange.request.uri.to_string(), "https://idp.test/hello");
        assert_eq!(exchange.connection.sni.as_deref(), Some("idp.test"));
        assert_eq!(exchange.connection.alpn.as_deref(), Some(want_alpn));
        assert_eq!(exchange.connection.tunnel.as_deref(), Some("idp.test:443"));
        assert!(exchange.connection.client_addr.unwrap().ip().is_loopback());
        let response = exchange.response.as_ref().unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert!(!response.synthetic);
        assert_eq!(&response.body.bytes[..], b"hello from upstream");
        assert_eq!(response.body.state, CaptureState::Complete);
        assert!(exchange.error.is_none());
        let t = exchange.timings;
        assert!(t.response_head.unwrap() <= t.response_done.unwrap());

        let form = "grant_type=authorization_code&code=abc";
        let resp = client
            .post("https://idp.test/echo")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), form);
        let exchange = proxy.exchange_for("/echo").await;
        assert_eq!(exchange.request.method, "POST");
        assert_eq!(&exchange.request.body.bytes[..], form.as_bytes());
        assert_eq!(exchange.request.body.state, CaptureState::Complete);
        assert_eq!(
            exchange.request.headers["content-type"],
            "application/x-www-form-urlencoded"
        );
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_absolute_form() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::None).await;
    let mut proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("plain.test".into(), 80, upstream.addr)],
            ..Default::default()
        },
    )
    .await;
    let client = proxy.client(Http::One);
    let resp = client.get("http://plain.test/hello").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello from upstream");
    let exchange = proxy.exchange_for("/hello").await;
    assert_eq!(exchange.request.uri.to_string(), "http://plain.test/hello");
    assert!(exchange.connection.tunnel.is_none());
    proxy.stop().await;
}

async fn download(client: &reqwest::Client, n: usize, chunked: bool) {
    let url = format!(
        "https://idp.test/bytes?n={n}&seed={n}&chunked={}",
        if chunked { 1 } else { 0 }
    );
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let want = resp.headers()["x-body-sha256"]
        .to_str()
        .unwrap()
        .to_string();
    if !chunked {
        assert_eq!(resp.content_length(), Some(n as u64));
    }
    let mut stream = resp.bytes_stream();
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut got = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        got += chunk.len();
        sha2::Digest::update(&mut hasher, &chunk);
    }
    assert_eq!(got, n);
    assert_eq!(testkit::hex(&sha2::Digest::finalize(hasher)), want);
}

async fn upload(client: &reqwest::Client, n: usize, chunked: bool) {
    let data = pattern_bytes(n as u64 + 7, n);
    let want = sha256_hex(&data);
    let body = testkit::request_body(data, chunked.then_some(100_000));
    let resp = client
        .post("https://idp.test/sink")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-body-size"], n.to_string().as_str());
    assert_eq!(resp.text().await.unwrap(), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_arrive_byte_identical_both_ways() {
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    for http in [Http::One, Http::Two] {
        let client = proxy.client(http);
        for n in [0, 1024 * 1024, 64 * 1024 * 1024] {
            for chunked in [false, true] {
                download(&client, n, chunked).await;
                upload(&client, n, chunked).await;
            }
        }
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_bodies_are_captured_only_up_to_the_cap() {
    let (_ca, _upstream, mut proxy) = testkit::proxied_upstream().await;
    let client = proxy.client(Http::One);
    download(&client, 3 * 1024 * 1024, true).await;
    let exchange = proxy.exchange_for("/bytes").await;
    let body = &exchange.response.as_ref().unwrap().body;
    assert_eq!(body.state, CaptureState::Truncated);
    assert_eq!(body.size, 3 * 1024 * 1024);
    assert_eq!(body.bytes.len(), authlens::exchange::DEFAULT_CAPTURE_LIMIT);
    assert_eq!(
        &body.bytes[..],
        &pattern_bytes(3 * 1024 * 1024, authlens::exchange::DEFAULT_CAPTURE_LIMIT)[..]
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ip_address_hosts_get_an_ip_san() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["127.0.0.1"])).await;
    let mut proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            trust_test_ca: true,
            ..Default::default()
        },
    )
    .await;
    // reqwest verifies the minted certificate against the IP: it must carry an IP SAN.
    let client = proxy.client(Http::One);
    let url = format!("https://127.0.0.1:{}/hello", upstream.addr.port());
    let resp = client.get(&url).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello from upstream");
    let exchange = proxy.exchange_for("/hello").await;
    assert_eq!(exchange.connection.sni, None, "no SNI is sent for IP hosts");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_hosts_present_the_upstreams_own_certificate() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["bank.test"])).await;
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("bank.test".into(), 443, upstream.addr)],
            passthrough: vec!["*.test".into()],
            ..Default::default()
        },
    )
    .await;
    // Trusting only the upstream's CA works: the proxy did not intercept.
    let direct_trust = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy.url()).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let resp = direct_trust
        .get("https://bank.test/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello from upstream");
    // Trusting only the authlens CA fails, for the same reason.
    let err = proxy
        .client(Http::One)
        .get("https://bank.test/hello")
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_failures_are_explained_and_the_proxy_keeps_serving() {
    let ca = TestCa::new();
    let trusted = TestUpstream::start(&ca, Tls::names(&["idp.test"])).await;
    let other_ca = TestCa::new();
    let untrusted = TestUpstream::start(&other_ca, Tls::names(&["rogue.test"])).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut proxy = TestProxy::routed(
        &ca,
        vec![
            ("idp.test".into(), 443, trusted.addr),
            ("rogue.test".into(), 443, untrusted.addr),
            ("closed.test".into(), 443, closed),
        ],
    )
    .await;
    let client = proxy.client(Http::One);

    let resp = client.get("https://rogue.test/hello").send().await.unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(text.contains("upstream side"), "{text}");
    assert!(text.contains("rogue.test"), "{text}");
    assert!(text.contains("unknown issuer"), "{text}");
    let exchange = proxy.exchange_for("/hello").await;
    assert!(exchange.response.as_ref().unwrap().synthetic);
    assert_eq!(exchange.error.as_ref().unwrap().side, FailureSide::Upstream);

    let resp = client
        .get("https://closed.test/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(text.contains("refused"), "{text}");
    assert!(text.contains("closed.test"), "{text}");

    let resp = client
        .get("https://idp.test/reset-mid-body")
        .send()
        .await
        .unwrap();
    assert!(
        resp.bytes().await.is_err(),
        "a broken body reaches the client as an error"
    );
    let exchange = proxy.exchange_for("/reset-mid-body").await;
    let body = &exchange.response.as_ref().unwrap().body;
    assert_eq!(body.state, CaptureState::Aborted);
    assert_eq!(exchange.error.as_ref().unwrap().side, FailureSide::Upstream);

    // Still serving, on a fresh client and on the old one.
    for client in [client, proxy.client(Http::Two)] {
        let resp = client.get("https://idp.test/hello").send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), "hello from upstream");
    }
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_connections_to_one_host_mint_once() {
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    let before = proxy.ca.minted_count();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        // A client each: separate CONNECTs and handshakes, all at once.
        let client = proxy.client(Http::One);
        tasks.push(tokio::spawn(async move {
            client
                .get("https://idp.test/hello")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), "hello from upstream");
    }
    assert_eq!(proxy.ca.minted_count() - before, 1);
    proxy.stop().await;
}

/// Clients resume their TLS sessions with authlens on every host, also
/// under the other protocol (one store serves a host's configs, one per
/// protocol): a second connection to a host resumes, a first one to another
/// host is a full handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resume_tls_sessions_with_authlens_on_every_host() {
    use rustls::HandshakeKind::{Full, Resumed};
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["a.test", "b.test"])).await;
    let proxy = TestProxy::routed(
        &ca,
        vec![
            ("a.test".into(), 443, upstream.addr),
            ("b.test".into(), 443, upstream.addr),
        ],
    )
    .await;
    // One client session store, as a browser has, for connections offering
    // HTTP/1.1 alone and HTTP/2 alone (authlens answers each with its own
    // config).
    // (rustls resumes only with the verifier that made the session: one
    // config, cloned.)
    let base = testkit::client_config(proxy.ca_pem.as_bytes(), &[]);
    let store = std::sync::Arc::new(rustls::client::ClientSessionMemoryCache::new(64));
    let offering = |alpn: &[u8]| {
        let mut config = (*base).clone();
        config.alpn_protocols = vec![alpn.to_vec()];
        config.resumption = rustls::client::Resumption::store(store.clone());
        tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
    };
    let (h1, h2) = (offering(b"http/1.1"), offering(b"h2"));
    let mut kinds = Vec::new();
    for (host, client) in [
        ("a.test", &h1),
        ("a.test", &h2),
        ("b.test", &h2),
        ("b.test", &h1),
        ("a.test", &h1),
    ] {
        let (tcp, head) = connect_tunnel(&proxy, &format!("{host}:443")).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let mut tls = client.connect(host.try_into().unwrap(), tcp).await.unwrap();
        kinds.push(tls.get_ref().1.handshake_kind());
        // TLS 1.3 tickets come after the handshake: reading what the proxy
        // sends first (HTTP/2's settings; for HTTP/1.1, the answer to a
        // request) takes them in.
        if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
            tls.write_all(H2_PREFACE).await.unwrap();
            let mut frame = [0u8; 9];
            tls.read_exact(&mut frame).await.unwrap();
            assert_eq!(frame[3], 0x4, "an HTTP/2 SETTINGS frame first");
        } else {
            let request =
                format!("GET /hello HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            tls.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            tls.read_to_end(&mut answer).await.unwrap();
            assert!(
                answer.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    let expected = [Full, Resumed, Full, Resumed, Resumed];
    assert_eq!(kinds, expected.map(Some));
    proxy.stop().await;
}

/// After a visit to many hosts (a browser leaves an idle connection to
/// each), only the newest 256 idle upstream connections of all hosts
/// together wait out the pool timeout; the others close once idle for 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_beyond_the_newest_256_of_all_hosts_close() {
    use std::sync::atomic::Ordering;
    const HOSTS: usize = 300;
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["*.pool.test"])).await;
    let routes = (0..HOSTS)
        .map(|i| (format!("h{i}.pool.test"), 443, upstream.addr))
        .collect();
    let proxy = TestProxy::routed(&ca, routes).await;
    for i in 0..HOSTS {
        // A client each, dropped after its request: its tunnel closes, so
        // the test holds about two descriptors per host, not four.
        let client = proxy.client(Http::One);
        let resp = client
            .get(format!("https://h{i}.pool.test/hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.text().await.unwrap(), "hello from upstream");
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut open = upstream.open.load(Ordering::SeqCst);
    while open > 256 {
        assert!(
            std::time::Instant::now() < deadline,
            "{open} idle upstream connections after 60 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        open = upstream.open.load(Ordering::SeqCst);
    }
    // The newest 256 stay for the pool timeout (90 s).
    assert_eq!(open, 256);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(upstream.open.load(Ordering::SeqCst), 256);
    proxy.stop().await;
}

/// An HTTP/2 client's preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0";

fn client_tls(ca_pem: &str, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(testkit::client_config(ca_pem.as_bytes(), alpn))
}

/// A new client of `proxy` is served (after a bad one, the others are).
async fn assert_served(proxy: &TestProxy, http: Http) {
    let resp = proxy
        .client(http)
        .get("https://idp.test/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello from upstream");
}

/// Opens a CONNECT tunnel by hand: the raw stream, and the proxy's answer
/// as text.
async fn connect_tunnel(proxy: &TestProxy, authority: &str) -> (TcpStream, String) {
    let (tcp, head) = proxy.connect_tunnel(authority).await;
    (tcp, String::from_utf8_lossy(&head).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_through_an_intercepted_tunnel() {
    let (_ca, _upstream, mut proxy) = testkit::proxied_upstream().await;
    let (tcp, head) = connect_tunnel(&proxy, "idp.test:443").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let tls = client_tls(&proxy.ca_pem, &[b"http/1.1"])
        .connect("idp.test".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut ws, resp) = tokio_tungstenite::client_async("wss://idp.test/ws", tls)
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    for text in ["hello", "second message", &"x".repeat(100_000)] {
        ws.send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
        let echoed = ws.next().await.unwrap().unwrap();
        assert_eq!(echoed.into_text().unwrap().as_str(), text);
    }
    ws.close(None).await.unwrap();
    let exchange = proxy.exchange_for("/ws").await;
    assert_eq!(exchange.response.as_ref().unwrap().status, 101);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_is_reused_across_restarts_and_its_key_is_private() {
    let ca = TestCa::new();
    let certs = tempfile::tempdir().unwrap();
    let path = certs.path().to_path_buf();
    let first = TestProxy::start_in(&ca, ProxyOptions::default(), &path).await;
    let first_pem = first.ca_pem.clone();
    first.stop().await;
    let second = TestProxy::start_in(&ca, ProxyOptions::default(), &path).await;
    assert_eq!(second.ca_pem, first_pem);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path.join("authlens-ca-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    second.stop().await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_key_others_can_read_stops_the_proxy_unless_allowed() {
    use authlens::ca::OpenKey;
    use authlens::config::{OutputConfig, ProxyConfig};
    use authlens::session::Session;
    use std::os::unix::fs::PermissionsExt;

    let ca = TestCa::new();
    let certs = tempfile::tempdir().unwrap();
    TestProxy::start_in(&ca, ProxyOptions::default(), certs.path())
        .await
        .stop()
        .await;
    let key = certs.path().join("authlens-ca-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();

    let config = ProxyConfig::new("127.0.0.1:0".parse().unwrap(), certs.path());
    let output = || OutputConfig::silent(Default::default());
    let refused = Session::start_with(config.clone(), output(), Default::default()).await;
    let text = refused.err().expect("an open key is refused").to_string();
    assert!(
        text.contains("readable by other users (mode 644)"),
        "{text}"
    );
    assert!(
        text.contains(&format!("chmod 600 {}", key.display())),
        "{text}"
    );

    let allowed = ProxyConfig {
        open_key: OpenKey::Allow,
        ..config
    };
    let session = Session::start_with(allowed, output(), Default::default())
        .await
        .expect("--allow-open-key starts anyway");
    tokio::time::timeout(Duration::from_secs(20), session.stop())
        .await
        .expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_100_continue_works() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::None).await;
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("plain.test".into(), 80, upstream.addr)],
            ..Default::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(
        b"POST http://plain.test/sink HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    let interim = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    tcp.write_all(b"hello").await.unwrap();
    let mut answer = String::from_utf8_lossy(&buf[..n]).to_string();
    while !answer.contains(&sha256_hex(b"hello")) {
        let n = tcp.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early: {answer}");
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.contains("200 OK"), "{answer}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_the_proxy_itself_get_a_clear_4xx() {
    let ca = TestCa::new();
    let proxy = TestProxy::start(&ca, ProxyOptions::default()).await;
    let (_tcp, head) = connect_tunnel(&proxy, &proxy.addr.to_string()).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    let client = proxy.client(Http::One);
    let resp = client
        .get(format!("http://{}/x", proxy.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("loop"));

    let direct = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = direct.get(proxy.url()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("proxy"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clean_error_and_slow_clients_are_cut_off() {
    let (_ca, _upstream, proxy) =
        testkit::proxied_upstream_with(|c| c.timeouts.header_read = Duration::from_secs(1)).await;
    // A malformed request line.
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(b"NOT A REQUEST\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out))
        .await
        .expect("answered and closed")
        .unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");

    // TLS garbage inside a tunnel.
    let (mut tcp, head) = connect_tunnel(&proxy, "idp.test:443").await;
    assert!(head.starts_with("HTTP/1.1 200"));
    tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 1, 2, 3, 4, 5])
        .await
        .unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "the proxy closes a tunnel carrying garbage");
    // At most a TLS alert record (content type 21), never anything else.
    assert!(out.is_empty() || out[0] == 21, "{out:?}");

    // A CONNECT target without a port.
    let (_tcp, head) = connect_tunnel(&proxy, "idp.test").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");

    // Slowloris: half a request head, then silence. Cut off by the 1 s
    // head timeout (hyper closes without an answer), not by the 300 s idle
    // timer, and not before its time.
    let started = std::time::Instant::now();
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(b"GET http://idp.test/ HTTP/1.1\r\nHost: idp")
        .await
        .unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out)).await;
    assert!(closed.is_ok(), "a stalled request head is cut off");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "cut after {took:?}, before its 1 s"
    );
    assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));

    // Other clients are unaffected.
    assert_served(&proxy, Http::Two).await;
    proxy.stop().await;
}

/// Signals each request for `/slow` as the forwarder takes it (and leaves
/// it untouched): the request is then in flight inside the proxy.
struct InFlight(std::sync::Arc<tokio::sync::Notify>);

impl authlens::proxy::Interceptor for InFlight {
    fn wants(&self, head: &http::request::Parts, _: &authlens::proxy::InterceptContext) -> bool {
        if head.uri.path() == "/slow" {
            self.0.notify_one();
        }
        false
    }

    fn intercept<'a>(
        &'a self,
        _: http::Request<authlens::proxy::Body>,
        _: &'a authlens::proxy::InterceptContext,
    ) -> authlens::proxy::BoxFuture<'a, authlens::proxy::Verdict> {
        unreachable!("it wants nothing")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_exchanges_finish() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["idp.test"])).await;
    let in_flight = std::sync::Arc::new(tokio::sync::Notify::new());
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("idp.test".into(), 443, upstream.addr)],
            trust_test_ca: true,
            hooks: authlens::proxy::Hooks {
                interceptor: Some(std::sync::Arc::new(InFlight(in_flight.clone()))),
                local: None,
            },
            ..Default::default()
        },
    )
    .await;
    let client = proxy.client(Http::One);
    let slow = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .get("https://idp.test/slow?ms=1000")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    });
    // Stop once the request is in flight inside the proxy (the upstream
    // takes 1 s to answer). The upstream's accepting a connection said less:
    // a tunnel connects upstream before any request comes through it.
    tokio::time::timeout(Duration::from_secs(30), in_flight.notified())
        .await
        .expect("the request reaches the forwarder");
    let mut exchanges = proxy.exchanges.resubscribe();
    let stopping = tokio::spawn(proxy.session.stop());
    assert_eq!(slow.await.unwrap(), "slow answer");
    let exchange = exchanges.recv().await.unwrap();
    assert_eq!(exchange.request.uri.path(), "/slow");
    assert_eq!(exchange.response.as_ref().unwrap().status, 200);
    tokio::time::timeout(Duration::from_secs(20), stopping)
        .await
        .expect("authlens stops within 20 s")
        .expect("the stop task did not panic");
    assert!(
        TcpStream::connect(proxy.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_name_dns_failure_and_timeout_are_named() {
    let ca = TestCa::new();
    let misnamed = TestUpstream::start(&ca, Tls::names(&["other.test"])).await;
    let slow = TestUpstream::start(&ca, Tls::names(&["slow.test"])).await;
    let mut proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![
                ("idp.test".into(), 443, misnamed.addr),
                ("slow.test".into(), 443, slow.addr),
            ],
            trust_test_ca: true,
            // Names resolve through a table, so no-such-host.invalid fails
            // at once here whatever the machine's DNS does (a slow resolver
            // would turn the 502 into a 504).
            tweak: Some(|c| {
                c.timeouts.response_head = Duration::from_secs(1);
                c.resolver = authlens::config::Resolver::table(Vec::new());
            }),
            ..Default::default()
        },
    )
    .await;
    let client = proxy.client(Http::One);

    let resp = client.get("https://idp.test/hello").send().await.unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(text.contains("not valid for this host name"), "{text}");

    let resp = client
        .get("https://no-such-host.invalid/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("DNS lookup of no-such-host.invalid failed"),
        "{text}"
    );

    let started = std::time::Instant::now();
    let resp = client
        .get("https://slow.test/slow?ms=5000")
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(resp.status(), 504);
    let text = resp.text().await.unwrap();
    assert!(
        text.contains("slow.test:443 did not answer within 1 s"),
        "{text}"
    );
    assert!(
        took >= Duration::from_secs(1),
        "answered after {took:?}, before its 1 s"
    );
    let exchange = proxy.exchange_for("/slow").await;
    assert_eq!(exchange.error.as_ref().unwrap().side, FailureSide::Upstream);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused_across_requests() {
    let (_ca, upstream, proxy) = testkit::proxied_upstream().await;
    for http in [Http::One, Http::Two] {
        let client = proxy.client(http);
        for _ in 0..20 {
            let resp = client.get("https://idp.test/hello").send().await.unwrap();
            assert_eq!(resp.text().await.unwrap(), "hello from upstream");
        }
    }
    // About one connection per ALPN offer (h1-only client, h2+h1 client), not
    // one per request. An HTTP/1.1 upstream connection is only reusable once
    // hyper has seen the end of the previous body, which can lag the client's
    // next request under load, so a few extra connections are tolerated.
    let opened = upstream
        .connections
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(opened <= 8, "{opened} upstream connections for 40 requests");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2_only_client_is_translated_to_an_http1_only_upstream() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::http1_only(&["old.test"])).await;
    let mut proxy = TestProxy::routed(&ca, vec![("old.test".into(), 443, upstream.addr)]).await;
    let (tcp, head) = connect_tunnel(&proxy, "old.test:443").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let tls = client_tls(&proxy.ca_pem, &[b"h2"])
        .connect("old.test".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://old.test/hello")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-upstream-version"], "HTTP/1.1");
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(&body[..], b"hello from upstream");
    let exchange = proxy.exchange_for("/hello").await;
    assert_eq!(exchange.connection.alpn.as_deref(), Some("h2"));
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_gives_up_early_still_leaves_an_exchange() {
    let (_ca, _upstream, mut proxy) = testkit::proxied_upstream().await;
    let client = proxy.client(Http::One);
    let request = client.get("https://idp.test/slow?ms=3000").send();
    let _ = tokio::time::timeout(Duration::from_millis(500), request).await;
    drop(client);
    let exchange = proxy.exchange_for("/slow").await;
    assert!(exchange.response.is_none());
    let error = exchange.error.as_ref().unwrap();
    assert_eq!(error.side, FailureSide::Client, "{}", error.message);
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_are_rewritten_only_where_http_requires_it() {
    let ca = TestCa::new();
    let old = TestUpstream::start(&ca, Tls::http1_only(&["old.test"])).await;
    let plain = TestUpstream::start(&ca, Tls::None).await;
    let proxy = TestProxy::routed(
        &ca,
        vec![
            ("old.test".into(), 443, old.addr),
            ("plain.test".into(), 80, plain.addr),
        ],
    )
    .await;
    // h2 client, HTTP/1.1 upstream: split cookies are joined into one field.
    let (tcp, _) = connect_tunnel(&proxy, "old.test:443").await;
    let tls = client_tls(&proxy.ca_pem, &[b"h2"])
        .connect("old.test".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("https://old.test/headers")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .header("x-case-kept", "Value")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let text = String::from_utf8(
        http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("cookie: a=1; b=2\n"), "{text}");
    assert_eq!(text.matches("cookie:").count(), 1, "{text}");
    assert!(!text.contains("\ndate:"), "no Date is invented: {text}");

    // Absolute form: Host follows the URI, userinfo is dropped.
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(
        b"GET http://user:pw@plain.test/headers HTTP/1.1\r\nHost: elsewhere.test\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).await.unwrap();
    assert!(out.contains("host: plain.test\n"), "{out}");
    assert!(!out.contains("elsewhere") && !out.contains("pw"), "{out}");

    // A request with a body and an h2c upgrade offer is forwarded as plain HTTP/1.1.
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(
        b"POST http://plain.test/sink HTTP/1.1\r\nHost: plain.test\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await
    .unwrap();
    let mut out = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), tcp.read_to_string(&mut out)).await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.contains(&sha256_hex(b"hello")), "{out}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_not_mistaken_for_a_silent_upstream() {
    let (_ca, _upstream, proxy) =
        testkit::proxied_upstream_with(|c| c.timeouts.response_head = Duration::from_secs(1)).await;
    // The upload takes about 2.5 s, longer than the 1 s response-head timeout.
    let chunks = futures_util::stream::unfold(0u8, |i| async move {
        if i == 5 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        Some((Ok::<_, std::io::Error>(vec![i; 1000]), i + 1))
    });
    let resp = proxy
        .client(Http::One)
        .post("https://idp.test/sink")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-body-size"], "5000");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_stalls_mid_body_is_blamed_not_the_client() {
    // The upstream sends 1 KiB of a promised 1 MiB, then nothing: the stall
    // limit (1 s here) cuts it, long before the idle timer (300 s).
    let (_ca, _upstream, mut proxy) =
        testkit::proxied_upstream_with(|c| c.timeouts.upstream_body_stall = Duration::from_secs(1))
            .await;
    let client = proxy.client(Http::One);
    let mut resp = client.get("https://idp.test/stall").send().await.unwrap();
    let head_at = std::time::Instant::now();
    let mut got = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("the stalled body is cut off within 30 s")
        {
            Ok(Some(chunk)) => got += chunk.len(),
            Ok(None) => panic!("the cut body must not look complete"),
            Err(_) => break,
        }
    }
    assert_eq!(got, 1024, "what the upstream sent reaches the client");
    let cut_after = head_at.elapsed();
    assert!(
        cut_after >= Duration::from_secs(1),
        "cut before its limit: {cut_after:?}"
    );
    let exchange = proxy.exchange_for("/stall").await;
    let error = exchange.error.as_ref().unwrap();
    assert_eq!(error.side, FailureSide::Upstream, "{}", error.message);
    assert!(
        error
            .message
            .contains("sent nothing for 1 s mid-body, after 1024 bytes")
            && error.message.contains("--upstream-body-stall"),
        "{}",
        error.message
    );
    assert_eq!(
        exchange.response.as_ref().unwrap().body.state,
        CaptureState::Aborted
    );
    proxy.stop().await;
}

/// Sends `request` on a fresh connection to the proxy and reads the whole
/// answer (the request asks for the connection to close).
async fn raw_exchange(proxy: &TestProxy, request: &str) -> String {
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), tcp.read_to_end(&mut out))
        .await
        .expect("the proxy answers and closes")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_out_of_range_is_a_client_error_not_the_default_port() {
    let ca = TestCa::new();
    let proxy = TestProxy::start(&ca, ProxyOptions::default()).await;

    let answer = raw_exchange(
        &proxy,
        "GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: 127.0.0.1:99999\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("(client side)"), "{answer}");
    assert!(
        answer.contains("port 99999, which is not a port number"),
        "{answer}"
    );

    let answer = raw_exchange(
        &proxy,
        "CONNECT 127.0.0.1:99999 HTTP/1.1\r\nHost: 127.0.0.1:99999\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(
        answer.contains("port 99999, which is not a port number"),
        "{answer}"
    );
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv4_mapped_address_of_the_proxy_is_refused_as_a_loop() {
    let ca = TestCa::new();
    let proxy = TestProxy::start(&ca, ProxyOptions::default()).await;
    let mapped = format!("[::ffff:127.0.0.1]:{}", proxy.addr.port());

    let answer = raw_exchange(
        &proxy,
        &format!("CONNECT {mapped} HTTP/1.1\r\nHost: {mapped}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("targets authlens itself"), "{answer}");

    let answer = raw_exchange(
        &proxy,
        &format!("GET http://{mapped}/x HTTP/1.1\r\nHost: {mapped}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("the request would loop"), "{answer}");
    assert!(answer.contains("(client side)"), "{answer}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_leg_is_encrypted_with_aes_128_gcm_even_when_the_client_offers_aes_256_first() {
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    let offered = testkit::client_config(proxy.ca_pem.as_bytes(), &[b"http/1.1"]);
    // The test client is rustls with ring's order, as OpenSSL's: AES-256 first.
    assert_eq!(
        offered.crypto_provider().cipher_suites[0].suite(),
        rustls::CipherSuite::TLS13_AES_256_GCM_SHA384
    );
    let (tcp, head) = connect_tunnel(&proxy, "idp.test:443").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut tls = tokio_rustls::TlsConnector::from(offered)
        .connect("idp.test".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(
        tls.get_ref().1.negotiated_cipher_suite().map(|s| s.suite()),
        Some(rustls::CipherSuite::TLS13_AES_128_GCM_SHA256)
    );
    // And it carries traffic.
    tls.write_all(b"GET /hello HTTP/1.1\r\nHost: idp.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.ends_with("hello from upstream"), "{answer}");
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heads_of_48_kib_pass_both_ways_and_an_upstreams_far_larger_one_is_explained() {
    // authlens caps what an HTTP/1.1 connection buffers at 64 KiB (a head
    // must fit); heads far above what IdPs accept still pass.
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    let client = proxy.client(Http::One);
    let cookie = format!("big={}", "c".repeat(48 * 1024));
    let resp = client
        .get("https://idp.test/headers")
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let listed = resp.text().await.unwrap();
    assert!(
        listed.contains(&format!("cookie: {cookie}\n")),
        "cookie lost"
    );

    let resp = client
        .get(format!("https://idp.test/big-head?n={}", 48 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-big"].len(), 48 * 1024);
    assert_eq!(resp.text().await.unwrap(), "big head");

    // A client's head that does not fit gets 431 (it::robustness sends one of
    // 1 MB); not tried here, since a client still writing it may see the
    // connection closed before it reads the answer.
    // An upstream's head that does not fit is explained, not dropped. hyper
    // checks its limit while a head is incomplete, so one that arrives at once
    // may pass a little over it; 300 KiB never does (and passed hyper's
    // default of about 400 KiB).
    let resp = client
        .get(format!("https://idp.test/big-head?n={}", 300 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("response head is too large for authlens (over 64 KiB"),
        "{page}"
    );
    // And the connection's neighbours are served.
    assert_served(&proxy, Http::One).await;
    proxy.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_left_from_a_burst_are_closed_and_the_warm_ones_kept() {
    use std::sync::atomic::Ordering::Relaxed;
    let (_ca, upstream, proxy) = testkit::proxied_upstream().await;
    // 24 clients at once, each on its own tunnel and each answered after 2 s
    // (so all are in flight together even on a slow machine): 24 upstream
    // connections.
    let burst: Vec<_> = (0..24)
        .map(|_| {
            let client = proxy.client(Http::One);
            tokio::spawn(async move {
                let resp = client
                    .get("https://idp.test/slow?ms=2000")
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.text().await.unwrap(), "slow answer");
            })
        })
        .collect();
    for task in burst {
        task.await.unwrap();
    }
    let opened = upstream.connections.load(Relaxed);
    assert!(opened >= 16, "the burst opened only {opened} connections");
    // The newest 8 stay for the pool timeout (90 s); the rest are closed
    // once idle for 5 s (looked over every 2 s).
    let started = std::time::Instant::now();
    while upstream.open.load(Relaxed) > 8 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{} upstream connections still open",
            upstream.open.load(Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(upstream.open.load(Relaxed), 8, "the warm ones are kept");
    // And a warm one serves the next request.
    assert_served(&proxy, Http::One).await;
    assert_eq!(upstream.connections.load(Relaxed), opened);
    proxy.stop().await;
}

/// authlens's HTTP/2 server tells a client the settings `proxy::H2_MAX_FRAME`
/// and `proxy::H2_WINDOWS` describe: 64 KiB frames, a 1 MiB stream window
/// and a connection window raised to 1 MiB (not the adaptive windows'
/// 64 KiB start). Read from the raw frames of a real TLS tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_clients_are_offered_64_kib_frames_and_1_mib_windows() {
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    let (tcp, head) = connect_tunnel(&proxy, "idp.test:443").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut tls = client_tls(&proxy.ca_pem, &[b"h2"])
        .connect("idp.test".try_into().unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(H2_PREFACE).await.unwrap();
    let mut settings = Vec::new();
    let mut connection_window_raise = None;
    // The server's first frames; a missing one fails below, not by hanging.
    for _ in 0..4 {
        let mut frame_head = [0u8; 9];
        let read = tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut frame_head));
        if !matches!(read.await, Ok(Ok(_))) {
            break;
        }
        let len = u32::from_be_bytes([0, frame_head[0], frame_head[1], frame_head[2]]) as usize;
        let (kind, flags) = (frame_head[3], frame_head[4]);
        let stream = u32::from_be_bytes(frame_head[5..9].try_into().unwrap());
        let mut payload = vec![0u8; len];
        tls.read_exact(&mut payload).await.unwrap();
        match kind {
            // SETTINGS (not its ACK): six bytes an entry.
            0x4 if flags & 0x1 == 0 => settings.extend(payload.chunks_exact(6).map(|e| {
                (
                    u16::from_be_bytes([e[0], e[1]]),
                    u32::from_be_bytes([e[2], e[3], e[4], e[5]]),
                )
            })),
            // WINDOW_UPDATE of the connection.
            0x8 if stream == 0 => {
                connection_window_raise = Some(u32::from_be_bytes(payload[..4].try_into().unwrap()))
            }
            _ => {}
        }
        if !settings.is_empty() && connection_window_raise.is_some() {
            break;
        }
    }
    let setting = |id: u16| settings.iter().find(|(i, _)| *i == id).map(|(_, v)| *v);
    assert_eq!(
        setting(0x5),
        Some(64 * 1024),
        "MAX_FRAME_SIZE in {settings:?}"
    );
    assert_eq!(
        setting(0x4),
        Some(1024 * 1024),
        "INITIAL_WINDOW_SIZE in {settings:?}"
    );
    // The connection window starts at 65,535 and is raised to 1 MiB.
    assert_eq!(connection_window_raise, Some(1024 * 1024 - 65_535));
    proxy.stop().await;
}
