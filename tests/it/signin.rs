//! Sign-in analysis end to end: the real proxy, the mock Entra IdP over TLS,
//! and the analysis reading the proxy's exchange stream. One test per seed
//! cause of AADSTS90056, plus PKCE, plus clean flows.

use std::time::Duration;

use authlens::oauth::AnalyzerConfig;
use serde_json::Value;
use testkit::lab::{
    IDP, Lab, PUBLIC_CLIENT, VERIFIER, WEB_CLIENT, WEB_REDIRECT, WEB_SECRET, authorize_params,
    findings, has, token_form,
};
use testkit::mock_idp::{Faults, MockIdp};

fn problems(lines: &[Value]) -> Vec<(String, String, Option<String>)> {
    findings(lines)
        .into_iter()
        .filter(|(_, sev, _)| sev == "warning" || sev == "error")
        .collect()
}

fn assert_no_secret(lines: &[Value], secrets: &[&str]) {
    for line in lines {
        let text = line.to_string();
        for secret in secrets {
            assert!(!text.contains(secret), "secret {secret} leaked in {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_sign_in_has_no_warning_and_shows_every_leg() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-clean", &[]))
        .await
        .expect("code issued");
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
    let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
    for kind in ["authorize", "code", "token", "token-response", "verdict"] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    for line in &lines {
        assert!(
            line["time"].as_str().is_some_and(|t| t.contains('T')),
            "{line}"
        );
    }
    let token = body["access_token"].as_str().unwrap();
    assert_no_secret(&lines, &[&code, WEB_SECRET, VERIFIER, token]);
    // The code is still visible as a fingerprint, the same on both legs.
    let prints: Vec<String> = lines
        .iter()
        .filter(|l| l["type"] == "code" || l["type"] == "token")
        .filter_map(|l| l["code"].as_str().map(str::to_string))
        .collect();
    assert_eq!(prints.len(), 2, "{lines:#?}");
    assert_eq!(prints[0], prints[1]);
    assert!(prints[0].starts_with("code#"), "{prints:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn form_post_and_fragment_modes_are_clean_too() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    // form_post: the code arrives in an auto-submitting HTML form.
    let code = lab
        .authorize_form_post(&tenant, &authorize_params("st-fp", &[]))
        .await;
    lab.client
        .post(WEB_REDIRECT)
        .form(&[("code", code.as_str()), ("state", "st-fp")])
        .send()
        .await
        .unwrap();
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");

    let code = lab
        .authorize(
            &tenant,
            &authorize_params("st-frag", &[("response_mode", "fragment")]),
        )
        .await
        .expect("code in fragment");
    let (status, _) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200);
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cause_1_token_without_authorize() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    // The authorize leg happens outside the proxy (straight at the IdP).
    let code = lab.code_outside_proxy();
    let form = vec![
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", WEB_REDIRECT),
        ("client_id", WEB_CLIENT),
        ("client_secret", WEB_SECRET),
    ];
    let (status, _) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 200);
    let lines = lab.lines_until(|v| v["type"] == "token-response").await;
    let lines = [lines, lab.lines_until(|_| true).await].concat();
    assert!(has(&lines, "token-without-authorize", None), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cause_2_code_reused_is_confirmed_by_the_idp() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-reuse", &[]))
        .await
        .unwrap();
    assert_eq!(lab.redeem(&tenant, &token_form(&code)).await.0, 200);
    let _ = lab.lines_until_verdict().await;
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 400);
    assert!(body["error_codes"].to_string().contains("54005"), "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(has(&lines, "code-reused", None), "{lines:#?}");
    assert!(has(&lines, "idp-error", Some("AADSTS54005")), "{lines:#?}");
    let refused = lines
        .iter()
        .find(|l| l["type"] == "token-response")
        .unwrap();
    assert_eq!(refused["failed"], true, "{refused}");
    let reused = lines.iter().find(|l| l["rule"] == "code-reused").unwrap();
    assert_eq!(reused["severity"], "error");
    assert!(!reused["message"].as_str().unwrap().is_empty());
    assert!(!reused["fix"].as_str().unwrap().is_empty());
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    assert!(
        idp["message"].as_str().unwrap().contains("confirmed"),
        "{idp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cause_2_code_expired() {
    // No race against a timer: the IdP's clock is moved past the code's
    // lifetime, and the analysis, which reads real exchange times, is told
    // a lifetime far below the wait that follows (waiting longer, on a slow
    // machine, only makes the code older).
    const ANALYSIS_LIFETIME: Duration = Duration::from_millis(100);
    let idp = MockIdp::default_config();
    let idp_lifetime = idp.code_lifetime;
    let mut lab = Lab::start(
        idp,
        AnalyzerConfig {
            code_lifetime: Some(ANALYSIS_LIFETIME),
            ..AnalyzerConfig::default()
        },
    )
    .await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-exp", &[]))
        .await
        .unwrap();
    lab.idp.advance_clock(idp_lifetime + Duration::from_secs(1));
    tokio::time::sleep(ANALYSIS_LIFETIME * 3).await;
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 400, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(has(&lines, "code-expired", None), "{lines:#?}");
    assert!(has(&lines, "idp-error", Some("AADSTS70008")), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cause_3_wrong_endpoint_tenant_and_version() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-ep", &[]))
        .await
        .unwrap();
    let (status, _) = lab.redeem("common", &token_form(&code)).await;
    assert_eq!(status, 400);
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "endpoint-mismatch", Some("tenant")),
        "{lines:#?}"
    );

    let code = lab
        .authorize(&tenant, &authorize_params("st-ver", &[]))
        .await
        .unwrap();
    let resp = lab
        .client
        .post(format!("https://{IDP}/{tenant}/oauth2/token"))
        .form(&token_form(&code))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "endpoint-mismatch", Some("version")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cause_4_redirect_uri_and_client_id_mismatch() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-ru", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[2] = ("redirect_uri", "https://app.test/callback/");
    let (status, body) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 400, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "param-mismatch", Some("redirect_uri")),
        "{lines:#?}"
    );
    let finding = lines
        .iter()
        .find(|l| l["rule"] == "param-mismatch")
        .unwrap();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("trailing slash"),
        "{finding}"
    );

    let code = lab
        .authorize(&tenant, &authorize_params("st-cid", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[3] = ("client_id", PUBLIC_CLIENT);
    form.remove(4);
    let _ = lab.redeem(&tenant, &form).await;
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "param-mismatch", Some("client_id")),
        "{lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cause_5_malformed_token_requests_are_still_paired() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    // A JSON body.
    let code = lab
        .authorize(&tenant, &authorize_params("st-json", &[]))
        .await
        .unwrap();
    let json: serde_json::Map<String, Value> = token_form(&code)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let resp = lab
        .client
        .post(lab.endpoint(&tenant, "token"))
        .json(&json)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "malformed-token-request", Some("content-type")),
        "{lines:#?}"
    );
    assert!(has(&lines, "idp-error", Some("AADSTS900144")), "{lines:#?}");
    let finding = lines
        .iter()
        .find(|l| l["rule"] == "malformed-token-request")
        .unwrap();
    assert!(finding["attempt"].is_number(), "paired: {finding}");

    // A GET with the parameters in the query string.
    let code = lab
        .authorize(&tenant, &authorize_params("st-get", &[]))
        .await
        .unwrap();
    let url = reqwest::Url::parse_with_params(&lab.endpoint(&tenant, "token"), token_form(&code))
        .unwrap();
    let resp = lab.client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    let lines = lab.lines_until_verdict().await;
    assert!(
        has(&lines, "malformed-token-request", Some("method")),
        "{lines:#?}"
    );
    assert_no_secret(&lines, &[&code, WEB_SECRET, VERIFIER]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_mismatch_and_missing_verifier() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params("st-pk1", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[5] = (
        "code_verifier",
        "a-different-verifier-that-is-long-enough-0123456789",
    );
    let (status, _) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 400);
    let lines = lab.lines_until_verdict().await;
    assert!(has(&lines, "pkce-mismatch", None), "{lines:#?}");
    assert!(has(&lines, "idp-error", Some("AADSTS501481")), "{lines:#?}");

    let code = lab
        .authorize(&tenant, &authorize_params("st-pk2", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form.remove(5);
    let (status, _) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 400);
    let lines = lab.lines_until_verdict().await;
    assert!(has(&lines, "pkce-missing-verifier", None), "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aadsts90056_that_nothing_explains_lists_what_authlens_checked() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    lab.idp.set_faults(Faults {
        refuse_redemption: Some(90056),
        ..Faults::default()
    });
    let code = lab
        .authorize(&tenant, &authorize_params("st-90056", &[]))
        .await
        .unwrap();
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error_codes"].to_string().contains("90056"), "{body}");
    let lines = lab.lines_until_verdict().await;
    assert_eq!(
        findings(&lines),
        vec![(
            "idp-error".to_owned(),
            "error".to_owned(),
            Some("AADSTS90056".to_owned())
        )],
        "{lines:#?}"
    );
    let idp = lines.iter().find(|l| l["rule"] == "idp-error").unwrap();
    let message = idp["message"].as_str().unwrap();
    let fix = idp["fix"].as_str().unwrap();
    assert!(
        message.ends_with("authlens checked this redemption and found nothing wrong"),
        "{message}"
    );
    assert!(!message.contains('\n'), "one line: {message}");
    for circular in [
        "not explained by anything authlens saw",
        "check the app registration",
        "Check the authlens findings",
    ] {
        assert!(
            !message.contains(circular) && !fix.contains(circular),
            "{idp}"
        );
    }
    assert!(fix.contains("`authlens explain AADSTS90056`"), "{fix}");
    assert!(fix.starts_with("authlens checked and found fine: code issued and seen, first use, age, endpoint, redirect_uri, client_id, scope, request shape, PKCE."), "{fix}");

    let evidence = &idp["evidence"];
    let checked: Vec<&str> = evidence["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for (check, detail) in [
        ("code issued and seen", "paired with its /authorize request"),
        ("first use", "no earlier redemption"),
        ("age", "lifetime"),
        (
            "endpoint",
            &format!("tenant {tenant}, v2.0 as at /authorize"),
        ),
        ("redirect_uri", "identical to /authorize"),
        ("client_id", WEB_CLIENT),
        ("scope", "not sent at /token (optional)"),
        (
            "request shape",
            "POST with a form body, no parameter repeated or in the query string",
        ),
        ("PKCE", "matches the S256 code_challenge"),
    ] {
        assert!(
            checked
                .iter()
                .any(|c| c.starts_with(&format!("{check}: ")) && c.contains(detail)),
            "{check} ({detail}) not in {checked:#?}"
        );
    }
    assert_eq!(evidence["not_checked"], serde_json::json!([]), "{evidence}");
    // The causes the catalogue lists that these checks rule out are set
    // apart; what is left is what authlens cannot see.
    assert_eq!(evidence["ruled_out_causes"].as_array().unwrap().len(), 3);
    let likely = evidence["likely_causes"].as_array().unwrap();
    assert!(!likely.is_empty(), "{evidence}");
    assert!(
        likely.iter().all(|c| !c
            .as_str()
            .unwrap()
            .contains("redirect_uri, client_id or scope differ")),
        "{evidence}"
    );
    assert_eq!(evidence["explain"], "authlens explain AADSTS90056");

    // The refusal left the code unused: redeemed again without the fault, it
    // succeeds and is not a reuse.
    lab.idp.set_faults(Faults::default());
    let (status, _) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200);
    let lines = lab.lines_until_verdict().await;
    assert_eq!(problems(&lines), vec![], "{lines:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_refused_as_malformed_is_not_reused_by_the_next_redemption() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    // JSON body: Entra (and the mock) read only forms, so it answers 900144.
    let code = lab
        .authorize(&tenant, &authorize_params("st-json-then-form", &[]))
        .await
        .unwrap();
    let json: serde_json::Map<String, Value> = token_form(&code)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let resp = lab
        .client
        .post(lab.endpoint(&tenant, "token"))
        .json(&json)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request", "{body}");
    assert!(body["error_codes"].to_string().contains("900144"), "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(has(&lines, "malformed-token-request", Some("content-type")));

    // The same code, correctly as a form: accepted, and not a reuse.
    let (status, body) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    let lines = lab.lines_until_verdict().await;
    assert!(!has(&lines, "code-reused", None), "{lines:#?}");
    assert_eq!(problems(&lines), vec![], "{lines:#?}");

    // A first redemption the IdP refused after reading the code
    // (invalid_grant: the PKCE verifier) may have used it: still a reuse.
    let code = lab
        .authorize(&tenant, &authorize_params("st-grant-then-form", &[]))
        .await
        .unwrap();
    let mut form = token_form(&code);
    form[5] = (
        "code_verifier",
        "a-different-verifier-that-is-long-enough-0123456789",
    );
    let (status, body) = lab.redeem(&tenant, &form).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant", "{body}");
    let _ = lab.lines_until_verdict().await;
    let _ = lab.redeem(&tenant, &token_form(&code)).await;
    let lines = lab.lines_until_verdict().await;
    let reused = lines
        .iter()
        .find(|l| l["rule"] == "code-reused")
        .unwrap_or_else(|| panic!("no code-reused: {lines:#?}"));
    assert_eq!(
        reused["evidence"]["first_redemption"]["outcome"],
        "refused with AADSTS501481"
    );
}
