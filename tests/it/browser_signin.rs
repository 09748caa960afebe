//! A real browser signs in through the proxy: headless Chromium, started by
//! `authlens browser`, opens the mock Entra ID's /authorize with
//! `response_mode=form_post`; the IdP's page auto-submits the code to the
//! app's loopback callback; the test (playing the app) redeems it. The
//! analysis must pair all legs and find nothing wrong.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use authlens::output::json_lines;
use bytes::Bytes;
use http::Response;
use serde_json::Value;
use testkit::lab::{IDP, PUBLIC_CLIENT};
use testkit::upstream::{Handler, TestUpstream, Tls};
use testkit::{ProxyOptions, TestCa, TestProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_with_form_post_and_the_analysis_pairs_every_leg() {
    let Some(browser) = testkit::chromium_or_skip("real-browser sign-in (Chromium)") else {
        return;
    };

    let ca = TestCa::new();
    let (idp, idp_server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    // The app's loopback callback: keeps what the browser posted to it.
    let posted: Arc<Mutex<Option<String>>> = Arc::default();
    let callback = {
        let posted = posted.clone();
        let handler: Handler = Arc::new(move |req| {
            if req.method() == http::Method::POST {
                *posted.lock().unwrap() = Some(String::from_utf8_lossy(req.body()).into_owned());
            }
            Response::builder()
                .header("content-type", "text/html")
                .body(Bytes::from_static(
                    b"<html><body><p id=done>signed in</p></body></html>",
                ))
                .unwrap()
        });
        TestUpstream::start_with(&ca, Tls::None, handler).await
    };
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![
                (IDP.into(), 443, idp_server.addr),
                ("127.0.0.1".into(), callback.addr.port(), callback.addr),
            ],
            trust_test_ca: true,
            tweak: Some(testkit::send_unrouted_hosts_nowhere),
            ..Default::default()
        },
    )
    .await;
    let mut events = proxy.session.events().live;

    let redirect_uri = format!("http://127.0.0.1:{}/callback", callback.addr.port());
    let authorize = reqwest::Url::parse_with_params(
        &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid profile"),
            ("state", "browser-state"),
            ("nonce", "browser-nonce"),
            ("response_mode", "form_post"),
            ("code_challenge", testkit::lab::CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();

    let out = testkit::binary::browser(
        env!("CARGO_BIN_EXE_authlens"),
        &proxy,
        &browser,
        &[],
        authorize.as_str(),
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");

    // The browser carried the code to the callback by POST (form_post).
    let body =
        posted.lock().unwrap().clone().unwrap_or_else(|| {
            panic!("the callback got no POST; dom:\n{stdout}\nstderr:\n{stderr}")
        });
    let code = url_param(&body, "code").expect("the POST carries a code");
    assert_eq!(url_param(&body, "state").as_deref(), Some("browser-state"));

    // The app redeems it through the proxy.
    let app = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy.url()).unwrap())
        .add_root_certificate(reqwest::Certificate::from_pem(proxy.ca_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .build()
        .unwrap();
    let resp = app
        .post(format!("https://{IDP}/{tenant}/oauth2/v2.0/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", PUBLIC_CLIENT),
            ("code_verifier", testkit::lab::VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let mut lines: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l| l["type"] == "verdict") {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no verdict; events so far: {lines:#?}"))
            .unwrap();
        lines.push(serde_json::from_str(&json_lines::to_line(&event)).unwrap());
    }
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    for kind in ["authorize", "code", "token", "token-response", "verdict"] {
        assert!(kinds.contains(&kind), "{kind} missing: {lines:#?}");
    }
    let problems: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "finding" && l["severity"] != "info")
        .collect();
    assert!(
        problems.is_empty(),
        "a clean browser sign-in: {problems:#?}"
    );
    let attempts: std::collections::BTreeSet<String> = lines
        .iter()
        .filter(|l| l["type"] != "finding")
        .map(|l| l["attempt"].to_string())
        .collect();
    assert_eq!(attempts.len(), 1, "every leg on one attempt: {lines:#?}");
    let text = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!text.contains(&code), "the code leaked");

    // The loopback callback itself went through the proxy (Chrome bypasses
    // proxies for loopback unless told `<-loopback>`).
    let mut proxy = proxy;
    let callback_seen = proxy.exchange_for("/callback").await;
    assert_eq!(callback_seen.request.method, "POST");

    proxy.stop().await;
}

fn url_param(form: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(&format!("x:?{form}"))
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
