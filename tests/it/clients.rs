//! Real clients through the real proxy: `authlens run -- curl | python |
//! node | java` and `authlens browser` with headless Chromium, each against
//! the local test upstreams (an HTTPS `app.test` and a plain-HTTP loopback
//! server, the shape of a sign-in's `http://127.0.0.1:PORT/callback`).
//! Everything stays on loopback. A client that is not installed is skipped
//! with a loud `SKIPPED` line that a passing `cargo test` shows too
//! (`testkit::skip`); CI installs curl and chromium, so there their absence
//! fails.

use std::ffi::OsStr;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Response;
use testkit::skip::{InCi, skip};
use testkit::upstream::{Handler, TestUpstream, Tls};
use testkit::{ProxyOptions, TestCa, TestProxy};

const APP: &str = "app.test";
const HELLO: &str = "hello from upstream";
/// How long one client run may take on a slow shared machine.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(240);

/// An HTTPS upstream as `app.test`, a plain-HTTP loopback upstream, and the
/// proxy (in this process, CA in a temporary directory) routing `app.test`
/// to the first.
struct Rig {
    _ca: TestCa,
    _tls: TestUpstream,
    plain: TestUpstream,
    proxy: TestProxy,
}

impl Rig {
    async fn start() -> Rig {
        let ca = TestCa::new();
        let tls = TestUpstream::start(&ca, Tls::names(&[APP])).await;
        let plain = TestUpstream::start(&ca, Tls::None).await;
        Self::with(ca, tls, plain).await
    }

    async fn with(ca: TestCa, tls: TestUpstream, plain: TestUpstream) -> Rig {
        let proxy = TestProxy::start(
            &ca,
            ProxyOptions {
                routes: vec![
                    (APP.into(), 443, tls.addr),
                    ("127.0.0.1".into(), plain.addr.port(), plain.addr),
                ],
                trust_test_ca: true,
                // Anything else a client sends (Chromium's own background
                // requests) goes to a closed loopback port: nothing is
                // resolved or sent off this machine.
                tweak: Some(testkit::send_unrouted_hosts_nowhere),
                ..Default::default()
            },
        )
        .await;
        Rig {
            _ca: ca,
            _tls: tls,
            plain,
            proxy,
        }
    }

    fn tls_url(&self, via: &str) -> String {
        format!("https://{APP}/hello?via={via}")
    }

    fn loopback_url(&self, via: &str) -> String {
        format!(
            "http://127.0.0.1:{}/hello?via={via}",
            self.plain.addr.port()
        )
    }

    fn certs(&self) -> &Path {
        self.proxy.certs.as_ref().unwrap().path()
    }

    /// `authlens run --proxy ADDR --certs DIR -- program args…`, with an
    /// environment that would hide loopback from the proxy if authlens did
    /// not clean it.
    fn run(&self, program: impl AsRef<OsStr>, args: &[&str]) -> Command {
        let mut command = authlens();
        command
            .arg("run")
            .arg("--proxy")
            .arg(self.proxy.addr.to_string())
            .arg("--certs")
            .arg(self.certs())
            .arg("--")
            .arg(program)
            .args(args);
        command
    }

    /// Waits until the proxy has seen every URL in `urls` (in any order,
    /// other exchanges skipped) and returns their response statuses.
    /// The client ran cleanly, printed the upstream's answer once per URL,
    /// and the proxy saw every URL answered 200.
    async fn assert_fetched_through_proxy(&mut self, out: &Output, urls: &[String]) {
        assert!(out.status.success(), "{}", describe(out));
        assert_eq!(
            text(&out.stdout).matches(HELLO).count(),
            urls.len(),
            "{}",
            describe(out)
        );
        assert_eq!(self.saw(urls).await, vec![200; urls.len()]);
    }

    async fn saw(&mut self, urls: &[String]) -> Vec<u16> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut statuses = vec![None; urls.len()];
        let mut others = Vec::new();
        while statuses.iter().any(Option::is_none) {
            let exchange =
                match tokio::time::timeout_at(deadline, self.proxy.exchanges.recv()).await {
                    Ok(Ok(exchange)) => exchange,
                    _ => panic!(
                        "the proxy did not see {:?}; it saw {others:?}",
                        urls.iter()
                            .zip(&statuses)
                            .filter(|(_, s)| s.is_none())
                            .map(|(u, _)| u)
                            .collect::<Vec<_>>()
                    ),
                };
            let uri = exchange.request.uri.to_string();
            match urls.iter().position(|u| *u == uri) {
                Some(i) => {
                    statuses[i] = Some(exchange.response.as_ref().map_or(0, |r| r.status.as_u16()))
                }
                None => others.push(uri),
            }
        }
        statuses.into_iter().map(Option::unwrap).collect()
    }
}

fn authlens() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authlens"));
    // The outer environment must not decide the outcome: no proxy of its
    // own, and a NO_PROXY that would route loopback around authlens.
    for name in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NODE_OPTIONS",
        "JAVA_TOOL_OPTIONS",
    ] {
        command.env_remove(name);
    }
    command
        .env("NO_PROXY", "localhost,127.0.0.1,::1")
        .env("no_proxy", "localhost,127.0.0.1")
        .env("NO_COLOR", "1");
    command
}

/// Runs `command` to completion off the async runtime (the proxy under test
/// runs on it), killing it after [`CLIENT_TIMEOUT`].
async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("authlens starts");
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stdout.read_to_end(&mut buf);
            buf
        });
        let err = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = stderr.read_to_end(&mut buf);
            buf
        });
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > CLIENT_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "timed out after {CLIENT_TIMEOUT:?}; stderr:\n{}",
                    String::from_utf8_lossy(&err.join().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        }
    })
    .await
    .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `authlens browser`, starting its own proxy on a free loopback port with
/// its CA in `dir/certs`; the rest of the command line is the caller's.
fn browser_in(dir: &Path) -> Command {
    let mut command = authlens();
    command
        .args(["browser", "--listen", "127.0.0.1:0", "--certs"])
        .arg(dir.join("certs"));
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_goes_through_the_proxy_for_https_and_loopback() {
    if testkit::on_path("curl").is_none() {
        return skip("curl", "curl is not installed", InCi::Required);
    }
    let mut rig = Rig::start().await;
    let urls = [rig.tls_url("curl"), rig.loopback_url("curl")];
    let out = output(rig.run(
        "curl",
        &["-sS", "--fail", "--max-time", "120", &urls[0], &urls[1]],
    ))
    .await;
    rig.assert_fetched_through_proxy(&out, &urls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_exits_with_the_commands_status() {
    let rig = Rig::start().await;
    let out = output(rig.run("sh", &["-c", "exit 7"])).await;
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    let out = output(rig.run("sh", &["-c", "kill -TERM $$"])).await;
    assert_eq!(out.status.code(), Some(128 + 15), "{}", describe(&out));
    let out = output(rig.run("/nonexistent/authlens-no-such-program", &[])).await;
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("cannot run"),
        "{}",
        describe(&out)
    );

    // The environment the command sees.
    let out = output(rig.run(
        "sh",
        &[
            "-c",
            "echo \"$HTTPS_PROXY|$http_proxy|${NO_PROXY-unset}|${no_proxy-unset}|$NODE_OPTIONS\"; \
             grep -c 'BEGIN CERTIFICATE' \"$SSL_CERT_FILE\"; \
             test \"$REQUESTS_CA_BUNDLE\" = \"$SSL_CERT_FILE\" || exit 9; \
             echo \"$JAVA_TOOL_OPTIONS\"",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    let proxy = format!("http://{}", rig.proxy.addr);
    let first = lines.next().unwrap();
    assert!(
        first.starts_with(&format!("{proxy}|{proxy}|unset|unset|--require ")),
        "{stdout}"
    );
    let certs: usize = lines.next().unwrap().trim().parse().unwrap();
    assert!(certs >= 1, "{stdout}");
    let java = lines.next().unwrap();
    assert!(
        java.contains(&format!("-Dhttps.proxyPort={}", rig.proxy.addr.port())),
        "{stdout}"
    );

    // Something curl reports as a failure is the command's failure.
    if testkit::on_path("curl").is_some() {
        let url = format!("https://{APP}/no-such-route");
        let out = output(rig.run("curl", &["-sS", "--fail", &url])).await;
        assert_eq!(out.status.code(), Some(22), "{}", describe(&out));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_starts_a_proxy_for_the_command_when_none_is_running() {
    if testkit::on_path("curl").is_none() {
        return skip("curl", "curl is not installed", InCi::Required);
    }
    let ca = TestCa::new();
    let tls = TestUpstream::start(&ca, Tls::names(&[APP])).await;
    let plain = TestUpstream::start(&ca, Tls::None).await;
    let work = tempfile::tempdir().unwrap();
    let har = work.path().join("session.har");
    let tls_url = format!("https://{APP}/hello?via=in-process");
    let loop_url = format!(
        "http://127.0.0.1:{}/hello?via=in-process",
        plain.addr.port()
    );
    let mut command = authlens();
    command
        .args(["run", "--listen", "127.0.0.1:0", "--certs"])
        .arg(work.path().join("certs"))
        .arg("--upstream-ca")
        .arg(&ca.pem_path)
        .arg("--connect-to")
        .arg(format!("{APP}:443:127.0.0.1:{}", tls.addr.port()))
        .arg("--har")
        .arg(&har)
        .args(["--", "curl", "-sS", "--fail", &tls_url, &loop_url]);
    let out = output(command).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        text(&out.stdout).matches(HELLO).count(),
        2,
        "{}",
        describe(&out)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("authlens listening on http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(stderr.contains("authlens stopped"), "{stderr}");
    let har: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&har).unwrap()).unwrap();
    let urls: Vec<&str> = har["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap())
        .collect();
    assert!(urls.contains(&tls_url.as_str()), "{urls:?}");
    assert!(urls.contains(&loop_url.as_str()), "{urls:?}");

    // --proxy must name a running authlens.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = authlens();
    command.args(["run", "--proxy", &free.to_string(), "--", "true"]);
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("nothing listens"),
        "{}",
        describe(&out)
    );
}

/// A Python with `requests` already installed (CI installs Debian's
/// `python3-requests`); a test installs nothing, so it never reaches a
/// package index.
fn python_with_requests() -> Result<PathBuf, String> {
    let python = testkit::on_path("python3").ok_or("python3 is not installed")?;
    let has_requests = Command::new(&python)
        .args(["-c", "import requests"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_requests {
        Ok(python)
    } else {
        Err("python3 has no `requests` module (Debian: apt-get install python3-requests)".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_goes_through_the_proxy() {
    let python = match tokio::task::spawn_blocking(python_with_requests)
        .await
        .unwrap()
    {
        Ok(python) => python,
        Err(why) => return skip("Python requests", &why, InCi::Optional),
    };
    let mut rig = Rig::start().await;
    let urls = [rig.tls_url("python"), rig.loopback_url("python")];
    let script = "import sys, requests\n\
                  for url in sys.argv[1:]:\n    \
                      r = requests.get(url, timeout=120)\n    \
                      r.raise_for_status()\n    \
                      print(r.text)\n";
    let out = output(rig.run(&python, &["-c", script, &urls[0], &urls[1]])).await;
    rig.assert_fetched_through_proxy(&out, &urls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_fetch_and_https_go_through_the_proxy() {
    let Some(node) = testkit::on_path("node") else {
        return skip("Node.js", "node is not installed", InCi::Optional);
    };
    let version = Command::new(&node).arg("--version").output().unwrap();
    eprintln!("node {}", text(&version.stdout).trim());
    let mut rig = Rig::start().await;
    let urls = [
        rig.tls_url("node-fetch"),
        rig.loopback_url("node-fetch"),
        rig.tls_url("node-https"),
        rig.loopback_url("node-http"),
    ];
    let script = r#"
const http = require('node:http');
const https = require('node:https');
const get = (mod, url) => new Promise((resolve, reject) => {
  mod.get(url, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (d) => { body += d; });
    res.on('end', () => res.statusCode === 200 ? resolve(body) : reject(new Error(`${url}: ${res.statusCode} ${body}`)));
  }).on('error', reject);
});
(async () => {
  const [tlsFetch, loopFetch, tlsGet, loopGet] = process.argv.slice(1);
  for (const url of [tlsFetch, loopFetch]) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url}: ${res.status}`);
    console.log('fetch', await res.text());
  }
  console.log('https', await get(https, tlsGet));
  console.log('http', await get(http, loopGet));
})().catch((e) => { console.error(e); process.exit(3); });
"#;
    let out = output(rig.run(
        &node,
        &["-e", script, &urls[0], &urls[1], &urls[2], &urls[3]],
    ))
    .await;
    rig.assert_fetched_through_proxy(&out, &urls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn java_http_client_goes_through_the_proxy() {
    let (Some(javac), Some(java)) = (testkit::on_path("javac"), testkit::on_path("java")) else {
        return skip(
            "Java HttpClient",
            "no JDK (javac and java) on PATH",
            InCi::Optional,
        );
    };
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("Main.java"),
        r#"
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

public class Main {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(60)).build();
        for (String url : args) {
            HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(120)).build();
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new RuntimeException(url + ": " + response.statusCode());
            }
            System.out.println(response.body());
        }
    }
}
"#,
    )
    .unwrap();
    let compiled = tokio::task::spawn_blocking({
        let dir = work.path().to_path_buf();
        move || {
            Command::new(javac)
                .arg("Main.java")
                .current_dir(dir)
                .env_remove("JAVA_TOOL_OPTIONS")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(compiled.status.success(), "{}", describe(&compiled));
    let mut rig = Rig::start().await;
    let urls = [rig.tls_url("java"), rig.loopback_url("java")];
    let classes = work.path().to_string_lossy().into_owned();
    let out = output(rig.run(&java, &["-cp", &classes, "Main", &urls[0], &urls[1]])).await;
    rig.assert_fetched_through_proxy(&out, &urls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_loads_an_https_page_and_a_loopback_callback_through_the_proxy() {
    let Some(browser) = testkit::chromium_or_skip("authlens browser (Chromium)") else {
        return;
    };
    let ca = TestCa::new();
    // The sign-in's last hop: the IdP's HTTPS page redirects the browser to
    // the app's loopback callback.
    let callback: Handler = Arc::new(|_req| {
        Response::builder()
            .header("content-type", "text/html")
            .body(Bytes::from_static(
                b"<html><body><p id=done>signed in at the loopback callback</p></body></html>",
            ))
            .unwrap()
    });
    let plain = TestUpstream::start_with(&ca, Tls::None, callback).await;
    let callback_url = format!(
        "http://127.0.0.1:{}/callback?code=test-code&state=s1",
        plain.addr.port()
    );
    let login: Handler = {
        let location = callback_url.clone();
        Arc::new(move |_req| {
            Response::builder()
                .status(302)
                .header("location", location.as_str())
                .body(Bytes::new())
                .unwrap()
        })
    };
    let tls = TestUpstream::start_with(&ca, Tls::names(&[APP]), login).await;
    let mut rig = Rig::with(ca, tls, plain).await;
    let login_url = format!("https://{APP}/login");

    let mut command = authlens();
    command
        .arg("browser")
        .arg("--proxy")
        .arg(rig.proxy.addr.to_string())
        .arg("--certs")
        .arg(rig.certs())
        .arg("--browser")
        .arg(&browser)
        .arg("--browser-output")
        .arg(&login_url)
        .arg("--")
        .args(testkit::HEADLESS_CHROMIUM)
        .arg("--dump-dom");
    let out = output(command).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("signed in at the loopback callback"),
        "{}",
        describe(&out)
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--proxy-bypass-list=<-loopback>"),
        "{stderr}"
    );
    assert_eq!(rig.saw(&[login_url, callback_url]).await, [302, 200]);

    // The fresh profile is gone.
    let profile = stderr
        .lines()
        .find_map(|l| l.split("fresh profile in ").nth(1))
        .and_then(|rest| rest.split(" (removed").next())
        .expect("the profile is named");
    assert!(!Path::new(profile).exists(), "{profile} still exists");
}

/// A "browser" that fails the way Chromium does as root without
/// `--no-sandbox`: a line on stdout, the reason on stderr, exit 1 at once.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_that_fails_at_start_is_explained_by_its_last_lines() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let args_file = work.path().join("args");
    let fake = work.path().join("fake-browser");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$@\" > '{}'\n\
             echo 'fake browser starting'\n\
             echo '[42:42:ERROR:zygote_host_impl_linux.cc(101)] Running as root without --no-sandbox is not supported.' >&2\n\
             exit 1\n",
            args_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = browser_in(work.path());
    command
        .arg("--browser")
        .arg(&fake)
        .arg("http://localhost:3000/");
    let out = output(command).await;
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("exited with status 1 after"),
        "{}",
        describe(&out)
    );
    assert!(
        stderr.contains("  | fake browser starting")
            && stderr.contains("  | [42:42:ERROR:zygote_host_impl_linux.cc(101)] Running as root"),
        "both streams' last lines are shown: {}",
        describe(&out)
    );
    assert!(stderr.contains("--browser-output"), "{stderr}");

    let args = std::fs::read_to_string(&args_file).unwrap();
    let root = rustix::process::geteuid().is_root();
    assert_eq!(
        args.lines().any(|a| a == "--no-sandbox"),
        root,
        "--no-sandbox exactly when root: {args}"
    );
    assert_eq!(
        stderr.contains("running as root") && stderr.contains("--no-sandbox is passed"),
        root,
        "{stderr}"
    );
}

/// A stand-in browser in `dir`: writes its arguments, one per line, to
/// `args` (whole, by a rename), then stays open like a browser until
/// `release` exists (at most 60 s).
#[cfg(unix)]
fn lingering_fake_browser(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let (fake, args, release) = (
        dir.join("fake-browser"),
        dir.join("args"),
        dir.join("release"),
    );
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\n\
             printf '%s\\n' \"$@\" > '{args}.part' && mv '{args}.part' '{args}'\n\
             i=0\n\
             while [ ! -e '{release}' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done\n",
            args = args.display(),
            release = release.display(),
        ),
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    (fake, args, release)
}

/// `--web-tab`: the browser gets the web view's URL after the page, the
/// proxy's own address goes around the proxy (which refuses its view
/// through itself), and that URL opens the view. With `--no-web` there is
/// no view to open: only the page, and a line that says why.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_tab_opens_the_view_beside_the_page_reached_directly() {
    let work = tempfile::tempdir().unwrap();
    let (fake, args_file, release) = lingering_fake_browser(work.path());
    let page = "http://localhost:3000/";
    let mut command = browser_in(work.path());
    command
        .arg("--browser")
        .arg(&fake)
        .arg("--web-tab")
        .arg(page);
    let run = tokio::spawn(output(command));
    // The browser is let go however the test ends (a failed assertion
    // would otherwise wait out its 60 s).
    struct LetGo(PathBuf);
    impl Drop for LetGo {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, "");
        }
    }
    let let_go = LetGo(release);
    let started = Instant::now();
    let args = loop {
        if let Ok(args) = std::fs::read_to_string(&args_file) {
            break args;
        }
        if run.is_finished() {
            let out = run.await.unwrap();
            panic!("the browser was never started: {}", describe(&out));
        }
        assert!(
            started.elapsed() < CLIENT_TIMEOUT,
            "the browser was not started within {CLIENT_TIMEOUT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let args: Vec<&str> = args.lines().collect();
    let [.., opened_page, view] = args[..] else {
        panic!("no page and view among {args:?}");
    };
    assert_eq!(opened_page, page, "{args:?}");
    let authority = view
        .strip_prefix("http://")
        .and_then(|rest| rest.split_once("/?token="))
        .map(|(authority, _)| authority)
        .unwrap_or_else(|| panic!("{view:?} is not the view's URL"));
    assert!(authority.starts_with("127.0.0.1:"), "{view}");
    assert!(
        args.contains(&format!("--proxy-bypass-list=<-loopback>;{authority}").as_str()),
        "only the proxy's own address goes direct: {args:?}"
    );
    assert!(
        args.contains(&format!("--proxy-server=http://{authority}").as_str()),
        "{args:?}"
    );
    let direct = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = direct.get(view).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{view}");
    let html = resp.text().await.unwrap();
    assert!(html.contains("/assets/app.js"), "{html}");
    drop(let_go);
    let out = run.await.unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !text(&out.stderr).contains("--web-tab:"),
        "{}",
        describe(&out)
    );

    // No view of its own: the page alone, and why.
    let work = tempfile::tempdir().unwrap();
    let (fake, args_file, release) = lingering_fake_browser(work.path());
    std::fs::write(&release, "").unwrap();
    let mut command = browser_in(work.path());
    command
        .arg("--no-web")
        .arg("--browser")
        .arg(&fake)
        .arg("--web-tab")
        .arg(page);
    let out = output(command).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr)
            .contains("--web-tab: the web view is served only by a proxy started here"),
        "{}",
        describe(&out)
    );
    let args = std::fs::read_to_string(&args_file).unwrap();
    assert_eq!(args.lines().last(), Some(page), "{args}");
    assert!(!args.contains("?token="), "{args}");
    assert!(
        args.lines().any(|a| a == "--proxy-bypass-list=<-loopback>"),
        "{args}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_without_a_browser_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let mut command = browser_in(empty.path());
    command.env("PATH", empty.path());
    let out = output(command).await;
    // Chrome may still be found in a fixed install location on a developer's
    // Mac or Windows machine; on Linux it never is.
    if cfg!(target_os = "linux") {
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("no Chromium or Chrome found"), "{stderr}");
        assert!(stderr.contains("--browser PATH"), "{stderr}");
        assert!(
            stderr.contains("microsoft-edge-stable"),
            "every name tried is listed: {stderr}"
        );
    }
}

#[test]
fn ca_shows_exports_explains_and_regenerates_only_when_confirmed() {
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    let ca = |args: &[&str]| {
        authlens()
            .arg("ca")
            .arg("--certs")
            .arg(&certs)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ca(&[]);
    assert!(out.status.success(), "{}", describe(&out));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("authlens-ca.pem") && shown.contains("(created now)"),
        "{shown}"
    );
    let fingerprint = shown
        .lines()
        .find_map(|l| l.strip_prefix("SHA-256"))
        .unwrap()
        .trim()
        .to_string();
    let pem = std::fs::read_to_string(certs.join("authlens-ca.pem")).unwrap();
    let der = {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    };
    let expected: Vec<String> = {
        use sha2::Digest;
        sha2::Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    };
    assert_eq!(fingerprint, expected.join(":"));
    assert!(shown.contains("expires"), "{shown}");

    let export = work.path().join("export");
    let out = ca(&["--export", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        std::fs::read(export.join("authlens-ca.crt")).unwrap(),
        der.as_ref()
    );
    assert_eq!(
        std::fs::read_to_string(export.join("authlens-ca.pem")).unwrap(),
        pem
    );
    assert!(
        std::fs::read_to_string(export.join("authlens-bundle.pem"))
            .unwrap()
            .ends_with(&pem)
    );
    assert!(
        !std::fs::read(export.join("authlens-ca.p12"))
            .unwrap()
            .is_empty()
    );

    let out = ca(&["--install-help"]);
    assert!(out.status.success(), "{}", describe(&out));
    let help = text(&out.stdout);
    for platform in [
        "Debian / Ubuntu",
        "Fedora",
        "macOS",
        "Windows",
        "Firefox",
        "Java",
        "Python",
        "Node.js",
        ".NET",
    ] {
        assert!(help.contains(platform), "{platform} missing:\n{help}");
    }

    let out = ca(&["--regenerate"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(
        std::fs::read_to_string(certs.join("authlens-ca.pem")).unwrap(),
        pem,
        "unchanged without --yes"
    );
    let out = ca(&["--regenerate", "--yes"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_ne!(
        std::fs::read_to_string(certs.join("authlens-ca.pem")).unwrap(),
        pem
    );
    assert!(text(&out.stdout).contains("(new:"), "{}", describe(&out));
}

/// Java's own `keytool` reads the exported trust store and lists the CA as
/// a trusted certificate entry.
#[test]
fn keytool_reads_the_exported_trust_store() {
    let Some(keytool) = testkit::on_path("keytool") else {
        return skip("keytool", "no JDK on PATH", InCi::Optional);
    };
    let work = tempfile::tempdir().unwrap();
    let export = work.path().join("export");
    let out = authlens()
        .args(["ca", "--certs"])
        .arg(work.path().join("certs"))
        .arg("--export")
        .arg(&export)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let listed = Command::new(keytool)
        .args([
            "-list",
            "-storetype",
            "PKCS12",
            "-storepass",
            "changeit",
            "-keystore",
        ])
        .arg(export.join("authlens-ca.p12"))
        .env_remove("JAVA_TOOL_OPTIONS")
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", describe(&listed));
    let listing = text(&listed.stdout);
    assert!(
        listing.contains("authlens-ca") && listing.contains("trustedCertEntry"),
        "{listing}"
    );
}
