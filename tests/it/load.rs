//! Under load, no sign-in leg is lost: every one reaches the analysis and
//! every output, even while an output stalls, and the run ends with its
//! one-line summary.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use testkit::binary::{self, Binary};
use testkit::outputs::events_of_type;
use testkit::upstream::{TestUpstream, Tls};

/// More legs than any buffer between the proxy and an outlet holds, so a
/// design that skips what a stalled outlet cannot take loses some.
const LEGS: usize = 6_000;
const CLIENTS: usize = 16;

fn state(n: usize) -> String {
    format!("ld{n:05}z")
}

/// The real binary with `--json` to a file and its live log on a pipe.
fn start_proxy(json_path: &Path, certs: &Path) -> Binary {
    let mut proxy = Binary::start(
        binary::command(env!("CARGO_BIN_EXE_authlens"), certs)
            .arg("--json")
            .arg(json_path)
            .stdout(Stdio::piped()),
    );
    proxy.wait_for("export HTTPS_PROXY");
    proxy
}

/// `legs` distinct authorization requests from [`CLIENTS`] clients at once,
/// through the proxy at `addr` to a plain upstream.
async fn authorize_burst(addr: &str, legs: usize) {
    let ca = testkit::TestCa::new();
    let upstream = TestUpstream::start_with(
        &ca,
        Tls::None,
        Arc::new(|_| Response::new(Bytes::from_static(b"ok"))),
    )
    .await;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{addr}")).unwrap())
        .build()
        .unwrap();
    let port = upstream.addr.port();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for n in (c..legs).step_by(CLIENTS) {
                let url = format!(
                    "http://127.0.0.1:{port}/authorize?response_type=code&client_id=load-app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&state={}",
                    state(n)
                );
                let resp = client.get(url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorize_reaches_every_output_while_the_live_log_stalls() {
    let work = tempfile::tempdir().unwrap();
    let json_path = work.path().join("load.jsonl");
    let mut proxy = start_proxy(&json_path, &work.path().join("certs"));

    // Nobody reads the live log (stdout) until the traffic is over: it
    // stalls once the pipe is full, as a terminal that is scrolled back or
    // suspended does.
    authorize_burst(&proxy.addr, LEGS).await;
    proxy.terminate();
    let mut live_log = String::new();
    proxy.take_stdout().read_to_string(&mut live_log).unwrap();
    let exit = proxy.wait().await;
    assert!(exit.success(), "{exit:?}");
    let stderr = proxy.rest_of_stderr().join("\n");

    let missing: Vec<_> = (0..LEGS)
        .map(state)
        .filter(|s| !live_log.contains(s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {LEGS} authorize legs missing from the live log, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let json = std::fs::read_to_string(&json_path).unwrap();
    let authorize = events_of_type(&json, "authorize");
    assert_eq!(authorize, LEGS, "authorize events in --json");
    assert!(
        stderr.contains(&format!("authlens: {LEGS} sign-in attempt(s)")),
        "the closing summary counts every attempt:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("wrote {}", json_path.display())),
        "{stderr}"
    );
    assert!(!stderr.contains("fell behind"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_stops_at_once_while_an_output_is_stalled() {
    let work = tempfile::tempdir().unwrap();
    let json_path = work.path().join("load.jsonl");
    let mut proxy = start_proxy(&json_path, &work.path().join("certs"));
    // Enough legs to fill the live log's pipe, which nobody reads: the first
    // SIGTERM then waits for it.
    authorize_burst(&proxy.addr, 3_000).await;
    proxy.terminate();
    proxy.wait_for("Ctrl-C again to stop at once");
    proxy.terminate();
    let exit = proxy.wait().await;
    assert_eq!(exit.code(), Some(130), "{exit:?}");
    let rest = proxy.rest_of_stderr();
    assert!(
        rest.iter()
            .any(|l| l.contains("stopped at once on a second signal")),
        "{rest:?}"
    );
}
