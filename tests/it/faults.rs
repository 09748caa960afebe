//! `--fault`: each fault against the mock Entra ID through the real proxy
//! over TLS. The client must receive the IdP's real error (or the one
//! authlens synthesized in its place), and the analysis must report the
//! rule that explains it, marked as injected.

use std::sync::Arc;
use std::time::Duration;

use authlens::config::OutputConfig;
use authlens::inject::{Fault, FaultInjector};
use authlens::oauth::AnalyzerConfig;
use authlens::proxy::{Body, BoxFuture, Hooks, InterceptContext, Interceptor, Verdict};
use serde_json::Value;
use testkit::lab::{
    CHALLENGE, Lab, VERIFIER, WEB_CLIENT, WEB_REDIRECT, authorize_params, token_form,
};
use testkit::mock_idp::{MockIdp, MockIdpConfig};

const SPA_CLIENT: &str = "33333333-3333-4333-8333-333333333333";
const SPA_REDIRECT: &str = "https://app.test/spa";

fn injector(faults: &[&str], code_lifetime: Option<Duration>) -> Hooks {
    let faults = faults
        .iter()
        .map(|f| Fault::parse(f).unwrap_or_else(|e| panic!("{f}: {e}")))
        .collect();
    let injector = FaultInjector::new(faults, code_lifetime, false).expect("no conflict");
    Hooks {
        interceptor: Some(Arc::new(injector)),
        local: None,
    }
}

async fn lab(faults: &[&str]) -> Lab {
    lab_with(MockIdp::default_config(), AnalyzerConfig::default(), faults).await
}

async fn lab_with(idp: MockIdpConfig, analyzer: AnalyzerConfig, faults: &[&str]) -> Lab {
    let lifetime = analyzer.code_lifetime;
    Lab::start_with_hooks(
        idp,
        OutputConfig::silent(analyzer),
        injector(faults, lifetime),
    )
    .await
}

/// The Web client's authorize leg (PKCE S256); the code it got.
async fn code_for(lab: &Lab, state: &str) -> String {
    lab.authorize(&lab.tenant(), &authorize_params(state, &[]))
        .await
        .expect("the IdP issues a code")
}

/// The IdP's (or the fault's) answer to the browser's authorize request,
/// not followed.
async fn authorize_answer(lab: &Lab, state: &str) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(
        &lab.endpoint(&lab.tenant(), "authorize"),
        &authorize_params(state, &[]),
    )
    .unwrap();
    lab.client.get(url).send().await.unwrap()
}

fn dump(lines: &[Value]) -> String {
    lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Events up to the verdict of a failed attempt.
async fn until_failed(lab: &mut Lab) -> Vec<Value> {
    lab.lines_until(|v| v["type"] == "verdict" && v["outcome"] == "failed")
        .await
}

/// The first AADSTS number of a token error response.
fn aadsts(json: &Value) -> u64 {
    json["error_codes"][0]
        .as_u64()
        .unwrap_or_else(|| panic!("no error_codes in {json}"))
}

/// A finding of `rule` (and `field`) is there, and every such finding is
/// marked as injected by `fault`; so are the `idp-error` finding and the
/// failed verdict.
fn assert_injected(lines: &[Value], rule: &str, field: Option<&str>, fault: &str) {
    let hits: Vec<&Value> = lines
        .iter()
        .filter(|v| v["type"] == "finding" && v["rule"] == rule)
        .filter(|v| field.is_none_or(|f| v["field"] == f))
        .collect();
    assert!(
        !hits.is_empty(),
        "{fault}: no {rule} ({field:?}) finding in:\n{}",
        dump(lines)
    );
    for hit in hits
        .into_iter()
        .chain(lines.iter().filter(|v| v["rule"] == "idp-error"))
        .chain(lines.iter().filter(|v| v["outcome"] == "failed"))
    {
        assert_eq!(
            hit["injected"], fault,
            "{fault}: not marked injected: {hit}"
        );
        assert!(
            hit["injected_note"]
                .as_str()
                .is_some_and(|n| n.contains(&format!("injected {fault}"))),
            "{hit}"
        );
    }
}

// === the request-rewriting faults ===

struct Case {
    fault: &'static str,
    aadsts: u64,
    rule: &'static str,
    field: Option<&'static str>,
}

#[tokio::test]
async fn each_rewriting_fault_gets_the_idps_real_error_and_the_rule_marked_injected() {
    let cases = [
        Case {
            fault: "redirect-mismatch",
            aadsts: 500112,
            rule: "param-mismatch",
            field: Some("redirect_uri"),
        },
        Case {
            fault: "wrong-verifier",
            aadsts: 501481,
            rule: "pkce-mismatch",
            field: None,
        },
        Case {
            fault: "drop-verifier",
            aadsts: 501481,
            rule: "pkce-missing-verifier",
            field: None,
        },
        Case {
            fault: "unknown-code",
            aadsts: 70000,
            rule: "token-without-authorize",
            field: None,
        },
        Case {
            fault: "wrong-tenant",
            aadsts: 700005,
            rule: "endpoint-mismatch",
            field: Some("tenant"),
        },
        Case {
            fault: "wrong-version",
            aadsts: 70000,
            rule: "endpoint-mismatch",
            field: Some("version"),
        },
        Case {
            fault: "json-body",
            aadsts: 900144,
            rule: "malformed-token-request",
            field: None,
        },
        Case {
            fault: "get-token",
            aadsts: 900561,
            rule: "malformed-token-request",
            field: None,
        },
        Case {
            fault: "drop-param=grant_type",
            aadsts: 900144,
            rule: "malformed-token-request",
            field: None,
        },
        Case {
            fault: "duplicate-param=code",
            aadsts: 9002313,
            rule: "malformed-token-request",
            field: None,
        },
        Case {
            fault: "add-origin",
            aadsts: 9002326,
            rule: "idp-error",
            field: None,
        },
    ];
    for case in cases {
        let mut lab = lab(&[case.fault]).await;
        let name = case.fault.split('=').next().unwrap();
        let code = code_for(&lab, "s-1").await;
        let (status, json) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
        assert_eq!(status, 400, "{}: {json}", case.fault);
        assert_eq!(aadsts(&json), case.aadsts, "{}: {json}", case.fault);
        let lines = until_failed(&mut lab).await;
        assert_injected(&lines, case.rule, case.field, name);
        let token = lines.iter().find(|v| v["type"] == "token").unwrap();
        assert_eq!(token["injected"], name, "the leg is marked: {token}");
        // The analysis saw what was really sent, not what the app sent.
        assert_eq!(lab.idp.stats().codes_redeemed, 0, "{}", case.fault);
        lab.stop().await;
    }
}

#[tokio::test]
async fn strip_origin_makes_a_spa_redemption_server_side() {
    let mut lab = lab(&["strip-origin"]).await;
    let params = [
        ("response_type", "code"),
        ("client_id", SPA_CLIENT),
        ("redirect_uri", SPA_REDIRECT),
        ("scope", "openid"),
        ("state", "spa"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = lab.authorize(&lab.tenant(), &params).await.unwrap();
    let resp = lab
        .client
        .post(lab.endpoint(&lab.tenant(), "token"))
        .header("origin", "https://app.test")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", SPA_REDIRECT),
            ("client_id", SPA_CLIENT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(aadsts(&json), 9002327, "{json}");
    let lines = until_failed(&mut lab).await;
    assert_injected(&lines, "idp-error", None, "strip-origin");
    lab.stop().await;
}

// === reuse-code, expire-code ===

#[tokio::test]
async fn reuse_code_redeems_a_copy_first_and_the_app_gets_54005() {
    let mut lab = lab(&["reuse-code"]).await;
    let code = code_for(&lab, "s-1").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(aadsts(&json), 54005, "{json}");
    assert!(
        json.get("access_token").is_none(),
        "the copy's tokens never reach the app"
    );
    let lines = until_failed(&mut lab).await;
    assert_injected(&lines, "code-reused", None, "reuse-code");
    let stats = lab.idp.stats();
    assert_eq!(stats.codes_redeemed, 1, "the copy was redeemed");
    assert_eq!(stats.token_requests, 2);
    // The copy's answer, as the analysis saw it, shows fingerprints only.
    let copy = lines
        .iter()
        .find(|v| v["type"] == "token-response" && v["status"] == 200)
        .unwrap_or_else(|| panic!("the copy's answer is analysed:\n{}", dump(&lines)));
    assert_eq!(copy["injected"], "reuse-code");
    assert!(
        !copy.to_string().contains("eyJ"),
        "no token in clear: {copy}"
    );
    lab.stop().await;
}

#[tokio::test]
async fn expire_code_holds_until_the_code_is_too_old() {
    let mut idp = MockIdp::default_config();
    idp.code_lifetime = Duration::from_secs(1);
    let analyzer = AnalyzerConfig {
        code_lifetime: Some(Duration::from_secs(1)),
        ..AnalyzerConfig::default()
    };
    // No duration: the hold follows --code-lifetime.
    let mut lab = lab_with(idp, analyzer, &["expire-code"]).await;
    let code = code_for(&lab, "s-1").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 400, "{json}");
    assert_eq!(aadsts(&json), 70008, "{json}");
    let lines = until_failed(&mut lab).await;
    assert_injected(&lines, "code-expired", None, "expire-code");
    lab.stop().await;
}

#[tokio::test]
async fn expire_code_holds_many_redemptions_at_once() {
    const N: usize = 200;
    let mut idp = MockIdp::default_config();
    idp.code_lifetime = Duration::from_secs(1);
    let lab = lab_with(idp, AnalyzerConfig::default(), &["expire-code=1s"]).await;
    let mut codes = Vec::new();
    for i in 0..N {
        codes.push(code_for(&lab, &format!("s-{i}")).await);
    }
    let lab = Arc::new(lab);
    let redemptions = codes.into_iter().map(|code| {
        let lab = lab.clone();
        tokio::spawn(async move { lab.redeem(&lab.tenant(), &token_form(&code)).await })
    });
    for done in futures_util::future::join_all(redemptions).await {
        let (status, json) = done.unwrap();
        assert_eq!((status, aadsts(&json)), (400, 70008), "{json}");
    }
    assert_eq!(lab.idp.stats().codes_redeemed, 0);
}

/// The fault injector, telling the test when a request reaches it.
struct Watched {
    inner: FaultInjector,
    entered: Arc<tokio::sync::Notify>,
}

impl Interceptor for Watched {
    fn wants(&self, head: &http::request::Parts, ctx: &InterceptContext) -> bool {
        self.inner.wants(head, ctx)
    }

    fn intercept<'a>(
        &'a self,
        req: http::Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        self.entered.notify_one();
        self.inner.intercept(req, ctx)
    }
}

#[tokio::test]
async fn stopping_during_a_hold_ends_cleanly() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let watched = Watched {
        inner: FaultInjector::new(vec![Fault::parse("expire-code=10m").unwrap()], None, false)
            .unwrap(),
        entered: entered.clone(),
    };
    let hooks = Hooks {
        interceptor: Some(Arc::new(watched)),
        local: None,
    };
    let lab = Lab::start_with_hooks(
        MockIdp::default_config(),
        OutputConfig::silent(AnalyzerConfig::default()),
        hooks,
    )
    .await;
    let code = code_for(&lab, "s-1").await;
    let held = {
        let client = lab.client.clone();
        let url = lab.endpoint(&lab.tenant(), "token");
        let form: Vec<(String, String)> = token_form(&code)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        tokio::spawn(async move { client.post(url).form(&form).send().await })
    };
    tokio::time::timeout(Duration::from_secs(30), entered.notified())
        .await
        .expect("the redemption reaches the injector");
    let idp = lab.idp.clone();
    let summary = tokio::time::timeout(Duration::from_secs(60), lab.stop())
        .await
        .expect("the session stops without waiting out the 10 min hold");
    let resp = held.await.unwrap().expect("the held request is answered");
    assert_eq!(resp.status(), 503, "answered by authlens, not sent on");
    assert_eq!(idp.stats().token_requests, 0);
    assert_eq!(summary.tally.signed_in, 0);
}

// === answering for the IdP ===

#[tokio::test]
async fn idp_error_answers_the_redemption_without_contacting_the_idp() {
    let mut lab = lab(&["idp-error=AADSTS50076"]).await;
    let code = code_for(&lab, "s-1").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 400);
    assert_eq!(aadsts(&json), 50076, "{json}");
    assert_eq!(json["error"], "invalid_grant");
    assert!(
        json["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS50076:")
    );
    for member in ["trace_id", "correlation_id", "timestamp"] {
        assert!(json[member].is_string(), "{member} in {json}");
    }
    let lines = until_failed(&mut lab).await;
    assert_injected(&lines, "idp-error", Some("AADSTS50076"), "idp-error");
    assert_eq!(
        lab.idp.stats().token_requests,
        0,
        "the IdP was not contacted"
    );
    lab.stop().await;
}

#[tokio::test]
async fn idp_error_at_authorize_redirects_the_error_to_the_app() {
    let mut lab = lab(&["idp-error=interaction_required@authorize"]).await;
    let resp = authorize_answer(&lab, "s-9").await;
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{WEB_REDIRECT}?error=interaction_required&")),
        "{location}"
    );
    assert!(location.ends_with("&state=s-9"), "{location}");
    let lines = until_failed(&mut lab).await;
    let code = lines.iter().find(|v| v["type"] == "code").unwrap();
    assert_eq!(code["error"], "interaction_required");
    assert_eq!(code["injected"], "idp-error");
    assert_injected(&lines, "idp-error", None, "idp-error");
    assert_eq!(lab.idp.stats().authorize_requests, 0);
    lab.stop().await;
}

#[tokio::test]
async fn idp_down_answers_502_or_resets() {
    let mut lab = lab(&["idp-down"]).await;
    let code = code_for(&lab, "s-1").await;
    let (status, _) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 502);
    let lines = lab.lines_until(|v| v["type"] == "token-response").await;
    let leg = lines.last().unwrap();
    assert_eq!(leg["injected"], "idp-down", "{leg}");
    assert_eq!(lab.idp.stats().token_requests, 0);
    lab.stop().await;

    let lab = lab_with(
        MockIdp::default_config(),
        AnalyzerConfig::default(),
        &["idp-down=reset"],
    )
    .await;
    let code = code_for(&lab, "s-1").await;
    let sent = lab
        .client
        .post(lab.endpoint(&lab.tenant(), "token"))
        .form(&token_form(&code))
        .send()
        .await;
    assert!(sent.is_err(), "the connection was reset: {sent:?}");
    assert_eq!(lab.idp.stats().token_requests, 0);
    lab.stop().await;
}

#[tokio::test]
async fn slow_idp_delays_then_the_sign_in_succeeds_marked() {
    let mut lab = lab(&["slow-idp=300ms"]).await;
    let code = code_for(&lab, "s-1").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 200, "{json}");
    let lines = lab.lines_until_verdict().await;
    let token = lines.iter().find(|v| v["type"] == "token").unwrap();
    assert_eq!(token["injected"], "slow-idp");
    assert!(
        lines
            .iter()
            .all(|v| v["type"] != "finding" || v["severity"] == "info"),
        "{}",
        dump(&lines)
    );
    lab.stop().await;
}

// === scope, and what faults leave alone ===

#[tokio::test]
async fn scopes_limit_a_fault_to_a_client_and_a_number_of_sign_ins() {
    let mut lab = lab(&[
        "unknown-code@times=1",
        &format!("redirect-mismatch@client={SPA_CLIENT}"),
    ])
    .await;
    let first = code_for(&lab, "s-1").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&first)).await;
    assert_eq!((status, aadsts(&json)), (400, 70000), "{json}");
    until_failed(&mut lab).await;
    // The next sign-in is left alone: times=1 is used up, and
    // redirect-mismatch is for another client.
    let second = code_for(&lab, "s-2").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&second)).await;
    assert_eq!(status, 200, "{json}");
    let lines = lab.lines_until_verdict().await;
    assert!(
        lines.iter().all(|v| v.get("injected").is_none()),
        "{}",
        dump(&lines)
    );
    lab.stop().await;
}

#[tokio::test]
async fn a_fault_that_cannot_apply_lets_the_request_through_unchanged() {
    // No PKCE in this sign-in: wrong-verifier has nothing to replace.
    let mut lab = lab(&["wrong-verifier"]).await;
    let params: Vec<(&str, &str)> = authorize_params("s-1", &[])
        .into_iter()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    let code = lab.authorize(&lab.tenant(), &params).await.unwrap();
    let form: Vec<(&str, &str)> = token_form(&code)
        .into_iter()
        .filter(|(k, _)| *k != "code_verifier")
        .collect();
    let (status, json) = lab.redeem(&lab.tenant(), &form).await;
    assert_eq!(status, 200, "{json}");
    let lines = lab.lines_until_verdict().await;
    assert!(
        lines.iter().all(|v| v.get("injected").is_none()),
        "{}",
        dump(&lines)
    );
    // The fault is still armed: the next sign-in with PKCE gets it.
    let code = code_for(&lab, "s-2").await;
    let (status, json) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!((status, aadsts(&json)), (400, 501481), "{json}");
    let lines = until_failed(&mut lab).await;
    assert_injected(&lines, "pkce-mismatch", None, "wrong-verifier");
    lab.stop().await;
}

// === the command line ===

fn authlens(args: &[&str]) -> std::process::Output {
    let certs = tempfile::tempdir().unwrap();
    std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--certs"])
        .arg(certs.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn bad_faults_exit_2_naming_the_valid_ones_and_nothing_starts() {
    for (args, says) in [
        (
            &["--fault", "reuse-cod"][..],
            "valid faults: reuse-code, expire-code",
        ),
        (&["--fault", "slow-idp"], "slow-idp needs a value"),
        (&["--fault", "reuse-code@colour=red"], "bad scope"),
        (
            &["--fault", "idp-error=AADSTS1"],
            "not in the error catalogue",
        ),
        (
            &["--fault", "drop-verifier", "--fault", "wrong-verifier"],
            "conflict: both change the code_verifier parameter",
        ),
        (&["--fail-on", "maybe"], "invalid value"),
    ] {
        let out = authlens(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("listening"), "nothing starts: {stderr}");
    }
}

#[test]
fn authlens_faults_lists_every_fault_with_an_example() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .arg("faults")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for fault in authlens::inject::CATALOGUE {
        assert!(text.contains(fault.name), "{} missing", fault.name);
        assert!(
            text.contains(fault.example),
            "{} example missing",
            fault.name
        );
    }
}

// === told everywhere ===

#[tokio::test]
async fn an_injected_failure_is_told_in_every_output_and_never_as_an_app_bug() {
    use authlens::config::{Audience, ColorChoice, OutputFlags};
    use authlens::output::json_lines;
    use authlens::output::live_log::{LiveLog, LiveLogOptions};
    use authlens::session::Session;

    let dir = tempfile::tempdir().unwrap();
    let (har, json, report) = (
        dir.path().join("run.har"),
        dir.path().join("run.jsonl"),
        dir.path().join("report.md"),
    );
    let flags = OutputFlags {
        har: Some(har.clone()),
        json: Some(json.clone()),
        no_live_log: true,
        color: ColorChoice::NEVER,
        ..OutputFlags::default()
    };
    let output = OutputConfig::decide(&flags, Audience::Terminal);
    let mut lab = Lab::start_with_hooks(
        MockIdp::default_config(),
        output,
        injector(&["reuse-code"], None),
    )
    .await;
    let code = code_for(&lab, "s-1").await;
    let (status, _) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 400);
    let lines = until_failed(&mut lab).await;
    let summary = lab.stop().await;
    assert!(summary.tally.injected >= 2, "{:?}", summary.tally);
    assert_eq!(
        (summary.tally.app_errors, summary.tally.app_warnings),
        (0, 0),
        "--fail-on sees no app bug: {:?}",
        summary.tally
    );

    // The live log: the note where it happened, no finding shown as an error.
    let mut log = LiveLog::new(LiveLogOptions::default());
    let events: Vec<_> = lines
        .iter()
        .map(|v| json_lines::from_line(&v.to_string()).expect("lines read back"))
        .collect();
    let text: Vec<String> = events.iter().flat_map(|e| log.render(e)).collect();
    let text = text.join("\n");
    assert!(
        text.contains("injected reuse-code: redeemed code#"),
        "{text}"
    );
    assert!(!text.contains("✖ error"), "{text}");
    assert!(text.contains("⚑ injected error"), "{text}");
    assert!(text.contains("not an app bug"), "{text}");

    // JSON lines on disk carry the marker.
    let written = std::fs::read_to_string(&json).unwrap();
    assert!(
        written
            .lines()
            .any(|l| l.contains("\"rule\":\"code-reused\"")
                && l.contains("\"injected\":\"reuse-code\"")),
        "{written}"
    );

    // The HAR: an entry comment, and a re-analysis that still knows.
    let har_text = std::fs::read_to_string(&har).unwrap();
    let doc: Value = serde_json::from_str(&har_text).unwrap();
    let comments: Vec<&str> = doc["log"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["comment"].as_str())
        .collect();
    assert_eq!(
        comments.len(),
        2,
        "the copy and the app's request: {comments:?}"
    );
    assert!(comments.iter().all(|c| c.contains("--fault reuse-code")));
    let recording = authlens::har::load(std::slice::from_ref(&har), Default::default()).unwrap();
    let replay_flags = OutputFlags {
        report: Some(report.clone()),
        no_live_log: true,
        color: ColorChoice::NEVER,
        ..OutputFlags::default()
    };
    let tally = Session::replay(
        &recording,
        &OutputConfig::decide(&replay_flags, Audience::Terminal),
    )
    .unwrap();
    assert!(tally.injected >= summary.tally.injected, "{tally:?}");
    assert_eq!(tally.app_errors, 0);

    // The report says it was on purpose.
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("failed on purpose (--fault reuse-code)"),
        "{md}"
    );
    assert!(md.contains("**injected error** `code-reused`"), "{md}");
    assert!(md.contains("no error of the app's own"), "{md}");
    assert!(!md.contains("**errors found**"), "{md}");

    // `analyze` of the recording: the injected failure is not an error of
    // the app (exit 0), and it says why.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .arg("analyze")
        .arg(&har)
        .arg("--no-color")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("injected by --fault when recorded"),
        "{stderr}"
    );
}

// === --fail-on, the binary at SIGTERM ===

/// The `authlens` binary with `args`, one sign-in without PKCE redeemed
/// `redemptions` times, then SIGTERM: its exit status, stdout (the live
/// log) and stderr (banner, summary).
async fn binary_run(
    args: &[&str],
    redemptions: usize,
) -> (std::process::ExitStatus, String, String) {
    use testkit::binary::{self, Binary};
    use testkit::lab::{IDP, code_from_authorize, web_authorize_url};

    let ca = testkit::TestCa::new();
    let (idp, server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    let work = tempfile::tempdir().unwrap();
    let mut proxy = Binary::start(
        binary::command_with_idp(
            env!("CARGO_BIN_EXE_authlens"),
            &work.path().join("certs"),
            &ca,
            server.addr,
        )
        .args(args)
        .stdout(std::process::Stdio::piped()),
    );
    let ca_pem = std::fs::read(work.path().join("certs/authlens-ca.pem")).unwrap();
    let client = testkit::client_through(&proxy.url(), &ca_pem);
    let code = code_from_authorize(&client, web_authorize_url(&tenant, "cli-state")).await;
    let form: Vec<(&str, &str)> = token_form(&code)
        .into_iter()
        .filter(|(k, _)| *k != "code_verifier")
        .collect();
    let token_url = format!("https://{IDP}/{tenant}/oauth2/v2.0/token");
    for _ in 0..redemptions {
        client.post(&token_url).form(&form).send().await.unwrap();
    }
    proxy.terminate();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut proxy.take_stdout(), &mut stdout).unwrap();
    let exit = proxy.wait().await;
    proxy.rest_of_stderr();
    let stderr = proxy.seen.join("\n");
    (exit, stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_on_counts_only_the_apps_own_findings() {
    // Only injected findings: the QA run passes.
    let (exit, stdout, stderr) =
        binary_run(&["--fault", "reuse-code", "--fail-on", "error"], 1).await;
    assert!(stderr.contains("FAULTS ACTIVE"), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l == "    --fault reuse-code (every sign-in)"),
        "one line per active fault in the banner: {stderr}"
    );
    assert!(
        stdout.contains("injected reuse-code: redeemed code#"),
        "{stdout}"
    );
    assert!(stdout.contains("code-reused"), "{stdout}");
    assert_eq!(exit.code(), Some(0), "{stderr}");

    // The app redeems its code twice by itself: a real bug fails the run.
    let (exit, _, stderr) = binary_run(&["--fail-on", "error"], 2).await;
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--fail-on error: the app's own sign-in findings: 2 error(s)"),
        "{stderr}"
    );

    // Without --fail-on, findings do not change the exit status.
    let (exit, _, stderr) = binary_run(&[], 2).await;
    assert_eq!(exit.code(), Some(0), "{stderr}");
}

// === a real browser ===

/// What the app's callback needs to redeem through authlens.
struct AppSetup {
    proxy_url: String,
    ca_pem: String,
    token_url: String,
    redirect_uri: String,
}

/// The app's callback: redeems the posted code through authlens (as a
/// server-side app does) and shows the result; a refusal takes its error
/// path, a page the browser shows.
fn app_callback(
    setup: Arc<std::sync::OnceLock<AppSetup>>,
    answers: Arc<std::sync::Mutex<Vec<Value>>>,
) -> testkit::upstream::Handler {
    Arc::new(move |req: http::Request<bytes::Bytes>| {
        let page = |html: String| {
            http::Response::builder()
                .header("content-type", "text/html")
                .body(bytes::Bytes::from(html))
                .unwrap()
        };
        if req.method() != http::Method::POST {
            return page("<html><body>app</body></html>".into());
        }
        let body = String::from_utf8_lossy(req.body()).into_owned();
        let code = reqwest::Url::parse(&format!("x:?{body}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        let setup = setup.clone();
        // The handler is synchronous: redeem on a thread of its own. The
        // wait for it must not hold a worker of the runtime the proxy runs
        // on: with both workers waiting (a browser posting twice), the
        // redemption through the proxy, and every timer, stood still.
        let answer: Value = tokio::task::block_in_place(|| {
            std::thread::spawn(move || {
                let setup = setup.get().expect("set before the browser starts");
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(async {
                        let client = reqwest::Client::builder()
                            .proxy(reqwest::Proxy::all(&setup.proxy_url).unwrap())
                            .add_root_certificate(
                                reqwest::Certificate::from_pem(setup.ca_pem.as_bytes()).unwrap(),
                            )
                            .tls_built_in_root_certs(false)
                            .build()
                            .unwrap();
                        client
                            .post(&setup.token_url)
                            .form(&[
                                ("grant_type", "authorization_code"),
                                ("code", code.as_str()),
                                ("redirect_uri", setup.redirect_uri.as_str()),
                                ("client_id", testkit::lab::PUBLIC_CLIENT),
                                ("code_verifier", VERIFIER),
                            ])
                            .send()
                            .await
                            .unwrap()
                            .json()
                            .await
                            .unwrap_or(Value::Null)
                    })
            })
            .join()
            .unwrap()
        });
        answers.lock().unwrap().push(answer.clone());
        match answer["error"].as_str() {
            Some(error) => page(format!(
                "<html><body><p id=\"signin-error\">Sign-in failed ({error}, {}). Please sign in again.</p></body></html>",
                answer["error_codes"][0]
            )),
            None => page("<html><body><p id=\"signed-in\">signed in</p></body></html>".into()),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_through_reuse_code_lands_on_the_apps_error_page() {
    use testkit::lab::{IDP, PUBLIC_CLIENT};
    use testkit::upstream::{TestUpstream, Tls};
    use testkit::{ProxyOptions, TestCa, TestProxy};

    let Some(browser) =
        testkit::chromium_or_skip("real-browser sign-in with --fault reuse-code (Chromium)")
    else {
        return;
    };
    let ca = TestCa::new();
    let (idp, idp_server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    let setup: Arc<std::sync::OnceLock<AppSetup>> = Arc::default();
    let answers: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let app =
        TestUpstream::start_with(&ca, Tls::None, app_callback(setup.clone(), answers.clone()))
            .await;
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![
                (IDP.into(), 443, idp_server.addr),
                ("127.0.0.1".into(), app.addr.port(), app.addr),
            ],
            trust_test_ca: true,
            tweak: Some(testkit::send_unrouted_hosts_nowhere),
            hooks: injector(&["reuse-code"], None),
            ..Default::default()
        },
    )
    .await;
    let mut events = proxy.session.events().live;
    let redirect_uri = format!("http://127.0.0.1:{}/callback", app.addr.port());
    let _ = setup.set(AppSetup {
        proxy_url: proxy.url(),
        ca_pem: proxy.ca_pem.clone(),
        token_url: format!("https://{IDP}/{tenant}/oauth2/v2.0/token"),
        redirect_uri: redirect_uri.clone(),
    });
    let authorize = reqwest::Url::parse_with_params(
        &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", PUBLIC_CLIENT),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid profile"),
            ("state", "browser-state"),
            ("response_mode", "form_post"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    // The DOM Chromium dumps is what the user would see.
    let out = testkit::binary::browser(
        env!("CARGO_BIN_EXE_authlens"),
        &proxy,
        &browser,
        &["--browser-output"],
        authorize.as_str(),
    )
    .await;
    let dom = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "dom:\n{dom}\nstderr:\n{stderr}");
    // The app's error path ran, and the browser shows it.
    assert!(
        dom.contains("id=\"signin-error\"") && dom.contains("54005"),
        "dom:\n{dom}\nstderr:\n{stderr}\napp saw: {:?}",
        answers.lock().unwrap()
    );
    let mut lines: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !lines
        .iter()
        .any(|l| l["type"] == "verdict" && l["outcome"] == "failed")
    {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .unwrap_or_else(|_| panic!("no failed verdict: {}", dump(&lines)))
            .unwrap();
        lines.push(serde_json::from_str(&authlens::output::json_lines::to_line(&event)).unwrap());
    }
    assert_injected(&lines, "code-reused", None, "reuse-code");
    proxy.stop().await;
}

/// `authlens run --fail-on error [extra] -- sh -c SCRIPT`, where the script
/// signs in with curl and redeems the code `redemptions` times, then exits
/// with `exit`: authlens's exit status and stderr.
async fn run_signing_in(extra: &[&str], redemptions: usize, exit: u8) -> (Option<i32>, String) {
    use testkit::lab::{IDP, WEB_SECRET};
    let ca = testkit::TestCa::new();
    let (idp, server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    let work = tempfile::tempdir().unwrap();
    let authorize = reqwest::Url::parse_with_params(
        &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", WEB_CLIENT),
            ("redirect_uri", WEB_REDIRECT),
            ("scope", "openid"),
            ("state", "run-state"),
        ],
    )
    .unwrap();
    let script = format!(
        r#"loc=$(curl -sS -o /dev/null -w '%{{redirect_url}}' '{authorize}') || exit 90
code=$(printf '%s' "$loc" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
[ -n "$code" ] || exit 91
i=0
while [ $i -lt {redemptions} ]; do
  curl -sS -o /dev/null -d grant_type=authorization_code -d "code=$code" --data-urlencode 'redirect_uri={WEB_REDIRECT}' -d client_id={WEB_CLIENT} -d client_secret={WEB_SECRET} 'https://{IDP}/{tenant}/oauth2/v2.0/token' || exit 92
  i=$((i+1))
done
exit {exit}"#
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(["run", "--listen", "127.0.0.1:0", "--no-color", "--certs"])
        .arg(work.path().join("certs"))
        .arg("--upstream-ca")
        .arg(&ca.pem_path)
        .arg("--connect-to")
        .arg(format!("{IDP}:443:127.0.0.1:{}", server.addr.port()))
        .args(["--fail-on", "error"])
        .args(extra)
        .args(["--", "sh", "-c", &script])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fail_on_fails_a_passing_command_only_for_real_bugs() {
    if testkit::on_path("curl").is_none() {
        return testkit::skip::skip(
            "authlens run --fail-on (curl)",
            "curl is not installed",
            testkit::skip::InCi::Required,
        );
    }
    // Injected only: the command's own success stands.
    let (code, stderr) = run_signing_in(&["--fault", "reuse-code"], 1, 0).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("FAULTS ACTIVE"), "{stderr}");
    assert!(stderr.contains("code-reused"), "{stderr}");
    // The app's own double redemption fails the run.
    let (code, stderr) = run_signing_in(&[], 2, 0).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--fail-on error"), "{stderr}");
    // A failing command keeps its own status.
    let (code, stderr) = run_signing_in(&[], 2, 3).await;
    assert_eq!(code, Some(3), "{stderr}");
}

// === a hold outlasts the proxy's idle timeout ===

fn hold_3s() -> FaultInjector {
    FaultInjector::new(vec![Fault::parse("expire-code=3s").unwrap()], None, false).unwrap()
}

/// A proxy that closes connections idle for 1 s, fitted to the fault (as
/// `authlens` does at start).
fn one_second_idle_fitted(config: &mut authlens::config::ProxyConfig) {
    config.timeouts.idle = Duration::from_secs(1);
    hold_3s().fit_timeouts(&mut config.timeouts);
}

#[tokio::test]
async fn a_hold_longer_than_the_idle_timeout_keeps_the_connection() {
    use testkit::lab::IDP;
    use testkit::{ProxyOptions, TestCa, TestProxy};

    let ca = TestCa::new();
    let mut config = MockIdp::default_config();
    config.code_lifetime = Duration::from_secs(1);
    let (idp, server) = testkit::lab::serve_mock_idp(&ca, config, ([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let tenant = idp.config().tenant.clone();
    let proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![(IDP.into(), 443, server.addr)],
            trust_test_ca: true,
            tweak: Some(one_second_idle_fitted),
            hooks: Hooks {
                interceptor: Some(Arc::new(hold_3s())),
                local: None,
            },
            ..Default::default()
        },
    )
    .await;
    let client = testkit::client_through(&proxy.url(), proxy.ca_pem.as_bytes());
    let authorize = reqwest::Url::parse_with_params(
        &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
        &authorize_params("s-1", &[]),
    )
    .unwrap();
    let code = testkit::lab::code_from_authorize(&client, authorize).await;
    let resp = client
        .post(format!("https://{IDP}/{tenant}/oauth2/v2.0/token"))
        .form(&token_form(&code))
        .send()
        .await
        .expect("the held connection is not closed as idle");
    assert_eq!(resp.status(), 400);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(aadsts(&json), 70008, "{json}");
    proxy.stop().await;
}

// === what faults leave alone ===

#[tokio::test]
async fn other_traffic_goes_through_byte_for_byte_and_unmarked() {
    use testkit::upstream::{Handler, TestUpstream, Tls};
    use testkit::{ProxyOptions, TestCa, TestProxy};

    let ca = TestCa::new();
    // Echoes what it received.
    let echo: Handler = Arc::new(|req: http::Request<bytes::Bytes>| {
        http::Response::builder()
            .header("content-type", "application/octet-stream")
            .body(req.into_body())
            .unwrap()
    });
    let upstream = TestUpstream::start_with(&ca, Tls::names(&["app.test"]), echo).await;
    let mut proxy = TestProxy::start(
        &ca,
        ProxyOptions {
            routes: vec![("app.test".into(), 443, upstream.addr)],
            trust_test_ca: true,
            // Every fault that reads form POSTs, unscoped.
            hooks: injector(
                &[
                    "drop-param=grant_type",
                    "json-body",
                    "add-origin",
                    "reuse-code",
                ],
                None,
            ),
            ..Default::default()
        },
    )
    .await;
    // A form that is not a code redemption (a refresh, a login form, an
    // odd encoding), and one too large to be read, over HTTP/1.1 and h2.
    let large = format!("grant_type=authorization_code&blob={}", "x".repeat(200_000));
    let bodies = [
        "grant_type=refresh_token&refresh_token=rt-1&client_id=c".to_string(),
        "user=a%2Bb&pass=%E2%82%AC+1&&=&x".to_string(),
        large,
    ];
    for (http, body) in [testkit::Http::One, testkit::Http::Two]
        .into_iter()
        .flat_map(|h| bodies.iter().map(move |b| (h, b.clone())))
    {
        let client = proxy.client(http);
        let resp = client
            .post("https://app.test/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let echoed = resp.bytes().await.unwrap();
        assert!(
            echoed == body.as_bytes(),
            "not forwarded as sent: {} bytes in, {} out, starting {:?}",
            body.len(),
            echoed.len(),
            String::from_utf8_lossy(&echoed[..echoed.len().min(80)])
        );
        let exchange = proxy.exchange_for("/login").await;
        assert!(
            exchange.intervention.is_none(),
            "not marked: {:?}",
            exchange.intervention
        );
    }
    proxy.stop().await;
}

#[tokio::test]
async fn idp_error_at_authorize_shows_entras_own_page_for_a_bad_reply_url() {
    let mut lab = lab(&["idp-error=AADSTS50011@authorize"]).await;
    let resp = authorize_answer(&lab, "s-page").await;
    assert_eq!(
        resp.status(),
        400,
        "no redirect: the reply URL is not trusted"
    );
    assert!(resp.headers().get("location").is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("AADSTS50011: "), "{page}");
    let lines = until_failed(&mut lab).await;
    assert_injected(&lines, "idp-error", Some("AADSTS50011"), "idp-error");
    assert_eq!(lab.idp.stats().authorize_requests, 0);
    lab.stop().await;
}

#[test]
fn fault_flags_before_a_subcommand_are_refused_not_ignored() {
    for args in [
        &["--fail-on", "error", "run", "--", "true"][..],
        &["--fault", "reuse-code", "browser"][..],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("go after the subcommand"), "{stderr}");
    }
}

#[tokio::test]
async fn the_copys_tokens_stay_fingerprinted_even_with_show_secrets() {
    let analyzer = AnalyzerConfig {
        show_secrets: true,
        ..AnalyzerConfig::default()
    };
    let mut lab = lab_with(MockIdp::default_config(), analyzer, &["reuse-code"]).await;
    let code = code_for(&lab, "s-1").await;
    let (status, _) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 400);
    let lines = until_failed(&mut lab).await;
    let copy = lines
        .iter()
        .find(|v| v["type"] == "token-response" && v["status"] == 200)
        .unwrap_or_else(|| panic!("the copy's answer is analysed:\n{}", dump(&lines)));
    assert!(
        !copy.to_string().contains("eyJ"),
        "no token in clear: {copy}"
    );
    lab.stop().await;
}
