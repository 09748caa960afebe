//! The authlens benchmark: the proxy against the direct connection, side by
//! side in one run, on loopback.
//!
//! `cargo run --release --example bench -- [--quick] [--json FILE] [--seconds N]`
//!
//! It starts a local HTTPS upstream (hyper, test CA made at run time) in this
//! process, the release `authlens` binary as a child process (so its memory
//! and CPU can be read from /proc), and its own hyper client pool as the load
//! generator. Every scenario runs direct and through the proxy back to back,
//! and prints the ratio. See docs/performance.md for the figures.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use testkit::binary::Binary;
use testkit::lab::{IDP, authorize_params, token_form};
use testkit::upstream::{TestUpstream, Tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The host of the bench's plain-HTTP upstream (port 80, sent to it by a
/// `--connect-to` rule).
const PLAIN_HOST: &str = "plain.bench.test";

type BoxBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Proto {
    H1,
    H2,
}

/// Where the load goes.
#[derive(Clone)]
struct Route {
    /// `None`: straight to the upstream.
    proxy: Option<SocketAddr>,
    upstream: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
    tls_h1: Arc<rustls::ClientConfig>,
}

enum Sender {
    H1(http1::SendRequest<BoxBody>),
    H2(http2::SendRequest<BoxBody>),
}

impl Sender {
    async fn send(
        &mut self,
        req: http::Request<BoxBody>,
    ) -> hyper::Result<http::Response<hyper::body::Incoming>> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }

    fn clone_h2(&self) -> Option<Sender> {
        match self {
            Sender::H2(s) => Some(Sender::H2(s.clone())),
            Sender::H1(_) => None,
        }
    }
}

async fn open(route: &Route, host: &str, proto: Proto) -> Sender {
    let mut tcp = match route.proxy {
        Some(proxy) => {
            let mut tcp = TcpStream::connect(proxy).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tcp.write_all(
                format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                assert_eq!(
                    tcp.read(&mut byte).await.unwrap(),
                    1,
                    "proxy closed during CONNECT"
                );
                head.push(byte[0]);
            }
            assert!(
                head.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&head)
            );
            tcp
        }
        None => {
            let tcp = TcpStream::connect(route.upstream).await.unwrap();
            tcp.set_nodelay(true).unwrap();
            tcp
        }
    };
    let _ = &mut tcp;
    let config = match proto {
        Proto::H1 => route.tls_h1.clone(),
        Proto::H2 => route.tls.clone(),
    };
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(host.to_string().try_into().unwrap(), tcp)
        .await
        .unwrap();
    let io = TokioIo::new(tls);
    match proto {
        Proto::H1 => {
            let (s, c) = http1::handshake(io).await.unwrap();
            tokio::spawn(c);
            Sender::H1(s)
        }
        Proto::H2 => {
            let (s, c) = http2::Builder::new(TokioExecutor::new())
                .adaptive_window(true)
                .handshake(io)
                .await
                .unwrap();
            tokio::spawn(c);
            Sender::H2(s)
        }
    }
}

fn get(host: &str, path: &str, proto: Proto) -> http::Request<BoxBody> {
    let mut b = http::Request::get(format!("https://{host}{path}"));
    if proto == Proto::H1 {
        b = http::Request::get(path).header("host", host);
    }
    b.body(Empty::new().map_err(|n| match n {}).boxed())
        .unwrap()
}

/// Sends one request and reads the whole body; returns its size.
async fn fetch(sender: &mut Sender, req: http::Request<BoxBody>) -> u64 {
    let resp = sender.send(req).await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut body = resp.into_body();
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(d) = frame.unwrap().data_ref() {
            n += d.len() as u64;
        }
    }
    n
}

struct Load {
    requests: u64,
    bytes: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Load {
    fn rps(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
    fn mbps(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64()
    }
    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.latencies_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i] as f64 / 1000.0
    }
}

/// Keep-alive load: `concurrency` workers (own connections for HTTP/1.1,
/// streams on one connection for HTTP/2) for `duration`.
async fn keep_alive(
    route: &Route,
    proto: Proto,
    concurrency: usize,
    path: &str,
    duration: Duration,
) -> Load {
    let host = "bench.test";
    let shared_h2 = match proto {
        Proto::H2 => Some(open(route, host, proto).await),
        Proto::H1 => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    // Warm-up so connections exist before timing.
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let mut sender = match &shared_h2 {
            Some(s) => s.clone_h2().unwrap(),
            None => open(route, host, proto).await,
        };
        fetch(&mut sender, get(host, path, proto)).await;
        senders.push(sender);
    }
    let start = Instant::now();
    for mut sender in senders {
        let stop = stop.clone();
        let path = path.to_string();
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut bytes = 0;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                bytes += fetch(&mut sender, get(host, &path, proto)).await;
                lat.push(t.elapsed().as_micros() as u64);
            }
            (lat, bytes)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut load = Load {
        requests: 0,
        bytes: 0,
        elapsed: Duration::ZERO,
        latencies_us: Vec::new(),
    };
    for w in workers {
        let (lat, bytes) = w.await.unwrap();
        load.requests += lat.len() as u64;
        load.bytes += bytes;
        load.latencies_us.extend(lat);
    }
    load.elapsed = start.elapsed();
    load
}

/// A new connection (CONNECT + TLS) for every request.
async fn new_connections(
    route: &Route,
    duration: Duration,
    host_of: impl Fn(u64) -> String,
) -> Load {
    let start = Instant::now();
    let mut lat = Vec::new();
    let mut i = 0;
    while start.elapsed() < duration {
        let host = host_of(i);
        let t = Instant::now();
        let mut sender = open(route, &host, Proto::H1).await;
        fetch(&mut sender, get(&host, "/hello", Proto::H1)).await;
        lat.push(t.elapsed().as_micros() as u64);
        i += 1;
    }
    Load {
        requests: lat.len() as u64,
        bytes: 0,
        elapsed: start.elapsed(),
        latencies_us: lat,
    }
}

/// Streams `total` bytes up to /sink in 64 KiB frames.
async fn upload(route: &Route, total: u64) -> Load {
    let mut sender = open(route, "bench.test", Proto::H1).await;
    let chunk = Bytes::from(vec![0x5au8; 64 * 1024]);
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let stream = futures_util::stream::unfold(0u64, move |done| {
        let chunk = chunk.clone();
        let counter = counter.clone();
        async move {
            if done >= total {
                return None;
            }
            let n = chunk.len().min((total - done) as usize);
            counter.fetch_add(n as u64, Ordering::Relaxed);
            Some((
                Ok::<_, std::io::Error>(Frame::data(chunk.slice(..n))),
                done + n as u64,
            ))
        }
    });
    let req = http::Request::post("/sink")
        .header("host", "bench.test")
        .header("content-length", total.to_string())
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap();
    let start = Instant::now();
    let resp = sender.send(req).await.unwrap();
    assert_eq!(resp.headers()["x-body-size"], total.to_string().as_str());
    let _ = resp.into_body().collect().await;
    Load {
        requests: 1,
        bytes: sent.load(Ordering::Relaxed),
        elapsed: start.elapsed(),
        latencies_us: vec![],
    }
}

/// The authlens binary as a child process, with /proc readings; killed
/// when dropped (the [`Binary`] is).
struct ProxyProcess {
    _binary: Binary,
    addr: SocketAddr,
    pid: u32,
    started: Instant,
    ready_after: Duration,
}

impl ProxyProcess {
    fn start(
        binary: &str,
        certs: &std::path::Path,
        upstream: SocketAddr,
        idp: SocketAddr,
        ca_pem: &std::path::Path,
        json: &std::path::Path,
        plain: Option<SocketAddr>,
    ) -> ProxyProcess {
        let started = Instant::now();
        let mut command = testkit::binary::command(binary, certs);
        // Before the catch-all rule below: the first rule that matches wins.
        if let Some(plain) = plain {
            command
                .arg("--connect-to")
                .arg(format!("{PLAIN_HOST}:80:{plain}"));
        }
        let proxy = Binary::start(
            command
                .arg("--upstream-ca")
                .arg(ca_pem)
                .arg("--json")
                .arg(json)
                .arg("--connect-to")
                .arg(format!("{IDP}:443:{}:{}", idp.ip(), idp.port()))
                .arg("--connect-to")
                .arg(format!("::{}:{}", upstream.ip(), upstream.port()))
                .env("RUST_LOG", "authlens=warn")
                .stdout(Stdio::null()),
        );
        let ready_after = started.elapsed();
        ProxyProcess {
            addr: proxy.addr.parse().expect("authlens printed its address"),
            pid: proxy.id(),
            _binary: proxy,
            started,
            ready_after,
        }
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with(field))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS:") as f64 / 1024.0
    }

    fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM:") as f64 / 1024.0
    }

    /// Resets the peak RSS counter (VmHWM) so a phase's own peak can be read.
    fn reset_peak(&self) {
        let _ = std::fs::write(format!("/proc/{}/clear_refs", self.pid), "5");
    }

    /// CPU time used so far (user + system).
    fn cpu(&self) -> Duration {
        proc_cpu(self.pid)
    }

    fn threads(&self) -> u64 {
        self.status_kib("Threads:")
    }
}

struct Report {
    rows: Vec<(String, String, String, String)>,
    json: BTreeMap<String, Value>,
}

impl Report {
    fn pair(&mut self, name: &str, unit: &str, direct: f64, proxy: f64) {
        let ratio = if direct > 0.0 { proxy / direct } else { 0.0 };
        self.rows.push((
            name.to_string(),
            format!("{direct:.1} {unit}"),
            format!("{proxy:.1} {unit}"),
            format!("{:.0}%", ratio * 100.0),
        ));
        self.json.insert(
            name.to_string(),
            json!({"unit": unit, "direct": direct, "proxy": proxy, "ratio": ratio}),
        );
        println!(
            "  {name:<44} direct {direct:>10.1} {unit:<5} proxy {proxy:>10.1} {unit:<5} ratio {:>4.0}%",
            ratio * 100.0
        );
    }

    fn single(&mut self, name: &str, unit: &str, value: f64) {
        self.rows.push((
            name.to_string(),
            String::new(),
            format!("{value:.2} {unit}"),
            String::new(),
        ));
        self.json
            .insert(name.to_string(), json!({"unit": unit, "proxy": value}));
        println!("  {name:<44} {value:>10.2} {unit}");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let seconds: f64 = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1.0 } else { 3.0 });
    let json_out = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let phase = Duration::from_secs_f64(seconds);
    // `--only a,b` runs just those phases (keepalive, mib, newconn, upload, tunnels, many, memory,
    // signin, outputs, har).
    let only: Option<Vec<String>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').map(str::to_string).collect());
    let want = |name: &str| only.as_ref().is_none_or(|o| o.iter().any(|x| x == name));
    // `--soak 10m`: after the phases, mixed load for that long, RSS printed every 10 s.
    // `--peer mitmproxy`: the same load through mitmdump (from PATH, or
    // `--peer-bin PATH`), in the same run. `--peer hudsucker`: through a
    // no-op hudsucker proxy (bench/hudsucker-peer, built here on demand),
    // interleaved with direct and a fresh authlens for `--rounds N` rounds.
    let peer = args
        .iter()
        .position(|a| a == "--peer")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let peer_bin = args
        .iter()
        .position(|a| a == "--peer-bin")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "mitmdump".into());
    let soak = args
        .iter()
        .position(|a| a == "--soak")
        .and_then(|i| args.get(i + 1))
        .map(|v| authlens::config::parse_duration(v).expect("--soak takes a duration such as 10m"));

    // Build and find the release binary next to this example, unless
    // `--authlens-bin PATH` names one (a copy of an earlier build, to compare
    // before and after; or one that uprobes are set on, see --perf-stat).
    let binary = match args
        .iter()
        .position(|a| a == "--authlens-bin")
        .and_then(|i| args.get(i + 1))
    {
        Some(path) => std::path::PathBuf::from(path),
        None => testkit::binary::release_build(),
    };

    let ca = testkit::TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::names(&["bench.test", "*.bench.test"])).await;
    let (idp, idp_server) = testkit::lab::default_mock_idp(&ca).await;
    let plain_upstream = TestUpstream::start_with(
        &ca,
        Tls::None,
        Arc::new(|_| http::Response::new(Bytes::from_static(b"ok"))),
    )
    .await;
    let certs = tempfile::tempdir().unwrap();
    let json_path = certs.path().join("findings.jsonl");
    let proxy = ProxyProcess::start(
        binary.to_str().unwrap(),
        certs.path(),
        upstream.addr,
        idp_server.addr,
        &ca.pem_path,
        &json_path,
        Some(plain_upstream.addr),
    );
    let authlens_ca = std::fs::read(certs.path().join("authlens-ca.pem")).unwrap();
    let direct = Route {
        proxy: None,
        upstream: upstream.addr,
        tls: testkit::client_config(ca.cert_pem.as_bytes(), &[b"h2", b"http/1.1"]),
        tls_h1: testkit::client_config(ca.cert_pem.as_bytes(), &[b"http/1.1"]),
    };
    let through = Route {
        proxy: Some(proxy.addr),
        upstream: upstream.addr,
        tls: testkit::client_config(&authlens_ca, &[b"h2", b"http/1.1"]),
        tls_h1: testkit::client_config(&authlens_ca, &[b"http/1.1"]),
    };
    let mut report = Report {
        rows: Vec::new(),
        json: BTreeMap::new(),
    };
    println!(
        "authlens bench: {} CPUs, phases of {seconds} s, proxy pid {}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        proxy.pid
    );
    report.single(
        "proxy start-up until listening",
        "ms",
        proxy.ready_after.as_secs_f64() * 1000.0,
    );

    // Very first request after start (mints, connects upstream, builds nothing else).
    let t = Instant::now();
    let mut first = open(&through, "first.bench.test", Proto::H1).await;
    fetch(&mut first, get("first.bench.test", "/hello", Proto::H1)).await;
    report.single(
        "very first request after start",
        "ms",
        t.elapsed().as_secs_f64() * 1000.0,
    );
    let _ = proxy.started;
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.single("RSS idle", "MiB", proxy.rss_mib());

    // One plain-HTTP request (a local IdP on http://localhost is common):
    // its code is part of layout/hot-text.txt because it runs here.
    let plain_client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{}", proxy.addr)).unwrap())
        .build()
        .unwrap();
    let answer = plain_client
        .get(format!("http://{PLAIN_HOST}/hello"))
        .send()
        .await
        .expect("a plain-HTTP request through authlens");
    assert!(
        answer.status().is_success(),
        "plain HTTP: {}",
        answer.status()
    );
    let _ = answer.bytes().await;
    // Its connection to the proxy closes (the proxy keeps its upstream one
    // pooled, as after any request).
    drop(plain_client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    report.single(
        "RSS idle after a plain-HTTP request too",
        "MiB",
        proxy.rss_mib(),
    );

    if want("keepalive") {
        // Keep-alive small requests.
        for proto in [Proto::H1, Proto::H2] {
            for c in [1usize, 10, 50] {
                let d = keep_alive(&direct, proto, c, "/hello", phase).await;
                let cpu0 = proxy.cpu();
                let p = keep_alive(&through, proto, c, "/hello", phase).await;
                let cpu = proxy.cpu() - cpu0;
                report.pair(
                    &format!("keep-alive 100 B {proto:?} c={c} req/s"),
                    "req/s",
                    d.rps(),
                    p.rps(),
                );
                if c == 1 {
                    report.pair(
                        &format!("latency p50 {proto:?} c=1"),
                        "ms",
                        d.percentile(0.5),
                        p.percentile(0.5),
                    );
                    report.pair(
                        &format!("latency p99 {proto:?} c=1"),
                        "ms",
                        d.percentile(0.99),
                        p.percentile(0.99),
                    );
                    report.single(
                        &format!("added p50 latency {proto:?} c=1"),
                        "ms",
                        p.percentile(0.5) - d.percentile(0.5),
                    );
                }
                if c == 10 {
                    report.single(
                        &format!("proxy CPU per request {proto:?} c=10"),
                        "µs",
                        cpu.as_secs_f64() * 1e6 / p.requests.max(1) as f64,
                    );
                }
            }
        }
    }

    if want("mib") {
        // 1 MiB responses.
        let mib = format!("/bytes?n={}&seed=3", 1024 * 1024);
        for c in [1usize, 10] {
            let d = keep_alive(&direct, Proto::H1, c, &mib, phase).await;
            let p = keep_alive(&through, Proto::H1, c, &mib, phase).await;
            report.pair(
                &format!("1 MiB responses c={c}"),
                "MB/s",
                d.mbps(),
                p.mbps(),
            );
        }
    }

    if want("newconn") {
        // New TLS connection per request.
        let d = new_connections(&direct, phase, |_| "bench.test".into()).await;
        let p = new_connections(&through, phase, |_| "bench.test".into()).await;
        report.pair("new connection per request", "req/s", d.rps(), p.rps());
        let fresh = new_connections(&through, Duration::from_millis(1), |i| {
            format!("new{i}.bench.test")
        })
        .await;
        report.single(
            "first request to a never-seen host",
            "ms",
            fresh.percentile(0.5),
        );
        let cached = new_connections(&through, Duration::from_millis(1), |_| {
            "new0.bench.test".into()
        })
        .await;
        report.single(
            "same host again (cached certificate)",
            "ms",
            cached.percentile(0.5),
        );
    }

    if want("upload") {
        // Streaming upload.
        let total: u64 = if quick { 256 << 20 } else { 1 << 30 };
        let d = upload(&direct, total).await;
        proxy.reset_peak();
        let p = upload(&through, total).await;
        report.pair(
            &format!("{} MiB streamed upload", total >> 20),
            "MB/s",
            d.mbps(),
            p.mbps(),
        );
        report.single("peak RSS while streaming", "MiB", proxy.peak_mib());
    }

    if want("many") {
        // Many requests, then back to idle.
        let count: u64 = if quick { 10_000 } else { 100_000 };
        let start = Instant::now();
        let mut workers = Vec::new();
        for _ in 0..10 {
            let route = through.clone();
            workers.push(tokio::spawn(async move {
                let mut s = open(&route, "bench.test", Proto::H1).await;
                for _ in 0..count / 10 {
                    fetch(&mut s, get("bench.test", "/hello", Proto::H1)).await;
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        let busy = proxy.rss_mib();
        tokio::time::sleep(Duration::from_secs(2)).await;
        report.single(&format!("RSS right after {count} requests"), "MiB", busy);
        report.single(
            &format!("RSS 2 s after {count} requests"),
            "MiB",
            proxy.rss_mib(),
        );
        report.single(
            &format!("{count} requests took"),
            "s",
            start.elapsed().as_secs_f64(),
        );
    }

    report.single(
        "peak RSS before the idle-tunnel phase",
        "MiB",
        proxy.peak_mib(),
    );

    if want("tunnels") {
        // Idle tunnels.
        let tunnels = if quick { 200 } else { 1000 };
        let mut held = Vec::new();
        for _ in 0..tunnels {
            held.push(open(&through, "bench.test", Proto::H1).await);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        report.single(
            &format!("RSS with {tunnels} idle tunnels"),
            "MiB",
            proxy.rss_mib(),
        );
        drop(held);
        tokio::time::sleep(Duration::from_secs(2)).await;
        report.single(
            &format!("RSS 2 s after closing the {tunnels} tunnels"),
            "MiB",
            proxy.rss_mib(),
        );
    }

    if want("memory") {
        // `--memory-tunnels N`: how many tunnels the memory phase opens.
        let tunnels = args
            .iter()
            .position(|a| a == "--memory-tunnels")
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(if quick { 200 } else { 1000 });
        memory_after_load(
            &binary,
            &ca,
            upstream.addr,
            idp_server.addr,
            tunnels,
            &mut report,
        )
        .await;
    }

    // With sign-in flows mixed in (the analysis at work).
    let tenant = idp.config().tenant.clone();
    let signin_client = testkit::client_through(&format!("http://{}", proxy.addr), &authlens_ca);
    if want("signin") {
        let stop = Arc::new(AtomicBool::new(false));
        let flows = tokio::spawn(sign_in_loop(
            signin_client.clone(),
            tenant.clone(),
            stop.clone(),
        ));
        let mixed = keep_alive(&through, Proto::H1, 10, "/hello", phase).await;
        stop.store(true, Ordering::Relaxed);
        let (clean, faulty) = flows.await.unwrap();
        let plain = keep_alive(&through, Proto::H1, 10, "/hello", phase).await;
        report.pair(
            "keep-alive c=10 without / with sign-ins mixed in",
            "req/s",
            plain.rps(),
            mixed.rps(),
        );
        report.single(
            "sign-ins during that phase (clean + faulty)",
            "",
            (clean + faulty) as f64,
        );
    }
    // `--only har`: the `--har` recorder alone, in this process (see har_recorder_rates).
    if want("har") {
        har_recorder_rates(&mut report, quick);
    }
    if let Some(soak) = soak {
        run_soak(&proxy, &through, &signin_client, &tenant, soak, &json_path).await;
    }
    let findings = std::fs::read_to_string(&json_path)
        .map(|t| {
            t.lines()
                .filter(|l| l.contains("\"type\":\"finding\""))
                .count()
        })
        .unwrap_or(0);
    report.single("findings written by the proxy", "", findings as f64);
    if want("outputs") {
        outputs_under_load(binary.to_str().unwrap(), phase, &mut report).await;
    }
    report.single("peak RSS over the whole run", "MiB", proxy.peak_mib());
    report.single("proxy threads", "", proxy.threads() as f64);

    match peer.as_deref() {
        Some("mitmproxy") => {
            compare_with_mitmproxy(
                &peer_bin,
                &direct,
                &through,
                &ca,
                upstream.addr,
                phase,
                &mut report,
            )
            .await
        }
        Some("hudsucker") => {
            let rounds = args
                .iter()
                .position(|a| a == "--rounds")
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(3);
            // `--perf-stat`: per-request counts from `perf stat` on each proxy.
            let perf = args.iter().any(|a| a == "--perf-stat");
            // `--rows "H1 c=10,1 MiB"`: only the scenarios whose names contain one of these.
            let rows: Option<Vec<String>> = args
                .iter()
                .position(|a| a == "--rows")
                .and_then(|i| args.get(i + 1))
                .map(|v| v.split(',').map(str::to_string).collect());
            compare_with_hudsucker(
                perf,
                rows,
                &binary,
                &direct,
                &ca,
                upstream.addr,
                idp_server.addr,
                phase,
                rounds,
                &mut report,
            )
            .await
        }
        Some(other) => {
            println!("unknown --peer {other}: only mitmproxy and hudsucker are supported")
        }
        None => {}
    }

    if let Some(path) = json_out {
        let doc = json!({
            "machine": {"cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)},
            "phase_seconds": seconds,
            "results": report.json,
        });
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        println!("wrote {path}");
    }
    let _ = report.rows.len();
}

/// Plays sign-ins through the proxy until `stop`: mostly clean ones, every
/// fifth one redeemed twice (a finding each time). Returns (clean, faulty).
async fn sign_in_loop(
    client: reqwest::Client,
    tenant: String,
    stop: Arc<AtomicBool>,
) -> (u64, u64) {
    let (mut clean, mut faulty) = (0, 0);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let state = format!("bench-{i}");
        let url = reqwest::Url::parse_with_params(
            &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
            authorize_params(&state, &[]),
        )
        .unwrap();
        let Ok(resp) = client.get(url).send().await else {
            continue;
        };
        let Some(code) = resp
            .headers()
            .get("location")
            .and_then(|l| reqwest::Url::parse(l.to_str().ok()?).ok())
            .and_then(|u| {
                u.query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
            })
        else {
            continue;
        };
        let token = format!("https://{IDP}/{tenant}/oauth2/v2.0/token");
        let _ = client.post(&token).form(&token_form(&code)).send().await;
        if i.is_multiple_of(5) {
            let _ = client.post(&token).form(&token_form(&code)).send().await;
            faulty += 1;
        } else {
            clean += 1;
        }
    }
    (clean, faulty)
}

/// `--soak`: keep-alive load plus sign-ins for `duration`, reporting every 10 s.
async fn run_soak(
    proxy: &ProxyProcess,
    route: &Route,
    client: &reqwest::Client,
    tenant: &str,
    duration: Duration,
    json: &std::path::Path,
) {
    println!("soak for {duration:?}: keep-alive c=10 plus sign-ins; RSS every 10 s");
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let flows = tokio::spawn(sign_in_loop(
        client.clone(),
        tenant.to_string(),
        stop.clone(),
    ));
    let mut total = 0;
    while start.elapsed() < duration {
        let slice = (duration - start.elapsed()).min(Duration::from_secs(10));
        let load = keep_alive(route, Proto::H1, 10, "/hello", slice).await;
        total += load.requests;
        let findings = std::fs::read_to_string(json)
            .map(|t| {
                t.lines()
                    .filter(|l| l.contains("\"type\":\"finding\""))
                    .count()
            })
            .unwrap_or(0);
        println!(
            "  t={:>5.0}s  requests {total:>9}  {:>8.0} req/s  findings {findings:>6}  RSS {:>6.1} MiB",
            start.elapsed().as_secs_f64(),
            load.rps(),
            proxy.rss_mib()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let (clean, faulty) = flows.await.unwrap();
    println!(
        "  soak done: {clean} clean and {faulty} faulty sign-ins, peak RSS {:.1} MiB",
        proxy.peak_mib()
    );
}

/// Runs the keep-alive and 1 MiB phases through mitmdump as well, and prints
/// authlens's figures next to it.
async fn compare_with_mitmproxy(
    bin: &str,
    direct: &Route,
    authlens: &Route,
    ca: &testkit::TestCa,
    upstream: SocketAddr,
    phase: Duration,
    report: &mut Report,
) {
    let conf = tempfile::tempdir().unwrap();
    // mitmproxy has no --connect-to: an addon sends every connection to the
    // local upstream while SNI and verification keep the requested name.
    let addon = conf.path().join("route.py");
    std::fs::write(
        &addon,
        format!(
            "def server_connect(data):\n    data.server.address = (\"{}\", {})\n",
            upstream.ip(),
            upstream.port()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args([
            "-q",
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .args(["--set", &format!("confdir={}", conf.path().display())])
        .args([
            "--set",
            &format!("ssl_verify_upstream_trusted_ca={}", ca.pem_path.display()),
        ])
        .args(["-s", addon.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else {
        println!(
            "  --peer mitmproxy: cannot run {bin} (pip install mitmproxy, or --peer-bin PATH)"
        );
        return;
    };
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let ca_path = conf.path().join("mitmproxy-ca-cert.pem");
    let mut ready = false;
    for _ in 0..300 {
        if ca_path.exists() && TcpStream::connect(addr).await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !ready {
        println!("  --peer mitmproxy: mitmdump did not start within 30 s");
        let _ = child.kill();
        return;
    }
    let mitm_ca = std::fs::read(&ca_path).unwrap();
    let mitm = Route {
        proxy: Some(addr),
        upstream,
        tls: testkit::client_config(&mitm_ca, &[b"h2", b"http/1.1"]),
        tls_h1: testkit::client_config(&mitm_ca, &[b"http/1.1"]),
    };
    let pid = child.id();
    let rss = || {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    println!("  --- peer: mitmproxy ({bin}), same upstream, same client ---");
    for c in [1usize, 10] {
        let d = keep_alive(direct, Proto::H1, c, "/hello", phase).await;
        let a = keep_alive(authlens, Proto::H1, c, "/hello", phase).await;
        let m = keep_alive(&mitm, Proto::H1, c, "/hello", phase).await;
        report.pair(
            &format!("mitmproxy keep-alive 100 B H1 c={c} req/s"),
            "req/s",
            d.rps(),
            m.rps(),
        );
        report.pair(
            &format!("authlens / mitmproxy keep-alive c={c}"),
            "req/s",
            m.rps(),
            a.rps(),
        );
    }
    let mib = format!("/bytes?n={}&seed=3", 1024 * 1024);
    let d = keep_alive(direct, Proto::H1, 1, &mib, phase).await;
    let a = keep_alive(authlens, Proto::H1, 1, &mib, phase).await;
    let m = keep_alive(&mitm, Proto::H1, 1, &mib, phase).await;
    report.pair("mitmproxy 1 MiB responses c=1", "MB/s", d.mbps(), m.mbps());
    report.pair("authlens / mitmproxy 1 MiB c=1", "MB/s", m.mbps(), a.mbps());
    report.single("mitmproxy peak RSS", "MiB", rss());
    let _ = child.kill();
    let _ = child.wait();
}

/// Outputs under load: distinct `/authorize` requests from 16 clients, as
/// fast as this machine goes, through a proxy writing `--har` and `--json`;
/// then SIGTERM. Every request must come out as one analysed leg and one
/// HAR entry.
async fn outputs_under_load(binary: &str, phase: Duration, report: &mut Report) {
    const CLIENTS: usize = 16;
    let ca = testkit::TestCa::new();
    let upstream = TestUpstream::start_with(
        &ca,
        Tls::None,
        Arc::new(|_| http::Response::new(Bytes::from_static(b"ok"))),
    )
    .await;
    let work = tempfile::tempdir().unwrap();
    let har = work.path().join("load.har");
    let json = work.path().join("load.jsonl");
    let mut proxy = Binary::start(
        testkit::binary::command(binary, &work.path().join("certs"))
            .arg("--har")
            .arg(&har)
            .arg("--json")
            .arg(&json)
            .env("RUST_LOG", "authlens=warn")
            .stdout(Stdio::null()),
    );
    let addr = proxy.addr.clone();
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{addr}")).unwrap())
        .build()
        .unwrap();
    let port = upstream.addr.port();
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for c in 0..CLIENTS {
        let (client, sent) = (client.clone(), sent.clone());
        workers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < phase {
                let url = format!(
                    "http://127.0.0.1:{port}/authorize?response_type=code&client_id=bench&state=c{c}n{n}"
                );
                if let Ok(resp) = client.get(url).send().await {
                    let _ = resp.bytes().await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = start.elapsed();
    let sent = sent.load(Ordering::Relaxed);
    let stopping = Instant::now();
    proxy.terminate();
    proxy.wait().await;
    let stop_took = stopping.elapsed();
    let stderr = proxy.rest_of_stderr();
    let analysed = std::fs::read_to_string(&json)
        .map(|t| testkit::outputs::events_of_type(&t, "authorize"))
        .unwrap_or(0);
    let entries = testkit::outputs::har_entry_count(&har).unwrap_or(0);
    report.single(
        "outputs under load: requests/s (distinct /authorize, c=16)",
        "req/s",
        sent as f64 / elapsed.as_secs_f64(),
    );
    report.single("outputs under load: requests answered", "", sent as f64);
    report.single("outputs under load: legs analysed", "", analysed as f64);
    report.single("outputs under load: HAR entries", "", entries as f64);
    report.single(
        "outputs under load: SIGTERM until exit",
        "ms",
        stop_took.as_secs_f64() * 1000.0,
    );
    if let Some(summary) = stderr.iter().find(|l| l.contains("sign-in attempt(s)")) {
        println!("    {summary}");
    }
}

// === HAR recorder ===

/// `--only har`: entries/s of the `--har` recorder (redaction on, as without
/// `--show-secrets`) once it knows 0, 1,000 and 10,000 secrets, in this
/// process, on in-memory exchanges written to a temporary file.
///
/// The secrets are learnt first from token exchanges (a code, a client
/// secret, a verifier, an access and a refresh token each). The measured
/// stream is then what a browser sends through the proxy while signed in:
/// nine page loads (HTML, scripts, JSON from an API, 2-12 KB, cookies and
/// a bearer token that are known secrets, some quoting one in the body) for
/// every token exchange that brings new secrets.
fn har_recorder_rates(report: &mut Report, quick: bool) {
    use authlens::exchange::{
        CapturedBody, ConnectionInfo, Exchange, RequestRecord, ResponseRecord, Timings,
    };
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};

    fn headers(pairs: &[(&str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }
    fn exchange(
        id: u64,
        method: Method,
        uri: &str,
        req: HeaderMap,
        req_body: String,
        resp: HeaderMap,
        resp_body: String,
    ) -> Exchange {
        Exchange {
            id,
            connection: Arc::new(ConnectionInfo {
                id: id / 8,
                ..ConnectionInfo::default()
            }),
            started_at: time::OffsetDateTime::now_utc(),
            request: RequestRecord {
                method,
                uri: uri.parse().unwrap(),
                version: Version::HTTP_11,
                headers: req,
                body: CapturedBody::complete(req_body),
            },
            response: Some(ResponseRecord {
                status: StatusCode::OK,
                version: Version::HTTP_11,
                headers: resp,
                body: CapturedBody::complete(resp_body),
                synthetic: false,
            }),
            error: None,
            timings: Timings {
                request_done: Some(Duration::from_micros(300)),
                response_head: Some(Duration::from_millis(20)),
                response_done: Some(Duration::from_millis(25)),
            },
            intervention: None,
        }
    }
    // A distinct secret-looking value (base64url alphabet, 43 characters).
    let secret = |kind: &str, n: u64| {
        let hex = testkit::hex(&testkit::pattern_bytes(n, 16));
        format!("{kind}-{n}-{hex}")
    };
    // A token exchange: five new secrets.
    let token = |n: u64| {
        let form = format!(
            "grant_type=authorization_code&code={}&redirect_uri=https%3A%2F%2Fapp.bench.test%2Fcb&client_id=11111111-1111-4111-8111-111111111111&client_secret={}&code_verifier={}",
            secret("code", n),
            secret("cs", n),
            secret("ver", n),
        );
        let body = json!({
            "token_type": "Bearer", "expires_in": 3599, "scope": "openid profile",
            "access_token": secret("at", n), "refresh_token": secret("rt", n),
        })
        .to_string();
        exchange(
            n,
            Method::POST,
            "https://login.bench.test/t/oauth2/v2.0/token",
            headers(&[
                ("content-type", "application/x-www-form-urlencoded".into()),
                ("user-agent", "bench/1.0".into()),
            ]),
            form,
            headers(&[
                ("content-type", "application/json; charset=utf-8".into()),
                ("cache-control", "no-store".into()),
            ]),
            body,
        )
    };
    // A page load with known secrets in its cookie, bearer token and body.
    let page = |n: u64, known: u64| {
        // Known secrets, or (none known yet) the same session throughout.
        let pick = |k: u64| if known == 0 { 0 } else { k % known };
        let filler: String = (0..(2 + n % 10))
            .map(|i| format!("<div class=\"row\">item {i} of page {n}: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.</div>\n"))
            .collect::<String>()
            .repeat(6);
        let (ct, body) = match n % 3 {
            0 => (
                "text/html; charset=utf-8",
                format!(
                    "<html><body>{filler}<script>window.t=\"{}\"</script></body></html>",
                    secret("at", pick(n))
                ),
            ),
            1 => (
                "application/javascript",
                format!("/* app.js */ const rows = {:?};", filler),
            ),
            _ => (
                "application/json",
                json!({"items": [filler], "next": format!("/api/items?page={}", n + 1)})
                    .to_string(),
            ),
        };
        exchange(
            n,
            Method::GET,
            &format!("https://app.bench.test/assets/page-{n}.js?v=3&lang=en"),
            headers(&[
                ("accept", "*/*".into()),
                (
                    "user-agent",
                    "Mozilla/5.0 (X11; Linux x86_64) bench/1.0".into(),
                ),
                ("referer", "https://app.bench.test/home".into()),
                (
                    "authorization",
                    format!("Bearer {}", secret("at", pick(n + 1))),
                ),
                (
                    "cookie",
                    format!("session={}; theme=dark", secret("rt", pick(n + 2))),
                ),
            ]),
            String::new(),
            headers(&[
                ("content-type", ct.into()),
                ("cache-control", "max-age=600".into()),
                ("etag", format!("\"{n:x}\"")),
            ]),
            body,
        )
    };

    let dir = tempfile::tempdir().unwrap();
    let measured: u64 = if quick { 2_000 } else { 10_000 };
    println!("  --- HAR recorder (--har, secrets redacted), {measured} entries per figure ---");
    for known in [0u64, 1_000, 10_000] {
        let path = dir.path().join(format!("bench-{known}.har"));
        let mut recorder = authlens::har::HarRecorder::create(
            &path,
            &authlens::output::file::Files::default(),
            authlens::output::notice::Notices::default(),
            false,
        )
        .unwrap();
        // Five secrets per token exchange.
        let learn_start = Instant::now();
        for n in 0..known / 5 {
            recorder.record(&token(n));
        }
        if known > 0 {
            report.single(
                &format!("HAR learning {known} secrets (token entries/s)"),
                "entries/s",
                (known / 5) as f64 / learn_start.elapsed().as_secs_f64(),
            );
        }
        let start = Instant::now();
        for i in 0..measured {
            let n = known / 5 + i;
            let entry = if i % 10 == 9 {
                token(n)
            } else {
                page(n, known / 5)
            };
            recorder.record(&entry);
        }
        let rate = measured as f64 / start.elapsed().as_secs_f64();
        let written = recorder.finish().unwrap();
        assert_eq!(written as u64, known / 5 + measured);
        report.single(
            &format!("HAR entries/s with {known} known secrets"),
            "entries/s",
            rate,
        );
    }
}

// === memory ===

/// A fresh authlens in a directory of its own (kept while it runs), and
/// the route through it.
fn fresh_authlens(
    binary: &std::path::Path,
    ca: &testkit::TestCa,
    upstream: SocketAddr,
    idp: SocketAddr,
) -> (tempfile::TempDir, ProxyProcess, Route) {
    let work = tempfile::tempdir().unwrap();
    let proxy = ProxyProcess::start(
        binary.to_str().unwrap(),
        &work.path().join("certs"),
        upstream,
        idp,
        &ca.pem_path,
        &work.path().join("findings.jsonl"),
        None,
    );
    let authlens_ca = std::fs::read(work.path().join("certs/authlens-ca.pem")).unwrap();
    let route = Route {
        proxy: Some(proxy.addr),
        upstream,
        tls: testkit::client_config(&authlens_ca, &[b"h2", b"http/1.1"]),
        tls_h1: testkit::client_config(&authlens_ca, &[b"http/1.1"]),
    };
    (work, proxy, route)
}

/// Memory after load, on a fresh proxy process (so earlier phases do not
/// count): idle RSS, RSS and peak with `tunnels` intercepted tunnels open
/// (each has made one request and a 64 KiB download), then RSS 1, 5, 10 and
/// 20 s after they all close. Memory should come back close to idle within
/// seconds; the allocator decides most of that (docs/performance.md).
async fn memory_after_load(
    binary: &std::path::Path,
    ca: &testkit::TestCa,
    upstream: SocketAddr,
    idp: SocketAddr,
    tunnels: usize,
    report: &mut Report,
) {
    let (_work, proxy, route) = fresh_authlens(binary, ca, upstream, idp);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = proxy.rss_mib();
    report.single("memory: RSS idle (fresh proxy)", "MiB", idle);
    proxy.reset_peak();

    // Opened 50 at a time, half over HTTP/2.
    let mut held = Vec::with_capacity(tunnels);
    let chunk = 50;
    for batch in 0..tunnels.div_ceil(chunk) {
        let mut opening = Vec::new();
        for i in batch * chunk..((batch + 1) * chunk).min(tunnels) {
            let route = route.clone();
            opening.push(tokio::spawn(async move {
                let proto = if i % 2 == 0 { Proto::H1 } else { Proto::H2 };
                let mut sender = open(&route, "bench.test", proto).await;
                fetch(&mut sender, get("bench.test", "/hello", proto)).await;
                let path = format!("/bytes?n={}&seed=5", 64 * 1024);
                fetch(&mut sender, get("bench.test", &path, proto)).await;
                sender
            }));
        }
        for task in opening {
            held.push(task.await.unwrap());
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    report.single(
        &format!("memory: RSS with {tunnels} tunnels open"),
        "MiB",
        proxy.rss_mib(),
    );
    report.single(
        &format!("memory: peak RSS with {tunnels} tunnels"),
        "MiB",
        proxy.peak_mib(),
    );
    drop(held);
    let closed = Instant::now();
    for after in [1u64, 5, 10, 20] {
        let at = Duration::from_secs(after);
        tokio::time::sleep(at.saturating_sub(closed.elapsed())).await;
        let rss = proxy.rss_mib();
        report.single(
            &format!("memory: RSS {after} s after the {tunnels} tunnels close"),
            "MiB",
            rss,
        );
        if after == 10 {
            report.single("memory: above idle 10 s after the load", "MiB", rss - idle);
        }
    }
}

// === --peer hudsucker ===

/// CPU time (user + system) a process used so far, from /proc.
fn proc_cpu(pid: u32) -> Duration {
    let (user, system) = proc_cpu_split(pid);
    user + system
}

/// CPU time a process used so far in user space and in the kernel, from
/// /proc (clock ticks of 10 ms; the kernel splits its exact total by where
/// its timer ticks landed, so the split is a sample: take it over seconds).
fn proc_cpu_split(pid: u32) -> (Duration, Duration) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| -> u64 { fields.get(i).and_then(|v| v.parse().ok()).unwrap_or(0) };
    (
        Duration::from_millis(ticks(11) * 10),
        Duration::from_millis(ticks(12) * 10),
    )
}

/// A field of /proc/PID/status in MiB (VmRSS:, VmHWM:).
fn proc_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// MiB of a process's own executable code resident (its `r-xp` mappings in
/// /proc/PID/smaps). At idle this shows whether `layout/hot-text.txt` still
/// fits the binary: a stale list scatters the hot functions again and this
/// grows by a few MiB (see docs/performance.md).
fn code_mib(pid: u32) -> f64 {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe.to_string_lossy();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let mut own_code = false;
    let mut kib = 0.0;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping's header: range, perms, offset, dev, inode, path.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            own_code = perms.contains('x') && !exe.is_empty() && path == exe;
        } else if own_code && first == "Rss:" {
            kib += fields
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
        }
    }
    kib / 1024.0
}

/// A running no-op hudsucker proxy (bench/hudsucker-peer); killed on drop.
struct HudsuckerPeer {
    child: std::process::Child,
    pid: u32,
    route: Route,
    _work: tempfile::TempDir,
}

impl Drop for HudsuckerPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Builds bench/hudsucker-peer (with `--features h2` when `h2`) into
/// `target/hudsucker-peer` and returns a copy of the binary named for the
/// build, or why it could not be built.
fn build_hudsucker(h2: bool) -> Result<std::path::PathBuf, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("hudsucker-peer");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("bench/hudsucker-peer/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target);
    if h2 {
        build.args(["--features", "h2"]);
    }
    match build.status() {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(format!("cargo build of bench/hudsucker-peer failed ({s})")),
        Err(e) => return Err(format!("cannot run cargo: {e}")),
    }
    let named = target.join(if h2 {
        "hudsucker-peer-h2"
    } else {
        "hudsucker-peer-h1"
    });
    std::fs::copy(target.join("release/hudsucker-peer"), &named)
        .map_err(|e| format!("cannot copy the built peer: {e}"))?;
    Ok(named)
}

/// Starts a built peer in front of `upstream` and waits for its address.
fn start_hudsucker(
    bin: &std::path::Path,
    ca: &testkit::TestCa,
    upstream: SocketAddr,
) -> Result<HudsuckerPeer, String> {
    use std::io::BufRead;
    let work = tempfile::tempdir().unwrap();
    let ca_out = work.path().join("hudsucker-ca.pem");
    let mut child = Command::new(bin)
        .arg(upstream.to_string())
        .arg(&ca.pem_path)
        .arg(&ca_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.take().unwrap();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("reading the peer's address: {e}"))?;
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("the peer said {line:?}, not its address"))?;
    let peer_ca = std::fs::read(&ca_out).map_err(|e| format!("reading the peer's CA: {e}"))?;
    Ok(HudsuckerPeer {
        pid: child.id(),
        child,
        route: Route {
            proxy: Some(addr),
            upstream,
            tls: testkit::client_config(&peer_ca, &[b"h2", b"http/1.1"]),
            tls_h1: testkit::client_config(&peer_ca, &[b"http/1.1"]),
        },
        _work: work,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// `--peer hudsucker`: the keep-alive, latency, 1 MiB and HTTP/2 phases
/// through direct, a fresh authlens and a no-op hudsucker (its HTTP/2 build
/// for the HTTP/2 rows), interleaved: in every round each scenario runs on
/// the three routes back to back, the order rotating from round to round.
/// Prints each round and the medians over rounds of the per-round ratios.
#[allow(clippy::too_many_arguments)]
async fn compare_with_hudsucker(
    perf: bool,
    rows: Option<Vec<String>>,
    binary: &std::path::Path,
    direct: &Route,
    ca: &testkit::TestCa,
    upstream: SocketAddr,
    idp: SocketAddr,
    phase: Duration,
    rounds: usize,
    report: &mut Report,
) {
    let built = build_hudsucker(false).and_then(|h1| Ok((h1, build_hudsucker(true)?)));
    let (h1_bin, h2_bin) = match built {
        Ok(bins) => bins,
        Err(why) => {
            println!(
                "  --peer hudsucker: cannot build bench/hudsucker-peer ({why}); it needs crates.io \
                 (or a filled cargo cache) and a C compiler"
            );
            return;
        }
    };
    let peers = start_hudsucker(&h1_bin, ca, upstream)
        .and_then(|h1| Ok((h1, start_hudsucker(&h2_bin, ca, upstream)?)));
    let (hs, hs2) = match peers {
        Ok(p) => p,
        Err(why) => {
            println!("  --peer hudsucker: {why}");
            return;
        }
    };
    let (_work, authlens, al) = fresh_authlens(binary, ca, upstream, idp);
    // One first request each, then idle.
    for route in [&al, &hs.route, &hs2.route] {
        let mut s = open(route, "bench.test", Proto::H1).await;
        fetch(&mut s, get("bench.test", "/hello", Proto::H1)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = (
        proc_mib(authlens.pid, "VmRSS:"),
        proc_mib(hs.pid, "VmRSS:"),
        proc_mib(hs2.pid, "VmRSS:"),
    );
    let idle_code = code_mib(authlens.pid);
    if idle_code == 0.0 {
        println!(
            "  (authlens's code resident could not be read: its binary was replaced or its path is unusual)"
        );
    }
    println!(
        "  --- peer: hudsucker 0.25 no-op + TCP_NODELAY (pid {} / h2 build {}), authlens pid {}, {rounds} rounds ---",
        hs.pid, hs2.pid, authlens.pid
    );

    let mib = format!("/bytes?n={}&seed=3", 1024 * 1024);
    // (name, protocol, concurrency, path, unit)
    let scenarios: [(&str, Proto, usize, &str, &str); 7] = [
        ("keep-alive 100 B H1 c=1", Proto::H1, 1, "/hello", "req/s"),
        ("keep-alive 100 B H1 c=10", Proto::H1, 10, "/hello", "req/s"),
        ("keep-alive 100 B H1 c=50", Proto::H1, 50, "/hello", "req/s"),
        ("1 MiB H1 c=1", Proto::H1, 1, &mib, "MB/s"),
        ("1 MiB H1 c=10", Proto::H1, 10, &mib, "MB/s"),
        ("keep-alive 100 B H2 c=10", Proto::H2, 10, "/hello", "req/s"),
        ("1 MiB H2 c=1", Proto::H2, 1, &mib, "MB/s"),
    ];
    // Per scenario and figure, one value per round.
    let mut figures: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut push = |k: String, v: f64| figures.entry(k).or_default().push(v);
    for round in 0..rounds {
        println!("  round {}", round + 1);
        for (name, proto, c, path, unit) in &scenarios {
            if !rows
                .as_ref()
                .is_none_or(|r| r.iter().any(|r| name.contains(r.as_str())))
            {
                continue;
            }
            let peer = if *proto == Proto::H2 { &hs2 } else { &hs };
            // (route, pid) in the order of this round.
            let mut legs: Vec<(&str, &Route, Option<u32>)> = vec![
                ("direct", direct, None),
                ("authlens", &al, Some(authlens.pid)),
                ("hudsucker", &peer.route, Some(peer.pid)),
            ];
            legs.rotate_left(round % 3);
            let mut got: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
            // (user, kernel) CPU per request, µs.
            let mut split: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
            for (who, route, pid) in legs {
                let cpu0 = pid.map(proc_cpu_split);
                let counting = match pid {
                    Some(pid) if perf => PerfStat::start(pid),
                    _ => None,
                };
                let load = keep_alive(route, *proto, *c, path, phase).await;
                if let Some(counting) = counting {
                    // The warm-up requests (one per connection) count too.
                    let requests = load.requests + *c as u64;
                    for (event, per) in counting.per_request(requests) {
                        println!("      {who:<9} {name:<26} {event:<32} {per:>9.2} per request");
                        push(format!("{name} {who} {event} per request"), per);
                    }
                }
                let cpu = match (pid, cpu0) {
                    (Some(pid), Some((user0, system0))) => {
                        // Zero, not a panic, if the proxy is gone.
                        let (user, system) = proc_cpu_split(pid);
                        let (user, system) =
                            (user.saturating_sub(user0), system.saturating_sub(system0));
                        let per = |d: Duration| d.as_secs_f64() * 1e6 / load.requests.max(1) as f64;
                        split.insert(who, (per(user), per(system)));
                        per(user + system)
                    }
                    _ => 0.0,
                };
                let rate = if *unit == "MB/s" {
                    load.mbps()
                } else {
                    load.rps()
                };
                got.insert(who, (rate, cpu, load.percentile(0.5)));
            }
            let (d, a, h) = (got["direct"], got["authlens"], got["hudsucker"]);
            println!(
                "    {name:<26} direct {:>9.1}  authlens {:>9.1} ({:>3.0}%, {:>6.0} µs CPU)  hudsucker {:>9.1} ({:>3.0}%, {:>6.0} µs CPU)  authlens/hudsucker {:.2} {unit}",
                d.0,
                a.0,
                a.0 / d.0 * 100.0,
                a.1,
                h.0,
                h.0 / d.0 * 100.0,
                h.1,
                a.0 / h.0
            );
            push(format!("{name} authlens share of direct"), a.0 / d.0);
            push(format!("{name} hudsucker share of direct"), h.0 / d.0);
            push(format!("{name} authlens / hudsucker"), a.0 / h.0);
            push(format!("{name} authlens CPU per request µs"), a.1);
            push(format!("{name} hudsucker CPU per request µs"), h.1);
            push(format!("{name} authlens / hudsucker CPU"), a.1 / h.1);
            // Where the CPU went: the kernel's part (the loopback TCP path,
            // the same work for any proxy) apart from the proxy's own.
            let (au, ak) = split["authlens"];
            let (hu, hk) = split["hudsucker"];
            println!(
                "      user / kernel µs per request: authlens {au:.1} / {ak:.1}, hudsucker {hu:.1} / {hk:.1}"
            );
            push(format!("{name} authlens user CPU per request µs"), au);
            push(format!("{name} authlens kernel CPU per request µs"), ak);
            push(format!("{name} hudsucker user CPU per request µs"), hu);
            push(format!("{name} hudsucker kernel CPU per request µs"), hk);
            // (A load too short for a clock tick has no split to compare.)
            if hu > 0.0 && hk > 0.0 {
                push(format!("{name} authlens / hudsucker user CPU"), au / hu);
                push(format!("{name} authlens / hudsucker kernel CPU"), ak / hk);
            }
            if *c == 1 && *path == "/hello" {
                push(format!("{name} authlens added p50 ms"), a.2 - d.2);
                push(format!("{name} hudsucker added p50 ms"), h.2 - d.2);
            }
        }
    }
    println!("  medians over {rounds} rounds:");
    for (name, values) in figures {
        report.single(
            &format!("hudsucker peer: {name} (median)"),
            "",
            median(values),
        );
    }
    report.single("hudsucker peer: authlens idle RSS", "MiB", idle.0);
    report.single(
        "hudsucker peer: authlens code resident at idle (over ~3 MiB: remake layout/hot-text.txt)",
        "MiB",
        idle_code,
    );
    report.single("hudsucker peer: hudsucker idle RSS", "MiB", idle.1);
    report.single(
        "hudsucker peer: hudsucker (h2 build) idle RSS",
        "MiB",
        idle.2,
    );
    report.single(
        "hudsucker peer: authlens peak RSS",
        "MiB",
        proc_mib(authlens.pid, "VmHWM:"),
    );
    report.single(
        "hudsucker peer: hudsucker peak RSS",
        "MiB",
        proc_mib(hs.pid, "VmHWM:"),
    );
    report.single(
        "hudsucker peer: hudsucker (h2 build) peak RSS",
        "MiB",
        proc_mib(hs2.pid, "VmHWM:"),
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    report.single(
        "hudsucker peer: authlens RSS 2 s after",
        "MiB",
        proc_mib(authlens.pid, "VmRSS:"),
    );
    report.single(
        "hudsucker peer: hudsucker RSS 2 s after",
        "MiB",
        proc_mib(hs.pid, "VmRSS:"),
    );
}

/// The system calls `--perf-stat` counts one by one (`brk` and `mremap`
/// for glibc's allocator, which the hudsucker peer uses).
const PER_CALL: [&str; 14] = [
    "read",
    "recvfrom",
    "write",
    "writev",
    "sendto",
    "epoll_wait",
    "futex",
    "sched_yield",
    "madvise",
    "mmap",
    "munmap",
    "mprotect",
    "brk",
    "mremap",
];

/// Where the kernel's tracing files are (tracefs, or under debugfs).
const TRACING_ROOTS: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// `perf stat` attached to a proxy for one load (`--perf-stat`): syscalls,
/// context switches, CPU time, and every `probe_*` uprobe defined on the
/// machine (the allocator's entry points, set up as docs/performance.md
/// says), which this bench adds up as allocations. Counting costs the
/// proxy kernel time (every traced call), so take the user and kernel
/// split from runs without it.
struct PerfStat {
    child: std::process::Child,
    out: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl PerfStat {
    fn start(pid: u32) -> Option<PerfStat> {
        let dir = tempfile::tempdir().ok()?;
        let out = dir.path().join("perf.csv");
        let mut events = String::from("raw_syscalls:sys_enter,context-switches,task-clock");
        // The calls a proxy makes per request, one by one: those the
        // kernel has a tracepoint for (`perf` refuses an unknown event).
        for call in PER_CALL {
            let known = TRACING_ROOTS.iter().any(|root| {
                std::path::Path::new(&format!("{root}/events/syscalls/sys_enter_{call}")).exists()
            });
            if known {
                events.push_str(",syscalls:sys_enter_");
                events.push_str(call);
            }
        }
        let probes = TRACING_ROOTS
            .iter()
            .find_map(|root| std::fs::read_to_string(format!("{root}/uprobe_events")).ok())
            .unwrap_or_default();
        for line in probes.lines() {
            // "p:probe_libc/malloc /usr/lib/...:0x..."
            if let Some(name) = line
                .split_whitespace()
                .next()
                .and_then(|p| p.strip_prefix("p:"))
            {
                events.push(',');
                events.push_str(&name.replacen('/', ":", 1));
            }
        }
        let child = Command::new("perf")
            .args(["stat", "-x,", "-o"])
            .arg(&out)
            .args(["-e", &events, "-p", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| println!("  --perf-stat: cannot run perf: {e}"))
            .ok()?;
        // perf needs a moment to attach.
        std::thread::sleep(Duration::from_millis(200));
        Some(PerfStat {
            child,
            out,
            _dir: dir,
        })
    }

    /// Stops counting; each event's count divided by `requests` (the
    /// uprobes added up as "allocations", task-clock in µs).
    fn per_request(mut self, requests: u64) -> Vec<(String, f64)> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let mut rows = Vec::new();
        let mut allocations = 0.0;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let fields: Vec<&str> = line.split(',').collect();
            let (Some(count), Some(event)) = (fields.first(), fields.get(2)) else {
                continue;
            };
            let Ok(count) = count.parse::<f64>() else {
                continue;
            };
            let per = count / requests.max(1) as f64;
            match *event {
                "task-clock" => rows.push(("CPU µs (task-clock)".to_string(), per * 1000.0)),
                e if e.starts_with("probe_") => allocations += per,
                e => rows.push((e.to_string(), per)),
            }
        }
        if text.contains("probe_") {
            rows.push(("allocations (uprobes)".to_string(), allocations));
        }
        rows
    }
}
