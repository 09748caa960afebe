//! Robustness: byte integrity under concurrency, faults on both sides, bad
//! input, and resource counts returning to their baseline afterwards.

use std::time::Duration;

use authlens::exchange::FailureSide;
use futures_util::StreamExt;
use testkit::upstream::{TestUpstream, Tls};
use testkit::{Http, ProxyOptions, TestCa, TestProxy, pattern_bytes, sha256_hex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A size between 0 and 8 MiB, log-uniform so most bodies are small.
fn body_size(seed: u64) -> usize {
    let x = pattern_bytes(seed, 8);
    let r = u64::from_le_bytes(x.try_into().unwrap());
    match r % 10 {
        0 => 0,
        1 => 1,
        _ => {
            let exp = (r >> 8) % 23; // up to 2^23 = 8 MiB
            ((1u64 << exp) + (r >> 40) % (1u64 << exp)) as usize
        }
    }
    .min(8 * 1024 * 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_random_bodies_arrive_byte_identical() {
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    let clients = [proxy.client(Http::One), proxy.client(Http::Two)];
    let jobs = (0..240u64).map(|i| {
        let client = clients[(i % 2) as usize].clone();
        async move {
            let n = body_size(i + 1);
            let chunked = i % 3 == 0;
            if i % 2 == 0 {
                // Download.
                let url = format!(
                    "https://idp.test/bytes?n={n}&seed={i}&chunked={}",
                    u8::from(chunked)
                );
                let resp = client.get(url).send().await.unwrap();
                let want = resp.headers()["x-body-sha256"]
                    .to_str()
                    .unwrap()
                    .to_string();
                let got = resp.bytes().await.unwrap();
                assert_eq!(got.len(), n, "download {i}");
                assert_eq!(sha256_hex(&got), want, "download {i}");
            } else {
                // Upload.
                let data = pattern_bytes(i, n);
                let want = sha256_hex(&data);
                let body = testkit::request_body(data, chunked.then_some(65_536));
                let resp = client
                    .post("https://idp.test/sink")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.text().await.unwrap(), want, "upload {i}");
            }
        }
    });
    futures_util::stream::iter(jobs)
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
    proxy.stop().await;
}

/// Client and upstream faults of every kind through the proxy at `addr`,
/// with clients from `client`; then checks that the next request is served.
async fn inflict_faults(addr: std::net::SocketAddr, client: impl Fn(Http) -> reqwest::Client) {
    // Client disconnects mid-download.
    for _ in 0..5 {
        let client = client(Http::One);
        let resp = client
            .get("https://idp.test/bytes?n=8388608&chunked=1")
            .send()
            .await
            .unwrap();
        let mut stream = resp.bytes_stream();
        let _ = stream.next().await;
        drop(stream);
        drop(client);
    }
    // Client disconnects mid-upload: the body stream fails after 1 MiB.
    for _ in 0..5 {
        let client = client(Http::One);
        let parts: Vec<Result<Vec<u8>, std::io::Error>> = vec![
            Ok(vec![1u8; 512 * 1024]),
            Ok(vec![2u8; 512 * 1024]),
            Err(std::io::Error::other("client gave up")),
        ];
        let result = client
            .post("https://idp.test/sink")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                parts,
            )))
            .send()
            .await;
        assert!(result.is_err(), "the upload was aborted");
        drop(client);
    }
    // Upstream resets mid-response.
    let client2 = client(Http::Two);
    let _ = client2
        .get("https://idp.test/reset-mid-body")
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    drop(client2);
    // 10,000 connections opened and closed.
    for _ in 0..10_000 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        drop(tcp);
    }

    // The next request is answered normally.
    let client = client(Http::One);
    let resp = client.get("https://idp.test/hello").send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), "hello from upstream");
}

/// Waits (up to 10 s) until `count` is at most `baseline + 4`; the last count.
async fn settles(baseline: usize, count: impl Fn() -> usize) -> usize {
    let mut now = count();
    for _ in 0..100 {
        if now <= baseline + 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = count();
    }
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_leave_no_task_behind() {
    // Tasks are counted on this test's own runtime, which no sibling shares.
    let (_ca, _upstream, proxy) = testkit::proxied_upstream().await;
    let metrics = tokio::runtime::Handle::current().metrics();
    // Warm up: one of everything, so lazily-created state is in the baseline.
    let client = proxy.client(Http::One);
    let resp = client.get("https://idp.test/hello").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tasks_before = metrics.num_alive_tasks();

    inflict_faults(proxy.addr, |http| proxy.client(http)).await;

    let tasks = settles(tasks_before, || metrics.num_alive_tasks()).await;
    assert!(
        tasks <= tasks_before + 4,
        "tasks {tasks} (baseline {tasks_before})"
    );
    proxy.stop().await;
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_leave_no_descriptor_behind() {
    // The binary as a child process: its descriptors are its own, not
    // shared with the sibling tests of this process.
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["idp.test"])).await;
    let route = format!("idp.test:443:127.0.0.1:{}", upstream.addr.port());
    let proxy = super::limits::BinaryProxy::start_with(
        "-S -n 1024",
        &[
            "--upstream-ca".as_ref(),
            ca.pem_path.as_os_str(),
            "--connect-to".as_ref(),
            route.as_ref(),
        ],
    );
    let addr: std::net::SocketAddr = proxy.addr.parse().unwrap();
    let authlens_ca = proxy.ca_pem();
    let client = |http: Http| {
        let builder = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(format!("http://{addr}")).unwrap())
            .add_root_certificate(reqwest::Certificate::from_pem(&authlens_ca).unwrap())
            .tls_built_in_root_certs(false)
            .timeout(Duration::from_secs(120));
        match http {
            Http::One => builder.http1_only(),
            Http::Two => builder,
        }
        .build()
        .unwrap()
    };
    // Warm up: one of everything, so lazily-opened descriptors are in the
    // baseline (the pooled upstream connection among them).
    let resp = client(Http::One)
        .get("https://idp.test/hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_before = proxy.open_fds();
    // The count sees the proxy's sockets: ten held connections show up.
    let held: Vec<_> = futures_util::future::join_all((0..10).map(|_| TcpStream::connect(addr)))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while proxy.open_fds() < fds_before + 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the held sockets never showed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(held);

    inflict_faults(addr, client).await;

    let fds = settles(fds_before, || proxy.open_fds()).await;
    assert!(fds <= fds_before + 4, "fds {fds} (baseline {fds_before})");
}

/// Sends raw bytes and returns the answer's head, or nothing when the proxy
/// closed without a word. Neither within 20 s fails the test.
async fn exchange_raw(proxy: &TestProxy, bytes: &[u8]) -> String {
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let _ = tcp.write_all(bytes).await;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && out.len() > 12 {
                        // Enough to see the status line.
                        break;
                    }
                }
            }
        }
    })
    .await
    .expect("the proxy answers or closes within 20 s");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_affects_other_connections() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["idp.test"])).await;
    let plain = TestUpstream::start(&ca, Tls::None).await;
    let proxy = TestProxy::routed(
        &ca,
        vec![
            ("idp.test".into(), 443, upstream.addr),
            ("plain.test".into(), 80, plain.addr),
        ],
    )
    .await;
    let huge_header = format!(
        "GET http://idp.test/ HTTP/1.1\r\nHost: idp.test\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1_000_000)
    );
    // Each bad input gets its own clear 4xx, never a silent close.
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n".to_vec(), "400"),
        ("oversized header", huge_header.into_bytes(), "431"),
        (
            "invalid chunked encoding",
            b"POST http://plain.test/sink HTTP/1.1\r\nHost: plain.test\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nxx\r\n0\r\n\r\n"
                .to_vec(),
            "400",
        ),
        ("CONNECT without a port", b"CONNECT idp.test HTTP/1.1\r\n\r\n".to_vec(), "400"),
        ("CONNECT to port 0", b"CONNECT idp.test:0 HTTP/1.1\r\n\r\n".to_vec(), "400"),
        ("CONNECT garbage", b"CONNECT [:::zz]:443 HTTP/1.1\r\n\r\n".to_vec(), "400"),
        ("origin-form request", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), "400"),
        // An HTTP/2 client would take any HTTP/1.1 answer for garbage: the
        // one bad input answered by closing the connection (and only that).
        ("HTTP/2 preface on the proxy port", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(), ""),
    ];
    let mut wrong = Vec::new();
    for (name, bytes, want) in cases {
        let answer = exchange_raw(&proxy, &bytes).await;
        let status = answer
            .strip_prefix("HTTP/1.1 ")
            .map(|r| r[..3].to_string())
            .unwrap_or_default();
        if status != want || (want.is_empty() && !answer.is_empty()) {
            wrong.push(format!(
                "{name}: want {want}, got {:?}",
                answer.lines().next()
            ));
        }
        // The next client, on a new connection, is served normally.
        let client = proxy.client(Http::Two);
        let resp = client.get("https://idp.test/hello").send().await.unwrap();
        assert_eq!(
            resp.text().await.unwrap(),
            "hello from upstream",
            "after {name}"
        );
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    proxy.stop().await;
}

/// Reads until the peer closes, `want` shows up, or 20 s pass.
async fn read_until(tcp: &mut TcpStream, want: &str) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if String::from_utf8_lossy(&out).contains(want) {
                        break;
                    }
                }
            }
        }
    })
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_upload_is_blamed_on_the_client() {
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

    // Invalid chunked encoding after a first good chunk: the client is
    // still there to be told.
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(
        b"POST http://plain.test/sink HTTP/1.1\r\nHost: plain.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZZ\r\nxx\r\n0\r\n\r\n",
    )
    .await
    .unwrap();
    let answer = read_until(&mut tcp, "client side").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("(client side)"), "{answer}");
    assert!(answer.contains("upload broke off"), "{answer}");
    let exchange = proxy.exchange_for("/sink").await;
    let error = exchange.error.as_ref().expect("a failed exchange");
    assert_eq!(error.side, FailureSide::Client, "{error:?}");
    assert!(error.message.contains("upload broke off"), "{error:?}");
    drop(tcp);

    // Half a Content-Length body, then the client closes.
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    tcp.write_all(
        b"POST http://plain.test/sink HTTP/1.1\r\nHost: plain.test\r\nContent-Length: 1000\r\n\r\n",
    )
    .await
    .unwrap();
    tcp.write_all(&[b'x'; 500]).await.unwrap();
    tcp.shutdown().await.unwrap();
    drop(tcp);
    let exchange = proxy.exchange_for("/sink").await;
    let error = exchange.error.as_ref().expect("a failed exchange");
    assert_eq!(error.side, FailureSide::Client, "{error:?}");
    assert!(error.message.contains("upload broke off"), "{error:?}");
    proxy.stop().await;
}

/// An upstream that accepts TCP connections and never says a word, so a TLS
/// handshake with it never finishes; counts the connections it accepted.
async fn silent_listener() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(stream);
        }
    });
    (addr, accepted)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tls_upstream_times_out_once_after_the_configured_budget() {
    const BUDGET: Duration = Duration::from_secs(2);
    let ca = testkit::TestCa::new();
    let (silent, accepted) = silent_listener().await;
    let mut proxy = TestProxy::start(
        &ca,
        testkit::ProxyOptions {
            routes: vec![("silent.test".into(), 443, silent)],
            tweak: Some(|c| c.timeouts.connect = BUDGET),
            ..Default::default()
        },
    )
    .await;
    for (round, http) in [Http::One, Http::Two].into_iter().enumerate() {
        let client = proxy.client(http);
        let started = std::time::Instant::now();
        let resp = client.get("https://silent.test/x").send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(resp.status(), 504, "{http:?}");
        let text = resp.text().await.unwrap();
        assert!(
            text.contains("connecting to silent.test:443 timed out after 2 s"),
            "{text}"
        );
        assert!(text.contains("the TLS handshake never finished"), "{text}");
        assert!(
            took >= BUDGET - Duration::from_millis(200),
            "{http:?}: answered after {took:?}, before the budget ran out"
        );
        // The budget ran once: one connection attempt per request (it used
        // to connect, wait out the budget, then connect and wait again).
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            round + 1,
            "{http:?}: answered after {took:?}"
        );
        let exchange = proxy.exchange_for("/x").await;
        let error = exchange.error.as_ref().expect("a failed exchange");
        assert_eq!(error.side, authlens::exchange::FailureSide::Upstream);
        assert!(error.message.contains("after 2 s"), "{}", error.message);
    }
    proxy.stop().await;
}
