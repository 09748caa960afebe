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

/// The Web client pushes `params`; returns the request_uri.
async fn push(lab: &Lab, params: &[(&str, &str)]) -> String {
    lab.push(&lab.tenant(), params).await.expect("request_uri")
}

async fn authorize_by_uri(lab: &Lab, request_uri: &str) -> Option<String> {
    lab.authorize_by_uri(&lab.tenant(), request_uri).await
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
    assert_eq!(authorize_line(&lines)["via"], "par", "{lines:#?}");
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
async fn a_request_uri_never_pushed_is_refused_on_the_idp_page_and_said() {
    let mut lab = Lab::default().await;
    assert_eq!(
        authorize_by_uri(&lab, "urn:ietf:params:oauth:request_uri:never-pushed").await,
        None
    );
    let lines = lab.lines_until_verdict().await;
    let f = idp_error(&lines);
    assert_eq!(f["field"], "invalid_request_uri", "{f}");
    assert!(
        f["message"].as_str().unwrap().contains(
            "authlens did not see request_uri urn:ietf:params:oauth:request_uri:never-pushed pushed"
        ),
        "{f}"
    );
    lab.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_whose_push_authlens_did_not_see_is_followed_with_unknown_parameters() {
    // The push reaches the IdP without the proxy (or before capture, as
    // .NET 9 may do); /authorize then carries only client_id and request_uri.
    let mut lab = Lab::default().await;
    let par = format!("https://{IDP}/{}/oauth2/v2.0/par", lab.tenant());
    let mut params = authorize_params("st-unseen", &[]);
    params.push(("client_secret", WEB_SECRET));
    let resp = lab.idp.handle(mock_request("POST", &par, &params));
    assert_eq!(resp.status(), 201);
    let body: Value = serde_json::from_slice(resp.body()).unwrap();
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    let code = authorize_by_uri(&lab, &uri).await.expect("code issued");
    let (status, body) = lab.redeem(&lab.tenant(), &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    // One sign-in: the code and the redemption joined the attempt.
    let authorize = authorize_line(&lines);
    assert_eq!(authorize["via"], "par", "{authorize}");
    assert!(
        authorize["via_note"]
            .as_str()
            .unwrap_or_default()
            .starts_with("authlens did not see the pushed request"),
        "{authorize}"
    );
    let attempt = &authorize["attempt"];
    assert!(attempt.is_u64(), "{authorize}");
    assert!(
        lines
            .iter()
            .filter(|l| l["type"] == "token" || l["type"] == "verdict")
            .all(|l| &l["attempt"] == attempt),
        "{lines:#?}"
    );
    // The verifier and redirect_uri were not judged against parameters
    // authlens never saw.
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
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

// === a recorded PAR sign-in ===

/// `authlens analyze` on a recording of an Okta PAR sign-in whose /authorize
/// URL was later reloaded: the sign-in is clean and says via PAR, the reload
/// is refused and explained.
#[test]
fn analyze_reads_a_recorded_par_sign_in_and_explains_the_reload() {
    let har =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/har/okta-par.har");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.jsonl");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args([
            "analyze",
            har.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "an error was found: {log}");
    assert!(log.contains("okta default  via PAR"), "{log}");
    let lines: Vec<Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let verdicts: Vec<&Value> = lines.iter().filter(|l| l["type"] == "verdict").collect();
    assert_eq!(verdicts.len(), 2, "{lines:#?}");
    assert_eq!(verdicts[0]["outcome"], "signed-in");
    assert_eq!(
        (
            verdicts[0]["errors"].as_u64(),
            verdicts[0]["warnings"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_eq!(verdicts[1]["outcome"], "failed");
    let first = authorize_line(&lines);
    assert_eq!(
        (&first["via"], &first["state"]),
        (&json!("par"), &json!("st-par-3"))
    );
    assert_eq!(first["pkce"], "S256", "read from the push: {first}");
    let f = idp_error(&lines);
    assert_eq!(f["field"], "invalid_request_uri");
    assert!(
        f["message"]
            .as_str()
            .unwrap()
            .contains("already used by /authorize"),
        "{f}"
    );

    // The report says it too.
    let md = dir.path().join("report.md");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args([
            "report",
            har.to_str().unwrap(),
            "--out",
            md.to_str().unwrap(),
        ])
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| Authorization request via | `PAR` |"), "{md}");
    assert!(md.contains("via PAR, mode form_post, pkce S256"), "{md}");
}

// === the mock's PAR endpoint ===

fn mock_request(method: &str, url: &str, form: &[(&str, &str)]) -> http::Request<bytes::Bytes> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(bytes::Bytes::from(
            serde_urlencoded::to_string(form).unwrap(),
        ))
        .unwrap()
}

/// The mock checks a push as /authorize would, binds the request_uri to
/// its client and uses it up once.
#[test]
fn the_mock_par_endpoint_authenticates_checks_and_binds() {
    let idp = MockIdp::new(MockIdp::default_config());
    let tenant = idp.config().tenant.clone();
    let par = format!("https://{IDP}/{tenant}/oauth2/v2.0/par");
    let params = authorize_params("st-mock", &[]);
    let json = |resp: http::Response<bytes::Bytes>| -> (u16, Value) {
        (
            resp.status().as_u16(),
            serde_json::from_slice(resp.body()).unwrap(),
        )
    };
    // A confidential client must authenticate.
    let (status, body) = json(idp.handle(mock_request("POST", &par, &params)));
    assert_eq!((status, &body["error"]), (401, &json!("invalid_client")));
    // An unregistered redirect_uri is refused in JSON, with Entra's number.
    let mut wrong = params.clone();
    wrong.retain(|(k, _)| *k != "redirect_uri");
    wrong.extend([
        ("redirect_uri", "https://evil.test/cb"),
        ("client_secret", WEB_SECRET),
    ]);
    let (status, body) = json(idp.handle(mock_request("POST", &par, &wrong)));
    assert_eq!(
        (status, &body["error_codes"]),
        (400, &json!([50011])),
        "{body}"
    );
    // A good push.
    let mut good = params.clone();
    good.push(("client_secret", WEB_SECRET));
    let (status, body) = json(idp.handle(mock_request("POST", &par, &good)));
    assert_eq!((status, &body["expires_in"]), (201, &json!(60)), "{body}");
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    assert!(
        uri.starts_with("urn:ietf:params:oauth:request_uri:"),
        "{uri}"
    );
    let authorize = |client: &str, uri: &str| {
        let url = reqwest::Url::parse_with_params(
            &format!("https://{IDP}/{tenant}/oauth2/v2.0/authorize"),
            &[("client_id", client), ("request_uri", uri)],
        )
        .unwrap();
        let resp = idp.handle(mock_request("GET", url.as_str(), &[]));
        (
            resp.status().as_u16(),
            resp.headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned())
                .unwrap_or_else(|| String::from_utf8_lossy(resp.body()).into_owned()),
        )
    };
    // Another client cannot use it (and the try spends it).
    let (_, location) = authorize(SPA_CLIENT, &uri);
    assert!(location.contains("error=invalid_request_uri"), "{location}");
    let (status, location) = authorize(WEB_CLIENT, &uri);
    assert_eq!(status, 302);
    assert!(
        location.contains("error=invalid_request_uri") && location.contains("state=st-mock"),
        "{location}"
    );
    // A fresh push works once.
    let (_, body) = json(idp.handle(mock_request("POST", &par, &good)));
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    let (_, location) = authorize(WEB_CLIENT, &uri);
    assert!(
        location.starts_with(&format!("{WEB_REDIRECT}?code=")),
        "{location}"
    );
    // Never pushed: the IdP's own page (it has no redirect_uri it can trust).
    let (status, page) = authorize(WEB_CLIENT, "urn:ietf:params:oauth:request_uri:nope");
    assert_eq!(status, 400);
    assert!(page.contains("invalid_request_uri"), "{page}");
    // Expired: the mock's clock moved past the lifetime.
    let (_, body) = json(idp.handle(mock_request("POST", &par, &good)));
    let uri = body["request_uri"].as_str().unwrap().to_owned();
    idp.advance_clock(Duration::from_secs(61));
    let (_, location) = authorize(WEB_CLIENT, &uri);
    assert!(location.contains("expired"), "{location}");
}

// === property tests of the PAR and JAR parsers ===

mod properties {
    use std::sync::Arc;

    use authlens::exchange::{
        CapturedBody, ConnectionInfo, Exchange, RequestRecord, ResponseRecord, Timings,
    };
    use authlens::oauth::message::{
        IndirectAuthorize, ParAnswer, PushedRequest, request_object_params,
    };
    use authlens::oauth::provider::KnownEndpoints;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use bytes::Bytes;
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "{",
        "}",
        "\"",
        ":",
        ",",
        "[",
        "]",
        "null",
        "60",
        "-1",
        "1e309",
        "\"request_uri\"",
        "\"expires_in\"",
        "\"error\"",
        "\"invalid_request\"",
        "urn:ietf:params:oauth:request_uri:",
        "<html>",
        "client_id=c",
        "&",
        "=",
        "%",
        "response_type=code",
        "request=",
        "request_uri=",
        "eyJhbGciOiJub25lIn0",
        ".",
        "redirect_uri=https%3A%2F%2Fapp%2Fcb",
        "\u{0}",
        "é",
    ];

    fn mixed(max: usize) -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                3 => prop::sample::select(PIECES).prop_map(str::to_string),
                1 => "\\PC{0,12}",
            ],
            0..max,
        )
        .prop_map(|parts| parts.concat())
    }

    fn request(method: &str, url: &str, body: &str) -> RequestRecord {
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        RequestRecord {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            uri: url.parse().unwrap(),
            version: Version::HTTP_11,
            headers,
            body: CapturedBody::complete(Bytes::from(body.to_owned())),
        }
    }

    fn response(status: u16, content_type: &str, body: &str) -> ResponseRecord {
        let mut headers = HeaderMap::new();
        if let Ok(ct) = HeaderValue::from_str(content_type) {
            headers.insert("content-type", ct);
        }
        ResponseRecord {
            status: StatusCode::from_u16(status).unwrap(),
            version: Version::HTTP_11,
            headers,
            body: CapturedBody::complete(Bytes::from(body.to_owned())),
            synthetic: false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        /// Any answer reads as something; a request_uri only from a JSON
        /// object that names one, and every note says what the answer was.
        #[test]
        fn par_answers_never_panic_and_name_a_request_uri_only_when_sent(
            status in prop::sample::select(&[200u16, 201, 400, 401, 500, 503][..]),
            content_type in prop::sample::select(&["application/json", "text/html", "", "text/plain"][..]),
            body in mixed(16),
        ) {
            match ParAnswer::parse(&response(status, content_type, &body)) {
                ParAnswer::Issued { request_uri, .. } => {
                    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
                    prop_assert!(!request_uri.is_empty());
                    prop_assert!(json.get("request_uri").is_some());
                }
                ParAnswer::Refused(answer) => prop_assert!(answer.is_error()),
                ParAnswer::Unreadable { status: s, note } => {
                    prop_assert_eq!(s, status);
                    prop_assert!(note.contains(&format!("HTTP {status}")), "{}", note);
                }
            }
        }

        /// A request object's string claims come back as its parameters;
        /// anything else is an error, never a panic.
        #[test]
        fn request_objects_read_back_or_fail_cleanly(
            claims in prop::collection::btree_map("[a-z_]{1,12}", "\\PC{0,20}", 0..8),
            garbage in mixed(12),
        ) {
            let payload = serde_json::to_string(&claims).unwrap();
            let object = format!("eyJhbGciOiJub25lIn0.{}.", URL_SAFE_NO_PAD.encode(payload));
            let params = request_object_params(&object).unwrap();
            for (name, value) in &claims {
                let got = params.first(name).map(|p| p.value.as_str());
                prop_assert_eq!(got, Some(value.as_str()));
            }
            let _ = request_object_params(&garbage);
        }

        /// Pushes and indirect /authorize requests of any shape are read or
        /// ignored, and an indirect one always resolves to a request or a note.
        #[test]
        fn pushes_and_indirect_authorize_requests_never_panic(
            body in mixed(16),
            query in mixed(12),
        ) {
            let known = KnownEndpoints::default();
            let pushed = PushedRequest::parse(
                &request("POST", "https://login.microsoftonline.com/t/oauth2/v2.0/par", &body),
                &known,
            );
            let url = format!(
                "https://login.microsoftonline.com/t/oauth2/v2.0/authorize?client_id=c&request_uri=u&{}",
                query.replace(['#', ' ', '"', '<', '>', '\\', '^', '`', '{', '|', '}'], "")
            );
            if let Ok(uri) = url.parse::<http::Uri>() {
                let req = request("GET", &uri.to_string(), "");
                if let Some(indirect) = IndirectAuthorize::parse(&req, &known) {
                    let _ = indirect.resolve(pushed.as_ref().map(|p| &p.params), None);
                    let _ = indirect.resolve(None, None);
                }
            }
            // And through the whole analysis.
            let mut analyzer = authlens::oauth::Analyzer::new(Default::default());
            for (i, (method, url, body)) in [
                ("POST", "https://login.microsoftonline.com/t/oauth2/v2.0/par", body.as_str()),
                ("GET", url.as_str(), ""),
            ]
            .into_iter()
            .enumerate()
            {
                let Ok(uri) = url.parse::<http::Uri>() else { continue };
                let exchange = Exchange {
                    id: i as u64,
                    connection: Arc::new(ConnectionInfo::default()),
                    started_at: time::OffsetDateTime::UNIX_EPOCH,
                    request: request(method, &uri.to_string(), body),
                    response: Some(response(201, "application/json", body)),
                    error: None,
                    timings: Timings::default(),
                    intervention: None,
                };
                for event in analyzer.observe(&exchange) {
                    let _ = authlens::output::json_lines::to_line(&event);
                }
            }
        }
    }
}
