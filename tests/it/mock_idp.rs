//! The mock Entra ID itself: what it answers at /authorize and /token, so
//! the tests that rely on it test authlens, not the mock.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use serde_json::{Value, json};
use testkit::mock_idp::*;

const WEB: &str = "11111111-1111-4111-8111-111111111111";
const PUBLIC: &str = "22222222-2222-4222-8222-222222222222";
const SPA: &str = "33333333-3333-4333-8333-333333333333";
const TENANT: &str = "72f988bf-0000-4000-8000-00000000c0de";
const CALLBACK: &str = "https://app.test/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn idp() -> MockIdp {
    MockIdp::new(MockIdp::default_config())
}

fn get(idp: &MockIdp, uri: &str) -> Response<Bytes> {
    idp.handle(Request::get(uri).body(Bytes::new()).unwrap())
}

fn encode(params: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(params).unwrap()
}

fn post_form(
    idp: &MockIdp,
    uri: &str,
    params: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Response<Bytes> {
    let mut req = Request::post(uri).header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    idp.handle(req.body(Bytes::from(encode(params))).unwrap())
}

fn location(resp: &Response<Bytes>) -> String {
    assert_eq!(resp.status(), StatusCode::FOUND, "{}", body(resp));
    resp.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_string()
}

fn body(resp: &Response<Bytes>) -> String {
    String::from_utf8(resp.body().to_vec()).unwrap()
}

fn json_body(resp: &Response<Bytes>) -> Value {
    serde_json::from_slice(resp.body()).unwrap()
}

/// Parameters after `?` or `#` in a URL.
fn params_of(url: &str, separator: char) -> HashMap<String, String> {
    let (_, tail) = url.split_once(separator).unwrap();
    serde_urlencoded::from_str(tail).unwrap()
}

fn authorize_url(version: &str, tenant: &str, params: &[(&str, &str)]) -> String {
    let path = if version == "v1" {
        "oauth2/authorize"
    } else {
        "oauth2/v2.0/authorize"
    };
    format!(
        "https://login.microsoftonline.com/{tenant}/{path}?{}",
        encode(params)
    )
}

fn token_url(version: &str, tenant: &str) -> String {
    let path = if version == "v1" {
        "oauth2/token"
    } else {
        "oauth2/v2.0/token"
    };
    format!("https://login.microsoftonline.com/{tenant}/{path}")
}

fn web_authorize(extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut params: Vec<(&str, String)> = vec![
        ("client_id", WEB.into()),
        ("response_type", "code".into()),
        ("redirect_uri", CALLBACK.into()),
        ("scope", "openid profile offline_access User.Read".into()),
        ("state", "st-1".into()),
        ("nonce", "n-1".into()),
    ];
    for (k, v) in extra {
        let k: &'static str = Box::leak(k.to_string().into_boxed_str());
        params.retain(|(name, _)| *name != k);
        params.push((k, v.to_string()));
    }
    params
}

fn as_refs<'a>(params: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    params.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Runs /authorize (query mode) and returns the issued code.
fn code_for(idp: &MockIdp, version: &str, tenant: &str, extra: &[(&str, &str)]) -> String {
    let params = web_authorize(extra);
    let resp = get(idp, &authorize_url(version, tenant, &as_refs(&params)));
    params_of(&location(&resp), '?')["code"].clone()
}

fn web_token_params<'a>(code: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CALLBACK),
        ("client_id", WEB),
        ("client_secret", "web-secret"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    params
}

fn redeem(
    idp: &MockIdp,
    version: &str,
    tenant: &str,
    code: &str,
    extra: &[(&str, &str)],
) -> Response<Bytes> {
    post_form(
        idp,
        &token_url(version, tenant),
        &web_token_params(code, extra),
        &[],
    )
}

/// Asserts an Entra-shaped error JSON and returns it.
fn assert_entra_error(resp: &Response<Bytes>, status: u16, error: &str, code: u64) -> Value {
    assert_eq!(resp.status().as_u16(), status, "{}", body(resp));
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v = json_body(resp);
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"], json!([code]), "{v}");
    let description = v["error_description"].as_str().unwrap();
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    assert!(description.contains("\r\nTrace ID: "), "{description}");
    for field in ["timestamp", "trace_id", "correlation_id", "error_uri"] {
        assert!(
            v[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {v}"
        );
    }
    v
}

fn jwt_part(jwt: &str, index: usize) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[index]).unwrap()).unwrap()
}

// --- clean flows ---

#[test]
fn clean_query_flow_issues_tokens() {
    let idp = idp();
    let resp = get(
        &idp,
        &authorize_url("v2", TENANT, &as_refs(&web_authorize(&[]))),
    );
    let loc = location(&resp);
    assert!(loc.starts_with("https://app.test/callback?code="), "{loc}");
    let p = params_of(&loc, '?');
    assert_eq!(p["state"], "st-1");
    assert!(p.contains_key("session_state"));
    let resp = redeem(&idp, "v2", TENANT, &p["code"], &[]);
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));
    let v = json_body(&resp);
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    assert_eq!(v["ext_expires_in"], 3599);
    assert_eq!(v["scope"], "openid profile offline_access User.Read");
    assert!(v["refresh_token"].as_str().is_some());
    let id_token = v["id_token"].as_str().unwrap();
    assert_eq!(
        jwt_part(id_token, 0),
        json!({"alg": "RS256", "kid": "mock", "typ": "JWT"})
    );
    let claims = jwt_part(id_token, 1);
    assert_eq!(
        claims["iss"],
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    );
    assert_eq!(claims["aud"], WEB);
    assert_eq!(claims["tid"], TENANT);
    assert_eq!(claims["nonce"], "n-1");
    for claim in ["oid", "sub", "iat", "nbf", "exp"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }
    let access = jwt_part(v["access_token"].as_str().unwrap(), 1);
    assert_eq!(access["aud"], GRAPH_APP_ID);
    assert_eq!(access["scp"], "User.Read");
    let stats = idp.stats();
    assert_eq!(
        (stats.codes_issued, stats.codes_redeemed, stats.token_errors),
        (1, 1, 0)
    );
    assert!(stats.error_codes.is_empty());
}

#[test]
fn fragment_mode_puts_the_code_after_hash() {
    let idp = idp();
    let params = web_authorize(&[("response_mode", "fragment")]);
    let loc = location(&get(&idp, &authorize_url("v2", TENANT, &as_refs(&params))));
    assert!(loc.starts_with("https://app.test/callback#code="), "{loc}");
    let p = params_of(&loc, '#');
    assert_eq!(p["state"], "st-1");
    assert_eq!(
        redeem(&idp, "v2", TENANT, &p["code"], &[]).status(),
        StatusCode::OK
    );
}

#[test]
fn form_post_mode_auto_submits_hidden_inputs() {
    let idp = idp();
    let params = web_authorize(&[("response_mode", "form_post")]);
    // POST /authorize is legal too.
    let resp = post_form(
        &idp,
        &token_url("v2", TENANT).replace("token", "authorize"),
        &as_refs(&params),
        &[],
    );
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = body(&resp);
    assert!(
        page.contains(
            "<form method=\"POST\" name=\"hiddenform\" action=\"https://app.test/callback\">"
        ),
        "{page}"
    );
    assert!(page.contains("<input type=\"hidden\" name=\"state\" value=\"st-1\" />"));
    assert!(page.contains("name=\"session_state\""));
    let code = page
        .split("name=\"code\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    assert_eq!(
        redeem(&idp, "v2", TENANT, code, &[]).status(),
        StatusCode::OK
    );
}

#[test]
fn interactive_login_issues_the_code_from_the_login_post() {
    let idp = MockIdp::new(MockIdpConfig {
        interactive: true,
        ..MockIdp::default_config()
    });
    let loc = location(&get(
        &idp,
        &authorize_url("v2", "common", &as_refs(&web_authorize(&[]))),
    ));
    assert!(
        loc.starts_with("https://login.microsoftonline.com/common/login?ctx="),
        "{loc}"
    );
    assert_eq!(idp.stats().codes_issued, 0);
    let ctx = params_of(&loc, '?')["ctx"].clone();
    let page = body(&get(&idp, &loc));
    assert!(page.contains(&ctx));
    let login = "https://login.microsoftonline.com/common/login";
    let resp = post_form(&idp, login, &[("ctx", &ctx), ("login", "alex")], &[]);
    let p = params_of(&location(&resp), '?');
    assert_eq!(p["state"], "st-1");
    assert_eq!(
        redeem(&idp, "v2", "common", &p["code"], &[]).status(),
        StatusCode::OK
    );
    // The context is single-use.
    let again = post_form(&idp, login, &[("ctx", &ctx)], &[]);
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    assert_eq!(idp.stats().logins, 1);
}

#[test]
fn pkce_s256_rfc7636_vector_and_plain() {
    let idp = idp();
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&idp, "v2", TENANT, &pkce);
    let resp = redeem(&idp, "v2", TENANT, &code, &[("code_verifier", VERIFIER)]);
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));

    let plain = [
        ("code_challenge", VERIFIER),
        ("code_challenge_method", "plain"),
    ];
    let code = code_for(&idp, "v2", TENANT, &plain);
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[("code_verifier", VERIFIER)]).status(),
        StatusCode::OK
    );
}

#[test]
fn v1_flow_uses_v1_token_shape() {
    let idp = idp();
    let code = code_for(
        &idp,
        "v1",
        "contoso.onmicrosoft.com",
        &[("resource", "https://graph.microsoft.com"), ("scope", "")],
    );
    let resp = redeem(
        &idp,
        "v1",
        "contoso.onmicrosoft.com",
        &code,
        &[("resource", "https://graph.microsoft.com")],
    );
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));
    let v = json_body(&resp);
    assert_eq!(v["expires_in"], "3599");
    assert_eq!(v["resource"], "https://graph.microsoft.com");
    assert!(v["expires_on"].as_str().is_some());
    let claims = jwt_part(v["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["iss"], format!("https://sts.windows.net/{TENANT}/"));
}

#[test]
fn public_client_loopback_any_port_and_http_basic_for_web() {
    let idp = idp();
    let params = [
        ("client_id", PUBLIC),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1:53211/callback"),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = params_of(
        &location(&get(&idp, &authorize_url("v2", "organizations", &params))),
        '?',
    )["code"]
        .clone();
    // A port-only difference on a loopback URI is allowed (RFC 8252 §7.3).
    let token = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1:60000/callback"),
        ("client_id", PUBLIC),
        ("code_verifier", VERIFIER),
    ];
    let resp = post_form(&idp, &token_url("v2", "organizations"), &token, &[]);
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));

    let code = code_for(&idp, "v2", TENANT, &[]);
    let basic = format!("Basic {}", STANDARD.encode(format!("{WEB}:web-secret")));
    let token = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
    ];
    let resp = post_form(
        &idp,
        &token_url("v2", TENANT),
        &token,
        &[("authorization", &basic)],
    );
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));
}

#[test]
fn discovery_document() {
    let idp = idp();
    let resp = get(
        &idp,
        &format!(
            "https://login.microsoftonline.com/{TENANT}/v2.0/.well-known/openid-configuration"
        ),
    );
    let v = json_body(&resp);
    assert_eq!(
        v["issuer"],
        format!("https://login.microsoftonline.com/{TENANT}/v2.0")
    );
    assert_eq!(
        v["authorization_endpoint"],
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize")
    );
    assert_eq!(
        v["token_endpoint"],
        format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token")
    );
    assert!(
        v["code_challenge_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("S256"))
    );
    let common = json_body(&get(
        &idp,
        "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
    ));
    assert_eq!(
        common["issuer"],
        "https://login.microsoftonline.com/{tenantid}/v2.0"
    );
    assert_eq!(
        get(
            &idp,
            "https://login.microsoftonline.com/nope/v2.0/.well-known/openid-configuration"
        )
        .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&idp, "https://login.microsoftonline.com/x/unknown").status(),
        StatusCode::NOT_FOUND
    );
}

// --- authorize-leg errors ---

fn error_page_code(resp: &Response<Bytes>) -> String {
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().get(header::LOCATION).is_none());
    assert!(
        resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    body(resp)
}

#[test]
fn authorize_errors_shown_on_the_idp_page() {
    let idp = idp();
    let unknown = web_authorize(&[("client_id", "99999999-0000-0000-0000-000000000000")]);
    assert!(
        error_page_code(&get(&idp, &authorize_url("v2", TENANT, &as_refs(&unknown))))
            .contains("AADSTS700016")
    );
    let bad_redirect = web_authorize(&[("redirect_uri", "https://app.test/callback/")]);
    assert!(
        error_page_code(&get(
            &idp,
            &authorize_url("v2", TENANT, &as_refs(&bad_redirect))
        ))
        .contains("AADSTS50011")
    );
    let no_client = web_authorize(&[("client_id", "")]);
    assert!(
        error_page_code(&get(
            &idp,
            &authorize_url("v2", TENANT, &as_refs(&no_client))
        ))
        .contains("AADSTS900144")
    );
    let page = error_page_code(&get(
        &idp,
        &authorize_url("v2", "other.example", &as_refs(&web_authorize(&[]))),
    ));
    assert!(page.contains("AADSTS90002"));
    // A loopback port wildcard never applies to https or non-loopback hosts.
    let other_port = web_authorize(&[("redirect_uri", "https://app.test:8443/callback")]);
    assert!(
        error_page_code(&get(
            &idp,
            &authorize_url("v2", TENANT, &as_refs(&other_port))
        ))
        .contains("AADSTS50011")
    );
    assert_eq!(
        idp.stats().error_codes,
        [700016, 50011, 900144, 90002, 50011]
    );
    assert_eq!(idp.stats().codes_issued, 0);
}

#[test]
fn authorize_errors_redirected_to_the_app() {
    let idp = idp();
    let silent = web_authorize(&[("prompt", "none")]);
    let p = params_of(
        &location(&get(&idp, &authorize_url("v2", TENANT, &as_refs(&silent)))),
        '?',
    );
    assert_eq!(p["error"], "login_required");
    assert!(p["error_description"].starts_with("AADSTS50058: "));
    assert_eq!(p["state"], "st-1");
    assert!(!p.contains_key("code"));

    let silent_post = web_authorize(&[("prompt", "none"), ("response_mode", "form_post")]);
    let page = body(&get(
        &idp,
        &authorize_url("v2", TENANT, &as_refs(&silent_post)),
    ));
    assert!(
        page.contains("name=\"error\" value=\"login_required\""),
        "{page}"
    );

    let token_only = web_authorize(&[("response_type", "token")]);
    let p = params_of(
        &location(&get(
            &idp,
            &authorize_url("v2", TENANT, &as_refs(&token_only)),
        )),
        '?',
    );
    assert_eq!(p["error"], "unsupported_response_type");
    let bad_method = web_authorize(&[
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "SHA256"),
    ]);
    let p = params_of(
        &location(&get(
            &idp,
            &authorize_url("v2", TENANT, &as_refs(&bad_method)),
        )),
        '?',
    );
    assert!(p["error_description"].starts_with("AADSTS501491: "));
    let no_scope = web_authorize(&[("scope", "")]);
    let p = params_of(
        &location(&get(
            &idp,
            &authorize_url("v2", TENANT, &as_refs(&no_scope)),
        )),
        '?',
    );
    assert!(p["error_description"].starts_with("AADSTS900144: "));
    assert_eq!(idp.stats().codes_issued, 0);
}

// --- token-leg enforcement ---

#[test]
fn get_on_token_endpoint() {
    let idp = idp();
    let resp = get(
        &idp,
        &format!(
            "{}?grant_type=authorization_code&code=abc",
            token_url("v2", TENANT)
        ),
    );
    assert_entra_error(&resp, 400, "invalid_request", 900561);
}

#[test]
fn json_body_query_params_and_missing_parameters() {
    let idp = idp();
    let code = code_for(&idp, "v2", TENANT, &[]);
    let json_req = Request::post(token_url("v2", TENANT))
        .header("content-type", "application/json")
        .body(Bytes::from(
            json!({"grant_type": "authorization_code", "code": code}).to_string(),
        ))
        .unwrap();
    let v = assert_entra_error(&idp.handle(json_req), 400, "invalid_request", 900144);
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("'grant_type'")
    );

    let in_query = format!(
        "{}?{}",
        token_url("v2", TENANT),
        encode(&web_token_params(&code, &[]))
    );
    assert_entra_error(
        &post_form(&idp, &in_query, &[], &[]),
        400,
        "invalid_request",
        900144,
    );

    let v = assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[("code", "")]),
        400,
        "invalid_request",
        900144,
    );
    assert!(v["error_description"].as_str().unwrap().contains("'code'"));
    let v = assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[("redirect_uri", "")]),
        400,
        "invalid_request",
        900144,
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("'redirect_uri'")
    );
    let resp = redeem(
        &idp,
        "v2",
        TENANT,
        &code,
        &[("grant_type", "authorisation_code")],
    );
    assert_entra_error(&resp, 400, "unsupported_grant_type", 70003);
    let mut repeated = web_token_params(&code, &[]);
    repeated.push(("code", &code));
    let resp = post_form(&idp, &token_url("v2", TENANT), &repeated, &[]);
    assert_entra_error(&resp, 400, "invalid_request", 9002313);
    // None of these consumed the code.
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[]).status(),
        StatusCode::OK
    );
}

#[test]
fn garbled_and_unknown_codes() {
    let idp = idp();
    let code = code_for(&idp, "v2", TENANT, &[]);
    let double_encoded = code.replace('.', "%2E") + "%3D";
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, &double_encoded, &[]),
        400,
        "invalid_request",
        9002313,
    );
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, "0.A", &[]),
        400,
        "invalid_request",
        9002313,
    );
    let truncated = &code[..code.len() - 5];
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, truncated, &[]),
        400,
        "invalid_grant",
        70000,
    );
}

#[test]
fn reuse_after_success_is_54005() {
    let idp = idp();
    let code = code_for(&idp, "v2", TENANT, &[]);
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[]).status(),
        StatusCode::OK
    );
    let resp = redeem(&idp, "v2", TENANT, &code, &[]);
    assert_entra_error(&resp, 400, "invalid_grant", 54005);
    let stats = idp.stats();
    assert_eq!((stats.codes_redeemed, stats.token_errors), (1, 1));
    assert_eq!(stats.error_codes, [54005]);
}

#[test]
fn expired_code_is_70008() {
    let idp = idp();
    let code = code_for(&idp, "v2", TENANT, &[]);
    idp.advance_clock(Duration::from_secs(601));
    let v = assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[]),
        400,
        "invalid_grant",
        70008,
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("issued 601 s ago")
    );
}

#[test]
fn endpoint_mismatches() {
    let idp = idp();
    // Tenant segment: common at authorize, GUID at token.
    let code = code_for(&idp, "v2", "common", &[]);
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[]),
        400,
        "invalid_grant",
        700005,
    );
    // The same segment in another case is the same tenant.
    assert_eq!(
        redeem(&idp, "v2", "COMMON", &code, &[]).status(),
        StatusCode::OK
    );
    // Version: v2 code redeemed at v1 (documented choice: 70000).
    let code = code_for(&idp, "v2", TENANT, &[]);
    let v = assert_entra_error(
        &redeem(&idp, "v1", TENANT, &code, &[]),
        400,
        "invalid_grant",
        70000,
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("v2.0 endpoint and redeemed at the v1.0")
    );
    // v2 refuses resource.
    let resp = redeem(
        &idp,
        "v2",
        TENANT,
        &code,
        &[("resource", "https://graph.microsoft.com")],
    );
    assert_entra_error(&resp, 400, "invalid_request", 901002);
    // Unknown tenant.
    assert_entra_error(
        &redeem(&idp, "v2", "nope.example", &code, &[]),
        400,
        "invalid_request",
        90002,
    );
}

#[test]
fn parameter_mismatches() {
    let idp = idp();
    let code = code_for(&idp, "v2", TENANT, &[]);
    for other in [
        "https://app.test/callback/",
        "http://app.test/callback",
        "https://APP.test/callback",
    ] {
        let resp = redeem(&idp, "v2", TENANT, &code, &[("redirect_uri", other)]);
        assert_entra_error(&resp, 400, "invalid_grant", 500112);
    }
    let resp = redeem(&idp, "v2", TENANT, &code, &[("scope", "openid Mail.Send")]);
    assert_entra_error(&resp, 400, "invalid_grant", 65001);
    // Narrowing the scope is fine.
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[("scope", "User.Read openid")]).status(),
        StatusCode::OK
    );

    // A code issued to the web client redeemed by the public client.
    let code = code_for(&idp, "v2", TENANT, &[]);
    let token = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", CALLBACK),
        ("client_id", PUBLIC),
    ];
    let v = assert_entra_error(
        &post_form(&idp, &token_url("v2", TENANT), &token, &[]),
        400,
        "invalid_grant",
        70000,
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("issued to client")
    );
    // An unknown client.
    let resp = redeem(
        &idp,
        "v2",
        TENANT,
        &code,
        &[("client_id", "99999999-0000-0000-0000-000000000000")],
    );
    assert_entra_error(&resp, 400, "unauthorized_client", 700016);
}

#[test]
fn client_authentication() {
    let idp = idp();
    let code = code_for(&idp, "v2", TENANT, &[]);
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[("client_secret", "")]),
        401,
        "invalid_client",
        7000218,
    );
    assert_entra_error(
        &redeem(
            &idp,
            "v2",
            TENANT,
            &code,
            &[("client_secret", "secret-id-not-value")],
        ),
        401,
        "invalid_client",
        7000215,
    );
    let basic = format!("Basic {}", STANDARD.encode(format!("{WEB}:web-secret")));
    let resp = post_form(
        &idp,
        &token_url("v2", TENANT),
        &web_token_params(&code, &[]),
        &[("authorization", &basic)],
    );
    assert_entra_error(&resp, 400, "invalid_request", 9002313);
    let assertion = web_token_params(
        &code,
        &[("client_secret", ""), ("client_assertion", "eyJ.x.y")],
    );
    assert_entra_error(
        &post_form(&idp, &token_url("v2", TENANT), &assertion, &[]),
        401,
        "invalid_client",
        700027,
    );

    let public = [
        ("client_id", PUBLIC),
        ("response_type", "code"),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("scope", "openid"),
    ];
    let code = params_of(
        &location(&get(&idp, &authorize_url("v2", TENANT, &public))),
        '?',
    )["code"]
        .clone();
    let token = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "http://127.0.0.1/callback"),
        ("client_id", PUBLIC),
        ("client_secret", "anything"),
    ];
    assert_entra_error(
        &post_form(&idp, &token_url("v2", TENANT), &token, &[]),
        401,
        "invalid_client",
        700025,
    );
    // Cross-origin redemption by a non-SPA registration.
    let resp = post_form(
        &idp,
        &token_url("v2", TENANT),
        &token[..4],
        &[("origin", "http://127.0.0.1")],
    );
    assert_entra_error(&resp, 400, "invalid_request", 9002326);
    // Failed attempts leave the code usable.
    assert_eq!(
        post_form(&idp, &token_url("v2", TENANT), &token[..4], &[]).status(),
        StatusCode::OK
    );
}

#[test]
fn spa_codes_must_be_redeemed_cross_origin() {
    let idp = idp();
    let params = [
        ("client_id", SPA),
        ("response_type", "code"),
        ("redirect_uri", "https://app.test/spa"),
        ("scope", "openid"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = params_of(
        &location(&get(&idp, &authorize_url("v2", TENANT, &params))),
        '?',
    )["code"]
        .clone();
    let token = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://app.test/spa"),
        ("client_id", SPA),
        ("code_verifier", VERIFIER),
    ];
    assert_entra_error(
        &post_form(&idp, &token_url("v2", TENANT), &token, &[]),
        400,
        "invalid_request",
        9002327,
    );
    let resp = post_form(
        &idp,
        &token_url("v2", TENANT),
        &token,
        &[("origin", "https://app.test")],
    );
    assert_eq!(resp.status(), StatusCode::OK, "{}", body(&resp));
}

#[test]
fn pkce_failures_are_501481() {
    let idp = idp();
    let pkce = [
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    let code = code_for(&idp, "v2", TENANT, &pkce);
    let other = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[("code_verifier", other)]),
        400,
        "invalid_grant",
        501481,
    );
    // Missing verifier: Entra reports the same "does not match" error.
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[]),
        400,
        "invalid_grant",
        501481,
    );
    // Too short to be a verifier.
    assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[("code_verifier", "short")]),
        400,
        "invalid_grant",
        501481,
    );
    // A verifier for a code issued without a challenge (RFC 9700 downgrade check).
    let plain_code = code_for(&idp, "v2", TENANT, &[]);
    assert_entra_error(
        &redeem(
            &idp,
            "v2",
            TENANT,
            &plain_code,
            &[("code_verifier", VERIFIER)],
        ),
        400,
        "invalid_grant",
        501481,
    );
    // The right verifier still works afterwards.
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[("code_verifier", VERIFIER)]).status(),
        StatusCode::OK
    );
    // Challenge of the wrong size.
    let short = [("code_challenge", "abc"), ("code_challenge_method", "S256")];
    let params = web_authorize(&short);
    let p = params_of(
        &location(&get(&idp, &authorize_url("v2", TENANT, &as_refs(&params)))),
        '?',
    );
    assert!(p["error_description"].starts_with("AADSTS50147: "));
}

#[test]
fn correlation_id_echoes_client_request_id() {
    let idp = idp();
    let resp = post_form(
        &idp,
        &token_url("v2", TENANT),
        &[("code", "x")],
        &[("client-request-id", "cafe-1234")],
    );
    let v = assert_entra_error(&resp, 400, "invalid_request", 900144);
    assert_eq!(v["correlation_id"], "cafe-1234");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("Correlation ID: cafe-1234")
    );
}

#[test]
fn faults_change_the_id_token() {
    let idp = idp();
    idp.set_faults(Faults {
        nonce: NonceFault::Replace("other".into()),
        issuer_tenant: Some("00000000-0000-0000-0000-0000000000aa".into()),
        ..Faults::default()
    });
    let code = code_for(&idp, "v2", TENANT, &[]);
    let v = json_body(&redeem(&idp, "v2", TENANT, &code, &[]));
    let claims = jwt_part(v["id_token"].as_str().unwrap(), 1);
    assert_eq!(claims["nonce"], "other");
    assert_eq!(claims["tid"], "00000000-0000-0000-0000-0000000000aa");
    idp.set_faults(Faults {
        nonce: NonceFault::Omit,
        ..Faults::default()
    });
    let code = code_for(&idp, "v2", TENANT, &[]);
    let v = json_body(&redeem(&idp, "v2", TENANT, &code, &[]));
    assert!(
        jwt_part(v["id_token"].as_str().unwrap(), 1)
            .get("nonce")
            .is_none()
    );
    // No openid scope: no id_token; no offline_access: no refresh token.
    let code = code_for(&idp, "v2", TENANT, &[("scope", "User.Read")]);
    let v = json_body(&redeem(&idp, "v2", TENANT, &code, &[]));
    assert!(v.get("id_token").is_none() && v.get("refresh_token").is_none());
}

#[test]
fn a_refusal_fault_answers_90056_to_a_valid_redemption_and_keeps_the_code() {
    let idp = idp();
    idp.set_faults(Faults {
        refuse_redemption: Some(90056),
        ..Faults::default()
    });
    let code = code_for(&idp, "v2", TENANT, &[]);
    let v = assert_entra_error(
        &redeem(&idp, "v2", TENANT, &code, &[]),
        400,
        "invalid_request",
        90056,
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("Invalid token redemption request"),
        "{v}"
    );
    // A request that is wrong anyway still gets its own error first.
    let other = code_for(&idp, "v2", TENANT, &[]);
    assert_entra_error(
        &redeem(&idp, "v2", "common", &other, &[]),
        400,
        "invalid_grant",
        700005,
    );
    // Without the fault, the same code is redeemed: the refusal left it unused.
    idp.set_faults(Faults::default());
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[]).status(),
        StatusCode::OK
    );
}

#[test]
fn state_is_pruned_and_bounded() {
    let idp = idp();
    for _ in 0..5 {
        code_for(&idp, "v2", TENANT, &[]);
    }
    assert_eq!(idp.stats().live_codes, 5);
    idp.advance_clock(Duration::from_secs(600) + CODE_RETENTION + Duration::from_secs(1));
    let code = code_for(&idp, "v2", TENANT, &[]);
    assert_eq!(idp.stats().live_codes, 1);
    assert_eq!(
        redeem(&idp, "v2", TENANT, &code, &[]).status(),
        StatusCode::OK
    );
}

#[test]
fn helpers() {
    assert!(same_redirect(
        "http://localhost/cb",
        "http://localhost:8080/cb"
    ));
    assert!(same_redirect(
        "http://[::1]:1/cb?x=1",
        "http://[::1]:2/cb?x=1"
    ));
    assert!(!same_redirect(
        "http://localhost/cb",
        "http://localhost:8080/cb/"
    ));
    assert!(!same_redirect(
        "https://localhost/cb",
        "https://localhost:8080/cb"
    ));
    assert!(!same_redirect(
        "http://10.0.0.1/cb",
        "http://10.0.0.1:8080/cb"
    ));
    assert_eq!(
        html_escape("<a href=\"x\">&'"),
        "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
    );
    let guid = random_guid();
    assert_eq!(guid.len(), 36);
    assert_eq!(&guid[14..15], "4");
    assert_eq!(random_token(96).len(), 96);
    assert_eq!(
        parse_basic(&HeaderValue::from_static("Basic YSUzQWI6cyUyNitz")),
        Some(("a:b".to_string(), "s& s".to_string()))
    );
    assert!(parse_basic(&HeaderValue::from_static("Bearer x")).is_none());
}

#[tokio::test]
async fn a_taken_port_is_an_error_not_a_panic() {
    let ca = testkit::TestCa::new();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = testkit::lab::serve_mock_idp(&ca, MockIdp::default_config(), addr)
        .await
        .err()
        .expect("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse, "{err}");
}
