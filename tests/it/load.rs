//! Under load, no sign-in leg is lost: every one reaches the analysis and
//! every output, even while an output stalls, and the run ends with its
//! one-line summary.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use testkit::upstream::{TestUpstream, Tls};

/// More legs than any buffer between the proxy and an outlet holds, so a
/// design that skips what a stalled outlet cannot take loses some.
const LEGS: usize = 6_000;
const CLIENTS: usize = 16;

fn state(n: usize) -> String {
    format!("ld{n:05}z")
}

/// The real binary with `--json` to a file and its live log on a pipe.
fn start_proxy(json_path: &std::path::Path, certs: &std::path::Path) -> (Child, String, Lines) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(["--listen", "127.0.0.1:0", "--no-color", "--certs"])
        .arg(certs)
        .arg("--json")
        .arg(json_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    for line in stderr.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("authlens listening on http://") {
            addr = Some(rest.trim().to_string());
        }
        if line.contains("export HTTPS_PROXY") {
            break;
        }
    }
    (child, addr.expect("a listening line"), stderr)
}

type Lines = std::io::Lines<BufReader<std::process::ChildStderr>>;

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

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authorize_reaches_every_output_while_the_live_log_stalls() {
    let work = tempfile::tempdir().unwrap();
    let json_path = work.path().join("load.jsonl");
    let (mut child, addr, stderr) = start_proxy(&json_path, &work.path().join("certs"));
    let rest_of_stderr =
        std::thread::spawn(move || stderr.map_while(Result::ok).collect::<Vec<_>>().join("\n"));

    // Nobody reads the live log (stdout) until the traffic is over: it
    // stalls once the pipe is full, as a terminal that is scrolled back or
    // suspended does.
    authorize_burst(&addr, LEGS).await;
    terminate(&child);
    let mut live_log = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut live_log)
        .unwrap();
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let stderr = rest_of_stderr.join().unwrap();

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
    let authorize = json
        .lines()
        .filter(|l| l.contains("\"type\":\"authorize\""))
        .count();
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
    let (mut child, addr, mut stderr) = start_proxy(&json_path, &work.path().join("certs"));
    // Enough legs to fill the live log's pipe, which nobody reads: the first
    // SIGTERM then waits for it.
    authorize_burst(&addr, 3_000).await;
    terminate(&child);
    let stopping = stderr
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("Ctrl-C again to stop at once"));
    assert!(stopping.is_some(), "no stopping line");
    terminate(&child);
    let exit = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert_eq!(exit.code(), Some(130), "{exit:?}");
    let rest: Vec<_> = stderr.map_while(Result::ok).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("stopped at once on a second signal")),
        "{rest:?}"
    );
}
