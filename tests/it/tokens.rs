//! What the tokens say, end to end through the proxy with the mock Entra
//! IdP: decoded id_token and access token claims on the token response,
//! `nonce-mismatch`, `token-issuer-mismatch`, and the errors Entra shows on
//! its own HTML page instead of redirecting (`idp-error` on the attempt).

use serde_json::Value;
use testkit::lab::{Lab, WEB_CLIENT, authorize_params, findings, has, token_form};
use testkit::mock_idp::{Faults, NonceFault};

const OTHER_TENANT: &str = "00000000-0000-0000-0000-0000000000aa";

/// Signs in with the Web client at `tenant`; returns the events and the
/// token response body.
async fn sign_in(lab: &mut Lab, tenant: &str, state: &str) -> (Vec<Value>, Value) {
    let code = lab
        .authorize(tenant, &authorize_params(state, &[]))
        .await
        .expect("code issued");
    let (status, body) = lab.redeem(tenant, &token_form(&code)).await;
    assert_eq!(status, 200, "{body}");
    (lab.lines_until_verdict().await, body)
}

fn token_response(lines: &[Value]) -> &Value {
    lines
        .iter()
        .find(|l| l["type"] == "token-response")
        .expect("a token-response line")
}

fn decoded<'a>(lines: &'a [Value], token: &str) -> &'a Value {
    token_response(lines)["decoded_tokens"]
        .as_array()
        .and_then(|all| all.iter().find(|d| d["token"] == token))
        .unwrap_or_else(|| panic!("{token} not decoded: {}", token_response(lines)))
}

fn assert_no_raw_tokens(lines: &[Value], body: &Value) {
    for name in ["access_token", "id_token", "refresh_token"] {
        let Some(raw) = body[name].as_str() else {
            continue;
        };
        for line in lines {
            assert!(!line.to_string().contains(raw), "{name} leaked in {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_sign_in_shows_the_decoded_claims_and_no_finding() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let (lines, body) = sign_in(&mut lab, &tenant, "st-tok-clean").await;
    assert_eq!(findings(&lines), vec![], "{lines:#?}");
    let id = decoded(&lines, "id_token");
    assert_eq!(id["signature_verified"], false);
    assert_eq!(id["header"]["alg"], "RS256");
    assert_eq!(id["header"]["kid"], "mock");
    assert!(id["fingerprint"].as_str().unwrap().starts_with("id_token#"));
    let claims = &id["claims"];
    assert_eq!(claims["aud"], serde_json::json!([WEB_CLIENT]));
    assert_eq!(claims["tid"], tenant.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert!(claims["sub"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(claims["oid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        claims["iss"],
        format!("https://login.microsoftonline.com/{tenant}/v2.0")
    );
    for time in ["exp", "iat", "nbf"] {
        let t = claims[time].as_str().unwrap_or_default();
        assert!(t.contains('T') && t.ends_with('Z'), "{time}: {t}");
    }
    // The access token is a JWT too: its audience and scopes.
    let access = decoded(&lines, "access_token");
    assert_eq!(access["claims"]["scp"], "User.Read");
    assert!(access["claims"]["aud"][0].is_string());
    assert_no_raw_tokens(&lines, &body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonce_mismatch_when_the_id_token_carries_another_or_no_nonce() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    lab.idp.set_faults(Faults {
        nonce: NonceFault::Replace("n-from-another-tab".into()),
        ..Faults::default()
    });
    let (lines, body) = sign_in(&mut lab, &tenant, "st-nonce-1").await;
    assert_eq!(
        findings(&lines),
        vec![(
            "nonce-mismatch".to_owned(),
            "error".to_owned(),
            Some("nonce".to_owned())
        )],
        "{lines:#?}"
    );
    let finding = lines
        .iter()
        .find(|l| l["rule"] == "nonce-mismatch")
        .unwrap();
    assert_eq!(finding["evidence"]["authorize"], "n-0S6_WzA2Mj");
    assert_eq!(finding["evidence"]["id_token"], "n-from-another-tab");
    let verdict = lines.last().unwrap();
    assert_eq!(verdict["type"], "verdict");
    assert_eq!(verdict["errors"], 1, "{verdict}");
    assert_no_raw_tokens(&lines, &body);

    lab.idp.set_faults(Faults {
        nonce: NonceFault::Omit,
        ..Faults::default()
    });
    let (lines, _) = sign_in(&mut lab, &tenant, "st-nonce-2").await;
    assert!(has(&lines, "nonce-mismatch", Some("nonce")), "{lines:#?}");
    let finding = lines
        .iter()
        .find(|l| l["rule"] == "nonce-mismatch")
        .unwrap();
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("has no nonce claim"),
        "{finding}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_issuer_mismatch_for_a_tenant_but_not_for_common() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    lab.idp.set_faults(Faults {
        issuer_tenant: Some(OTHER_TENANT.into()),
        ..Faults::default()
    });
    let (lines, _) = sign_in(&mut lab, &tenant, "st-iss-1").await;
    assert_eq!(
        findings(&lines),
        vec![(
            "token-issuer-mismatch".to_owned(),
            "warning".to_owned(),
            Some("tid".to_owned())
        )],
        "{lines:#?}"
    );
    let finding = lines
        .iter()
        .find(|l| l["rule"] == "token-issuer-mismatch")
        .unwrap();
    assert!(
        finding["message"].as_str().unwrap().contains(OTHER_TENANT),
        "{finding}"
    );
    assert_eq!(finding["evidence"]["expected_tenant"], tenant.as_str());

    // /common accepts users of any tenant: no finding.
    let (lines, _) = sign_in(&mut lab, "common", "st-iss-2").await;
    assert_eq!(findings(&lines), vec![], "{lines:#?}");
    assert_eq!(decoded(&lines, "id_token")["claims"]["tid"], OTHER_TENANT);
}

/// The browser's authorize request that Entra answers with its own page.
async fn authorize_page(lab: &mut Lab, tenant: &str, params: &[(&str, &str)]) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(&lab.endpoint(tenant, "authorize"), params).unwrap();
    let resp = lab.client.get(url).send().await.unwrap();
    assert!(resp.headers().get("location").is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("<html"), "{page}");
    lab.lines_until_verdict().await
}

/// `params` with the value of `name` replaced.
fn replaced<'a>(
    params: Vec<(&'a str, &'a str)>,
    name: &str,
    value: &'a str,
) -> Vec<(&'a str, &'a str)> {
    params
        .into_iter()
        .map(|(k, v)| if k == name { (k, value) } else { (k, v) })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_on_entra_s_own_page_are_idp_errors_on_the_attempt() {
    let mut lab = Lab::default().await;
    let tenant = lab.tenant();
    let unknown_client = "99999999-9999-4999-8999-999999999999";
    let cases = [
        (
            tenant.as_str(),
            replaced(
                authorize_params("st-page-1", &[]),
                "client_id",
                unknown_client,
            ),
            "AADSTS700016",
        ),
        (
            tenant.as_str(),
            replaced(
                authorize_params("st-page-2", &[]),
                "redirect_uri",
                "https://app.test/not-registered",
            ),
            "AADSTS50011",
        ),
        (
            "no-such-tenant.onmicrosoft.com",
            authorize_params("st-page-3", &[]),
            "AADSTS90002",
        ),
    ];
    for (tenant, params, code) in cases {
        let lines = authorize_page(&mut lab, tenant, &params).await;
        let kinds: Vec<&str> = lines.iter().filter_map(|l| l["type"].as_str()).collect();
        assert_eq!(
            kinds,
            ["authorize", "finding", "verdict"],
            "{code}: {lines:#?}"
        );
        let attempt = &lines[0]["attempt"];
        assert!(attempt.is_u64());
        let finding = &lines[1];
        assert_eq!(finding["rule"], "idp-error");
        assert_eq!(finding["severity"], "error");
        assert_eq!(finding["field"], code);
        assert_eq!(&finding["attempt"], attempt);
        let message = finding["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("IdP refused /authorize: {code}: ")),
            "{message}"
        );
        assert!(
            message.ends_with("refused before any code was issued"),
            "{message}"
        );
        // The catalogue's explanation, not only the page's words.
        let entry = authlens::oauth::catalogue::lookup(code).unwrap();
        assert!(
            message.contains(entry.meaning.trim_end_matches('.')),
            "{message}"
        );
        assert_eq!(finding["evidence"]["catalogue"][0], code);
        let verdict = &lines[2];
        assert_eq!(verdict["outcome"], "failed");
        assert_eq!(&verdict["attempt"], attempt);
        assert!(
            verdict["summary"]
                .as_str()
                .unwrap()
                .starts_with(&format!("sign-in failed at /authorize: {code}")),
            "{verdict}"
        );
    }
    assert_eq!(lab.idp.stats().error_codes, [700016, 50011, 90002]);
}
