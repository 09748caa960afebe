//! The sign-in lifecycle end to end (issue 14): refreshes, the device-code
//! grant and client_credentials through the real proxy against the mock
//! Entra IdP. Each rule fires on its case; a clean refresh, a clean device
//! flow with several `authorization_pending` polls and a clean
//! client_credentials call produce no warning and no error.

use std::time::Duration;

use authlens::oauth::AnalyzerConfig;
use serde_json::Value;
use testkit::lab::{
    Lab, PUBLIC_CLIENT, VERIFIER, WEB_CLIENT, WEB_SECRET, authorize_params, findings, has,
    token_form,
};
use testkit::mock_idp::{MockIdp, MockIdpConfig};

const SPA_CLIENT: &str = "33333333-3333-4333-8333-333333333333";
const SPA_REDIRECT: &str = "https://app.test/spa";
const SPA_ORIGIN: &str = "https://app.test";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn problems(lines: &[Value]) -> Vec<(String, String, Option<String>)> {
    findings(lines)
        .into_iter()
        .filter(|(_, sev, _)| sev == "warning" || sev == "error")
        .collect()
}

/// A form POST to `…/oauth2/v2.0/{leaf}` through the proxy, with `Origin`
/// when given; the status and the JSON answer.
async fn post(lab: &Lab, leaf: &str, form: &[(&str, &str)], origin: Option<&str>) -> (u16, Value) {
    let mut request = lab
        .client
        .post(lab.endpoint(&lab.tenant(), leaf))
        .form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let resp = request.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// The Web client signs in (with offline_access) and returns its refresh
/// token; the sign-in's events are consumed.
async fn web_sign_in(lab: &mut Lab) -> String {
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-life", &[]))
        .await
        .expect("code issued");
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    body["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned()
}

fn web_refresh(rt: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", rt),
        ("client_id", WEB_CLIENT),
        ("client_secret", WEB_SECRET),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_refresh_has_no_warning() {
    let mut lab = Lab::default().await;
    let rt = web_sign_in(&mut lab).await;
    let (status, body) = post(&lab, "token", &web_refresh(&rt), None).await;
    assert_eq!(status, 200, "{body}");
    let new_rt = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_rt, rt, "the mock rotates");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    let token = lines.iter().find(|l| l["type"] == "token").unwrap();
    assert_eq!(token["grant_type"], "refresh_token");
    assert!(
        token["grant_credential"]
            .as_str()
            .unwrap()
            .starts_with("refresh_token#")
    );
    assert!(
        !lines.iter().any(|l| l.to_string().contains(&rt)),
        "{lines:#?}"
    );
    let answer = lines
        .iter()
        .find(|l| l["type"] == "token-response")
        .unwrap();
    assert_eq!(answer["grant_type"], "refresh_token");
    assert_eq!(answer["decoded_tokens"][0]["token"], "id_token");
    assert_eq!(lines.last().unwrap()["summary"], "tokens refreshed");
    // And the next one, with the rotated token, is clean too.
    let (status, _) = post(&lab, "token", &web_refresh(&new_rt), None).await;
    assert_eq!(status, 200);
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    assert_eq!(lab.idp.stats().tokens_refreshed, 2);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_token_reused_after_rotation_looks_like_a_race() {
    // An IdP with reuse detection (Auth0, Okta; not Entra) refuses the reuse.
    let mut lab = Lab::start(
        MockIdpConfig {
            refresh_reuse_detection: true,
            ..MockIdp::default_config()
        },
        AnalyzerConfig::default(),
    )
    .await;
    let rt = web_sign_in(&mut lab).await;
    let (status, _) = post(&lab, "token", &web_refresh(&rt), None).await;
    assert_eq!(status, 200);
    // The same token again, at once (a second tab).
    let (status, body) = post(&lab, "token", &web_refresh(&rt), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_codes"][0], 70008);
    let lines = lab
        .lines_until(|v| {
            v["summary"]
                .as_str()
                .is_some_and(|s| s.starts_with("refresh failed"))
        })
        .await;
    assert!(
        has(&lines, "refresh-token-reused", Some("refresh_token")),
        "{lines:#?}"
    );
    let reused = lines
        .iter()
        .find(|l| l["rule"] == "refresh-token-reused")
        .unwrap();
    assert_eq!(reused["severity"], "error");
    assert!(
        reused["message"].as_str().unwrap().contains("racing"),
        "{reused}"
    );
    assert_eq!(
        reused["evidence"]["earlier_redemption"]["outcome"],
        "tokens issued"
    );
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    assert_eq!(idp["field"], "AADSTS70008");
    assert!(
        idp["message"].as_str().unwrap().contains("confirmed"),
        "{idp}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_refresh_token_entra_still_accepts_is_still_reported() {
    // Entra does not revoke rotated refresh tokens: the reuse works, and
    // authlens says it would not on an IdP with reuse detection.
    let mut lab = Lab::default().await;
    let rt = web_sign_in(&mut lab).await;
    let (status, _) = post(&lab, "token", &web_refresh(&rt), None).await;
    assert_eq!(status, 200);
    let _ = lab.lines_until_verdict().await;
    let (status, body) = post(&lab, "token", &web_refresh(&rt), None).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    let reused = lines
        .iter()
        .find(|l| l["rule"] == "refresh-token-reused")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(
        reused["message"]
            .as_str()
            .unwrap()
            .contains("still accepted it"),
        "{reused}"
    );
    let summary = lines.last().unwrap()["summary"].as_str().unwrap();
    assert!(summary.starts_with("tokens refreshed"), "{summary}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_refresh_token_past_its_fixed_lifetime() {
    let lifetime = Duration::from_secs(1);
    let mut lab = Lab::start(
        MockIdpConfig {
            spa_refresh_lifetime: lifetime,
            ..MockIdp::default_config()
        },
        AnalyzerConfig {
            spa_refresh_lifetime: lifetime,
            ..AnalyzerConfig::default()
        },
    )
    .await;
    let tenant = lab.tenant();
    let mut params = authorize_params("st-spa", &[]);
    for p in &mut params {
        match p.0 {
            "client_id" => p.1 = SPA_CLIENT,
            "redirect_uri" => p.1 = SPA_REDIRECT,
            _ => {}
        }
    }
    let code = lab.authorize(&tenant, &params).await.expect("code issued");
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", SPA_REDIRECT),
        ("client_id", SPA_CLIENT),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = post(&lab, "token", &redeem, Some(SPA_ORIGIN)).await;
    assert_eq!(status, 200, "{body}");
    lab.lines_until_verdict().await;
    let rt = body["refresh_token"].as_str().unwrap().to_owned();
    // Well past the (shortened) lifetime, for both clocks.
    tokio::time::sleep(lifetime * 3).await;
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", SPA_CLIENT),
    ];
    let (status, body) = post(&lab, "token", &refresh, Some(SPA_ORIGIN)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_codes"][0], 700084);
    let lines = lab.lines_until_verdict().await;
    let expired = lines
        .iter()
        .find(|l| l["rule"] == "refresh-token-expired")
        .expect("refresh-token-expired");
    assert_eq!(expired["severity"], "error");
    assert_eq!(expired["field"], "refresh_token");
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    assert_eq!(idp["field"], "AADSTS700084");
    assert!(
        idp["message"].as_str().unwrap().contains("confirmed"),
        "{idp}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_by_another_client_or_for_more_scopes() {
    let mut lab = Lab::default().await;
    let rt = web_sign_in(&mut lab).await;
    // The public client presents the Web client's token.
    let other = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", PUBLIC_CLIENT),
    ];
    let (status, body) = post(&lab, "token", &other, None).await;
    assert_eq!(status, 400, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "param-mismatch", Some("client_id")),
        "{lines:#?}"
    );
    // Scopes beyond the sign-in's.
    let mut wider = web_refresh(&rt);
    wider.push(("scope", "User.Read Mail.Send"));
    let (status, body) = post(&lab, "token", &wider, None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_codes"][0], 65001);
    let lines = lab.lines_until_verdict().await;
    assert!(has(&lines, "param-mismatch", Some("scope")), "{lines:#?}");
    assert!(!has(&lines, "refresh-token-reused", None), "{lines:#?}");
    lab.stop().await;
}

/// A lab whose device codes ask for `interval` seconds between polls and
/// live `expires`.
async fn device_lab(interval: u64, expires: Duration) -> Lab {
    Lab::start(
        MockIdpConfig {
            device_interval: Some(interval),
            device_expires_in: expires,
            ..MockIdp::default_config()
        },
        AnalyzerConfig::default(),
    )
    .await
}

/// The public client's device authorization: `(device_code, user_code)`.
async fn device_code(lab: &mut Lab) -> (String, String) {
    let (status, body) = post(
        lab,
        "devicecode",
        &[
            ("client_id", PUBLIC_CLIENT),
            ("scope", "openid offline_access User.Read"),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let lines = lab
        .lines_until(|v| v["type"] == "device-authorization")
        .await;
    let device = lines.last().unwrap();
    assert!(device["interval"].is_u64(), "{device}");
    assert!(
        device["device_code"]
            .as_str()
            .unwrap()
            .starts_with("device_code#")
    );
    (
        body["device_code"].as_str().unwrap().to_owned(),
        body["user_code"].as_str().unwrap().to_owned(),
    )
}

async fn poll(lab: &Lab, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", code),
        ("client_id", PUBLIC_CLIENT),
    ];
    post(lab, "token", &form, None).await
}

/// Comfortably more than the 1 s interval, measured by any clock.
const POLL_PAUSE: Duration = Duration::from_millis(1300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_device_flow_with_pending_polls_has_no_warning() {
    let mut lab = device_lab(1, Duration::from_secs(900)).await;
    let (code, user_code) = device_code(&mut lab).await;
    for _ in 0..3 {
        let (status, body) = poll(&lab, &code).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("authorization_pending"))
        );
        tokio::time::sleep(POLL_PAUSE).await;
    }
    assert!(lab.idp.approve_device(&user_code));
    let (status, body) = poll(&lab, &code).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    let pending: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "token-response" && l["pending_poll"].is_u64())
        .collect();
    assert_eq!(pending.len(), 3, "{lines:#?}");
    assert!(pending.iter().all(|l| l["failed"] == false));
    let last = lines.iter().rev().find(|l| l["type"] == "token").unwrap();
    assert_eq!(last["pending_before"], 3);
    assert_eq!(last["grant_type"], DEVICE_GRANT);
    assert_eq!(
        lines.last().unwrap()["summary"],
        "device sign-in: tokens issued"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_polls_too_fast_get_slow_down() {
    let mut lab = device_lab(30, Duration::from_secs(900)).await;
    let (code, _) = device_code(&mut lab).await;
    let (status, _) = poll(&lab, &code).await;
    assert_eq!(status, 400);
    // At once: well within the 30 s interval, however slow the machine.
    let (status, body) = poll(&lab, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("slow_down")),
        "{body}"
    );
    let lines = lab
        .lines_until(|v| v["rule"] == "device-poll-too-fast")
        .await;
    let finding = lines.last().unwrap();
    assert_eq!(finding["field"], "interval");
    assert_eq!(finding["severity"], "error");
    assert_eq!(finding["evidence"]["interval_seconds"], 30);
    // slow_down is reported through it, not as an IdP error.
    assert!(!has(&lines, "idp-error", None), "{lines:#?}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_polled_after_expires_in() {
    let mut lab = device_lab(1, Duration::from_secs(1)).await;
    let (code, _) = device_code(&mut lab).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (status, body) = poll(&lab, &code).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("expired_token")),
        "{body}"
    );
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "code-expired", Some("device_code")),
        "{lines:#?}"
    );
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    assert_eq!(idp["field"], "AADSTS70019");
    assert!(
        idp["message"].as_str().unwrap().contains("confirmed"),
        "{idp}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_code_redeemed_again_after_tokens() {
    let mut lab = device_lab(1, Duration::from_secs(900)).await;
    let (code, user_code) = device_code(&mut lab).await;
    assert!(lab.idp.approve_device(&user_code));
    let (status, _) = poll(&lab, &code).await;
    assert_eq!(status, 200);
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    tokio::time::sleep(POLL_PAUSE).await;
    let (status, body) = poll(&lab, &code).await;
    assert_eq!(status, 400, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "code-reused", Some("device_code")),
        "{lines:#?}"
    );
    assert!(!has(&lines, "device-poll-too-fast", None), "{lines:#?}");
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    assert!(
        idp["message"].as_str().unwrap().contains("confirmed"),
        "{idp}"
    );
    lab.stop().await;
}

fn client_credentials(scope: &str) -> Vec<(&str, &str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", WEB_CLIENT),
        ("client_secret", WEB_SECRET),
        ("scope", scope),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_client_credentials_call_has_no_warning() {
    let mut lab = Lab::default().await;
    let (status, body) = post(
        &lab,
        "token",
        &client_credentials("https://graph.microsoft.com/.default"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    let token = lines.iter().find(|l| l["type"] == "token").unwrap();
    assert_eq!(token["grant_type"], "client_credentials");
    assert!(token["attempt"].is_null());
    assert!(!lines.iter().any(|l| l.to_string().contains(WEB_SECRET)));
    let answer = lines
        .iter()
        .find(|l| l["type"] == "token-response")
        .unwrap();
    assert_eq!(answer["decoded_tokens"][0]["token"], "access_token");
    assert_eq!(lab.idp.stats().client_credentials_issued, 1);
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_credentials_with_a_delegated_scope() {
    let mut lab = Lab::default().await;
    let (status, body) = post(&lab, "token", &client_credentials("User.Read"), None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_codes"][0], 1002012);
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "malformed-token-request", Some("scope")),
        "{lines:#?}"
    );
    assert!(!has(&lines, "token-without-authorize", None), "{lines:#?}");
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    assert_eq!(idp["field"], "AADSTS1002012");
    assert!(
        idp["message"].as_str().unwrap().contains("confirmed"),
        "{idp}"
    );
    lab.stop().await;
}

// === recordings ===

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/har")
        .join(name)
}

fn authlens(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

/// `authlens report` of a recording: the Markdown, the run having succeeded.
fn report_of(har: &std::path::Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let md_path = dir.path().join("report.md");
    let out = authlens(&[
        "report",
        har.to_str().unwrap(),
        "--out",
        md_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&md_path).unwrap()
}

/// Secrets of `refresh-reuse.har`.
const HAR_SECRETS: [&str; 5] = [
    "0.AXEA-har-refresh-code-5e6f",
    "app-secret-Rf7~k",
    "at-har-refresh-1a2b3c",
    "1.AXEA-refresh-first-aaaa",
    "1.AXEA-refresh-second-bbbb",
];

#[test]
fn analyze_a_recorded_refresh_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.jsonl");
    let har = fixture("refresh-reuse.har");
    let out = authlens(&[
        "analyze",
        har.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{log}");
    let lines: Vec<Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        findings(&lines),
        vec![
            (
                "refresh-token-reused".to_owned(),
                "error".to_owned(),
                Some("refresh_token".to_owned())
            ),
            (
                "idp-error".to_owned(),
                "error".to_owned(),
                Some("AADSTS70008".to_owned())
            ),
        ],
        "{log}"
    );
    let reused = lines
        .iter()
        .find(|l| l["rule"] == "refresh-token-reused")
        .unwrap();
    assert_eq!(
        reused["evidence"]["earlier_redemption"]["time"],
        "2024-05-02T10:00:00Z"
    );
    assert_eq!(reused["evidence"]["looks_like_race"], true);
    let grants: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "token")
        .filter_map(|l| l["grant_type"].as_str())
        .collect();
    assert_eq!(
        grants,
        ["authorization_code", "refresh_token", "refresh_token"]
    );
    assert!(log.contains("✔ tokens refreshed"), "{log}");
    assert!(log.contains("looks like two refreshes racing"), "{log}");
    for secret in HAR_SECRETS {
        assert!(!log.contains(secret), "{secret} in {log}");
        assert!(
            !lines.iter().any(|l| l.to_string().contains(secret)),
            "{secret}"
        );
    }

    // The report tells the same, the refreshes outside the sign-in attempt.
    let md = report_of(&har);
    for want in [
        "- 1 sign-in attempt(s) started, 1 redemption(s) seen",
        "- 2 token request(s) of other grants",
        "## Outside any attempt: failed",
        "| token request | POST, https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token, grant_type refresh_token, refresh_token#",
        "`refresh-token-reused` [refresh_token]",
        "### AADSTS70008: ",
    ] {
        assert!(md.contains(want), "missing {want:?}:\n{md}");
    }
    for secret in HAR_SECRETS {
        assert!(!md.contains(secret), "{secret} in report");
    }
}

// === the mock IdP by itself ===

fn mock_post(idp: &MockIdp, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let body = serde_urlencoded::to_string(form).unwrap();
    let req = http::Request::post(format!("https://login.microsoftonline.com{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes::Bytes::from(body))
        .unwrap();
    let resp = idp.handle(req);
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(resp.body()).unwrap_or(Value::Null),
    )
}

#[test]
fn the_mock_revokes_a_refresh_family_on_reuse_and_signs_devices_in_by_user_code() {
    let idp = MockIdp::new(MockIdpConfig {
        refresh_reuse_detection: true,
        ..MockIdp::default_config()
    });
    let tenant = idp.config().tenant.clone();
    let token = format!("/{tenant}/oauth2/v2.0/token");
    // A device sign-in, approved through the verification route.
    let (status, device) = mock_post(
        &idp,
        &format!("/{tenant}/oauth2/v2.0/devicecode"),
        &[
            ("client_id", PUBLIC_CLIENT),
            ("scope", "openid offline_access"),
        ],
    );
    assert_eq!(status, 200, "{device}");
    assert_eq!(device["interval"], 5);
    assert_eq!(device["expires_in"], 900);
    let code = device["device_code"].as_str().unwrap();
    let poll = [
        ("grant_type", DEVICE_GRANT),
        ("device_code", code),
        ("client_id", PUBLIC_CLIENT),
    ];
    let (status, pending) = mock_post(&idp, &token, &poll);
    assert_eq!(
        (status, pending["error_codes"][0].as_u64()),
        (400, Some(70016))
    );
    let user_code = device["user_code"].as_str().unwrap();
    let (status, _) = mock_post(
        &idp,
        &format!("/{tenant}/devicelogin"),
        &[("user_code", user_code)],
    );
    assert_eq!(status, 200);
    // Polled at once: slow_down, without an AADSTS number.
    let (status, slow) = mock_post(&idp, &token, &poll);
    assert_eq!(
        (status, slow["error"].as_str()),
        (400, Some("slow_down")),
        "{slow}"
    );
    assert_eq!(slow["error_codes"], serde_json::json!([]));
    assert_eq!(idp.live_lifecycle(), (0, 1));

    // Reuse detection revokes the whole family: the rotated token dies too.
    let web = idp.config().clients[0].clone();
    let code = {
        let url = testkit::lab::web_authorize_url(&tenant, "s");
        let resp = idp.handle(
            http::Request::get(url.as_str())
                .body(bytes::Bytes::new())
                .unwrap(),
        );
        testkit::lab::code_in(resp.headers()["location"].to_str().unwrap())
    };
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.test/callback"),
        ("client_id", web.client_id.as_str()),
        ("client_secret", "web-secret"),
        ("scope", "openid offline_access"),
    ];
    let (status, tokens) = mock_post(&idp, &token, &redeem);
    assert_eq!(status, 200, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: &str| {
        mock_post(
            &idp,
            &token,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", web.client_id.as_str()),
                ("client_secret", "web-secret"),
            ],
        )
    };
    let (status, rotated) = refresh(&first);
    assert_eq!(status, 200);
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(refresh(&first).1["error_codes"][0], 70008);
    assert_eq!(refresh(&second).1["error_codes"][0], 70008);
    assert_eq!(refresh("not-a-token").1["error_codes"][0], 9002313);
    assert_eq!(idp.stats().tokens_refreshed, 1);
    assert_eq!(idp.stats().codes_redeemed, 1);
}

#[test]
fn the_mock_refreshes_like_entra_old_tokens_work_and_scopes_pass_where_entra_passes_them() {
    let idp = MockIdp::new(MockIdp::default_config());
    let tenant = idp.config().tenant.clone();
    let token = format!("/{tenant}/oauth2/v2.0/token");
    let web = idp.config().clients[0].clone();
    let code = {
        let url = format!(
            "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize?response_type=code&client_id={}&redirect_uri=https%3A%2F%2Fapp.test%2Fcallback&scope=openid%20offline_access%20User.Read&state=s",
            web.client_id
        );
        let resp = idp.handle(
            http::Request::get(url.as_str())
                .body(bytes::Bytes::new())
                .unwrap(),
        );
        testkit::lab::code_in(resp.headers()["location"].to_str().unwrap())
    };
    let redeem = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.test/callback"),
        ("client_id", web.client_id.as_str()),
        ("client_secret", "web-secret"),
        ("scope", "openid offline_access User.Read"),
    ];
    let (status, tokens) = mock_post(&idp, &token, &redeem);
    assert_eq!(status, 200, "{tokens}");
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |rt: &str, scope: Option<&str>| {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", web.client_id.as_str()),
            ("client_secret", "web-secret"),
        ];
        form.extend(scope.map(|s| ("scope", s)));
        mock_post(&idp, &token, &form)
    };
    // No reuse detection (Entra's way): the rotated token still works.
    assert_eq!(refresh(&first, None).0, 200);
    assert_eq!(refresh(&first, None).0, 200);
    // Scopes Entra accepts: the Graph prefix, case, .default, another resource.
    for scope in [
        "https://graph.microsoft.com/User.Read openid",
        "user.read",
        "https://graph.microsoft.com/.default",
        "api://other-api/access_as_user",
    ] {
        let (status, body) = refresh(&first, Some(scope));
        assert_eq!(status, 200, "{scope}: {body}");
    }
    // A Graph permission never consented: 65001.
    let (status, body) = refresh(&first, Some("User.Read Mail.Send"));
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (400, Some(65001))
    );
}

#[test]
fn analyze_and_report_a_recorded_device_flow() {
    let har = fixture("device-flow.har");
    let out = authlens(&["analyze", har.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    // Four authorization_pending polls: a clean sign-in, one line for the wait.
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert_eq!(log.matches("authorization_pending").count(), 2, "{log}");
    assert!(log.contains("after 4 authorization_pending polls"), "{log}");
    assert!(log.contains("✔ device sign-in: tokens issued"), "{log}");
    assert!(!log.contains("✖"), "{log}");
    // The closing line counts the grant, its pending polls left out.
    let closing = String::from_utf8_lossy(&out.stderr);
    assert!(
        closing.contains(
            "0 sign-in attempt(s), other token requests: urn:ietf:params:oauth:grant-type:device_code \u{d7}1, 0 error(s)"
        ),
        "{closing}"
    );

    let md = report_of(&har);
    for want in [
        "## Outside any attempt: signed in",
        "| device authorization |",
        "user_code HARCODE12, expires_in 900 s, interval 5 s",
        "| device poll pending |",
        "after 4 authorization_pending poll(s)",
        "Verdict: device sign-in: tokens issued",
    ] {
        assert!(md.contains(want), "missing {want:?}:\n{md}");
    }
    assert_eq!(md.matches("| device poll pending |").count(), 1, "{md}");
    // The normal wait is not an IdP error to explain.
    assert!(!md.contains("## IdP errors explained"), "{md}");
    for secret in [
        "DAQABAAEAAAD-har-device-code-9f8e",
        "at-har-device-4d5e",
        "1.AXEA-har-device-rt-7a8b",
    ] {
        assert!(!md.contains(secret) && !log.contains(secret), "{secret}");
    }
}
