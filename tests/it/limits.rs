//! Resource limits: the binary under a low open-files limit (run as a child
//! process, so no sibling test shares its descriptors), and bodies that
//! trickle or stall on either side.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use authlens::exchange::FailureSide;
use testkit::binary::Binary;
use testkit::upstream::{TestUpstream, Tls};
use testkit::{Http, ProxyOptions, TestCa, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `authlens` binary as a child process (so no sibling test shares its
/// descriptors), started through `sh` with `ulimit` applied first; its
/// stderr and address are the [`Binary`]'s.
pub(super) struct BinaryProxy {
    binary: Binary,
    work: tempfile::TempDir,
}

impl std::ops::Deref for BinaryProxy {
    type Target = Binary;
    fn deref(&self) -> &Binary {
        &self.binary
    }
}

impl std::ops::DerefMut for BinaryProxy {
    fn deref_mut(&mut self) -> &mut Binary {
        &mut self.binary
    }
}

impl BinaryProxy {
    /// `limit` is the arguments of `ulimit`.
    fn start(limit: &str) -> BinaryProxy {
        BinaryProxy::start_with(limit, &[])
    }

    /// With `args` added to the command line.
    pub(super) fn start_with(limit: &str, args: &[&std::ffi::OsStr]) -> BinaryProxy {
        let work = tempfile::tempdir().unwrap();
        let binary = Binary::start(
            Command::new("sh")
                .arg("-c")
                .arg(format!("ulimit {limit} && exec \"$0\" \"$@\""))
                .arg(env!("CARGO_BIN_EXE_authlens"))
                .args(["--listen", "127.0.0.1:0", "--no-color", "--certs"])
                .arg(work.path().join("certs"))
                .args(args)
                .stdout(Stdio::null()),
        );
        BinaryProxy { binary, work }
    }

    /// The proxy's CA certificate (PEM).
    pub(super) fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.work.path().join("certs/authlens-ca.pem")).unwrap()
    }

    /// How many file descriptors the running binary holds.
    pub(super) fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.id()))
            .unwrap()
            .count()
    }

    /// The soft and hard open-files limits of the running binary.
    fn open_files_limits(&self) -> (String, String) {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.id())).unwrap();
        let line = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap();
        let mut fields = line["Max open files".len()..].split_whitespace();
        (
            fields.next().unwrap().to_string(),
            fields.next().unwrap().to_string(),
        )
    }
}

/// Asks the proxy for its own identity route on a fresh connection.
async fn identity(addr: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /authlens/identity HTTP/1.1\r\nHost: authlens\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut out))
        .await
        .expect("the proxy answers")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_raises_its_soft_open_files_limit_to_the_hard_one() {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .map_or("unlimited".to_string(), |m| m.to_string());
    if hard == "unlimited" || hard.parse::<u64>().is_ok_and(|h| h <= 64) {
        testkit::skip::skip(
            "raising the open-files limit",
            "the hard limit is unlimited or at most 64 here: nothing to raise",
            testkit::skip::InCi::Optional,
        );
        return;
    }
    let proxy = BinaryProxy::start("-S -n 64");
    let (soft, hard_seen) = proxy.open_files_limits();
    assert_eq!(hard_seen, hard);
    assert_eq!(soft, hard, "the soft limit is raised to the hard one");
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_proxy_says_so_once_and_serves_again_when_they_free_up() {
    // Soft and hard limit 64: nothing to raise, so accept runs out.
    let mut proxy = BinaryProxy::start("-n 64");
    assert!(identity(&proxy.addr).await.contains("200 OK"));

    // Far more connections than descriptors: the rest wait in the backlog.
    let mut held = Vec::new();
    for _ in 0..120 {
        held.push(TcpStream::connect(&proxy.addr).await.unwrap());
    }
    proxy.wait_for("cannot accept new connections");
    // Stay out of descriptors long enough for several retries (the pause
    // doubles from 0.1 s), so "once" means something.
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(held);
    let recovered = proxy.wait_for("accepting connections again");
    let attempts: u64 = recovered
        .split("after ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {recovered:?}"));
    assert!(attempts >= 2, "{recovered}");

    let answer = identity(&proxy.addr).await;
    assert!(answer.contains("200 OK"), "{answer}");
    let warnings: Vec<_> = proxy.seen.iter().filter(|l| l.contains("accept")).collect();
    assert_eq!(
        warnings.len(),
        2,
        "one warning and one summary: {warnings:#?}"
    );
    assert!(
        warnings[0].contains("out of file descriptors (limit 64"),
        "{warnings:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_trickles_gets_a_408_naming_the_client() {
    let ca = TestCa::new();
    let upstream = TestUpstream::start(&ca, Tls::None).await;
    let mut proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("idp.test".into(), 80, upstream.addr)],
            tweak: Some(|c| c.timeouts.client_body = Duration::from_secs(1)),
            ..Default::default()
        },
    )
    .await;
    // One byte of a promised hundred, then silence (the connection stays open).
    let mut tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    tcp.write_all(
        b"POST http://idp.test/sink HTTP/1.1\r\nHost: idp.test\r\nContent-Length: 100\r\n\r\nx",
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut out))
        .await
        .expect("the proxy answers and closes instead of waiting for the idle timer")
        .unwrap();
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("(client side)"), "{text}");
    assert!(text.contains("sent 1 bytes of its request body"), "{text}");
    assert!(text.contains("--client-body-timeout"), "{text}");
    assert!(
        elapsed >= Duration::from_secs(1),
        "cut before its limit: {elapsed:?}"
    );

    let exchange = proxy.exchange_for("/sink").await;
    let error = exchange.error.as_ref().unwrap();
    assert_eq!(error.side, FailureSide::Client, "{}", error.message);
    assert_eq!(exchange.response.as_ref().unwrap().status, 408);

    // A steady upload longer than the limit is not cut: 5 chunks 0.4 s apart.
    let chunks = futures_util::stream::unfold(0u8, |i| async move {
        if i == 5 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        Some((Ok::<_, std::io::Error>(vec![i; 2000]), i + 1))
    });
    let resp = proxy
        .client(Http::One)
        .post("http://idp.test/sink")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-body-size"], "10000");
    proxy.stop().await;
}
