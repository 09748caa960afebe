//! HAR files end to end: `authlens analyze` and `authlens report` on
//! hand-built DevTools, Firefox and mitmproxy recordings, bad inputs, and the
//! `--har` recorder on a real proxied sign-in, checked for secrets and
//! round-tripped through the analysis.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use authlens::config::{OutputConfig, Sink};
use authlens::har::{self, ReadOptions};
use authlens::oauth::AnalyzerConfig;
use authlens::session::{Session, Tally};
use base64::Engine;
use serde_json::Value;
use testkit::lab::{
    Lab, VERIFIER, WEB_CLIENT, WEB_REDIRECT, WEB_SECRET, authorize_params, has, token_form,
};
use testkit::mock_idp::{Faults, MockIdp, NonceFault};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/har")
        .join(name)
}

fn authlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs")
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `analyze FILES --json PATH`: exit code, log text, JSON lines.
fn analyze(files: &[PathBuf]) -> (Option<i32>, String, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.jsonl");
    let mut args = vec!["analyze"];
    args.extend(files.iter().map(|f| path_str(f)));
    args.extend(["--json", path_str(&json)]);
    let out = authlens(&args);
    let lines = std::fs::read_to_string(&json)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        lines,
    )
}

fn rules(lines: &[Value]) -> Vec<(String, String, Option<String>)> {
    testkit::lab::findings(lines)
}

#[test]
fn a_browser_har_and_an_app_har_are_analysed_together() {
    let browser = fixture("chrome-browser.har");
    let app = fixture("firefox-app.har");

    // Alone, the app's HAR cannot know where the code came from.
    let (code, _, lines) = analyze(std::slice::from_ref(&app));
    assert_eq!(code, Some(1));
    assert!(
        testkit::lab::has(&lines, "token-without-authorize", None),
        "{lines:#?}"
    );

    // Together (in any order), the legs pair up across the files, in time
    // order although the browser wrote local times (+02:00) and the app UTC.
    let (code, log, lines) = analyze(&[app, browser]);
    assert_eq!(code, Some(1), "{log}");
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "authorize",
            "code",
            "token",
            "token-response",
            "verdict",
            "token",
            "finding",
            "token-response",
            "finding",
            "verdict"
        ],
        "{log}"
    );
    assert!(lines.iter().all(|l| l["attempt"] == 1), "{lines:#?}");
    assert!(!testkit::lab::has(&lines, "token-without-authorize", None));
    assert!(testkit::lab::has(&lines, "code-reused", None));
    assert!(testkit::lab::has(&lines, "idp-error", Some("AADSTS54005")));
    let times: Vec<&str> = lines.iter().filter_map(|l| l["time"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    assert!(times[0].starts_with("2024-05-01T12:00:00"), "{times:?}");
    // The same lines as the live log, with secrets fingerprinted.
    assert!(
        log.contains("#1   token           login.microsoftonline.com"),
        "{log}"
    );
    for secret in [
        "0.AXEA-har-code-7f3c9d",
        "app-secret-Zq8~x",
        VERIFIER,
        "at-har-9d8e7f",
    ] {
        assert!(!log.contains(secret), "{secret} in {log}");
    }
}

#[test]
fn a_clean_recording_exits_0_and_the_summary_goes_to_stderr() {
    let out = authlens(&["analyze", path_str(&fixture("mitmproxy-clean.har"))]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("(form_post, paired by state"), "{log}");
    assert!(log.contains("auth client_secret_basic"), "{log}");
    assert!(log.contains("✔ signed in: tokens issued"), "{log}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("3 exchange(s), 1 sign-in attempt(s), 0 error(s)"),
        "{err}"
    );
}

#[test]
fn unreadable_inputs_exit_2_with_a_clear_message() {
    let cases = [
        ("not-json.har", "not valid JSON"),
        ("wrong-version.har", "HAR version \"0.9\" is not supported"),
        ("truncated.har", "the file ends early"),
        (
            "no-timings.har",
            "entry 1: GET https://login.microsoftonline.com/common/oauth2/v2.0/authorize has no \"startedDateTime\"",
        ),
        ("does-not-exist.har", "cannot read the file"),
        // A directory opens, then fails to read: an IO error, not "bad JSON".
        ("", "cannot read the file"),
    ];
    for (name, want) in cases {
        let path = fixture(name);
        // A good file next to a bad one does not hide the bad one.
        let out = authlens(&[
            "analyze",
            path_str(&fixture("mitmproxy-clean.har")),
            path_str(&path),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("{}: ", path.display())),
            "{name}: {err}"
        );
        assert!(err.contains(want), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing analysed");
        let out = authlens(&["report", path_str(&path)]);
        assert_eq!(out.status.code(), Some(2), "report {name}");
    }
}

#[test]
fn a_body_devtools_dropped_is_reported_not_taken_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dropped.har");
    let entry = r#"{"startedDateTime":"2024-05-01T10:00:00Z","time":50,
        "request":{"method":"POST","url":"https://login.microsoftonline.com/common/oauth2/v2.0/token","httpVersion":"http/2.0",
                   "headers":[{"name":"content-type","value":"application/x-www-form-urlencoded"}],"queryString":[],"cookies":[],"headersSize":-1,"bodySize":180},
        "response":{"status":200,"statusText":"","httpVersion":"http/2.0","headers":[{"name":"content-type","value":"application/json"}],"cookies":[],
                    "content":{"size":1200,"mimeType":"application/json"},"redirectURL":"","headersSize":-1,"bodySize":-1},
        "cache":{},"timings":{"send":1,"wait":40,"receive":9}}"#;
    std::fs::write(
        &path,
        format!(r#"{{"log":{{"version":"1.2","creator":{{"name":"WebInspector","version":"537.36"}},"entries":[{entry}]}}}}"#),
    )
    .unwrap();
    let (code, log, lines) = analyze(&[path]);
    assert_eq!(code, Some(0), "{log}");
    let found = rules(&lines);
    assert_eq!(
        found,
        vec![(
            "malformed-token-request".to_string(),
            "warning".to_string(),
            Some("body".to_string())
        )],
        "no guessed 'missing grant_type': {log}"
    );
    let finding = lines.iter().find(|l| l["type"] == "finding").unwrap();
    assert_eq!(finding["evidence"]["body"], "not recorded");
}

#[test]
fn report_from_har_and_from_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out_md = dir.path().join("report.md");
    let out = authlens(&[
        "report",
        path_str(&fixture("chrome-browser.har")),
        path_str(&fixture("firefox-app.har")),
        "--out",
        path_str(&out_md),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(&out_md).unwrap();
    for want in [
        "## Attempt #1: failed",
        "| +0 ms | authorize |",
        "| +3.1 s | code issued |",
        "| +3.9 s | redeemed |",
        "| +5.1 s | IdP answer | HTTP 400, invalid_grant, AADSTS54005",
        "`code-reused` [code]",
        "  - Fix: Redeem each code once",
        "### AADSTS54005: ",
        "| Tenant | `contoso.onmicrosoft.com` |",
        "| client_id | `11111111-1111-4111-8111-111111111111` |",
        "| redirect_uri | `https://app.test/callback` |",
    ] {
        assert!(md.contains(want), "missing {want:?}:\n{md}");
    }
    for secret in [
        "0.AXEA-har-code-7f3c9d",
        "app-secret-Zq8~x",
        VERIFIER,
        "at-har-9d8e7f",
        "rt-har-1a2b3c",
    ] {
        assert!(!md.contains(secret), "{secret} in report");
    }

    // A JSON lines file written with --show-secrets still makes a clean report.
    let json = dir.path().join("clear.jsonl");
    let out = authlens(&[
        "analyze",
        path_str(&fixture("firefox-app.har")),
        "--show-secrets",
        "--json",
        path_str(&json),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let clear = std::fs::read_to_string(&json).unwrap();
    assert!(
        clear.contains("0.AXEA-har-code-7f3c9d"),
        "the input does hold secrets"
    );
    let out = authlens(&["report", "--from-json", path_str(&json)]);
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("## Outside any attempt"), "{md}");
    for secret in [
        "0.AXEA-har-code-7f3c9d",
        "app-secret-Zq8~x",
        VERIFIER,
        "at-har-9d8e7f",
        "rt-har-1a2b3c",
        "id-har-4d5e6f",
    ] {
        assert!(!md.contains(secret), "{secret} in report:\n{md}");
    }
}

// === --har on a real proxied sign-in ===

/// Every form a secret could take in a file.
fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    vec![
        secret.to_string(),
        authlens::oauth::params::encode_component(secret),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_string(),
        b64.encode(secret),
        b64.encode(format!("{WEB_CLIENT}:{secret}")),
    ]
}

fn assert_no_secret(text: &str, secrets: &[String], what: &str) {
    for secret in secrets {
        for form in forms(secret) {
            assert!(
                !text.contains(&form),
                "{secret} (as {form}) leaked in the {what}"
            );
        }
    }
}

/// Records a session of several sign-ins through the lab proxy; returns the
/// live JSON lines, the secrets that went over the wire and the HAR path.
async fn record(dir: &Path) -> (Vec<Value>, Vec<String>, PathBuf) {
    let har_path = dir.join("session.har");
    let mut lab =
        Lab::start_with_output(MockIdp::default_config(), recording(&har_path, false)).await;
    let tenant = lab.tenant();
    let mut live = Vec::new();
    let mut secrets = vec![WEB_SECRET.to_string(), VERIFIER.to_string()];

    // A clean sign-in, then the same code again.
    let code = lab
        .authorize(&tenant, &authorize_params("st-h1", &[]))
        .await
        .unwrap();
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200);
    for k in ["access_token", "refresh_token", "id_token"] {
        secrets.extend(body[k].as_str().map(str::to_string));
    }
    secrets.push(code.clone());
    live.extend(lab.lines_until_verdict().await);
    let _ = lab.redeem(&tenant, &token_form(&code)).await;
    live.extend(lab.lines_until_verdict().await);

    // form_post, then a redirect_uri with a trailing slash.
    let code = lab
        .authorize_form_post(&tenant, &authorize_params("st-h2", &[]))
        .await;
    secrets.push(code.clone());
    lab.client
        .post(WEB_REDIRECT)
        .form(&[("code", code.as_str()), ("state", "st-h2")])
        .send()
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[2] = ("redirect_uri", "https://app.test/callback/");
    let _ = lab.redeem(&tenant, &form).await;
    live.extend(lab.lines_until_verdict().await);

    // The secret sent with HTTP Basic, and a bearer token on an API call.
    let code = lab
        .authorize(&tenant, &authorize_params("st-h3", &[]))
        .await
        .unwrap();
    secrets.push(code.clone());
    let resp = lab
        .client
        .post(lab.endpoint(&tenant, "token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", WEB_REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    for k in ["access_token", "refresh_token", "id_token"] {
        secrets.extend(body[k].as_str().map(str::to_string));
    }
    live.extend(lab.lines_until_verdict().await);
    if let Some(at) = body["access_token"].as_str() {
        let _ = lab
            .client
            .get("https://app.test/api/me")
            .bearer_auth(at)
            .header("cookie", format!("session={at}"))
            .send()
            .await
            .unwrap();
    }

    let summary = lab.stop().await;
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);
    let (recorded, written) = summary.har.expect("the HAR was written");
    assert_eq!(recorded, har_path);
    assert!(written >= 10, "{written} entries");
    (live, secrets, har_path)
}

/// Outputs that record the session as a HAR at `path`, with secrets in
/// clear or not (for the analysis too, as `--show-secrets` does).
fn recording(path: &Path, show_secrets: bool) -> OutputConfig {
    let mut output = OutputConfig::silent(AnalyzerConfig {
        show_secrets,
        ..AnalyzerConfig::default()
    });
    output.har = Some(path.to_path_buf());
    output
}

/// `authlens analyze` in-process: the JSON lines and the tally.
fn analyse_har(path: &Path, show_secrets: bool) -> (Vec<Value>, Tally) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("events.jsonl");
    let mut output = OutputConfig::silent(AnalyzerConfig {
        show_secrets,
        ..AnalyzerConfig::default()
    });
    output.json = Some(Sink::File(json.clone()));
    let recording = har::load(&[path.to_path_buf()], ReadOptions::default()).unwrap();
    let tally = Session::replay(&recording, &output).unwrap();
    let lines = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, tally)
}

/// Findings as (rule, severity, field, message): messages name fingerprints,
/// exchange ids and times, so equal messages mean an equal analysis.
fn finding_texts(lines: &[Value]) -> Vec<(String, String, String, String)> {
    lines
        .iter()
        .filter(|l| l["type"] == "finding")
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (s("rule"), s("severity"), s("field"), s("message"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_har_of_a_proxied_session_hides_secrets_and_reanalyses_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (live, secrets, path) = record(dir.path()).await;
    let text = std::fs::read_to_string(&path).unwrap();
    assert_no_secret(&text, &secrets, "HAR");

    // Valid HAR 1.2, as Chrome's importer needs it.
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["log"]["version"], "1.2");
    assert_eq!(doc["log"]["creator"]["name"], "authlens");
    for e in doc["log"]["entries"].as_array().unwrap() {
        for key in [
            "startedDateTime",
            "time",
            "request",
            "response",
            "cache",
            "timings",
        ] {
            assert!(!e[key].is_null(), "{key} in {e}");
        }
        assert!(e["request"]["headers"].is_array() && e["request"]["queryString"].is_array());
        assert!(e["response"]["content"]["mimeType"].is_string());
        assert!(e["timings"]["wait"].as_f64().unwrap() >= 0.0);
    }
    // Pairing stays visible: the code has the same fingerprint as in the log.
    let print = live
        .iter()
        .find_map(|l| (l["type"] == "code").then(|| l["code"].as_str().unwrap().to_string()))
        .unwrap();
    assert!(
        text.contains(&print.replace('#', "%23")),
        "{print} in the Location"
    );

    let (again, tally) = analyse_har(&path, false);
    assert!(tally.errors > 0);
    let live_findings = finding_texts(&live);
    assert!(live_findings.iter().any(|f| f.0 == "code-reused"));
    assert!(live_findings.iter().any(|f| f.0 == "param-mismatch"));
    // The same findings, plus a note on each response whose tokens the
    // recording redacted.
    let (notes, again_findings): (Vec<_>, Vec<_>) = finding_texts(&again)
        .into_iter()
        .partition(|f| f.0 == "token-redacted");
    assert_eq!(again_findings, live_findings);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    assert!(
        notes
            .iter()
            .all(|n| n.1 == "info" && n.3.contains("signature removed by redaction"))
    );
    let verdicts = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["type"] == "verdict")
            .map(|l| l["summary"].clone())
            .collect()
    };
    assert_eq!(verdicts(&again), verdicts(&live));

    // The report from that HAR: the same story, no secret in any form.
    let report_path = dir.path().join("report.md");
    let mut output = OutputConfig::silent(AnalyzerConfig::default());
    output.report = Some(Sink::File(report_path.clone()));
    let recording = har::load(std::slice::from_ref(&path), ReadOptions::default()).unwrap();
    Session::replay(&recording, &output).unwrap();
    let md = std::fs::read_to_string(&report_path).unwrap();
    assert_no_secret(&md, &secrets, "report");
    assert!(md.contains("### AADSTS54005: "), "{md}");
    assert!(md.contains("`code-reused` [code]"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_show_secrets_the_har_keeps_them_and_pkce_is_rechecked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clear.har");
    let mut lab = Lab::start_with_output(MockIdp::default_config(), recording(&path, true)).await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-pk", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[5] = (
        "code_verifier",
        "a-different-verifier-that-is-long-enough-0123456789",
    );
    let _ = lab.redeem(&tenant, &form).await;
    let live = lab.lines_until_verdict().await;
    lab.stop().await.har.expect("the HAR was written");

    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(&code) && text.contains(WEB_SECRET));
    let (again, _) = analyse_har(&path, true);
    assert!(
        testkit::lab::has(&again, "pkce-mismatch", None),
        "{again:#?}"
    );
    assert_eq!(finding_texts(&again), finding_texts(&live));
}

/// The claims of a JWT, decoded without checking anything.
fn jwt_claims(token: &str) -> serde_json::Map<String, Value> {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

/// Every JWT-shaped string (`eyJ….….…`) in `text`.
fn jwts_in(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .filter(|w| w.starts_with("eyJ") && w.matches('.').count() == 2)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redacted_recording_keeps_the_nonce_check_and_no_personal_claim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonce.har");
    let mut lab = Lab::start_with_output(MockIdp::default_config(), recording(&path, false)).await;
    let tenant = lab.tenant();
    lab.idp.set_faults(Faults {
        nonce: NonceFault::Replace("n-from-another-tab".into()),
        ..Faults::default()
    });
    let code = lab
        .authorize(&tenant, &authorize_params("st-har-nonce", &[]))
        .await
        .unwrap();
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let live = lab.lines_until_verdict().await;
    assert!(has(&live, "nonce-mismatch", Some("nonce")), "{live:#?}");
    lab.stop().await.har.expect("the HAR was written");

    // No personal claim value of either token is in the file, and every JWT
    // left in it is unsigned and holds only the kept claims and the marker.
    let text = std::fs::read_to_string(&path).unwrap();
    let mut personal = Vec::new();
    for name in ["id_token", "access_token"] {
        let claims = jwt_claims(body[name].as_str().unwrap());
        for claim in ["sub", "oid", "name", "preferred_username"] {
            if let Some(v) = claims.get(claim).and_then(Value::as_str)
                && !v.is_empty()
            {
                personal.push(v.to_string());
            }
        }
    }
    assert!(personal.len() >= 5, "{personal:?}");
    for value in &personal {
        assert!(!text.contains(value.as_str()), "{value} in the HAR");
    }
    let jwts = jwts_in(&text);
    assert_eq!(jwts.len(), 2, "the id_token and the access token: {jwts:?}");
    let kept = authlens::oauth::jwt::KEPT_CLAIMS;
    for token in &jwts {
        assert!(token.ends_with('.'), "signature removed: {token}");
        for claim in jwt_claims(token).keys() {
            assert!(
                kept.contains(&claim.as_str()) || claim == "authlens_redacted",
                "{claim} kept in {token}"
            );
        }
    }

    // Re-analysed from the file: the same nonce-mismatch, the same token
    // fingerprints, and a note that the signature was removed.
    let (again, _) = analyse_har(&path, false);
    let messages = |lines: &[Value], rule: &str| -> Vec<String> {
        finding_texts(lines)
            .into_iter()
            .filter(|f| f.0 == rule)
            .map(|f| f.3)
            .collect()
    };
    assert_eq!(
        messages(&again, "nonce-mismatch"),
        messages(&live, "nonce-mismatch")
    );
    let prints = |lines: &[Value]| -> Vec<Value> {
        lines
            .iter()
            .filter(|l| l["type"] == "token-response")
            .flat_map(|l| l["decoded_tokens"].as_array().cloned().unwrap_or_default())
            .map(|d| d["fingerprint"].clone())
            .collect()
    };
    assert_eq!(prints(&again), prints(&live));
    let note = messages(&again, "token-redacted");
    assert_eq!(note.len(), 1, "{again:#?}");
    assert!(
        note[0].contains("signature removed by redaction"),
        "{note:?}"
    );

    // The binary's log says so too, and never calls the tokens unreadable.
    let out = authlens(&["analyze", path_str(&path)]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("signature removed by redaction"), "{log}");
    assert!(log.contains("nonce-mismatch"), "{log}");
    for word in ["unreadable", "not a JWT", "cannot read"] {
        assert!(!log.contains(word), "{word}: {log}");
    }
    for value in &personal {
        assert!(!log.contains(value.as_str()), "{value} in the log");
    }
}

// === the binary with --har ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlens_har_keeps_the_file_complete_while_proxying() {
    use testkit::binary::Binary;
    use testkit::lab::IDP;
    use testkit::outputs::har_entry_count;

    let ca = testkit::TestCa::new();
    let (idp, server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    let dir = tempfile::tempdir().unwrap();
    let har_path = dir.path().join("live.har");
    let certs = dir.path().join("certs");
    let mut proxy = Binary::start(
        testkit::binary::command_with_idp(env!("CARGO_BIN_EXE_authlens"), &certs, &ca, server.addr)
            .arg("--har")
            .arg(&har_path)
            .stdout(std::process::Stdio::null()),
    );
    // The file is a valid, empty HAR from the start (made right after the banner).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while har_entry_count(&har_path).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            har_entry_count(&har_path)
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(har_entry_count(&har_path), Ok(0));

    let ca_pem = std::fs::read(certs.join("authlens-ca.pem")).unwrap();
    let client = testkit::client_through(&proxy.url(), &ca_pem);
    let endpoint = |leaf: &str| format!("https://{IDP}/{tenant}/oauth2/v2.0/{leaf}");
    let url =
        reqwest::Url::parse_with_params(&endpoint("authorize"), authorize_params("st-bin", &[]))
            .unwrap();
    let code = testkit::lab::code_from_authorize(&client, url).await;
    let resp = client
        .post(endpoint("token"))
        .form(&token_form(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();

    // Both exchanges are on disk, in a complete file, while the proxy runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while har_entry_count(&har_path) != Ok(2) {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            har_entry_count(&har_path)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Killed without warning, nothing already written is lost.
    proxy.kill();
    assert_eq!(har_entry_count(&har_path), Ok(2));
    let text = std::fs::read_to_string(&har_path).unwrap();
    let mut secrets = vec![code, WEB_SECRET.to_string(), VERIFIER.to_string()];
    for k in ["access_token", "refresh_token", "id_token"] {
        secrets.extend(tokens[k].as_str().map(str::to_string));
    }
    assert_no_secret(&text, &secrets, "HAR written by the binary");

    let out = authlens(&["analyze", path_str(&har_path)]);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("✔ signed in: tokens issued"), "{log}");
}

#[test]
fn analyze_json_to_stdout_keeps_the_log_out_of_it() {
    let browser = fixture("chrome-browser.har");
    let app = fixture("firefox-app.har");
    let out = authlens(&["analyze", path_str(&browser), path_str(&app), "--json", "-"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.trim().is_empty(), "JSON lines on stdout");
    for line in stdout.lines() {
        serde_json::from_str::<Value>(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("authorize"),
        "the live log went to stderr: {stderr}"
    );
}
