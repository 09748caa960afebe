//! The live web view, through the real proxy: each security point refused
//! (the view reached through the proxy, a foreign `Host`, a missing or
//! wrong token, a state change without the page's `Origin`), a failing
//! sign-in in the API and its downloads, a stalled stream that neither
//! holds memory nor blocks forwarding, the stream ending at shutdown, and
//! the binary's banner URL and `--no-web`.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use authlens::config::OutputConfig;
use authlens::oauth::AnalyzerConfig;
use authlens::proxy::Hooks;
use authlens::web::{WebOptions, WebView};
use serde_json::Value;
use testkit::binary::Binary;
use testkit::lab::{Lab, authorize_params, token_form};
use testkit::mock_idp::MockIdp;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// The lab (mock IdP, app, authlens) with the web view plugged in.
async fn web_lab(options: WebOptions) -> (Lab, WebView) {
    let web = WebView::new(options);
    let hooks = Hooks {
        interceptor: None,
        local: Some(web.service()),
    };
    let lab = Lab::start_with_hooks(
        MockIdp::default_config(),
        OutputConfig::silent(AnalyzerConfig::default()),
        hooks,
    )
    .await;
    web.attach(&lab.proxy.session);
    (lab, web)
}

/// The proxy with the web view plugged in, and a plain-HTTP upstream
/// answering every request with a typed `ok` (not a sign-in leg).
async fn web_proxy() -> (WebView, testkit::TestProxy, testkit::upstream::TestUpstream) {
    let web = WebView::new(WebOptions::default());
    let ca = testkit::TestCa::new();
    let handler: testkit::upstream::Handler = std::sync::Arc::new(|_req| {
        http::Response::builder()
            .header("content-type", "text/plain")
            .body(bytes::Bytes::from_static(b"ok"))
            .unwrap()
    });
    let upstream =
        testkit::upstream::TestUpstream::start_with(&ca, testkit::upstream::Tls::None, handler)
            .await;
    let proxy = testkit::TestProxy::start(
        &ca,
        testkit::ProxyOptions {
            hooks: Hooks {
                interceptor: None,
                local: Some(web.service()),
            },
            ..Default::default()
        },
    )
    .await;
    web.attach(&proxy.session);
    (web, proxy, upstream)
}

/// Sends `head` (a whole request, `Connection: close`) to `addr` and reads
/// the answer to its end: status and the whole text.
async fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer))
        .await
        .expect("answered within 30 s")
        .unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    (status, text)
}

fn get(path: &str, host: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
}

/// A direct client (no proxy), as a page's own requests are.
pub(super) fn direct() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub(super) fn cookie(web: &WebView, addr: SocketAddr) -> String {
    format!("authlens_token_{}={}", addr.port(), web.token())
}

/// Every path the view answers, for the refusals that must hold on each.
const VIEW_PATHS: [&str; 9] = [
    "/",
    "/assets/app.js",
    "/api/attempts",
    "/api/attempts/1",
    "/api/exchanges",
    "/api/stream",
    "/api/status",
    "/api/setup",
    "/api/ca.pem",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_or_from_a_foreign_host_the_view_is_refused_and_says_how_to_get_in() {
    let (lab, web) = web_lab(WebOptions::default()).await;
    let addr = lab.proxy.addr;
    let host = addr.to_string();
    let token = web.token().to_owned();
    for path in VIEW_PATHS {
        // No token: refused, with the way in.
        let (status, text) = raw(addr, &get(path, &host, "")).await;
        assert_eq!(status, 401, "{path}: {text}");
        assert!(
            text.contains(&format!("the line starting http://{addr}/?token=")),
            "{path}: {text}"
        );
        assert!(!text.contains(&token), "{path}: {text}");
        // A wrong token, in the query or in the cookie.
        let wrong = format!("{path}?token={}", "0".repeat(64));
        assert_eq!(raw(addr, &get(&wrong, &host, "")).await.0, 401, "{path}");
        let other = format!(
            "Cookie: authlens_token_{}={}\r\n",
            addr.port(),
            "f".repeat(64)
        );
        assert_eq!(raw(addr, &get(path, &host, &other)).await.0, 401, "{path}");
        // The right token for a Host that is not this listener: DNS rebinding.
        let with = format!("{path}?token={token}");
        for foreign in [format!("evil.test:{}", addr.port()), "127.0.0.1:1".into()] {
            let (status, text) = raw(addr, &get(&with, &foreign, "")).await;
            assert_eq!(status, 421, "{path} {foreign}: {text}");
            assert!(text.contains("DNS rebinding"), "{text}");
        }
        // Every name of this listener opens it.
        for own in [host.clone(), format!("localhost:{}", addr.port())] {
            let head = if path == "/api/stream" {
                // A stream does not end: its head is enough.
                let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
                tcp.write_all(get(&with, &own, "").as_bytes())
                    .await
                    .unwrap();
                let mut buf = vec![0u8; 4096];
                let n = tcp.read(&mut buf).await.unwrap();
                String::from_utf8_lossy(&buf[..n]).into_owned()
            } else {
                raw(addr, &get(&with, &own, "")).await.1
            };
            assert!(
                head.starts_with("HTTP/1.1 200") || path == "/api/attempts/1",
                "{path} {own}: {head}"
            );
        }
    }
    // The page hands the token on as a cookie only scripts cannot read and
    // other sites cannot send; the cookie then opens the API.
    let (_, page) = raw(addr, &get(&format!("/?token={token}"), &host, "")).await;
    let set_cookie = page
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie: {page}"));
    assert!(set_cookie.contains(&cookie(&web, addr)), "{set_cookie}");
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    let with_cookie = format!("Cookie: {}\r\n", cookie(&web, addr));
    let (status, text) = raw(addr, &get("/api/attempts", &host, &with_cookie)).await;
    assert_eq!(status, 200, "{text}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_change_needs_the_pages_own_origin() {
    let injector = authlens::inject::FaultInjector::new(
        vec![authlens::inject::Fault::parse("reuse-code").unwrap()],
        None,
        false,
    )
    .unwrap();
    let injector = std::sync::Arc::new(injector);
    let (lab, web) = web_lab(WebOptions {
        faults: Some(injector.clone()),
        ..WebOptions::default()
    })
    .await;
    let addr = lab.proxy.addr;
    let host = addr.to_string();
    let post = |origin: Option<&str>| {
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        let body = r#"{"index":0,"on":false}"#;
        format!(
            "POST /api/faults HTTP/1.1\r\nHost: {host}\r\nCookie: {}\r\n{origin}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            cookie(&web, addr),
            body.len()
        )
    };
    for origin in [
        None,
        Some("http://evil.test"),
        Some("null"),
        Some(&*format!("https://{host}")),
    ] {
        let (status, text) = raw(addr, &post(origin)).await;
        assert_eq!(status, 403, "{origin:?}: {text}");
        assert!(text.contains("cross-site"), "{text}");
        assert!(injector.switches()[0].1, "refused, so still on");
    }
    let (status, text) = raw(addr, &post(Some(&format!("http://{host}")))).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(r#""on":false"#), "{text}");
    assert!(!injector.switches()[0].1, "switched off");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_view_reached_through_the_proxy_is_refused_on_every_path() {
    let (lab, web) = web_lab(WebOptions::default()).await;
    let addr = lab.proxy.addr;
    let token = web.token();
    for path in VIEW_PATHS {
        for authority in [addr.to_string(), format!("localhost:{}", addr.port())] {
            // Absolute-form: a request *through* the proxy to itself.
            let url = format!("http://{authority}{path}?token={token}");
            let (status, text) = raw(addr, &get(&url, &authority, "")).await;
            assert_ne!(status, 200, "{url}: {text}");
            assert!(text.contains("would loop"), "{url}: {text}");
            assert!(!text.contains("authlens web view"), "{url}: {text}");
        }
    }
    // CONNECT to the proxy's own address, by address and by name.
    let (_, head) = lab.proxy.connect_tunnel(&addr.to_string()).await;
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let client = lab.proxy.client(testkit::Http::One);
    for path in VIEW_PATHS {
        let url = format!("https://localhost:{}{path}?token={token}", addr.port());
        match client.get(&url).send().await {
            Err(_) => {}
            Ok(resp) => {
                let status = resp.status();
                let text = resp.text().await.unwrap_or_default();
                assert_ne!(status, 200, "{url}: {text}");
                assert!(
                    !text.contains("authlens web view") && !text.contains("<!doctype html>"),
                    "{url}: {text}"
                );
            }
        }
    }
    lab.stop().await;

    // A passthrough tunnel to itself would hand the proxy a fresh direct
    // connection (the mitmweb CVE-2025-23217 path): refused as a loop too.
    let ca = testkit::TestCa::new();
    let web = WebView::new(WebOptions::default());
    let proxy = testkit::TestProxy::start(
        &ca,
        testkit::ProxyOptions {
            passthrough: vec!["localhost".into()],
            hooks: Hooks {
                interceptor: None,
                local: Some(web.service()),
            },
            ..Default::default()
        },
    )
    .await;
    let (_, head) = proxy
        .connect_tunnel(&format!("localhost:{}", proxy.addr.port()))
        .await;
    let head = String::from_utf8_lossy(&head);
    assert!(!head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains(" 50") || head.contains(" 40"), "{head}");
    proxy.stop().await;
}

/// Reads server-sent events from `resp` until one named `name` whose data
/// satisfies `until`; returns its data.
pub(super) async fn next_event(
    resp: &mut reqwest::Response,
    buffer: &mut String,
    name: &str,
    until: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let mut event = "";
            let mut data = "";
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = v;
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = v;
                }
            }
            if event == name {
                let value: Value = serde_json::from_str(data).unwrap();
                if until(&value) {
                    return value;
                }
            }
        }
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 60 s"))
            .unwrap()
            .expect("the stream goes on");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_sign_in_appears_live_with_its_finding_code_legs_and_downloads() {
    let (mut lab, web) = web_lab(WebOptions::default()).await;
    let addr = lab.proxy.addr;
    let base = format!("http://{addr}");
    let http = direct();
    let with = |path: &str| {
        http.get(format!("{base}{path}"))
            .header("cookie", cookie(&web, addr))
    };
    let mut stream = with("/api/stream").send().await.unwrap();
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    next_event(&mut stream, &mut buffer, "resync", |_| true).await;

    // The app redeems with a redirect_uri that differs by a trailing slash.
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-web", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[2] = ("redirect_uri", "https://app.test/callback/");
    let (status, _) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 400);
    lab.lines_until_verdict().await;

    let row = next_event(&mut stream, &mut buffer, "attempt", |a| {
        a["status"] == "failed"
    })
    .await;
    assert_eq!(row["failed_at"], "token", "{row}");
    assert!(
        row["rules"]
            .as_array()
            .unwrap()
            .contains(&"param-mismatch".into()),
        "{row}"
    );
    let codes = row["idp_codes"].as_array().unwrap();
    assert!(!codes.is_empty(), "{row}");
    assert_eq!(row["client_id"], testkit::lab::WEB_CLIENT);
    let id = row["id"].as_u64().unwrap();

    let list: Value = with("/api/attempts")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id, "{list}");
    let detail_text = with(&format!("/api/attempts/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !detail_text.contains(&code),
        "the code in clear: {detail_text}"
    );
    let detail: Value = serde_json::from_str(&detail_text).unwrap();
    let mismatch = detail["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["rule"] == "param-mismatch")
        .unwrap_or_else(|| panic!("{detail:#}"));
    assert_eq!(mismatch["evidence"]["token"], "https://app.test/callback/");
    assert!(!mismatch["fix"].as_str().unwrap().is_empty());
    assert!(
        !detail["explanations"].as_array().unwrap().is_empty(),
        "{detail:#}"
    );
    assert_eq!(detail["code_lifetime_ms"], 600_000);
    let legs = detail["legs"].as_array().unwrap();
    let token_leg = legs
        .iter()
        .find(|l| l["entry"]["request"]["method"] == "POST")
        .unwrap_or_else(|| panic!("{detail:#}"));
    let curl = token_leg["curl"].as_str().unwrap();
    assert!(
        curl.starts_with("curl -X 'POST' 'https://login.microsoftonline.com/"),
        "{curl}"
    );
    assert!(curl.contains("code=code%23"), "fingerprinted: {curl}");

    // The downloads: the HAR re-analysed finds the same mismatch.
    let har = with(&format!("/api/attempts/{id}/har"))
        .send()
        .await
        .unwrap();
    assert!(
        har.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".har")
    );
    let har = har.bytes().await.unwrap();
    assert!(!String::from_utf8_lossy(&har).contains(&code));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attempt.har");
    std::fs::write(&path, &har).unwrap();
    let recording = authlens::har::load(&[path], authlens::har::ReadOptions::default()).unwrap();
    assert_eq!(recording.exchanges.len(), legs.len(), "every kept leg");
    let tally = authlens::session::Session::replay(
        &recording,
        &OutputConfig::silent(AnalyzerConfig::default()),
    )
    .unwrap();
    assert_eq!(tally.by_rule.get("param-mismatch"), Some(&1), "{tally:?}");
    let report = with(&format!("/api/attempts/{id}/report.md"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        report.starts_with("# Sign-in report") && report.contains("param-mismatch"),
        "{report}"
    );
    let lines = with(&format!("/api/attempts/{id}/events.jsonl"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in lines.lines() {
        authlens::output::json_lines::from_line(line).unwrap();
    }
    assert!(lines.contains("\"rule\":\"param-mismatch\""), "{lines}");

    // The traffic list knows the legs.
    let rows: Value = with("/api/exchanges")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["attempt"] == id && r["oauth"] == true),
        "{rows}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_ends_when_the_proxy_shuts_down() {
    let (lab, web) = web_lab(WebOptions::default()).await;
    let addr = lab.proxy.addr;
    let mut stream = direct()
        .get(format!("http://{addr}/api/stream"))
        .header("cookie", cookie(&web, addr))
        .send()
        .await
        .unwrap();
    let mut buffer = String::new();
    next_event(&mut stream, &mut buffer, "resync", |_| true).await;
    let stopped = tokio::spawn(lab.stop());
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match stream.chunk().await {
                Ok(Some(_)) => continue,
                other => return other.map(|_| ()),
            }
        }
    })
    .await
    .expect("the stream still open 30 s after shutdown");
    // Ended by the view (the last chunk), not cut off when the proxy's
    // grace period ran out.
    assert!(ended.is_ok(), "the stream was cut off: {ended:?}");
    tokio::time::timeout(Duration::from_secs(30), stopped)
        .await
        .expect("the session stops with a page following")
        .unwrap();
}

/// Sends a page's request for the stream (with the view's cookie) on `tcp`.
async fn ask_for_stream(tcp: &mut tokio::net::TcpStream, web: &WebView, addr: SocketAddr) {
    let head = get(
        "/api/stream",
        &addr.to_string(),
        &format!("Cookie: {}\r\n", cookie(web, addr)),
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_page_neither_holds_memory_nor_slows_forwarding() {
    let (web, proxy, upstream) = web_proxy().await;
    let addr = proxy.addr;
    // A page that asks for the stream, then never reads it, with a small
    // receive window so the proxy's side fills quickly.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(addr).await.unwrap();
    ask_for_stream(&mut stalled, &web, addr).await;

    // Traffic with long URLs (long rows) goes on at full speed until the
    // page is skipped ahead (a page is sent at most a chunk of rows per
    // 50 ms, so its queue and the sockets' buffers take a while to fill).
    let client = testkit::client_through(&proxy.url(), proxy.ca_pem.as_bytes());
    let padding = "p".repeat(4000);
    let mut sent = 0;
    let went_on = tokio::time::timeout(Duration::from_secs(300), async {
        while web.store().counts()["pages_skipped"] == 0 {
            for _ in 0..100 {
                let url = format!("http://{}/x/{sent}?pad={padding}", upstream.addr);
                let resp = client.get(&url).send().await.unwrap();
                assert_eq!(resp.status(), 200);
                resp.bytes().await.unwrap();
                sent += 1;
            }
        }
    })
    .await;
    assert!(
        went_on.is_ok(),
        "forwarding stalled behind a page that does not read, or the page was never skipped ahead ({sent} requests)"
    );
    // The view kept its bounded rows, and the stalled page was skipped
    // ahead (told to resync) rather than buffered for: what it can still
    // read holds far fewer rows than were sent.
    let mut text = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), async {
        let mut buf = vec![0u8; 65536];
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&text)
                .matches("event: resync")
                .count()
                >= 2
            {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&text);
    let rows = text.matches("\"method\":").count();
    assert!(
        text.matches("event: resync").count() >= 2,
        "never told to resync ({rows} rows read)"
    );
    assert!(
        rows < sent,
        "every row was buffered for the stalled page ({rows} of {sent})"
    );
    assert_eq!(
        web.store().counts()["exchanges"],
        sent.min(authlens::web::DEFAULT_WEB_HISTORY)
    );
    proxy.stop().await;
}

#[test]
fn the_banner_prints_the_views_url_and_no_web_turns_it_off() {
    let certs = tempfile::tempdir().unwrap();
    let mut proxy = Binary::start(
        Command::new(env!("CARGO_BIN_EXE_authlens"))
            .args(["--listen", "127.0.0.1:0", "--no-color", "--certs"])
            .arg(certs.path())
            .stdout(Stdio::null()),
    );
    let prefix = format!("{}/", proxy.url());
    let url = proxy.wait_for(&format!("{prefix}?token="));
    assert!(url.starts_with(&prefix), "{url:?} is not a line of its own");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let resp = direct().get(url.trim()).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let page = resp.text().await.unwrap();
        assert!(
            page.contains("<script type=\"module\" src=\"/assets/app.js\">"),
            "{page}"
        );
    });
    drop(proxy);

    let mut off = Binary::start(
        Command::new(env!("CARGO_BIN_EXE_authlens"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--no-color",
                "--no-web",
                "--certs",
            ])
            .arg(certs.path())
            .stdout(Stdio::null()),
    );
    off.wait_for("curl -x");
    let addr: SocketAddr = off.addr.parse().unwrap();
    rt.block_on(async {
        let (status, text) = raw(addr, &get("/", &addr.to_string(), "")).await;
        assert_eq!(status, 400, "{text}");
        assert!(text.contains("This is an HTTP(S) proxy"), "{text}");
    });
    assert!(
        !off.seen.iter().any(|l| l.contains("?token=")),
        "{:?}",
        off.seen
    );
}

/// The view watches the whole traffic only while a page follows: a watcher
/// makes the proxy build and copy every exchange, which a closed view must
/// not cost. Sign-in legs are kept all along (the analysis reads them
/// anyway), so a page opened later still has their rows and downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_traffic_list_is_watched_only_while_a_page_follows() {
    let (web, proxy, upstream) = web_proxy().await;
    let addr = proxy.addr;
    let client = testkit::client_through(&proxy.url(), proxy.ca_pem.as_bytes());
    let fetch = async |path: &str| {
        let resp = client
            .get(format!("http://{}{path}", upstream.addr))
            .send()
            .await
            .unwrap();
        resp.bytes().await.unwrap();
    };
    let urls = || -> Vec<String> {
        web.store()
            .rows(100)
            .iter()
            .filter_map(|r| r["url"].as_str().map(str::to_owned))
            .collect()
    };
    let wait_for = async |path: &str| {
        tokio::time::timeout(Duration::from_secs(30), async {
            while !urls().iter().any(|u| u.contains(path)) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no row for {path}: {:?}", urls()));
    };

    // No page: the plain request makes no row, the sign-in leg does.
    fetch("/plain/0").await;
    fetch("/oauth2/v2.0/authorize?client_id=c&response_type=code&state=s1").await;
    wait_for("/oauth2/v2.0/authorize").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(urls().len(), 1, "{:?}", urls());

    // A page follows: from its first byte on, every exchange has a row.
    let mut page = tokio::net::TcpStream::connect(addr).await.unwrap();
    ask_for_stream(&mut page, &web, addr).await;
    let mut first = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(30), page.read(&mut first))
        .await
        .expect("the stream answers")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    fetch("/plain/1").await;
    wait_for("/plain/1").await;
    let rows = urls();
    assert!(
        rows[0].contains("/plain/1") && rows[1].contains("/authorize"),
        "newest first, in the proxy's order: {rows:?}"
    );
    proxy.stop().await;
}

/// The view's cookie is sent by the browser to every port of 127.0.0.1,
/// so the apps it reaches through the proxy would get the token: the proxy
/// takes it out of every request (the recording included), the other
/// cookies untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_views_cookie_never_reaches_an_app_through_the_proxy() {
    let (lab, web) = web_lab(WebOptions::default()).await;
    let seen: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let handler: testkit::upstream::Handler = {
        let seen = seen.clone();
        std::sync::Arc::new(move |req| {
            for v in req.headers().get_all(http::header::COOKIE) {
                seen.lock()
                    .unwrap()
                    .push(v.to_str().unwrap_or("?").to_owned());
            }
            http::Response::new(bytes::Bytes::from_static(b"ok"))
        })
    };
    let ca = testkit::TestCa::new();
    let app =
        testkit::upstream::TestUpstream::start_with(&ca, testkit::upstream::Tls::None, handler)
            .await;
    let own = cookie(&web, lab.proxy.addr);
    let resp = lab
        .client
        .get(format!("http://{}/home", app.addr))
        .header("cookie", format!("session=abc; {own}; theme=dark"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(*seen.lock().unwrap(), ["session=abc; theme=dark"]);
    lab.stop().await;
}

/// A client that talks to the proxy as if it were the server (origin-form,
/// a path of its own) still gets the proxy's page saying how to use a
/// proxy: the view answers only its own paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_its_paths_the_view_leaves_the_proxys_own_answer() {
    let (lab, _web) = web_lab(WebOptions::default()).await;
    let addr = lab.proxy.addr;
    for host in ["api.example.test", &addr.to_string()] {
        let (status, text) = raw(addr, &get("/v1/things", host, "")).await;
        assert_eq!(status, 400, "{host}: {text}");
        assert!(text.contains("This is an HTTP(S) proxy"), "{host}: {text}");
    }
    lab.stop().await;
}
