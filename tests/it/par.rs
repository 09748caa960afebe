//! PAR (RFC 9126), JAR (RFC 9101) and Entra's SPA Origin rules end to end:
//! the real proxy, the mock IdP over TLS pushing, reading request objects
//! and refusing as Entra does, and the analysis judging each sign-in as if
//! the parameters had been on /authorize.

use std::time::Duration;

use authlens::oauth::AnalyzerConfig;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::lab::{
    CHALLENGE, IDP, Lab, VERIFIER, WEB_CLIENT, WEB_REDIRECT, WEB_SECRET, authorize_params,
    findings, has, token_form,
};
use testkit::mock_idp::MockIdp;

const SPA_CLIENT: &str = "33333333-3333-4333-8333-333333333333";
const SPA_REDIRECT: &str = "https://app.test/spa";

fn problems(lines: &[Value]) -> Vec<(String, String, Option<String>)> {
    findings(lines)
        .into_iter()
        .filter(|(_, sev, _)| sev == "warning" || sev == "error")
        .collect()
}

/// The Web client pushes `params` (authenticated with its secret); returns
/// the request_uri.
async fn push(lab: &Lab, params: &[(&str, &str)]) -> String {
    let mut form = params.to_vec();
    form.push(("client_secret", WEB_SECRET));
    let resp = lab
        .client
        .post(lab.endpoint(&lab.tenant(), "par"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let json: Value = resp.json().await.unwrap();
    assert!(json["expires_in"].as_u64().is_some(), "{json}");
    json["request_uri"]
        .as_str()
        .expect("request_uri")
        .to_owned()
}

/// /authorize with only client_id and `request_uri`, as .NET 9 sends it.
async fn authorize_by_uri(lab: &Lab, request_uri: &str) -> Option<String> {
    lab.authorize(
        &lab.tenant(),
        &[("client_id", WEB_CLIENT), ("request_uri", request_uri)],
    )
    .await
}

fn authorize_line(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|l| l["type"] == "authorize")
        .unwrap_or_else(|| panic!("no authorize line: {lines:#?}"))
}

fn idp_error(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|l| l["type"] == "finding" && l["rule"] == "idp-error")
        .unwrap_or_else(|| panic!("no idp-error: {lines:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_par_sign_in_has_no_warning_and_says_via_par() {
    let mut lab = Lab::default().await;
    // Discovery advertises the PAR endpoint (and teaches it to authlens).
    let discovery: Value = lab
        .client
        .get(format!(
            "https://{IDP}/{}/v2.0/.well-known/openid-configuration",
            lab.tenant()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["pushed_authorization_request_endpoint"],
        lab.endpoint(&lab.tenant(), "par")
    );
    let uri = push(&lab, &authorize_params("st-par", &[])).await;
    let code = authorize_by_uri(&lab, &uri).await.expect("code issued");
    let (status, body) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    let authorize = authorize_line(&lines);
    assert_eq!(authorize["via"], "par", "{authorize}");
    assert_eq!(
        authorize["redirect_uri"], WEB_REDIRECT,
        "read from the push"
    );
    assert_eq!(authorize["pkce"], "S256");
    let verdict = lines.last().unwrap();
    assert_eq!(verdict["outcome"], "signed-in", "{verdict}");
    assert_eq!(verdict["attempt"], authorize["attempt"]);
    for line in &lines {
        assert!(!line.to_string().contains(WEB_SECRET), "{line}");
    }
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_uri_mismatch_behind_par_is_found() {
    let mut lab = Lab::default().await;
    let uri = push(&lab, &authorize_params("st-mismatch", &[])).await;
    let code = authorize_by_uri(&lab, &uri).await.expect("code issued");
    let slash = format!("{WEB_REDIRECT}/");
    let mut form = token_form(&code);
    form.retain(|(k, _)| *k != "redirect_uri");
    form.push(("redirect_uri", &slash));
    let (status, body) = lab.redeem(&lab.tenant(), &form).await;
    assert_eq!(status, 400, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "param-mismatch", Some("redirect_uri")),
        "{lines:#?}"
    );
    let f = idp_error(&lines);
    assert_eq!(f["field"], "AADSTS500112", "{f}");
    assert!(f["message"].as_str().unwrap().contains("confirmed"), "{f}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_request_uri_is_explained() {
    let mut lab = Lab::default().await;
    let uri = push(&lab, &authorize_params("st-reuse", &[])).await;
    let code = authorize_by_uri(&lab, &uri).await.expect("code issued");
    let (status, _) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 200);
    lab.lines_until_verdict().await;
    // A reload of the /authorize URL.
    assert_eq!(authorize_by_uri(&lab, &uri).await, None, "no second code");
    let lines = lab.lines_until_verdict().await;
    let f = idp_error(&lines);
    assert_eq!(f["field"], "invalid_request_uri", "{f}");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("confirmed: request_uri")
            && message.contains("was already used by /authorize"),
        "{message}"
    );
    assert!(
        f["fix"]
            .as_str()
            .unwrap()
            .contains("new authorization request"),
        "{f}"
    );
    assert_eq!(lines.last().unwrap()["outcome"], "failed");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_uri_used_after_expires_in_is_explained() {
    let mut config = MockIdp::default_config();
    config.par_lifetime = Duration::from_secs(1);
    let mut lab = Lab::start(config, AnalyzerConfig::default()).await;
    let uri = push(&lab, &authorize_params("st-late", &[])).await;
    // Both clocks (the mock's and the exchanges') move at least this much.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(authorize_by_uri(&lab, &uri).await, None);
    let lines = lab.lines_until_verdict().await;
    let message = idp_error(&lines)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("after it was pushed") && message.contains("expires_in 1 s"),
        "{message}"
    );
    lab.stop().await;
}

/// An unsigned request object (`alg: none`) carrying `claims`.
fn request_object(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "oauth-authz-req+jwt"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jar_sign_in_is_read_from_the_request_object() {
    let mut lab = Lab::default().await;
    let claims: serde_json::Map<String, Value> = authorize_params("st-jar", &[])
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    let object = request_object(&Value::Object(claims));
    let code = lab
        .authorize(
            &lab.tenant(),
            &[("client_id", WEB_CLIENT), ("request", object.as_str())],
        )
        .await
        .expect("code issued");
    // The verifier does not match the challenge in the object: found.
    let wrong = "x".repeat(43);
    let mut form = token_form(&code);
    form.retain(|(k, _)| *k != "code_verifier");
    form.push(("code_verifier", &wrong));
    let (status, _) = lab.redeem(&lab.tenant(), &form).await;
    assert_eq!(status, 400);
    let lines = lab.lines_until_verdict().await;
    assert_eq!(authorize_line(&lines)["via"], "request_object");
    assert_eq!(authorize_line(&lines)["state"], "st-jar");
    assert!(
        has(&lines, "pkce-mismatch", Some("code_verifier")),
        "{lines:#?}"
    );

    // And a clean one is silent.
    let code = lab
        .authorize(
            &lab.tenant(),
            &[("client_id", WEB_CLIENT), ("request", object.as_str())],
        )
        .await
        .expect("code issued");
    let (status, _) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 200);
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_origin_refusals_say_what_the_wire_shows() {
    let mut lab = Lab::default().await;
    // A Web registration redeemed by a browser (Origin): 9002326.
    let code = lab
        .authorize(&lab.tenant(), &authorize_params("st-web", &[]))
        .await
        .unwrap();
    let resp = lab
        .client
        .post(lab.endpoint(&lab.tenant(), "token"))
        .header("origin", "https://app.test")
        .form(&token_form(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let lines = lab.lines_until_verdict().await;
    let f = idp_error(&lines);
    assert_eq!(f["field"], "AADSTS9002326");
    let message = f["message"].as_str().unwrap();
    assert!(
        message.contains("the request carried `Origin: https://app.test`")
            && message.contains("so Entra treated it as a browser redemption")
            && message.contains("the redirect URI is registered as Web"),
        "{message}"
    );
    assert!(f["fix"].as_str().unwrap().contains(WEB_REDIRECT), "{f}");

    // A SPA registration redeemed server-side (no Origin): 9002327.
    let spa = [
        ("response_type", "code"),
        ("client_id", SPA_CLIENT),
        ("redirect_uri", SPA_REDIRECT),
        ("scope", "openid"),
        ("state", "st-spa"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = lab.authorize(&lab.tenant(), &spa).await.unwrap();
    let (status, _) = lab
        .redeem(
            &lab.tenant(),
            &[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", SPA_REDIRECT),
                ("client_id", SPA_CLIENT),
                ("code_verifier", VERIFIER),
            ],
        )
        .await;
    assert_eq!(status, 400);
    let lines = lab.lines_until_verdict().await;
    let f = idp_error(&lines);
    assert_eq!(f["field"], "AADSTS9002327");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("the request carried no `Origin` header"),
        "{f}"
    );
    assert!(f["fix"].as_str().unwrap().contains("Web platform"), "{f}");
    lab.stop().await;
}
