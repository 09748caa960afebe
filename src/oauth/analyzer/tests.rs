//! Table tests: every rule fires on its case and stays silent on clean
//! flows (query, form_post, fragment, HTTP Basic, loopback, no state,
//! discovery-learnt endpoints, other providers).

use super::*;
use crate::exchange::Exchange;
use crate::oauth::event::Rule;
use crate::oauth::secret::fingerprint;
use crate::oauth::testing::{Ex, ex};

const TENANT_BASE: &str = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0";
const REDIRECT: &str = "https://app.example.com/signin-oidc";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const CODE: &str = "0.AXkA-code-value_123";
const SECRET: &str = "s3cr3t~value";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const SCOPE: &str = "openid profile offline_access User.Read";
const TOKENS: &str = r#"{"token_type":"Bearer","scope":"User.Read","expires_in":3599,"access_token":"eyJ0eXAi.access","refresh_token":"0.refresh","id_token":"eyJ0eXAi.id"}"#;

type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `base` with `changes` applied (replace, add, or remove with `None`), encoded.
fn form(base: &[(&str, &str)], changes: Changes<'_>) -> String {
    let mut pairs: Vec<(String, String)> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in changes {
        match (pairs.iter().position(|(n, _)| n == k), v) {
            (Some(i), Some(v)) => pairs[i].1 = v.to_string(),
            (Some(i), None) => {
                pairs.remove(i);
            }
            (None, Some(v)) => pairs.push((k.to_string(), v.to_string())),
            (None, None) => {}
        }
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn authorize_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", CLIENT),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("response_mode", "query"),
        ("scope", SCOPE),
        ("state", "S1"),
        ("nonce", "N1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn token_params() -> Vec<(&'static str, &'static str)> {
    vec![
        ("client_id", CLIENT),
        ("grant_type", "authorization_code"),
        ("code", CODE),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
        ("scope", SCOPE),
        ("client_secret", SECRET),
    ]
}

/// Leg 1 at t=0 on `base`/authorize; the IdP answers with its login page.
fn authorize_on(base: &str, changes: Changes<'_>) -> Exchange {
    ex(
        "GET",
        &format!("{base}/authorize?{}", form(&authorize_params(), changes)),
    )
    .id(1)
    .at(0.0)
    .status(200)
    .resp_header("content-type", "text/html")
    .resp_body("<html><body><form action=\"/login\"><input name=\"login\"></form></body></html>")
    .build()
}

fn authorize(changes: Changes<'_>) -> Exchange {
    authorize_on(TENANT_BASE, changes)
}

/// Leg 2 at t=`at`: the login POST answered with a redirect carrying `location`.
fn code_location(at: f64, location: &str) -> Exchange {
    ex(
        "POST",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/login",
    )
    .id(2)
    .at(at)
    .form("login=alice&passwd=hunter2")
    .redirect(location)
    .build()
}

fn code_issued(at: f64) -> Exchange {
    code_location(
        at,
        &format!("{REDIRECT}?code={}&state=S1&session_state=x", enc(CODE)),
    )
}

/// Leg 3+4 at t=`at`: a form POST to `url` answered with tokens.
fn token_on(url: &str, at: f64, changes: Changes<'_>) -> Ex {
    ex("POST", url)
        .id(3)
        .at(at)
        .form(&form(&token_params(), changes))
        .json(200, TOKENS)
}

fn token(changes: Changes<'_>) -> Exchange {
    token_on(&format!("{TENANT_BASE}/token"), 5.0, changes).build()
}

fn run_with(config: AnalyzerConfig, exchanges: &[Exchange]) -> Vec<Event> {
    let mut analyzer = Analyzer::new(config);
    exchanges.iter().flat_map(|e| analyzer.observe(e)).collect()
}

fn run(exchanges: &[Exchange]) -> Vec<Event> {
    run_with(AnalyzerConfig::default(), exchanges)
}

fn findings(events: &[Event]) -> Vec<&Finding> {
    events.iter().filter_map(Event::as_finding).collect()
}

/// (rule, field, severity) of every finding, in order.
fn summary(events: &[Event]) -> Vec<(&'static str, Option<String>, Severity)> {
    findings(events)
        .iter()
        .map(|f| (f.rule.id(), f.field.clone(), f.severity))
        .collect()
}

fn kinds(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::kind).collect()
}

fn verdict(events: &[Event]) -> &Verdict {
    events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Verdict(v) => Some(v),
            _ => None,
        })
        .expect("a verdict")
}

fn assert_clean(name: &str, events: &[Event]) {
    let noisy: Vec<_> = findings(events)
        .into_iter()
        .filter(|f| f.severity > Severity::Info)
        .map(|f| format!("{}: {}", f.rule, f.message))
        .collect();
    assert!(noisy.is_empty(), "{name}: clean flow produced {noisy:#?}");
    let v = verdict(events);
    assert_eq!(v.outcome, Outcome::SignedIn, "{name}: {v:?}");
    assert_eq!((v.errors, v.warnings), (0, 0), "{name}");
    assert!(
        events.iter().all(|e| e.attempt() == Some(AttemptId(1))),
        "{name}: every event belongs to attempt #1: {events:#?}"
    );
}

// === clean flows ===

#[test]
fn clean_query_flow_has_four_legs_and_a_verdict() {
    let events = run(&[authorize(&[]), code_issued(2.0), token(&[])]);
    assert_eq!(
        kinds(&events),
        ["authorize", "code", "token", "token-response", "verdict"]
    );
    assert_clean("query", &events);
    let Event::Code(code) = &events[1] else {
        panic!()
    };
    assert_eq!(code.pairing, Pairing::State);
    assert_eq!(code.mode, "query");
    assert_eq!(
        code.code.as_deref(),
        Some(fingerprint("code", CODE).as_str())
    );
    let Event::Token(t) = &events[2] else {
        panic!()
    };
    assert_eq!(t.code, code.code, "the same fingerprint pairs the legs");
    assert_eq!(t.code_age, Some(Duration::from_millis(2900)));
    assert_eq!(verdict(&events).summary, "signed in: tokens issued");
}

#[test]
fn clean_flows_produce_no_warning_or_error() {
    let form_post_page = format!(
        r#"<html><body onload="javascript:document.forms[0].submit()"><form method="POST" name="hiddenform" action="{REDIRECT}"><input type="hidden" name="code" value="{CODE}" /><input type="hidden" name="state" value="S1" /><input type="hidden" name="session_state" value="x" /><noscript><input type="submit" value="Continue" /></noscript></form></body></html>"#
    );
    let form_post = vec![
        authorize(&[("response_mode", Some("form_post"))]),
        ex(
            "POST",
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/login",
        )
        .id(2)
        .at(2.0)
        .form("login=alice")
        .status(200)
        .resp_header("content-type", "text/html; charset=utf-8")
        .resp_body(&form_post_page)
        .build(),
        // The browser delivers it; already seen, so no second code event.
        ex("POST", REDIRECT)
            .at(2.5)
            .form(&format!("code={}&state=S1&session_state=x", enc(CODE)))
            .redirect("/")
            .build(),
        token(&[]),
    ];
    let fragment = vec![
        authorize(&[("response_mode", Some("fragment"))]),
        code_location(2.0, &format!("{REDIRECT}#code={}&state=S1", enc(CODE))),
        // A SPA redeems cross-origin without a secret.
        token_on(
            &format!("{TENANT_BASE}/token"),
            3.0,
            &[("client_secret", None)],
        )
        .header("origin", "https://app.example.com")
        .build(),
    ];
    let basic = vec![
        authorize(&[]),
        code_issued(2.0),
        token_on(
            &format!("{TENANT_BASE}/token"),
            3.0,
            &[("client_secret", None), ("client_id", None)],
        )
        .header(
            "authorization",
            "Basic MTExMTExMTEtMjIyMi0zMzMzLTQ0NDQtNTU1NTU1NTU1NTU1OnMzY3IzdA==",
        )
        .build(),
    ];
    let loopback = "http://localhost:5173/auth/callback";
    let loopback_flow = vec![
        authorize(&[("redirect_uri", Some(loopback))]),
        code_location(2.0, &format!("{loopback}?code={}&state=S1", enc(CODE))),
        token(&[("redirect_uri", Some(loopback))]),
    ];
    let no_state = vec![
        authorize(&[("state", None)]),
        code_location(2.0, &format!("{REDIRECT}?code={}", enc(CODE))),
        token(&[]),
    ];
    let no_pkce_no_scope_at_token = vec![
        authorize(&[("code_challenge", None), ("code_challenge_method", None)]),
        code_issued(2.0),
        token(&[("code_verifier", None), ("scope", None)]),
    ];
    let silent_sso = vec![
        ex(
            "GET",
            &format!(
                "{TENANT_BASE}/authorize?{}",
                form(&authorize_params(), &[("prompt", Some("none"))])
            ),
        )
        .id(1)
        .at(0.0)
        .redirect(&format!("{REDIRECT}?code={}&state=S1", enc(CODE)))
        .build(),
        token(&[]),
    ];
    let callback_only = vec![
        authorize(&[]),
        // The IdP's answer was not seen (e.g. cached), only the browser's callback.
        ex("GET", &format!("{REDIRECT}?code={}&state=S1", enc(CODE)))
            .at(2.0)
            .redirect("/")
            .build(),
        token(&[]),
    ];
    let scope_forms = vec![
        authorize(&[(
            "scope",
            Some("openid offline_access https://graph.microsoft.com/User.Read api://my-api/access"),
        )]),
        code_issued(2.0),
        token(&[("scope", Some("User.Read offline_access openid"))]),
    ];
    let v1 = "https://login.windows.net/contoso.onmicrosoft.com/oauth2";
    let entra_v1_alias = vec![
        authorize_on(
            v1,
            &[
                ("resource", Some("https://graph.microsoft.com")),
                ("scope", None),
            ],
        ),
        code_issued(2.0),
        token_on(
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token",
            3.0,
            &[
                ("resource", Some("https://graph.microsoft.com")),
                ("scope", None),
            ],
        )
        .build(),
    ];
    let b2c = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/oauth2/v2.0";
    let b2c_flow = vec![
        authorize_on(b2c, &[]),
        code_issued(2.0),
        token_on(&format!("{b2c}/token"), 3.0, &[]).build(),
    ];
    let google = vec![
        ex(
            "GET",
            &format!(
                "https://accounts.google.com/o/oauth2/v2/auth?{}",
                form(&authorize_params(), &[("scope", Some("openid email"))])
            ),
        )
        .id(1)
        .build(),
        code_issued(2.0),
        token_on(
            "https://oauth2.googleapis.com/token",
            3.0,
            &[("scope", None)],
        )
        .build(),
    ];
    let keycloak = "https://kc.example/realms/demo/protocol/openid-connect";
    let keycloak_flow = vec![
        ex(
            "GET",
            &format!(
                "{keycloak}/auth?{}",
                form(&authorize_params(), &[("scope", Some("openid"))])
            ),
        )
        .id(1)
        .build(),
        code_issued(2.0),
        token_on(&format!("{keycloak}/token"), 3.0, &[("scope", None)]).build(),
    ];
    let discovered = vec![
        ex("GET", "https://id.example/.well-known/openid-configuration")
            .json(200, r#"{"issuer":"https://id.example","authorization_endpoint":"https://id.example/login/start","token_endpoint":"https://tokens.example/redeem"}"#)
            .build(),
        ex("GET", &format!("https://id.example/login/start?{}", form(&authorize_params(), &[]))).id(1).build(),
        code_issued(2.0),
        token_on("https://tokens.example/redeem", 3.0, &[]).build(),
    ];
    let github = vec![
        ex(
            "GET",
            &format!(
                "https://github.com/login/oauth/authorize?{}",
                form(&authorize_params(), &[("scope", Some("read:user"))])
            ),
        )
        .id(1)
        .build(),
        code_issued(2.0),
        token_on(
            "https://github.com/login/oauth/access_token",
            3.0,
            &[("scope", None), ("code_verifier", Some(VERIFIER))],
        )
        .header("accept", "application/json")
        .build(),
    ];
    let cases: Vec<(&str, Vec<Exchange>)> = vec![
        ("form_post", form_post),
        ("fragment", fragment),
        ("basic", basic),
        ("loopback", loopback_flow),
        ("no state", no_state),
        ("no pkce, no scope at token", no_pkce_no_scope_at_token),
        ("silent sso", silent_sso),
        ("callback only", callback_only),
        ("scope forms", scope_forms),
        ("entra v1 alias host", entra_v1_alias),
        ("b2c", b2c_flow),
        ("google", google),
        ("keycloak", keycloak_flow),
        ("discovered endpoints", discovered),
        ("github", github),
    ];
    for (name, exchanges) in cases {
        let events = run(&exchanges);
        assert_clean(name, &events);
        let codes = events
            .iter()
            .filter(|e| matches!(e, Event::Code(_)))
            .count();
        assert_eq!(codes, 1, "{name}: one code event: {events:#?}");
    }
}

#[test]
fn pairing_without_state_is_heuristic_and_says_so() {
    let events = run(&[
        authorize(&[("state", None)]),
        code_location(2.0, &format!("{REDIRECT}?code={}", enc(CODE))),
    ]);
    let Event::Code(code) = &events[1] else {
        panic!("{events:#?}")
    };
    assert_eq!(
        (code.attempt, code.pairing),
        (Some(AttemptId(1)), Pairing::Heuristic)
    );
}

#[test]
fn reentering_authorize_during_login_is_the_same_attempt() {
    let again = authorize(&[]);
    let events = run(&[authorize(&[]), again, code_issued(2.0), token(&[])]);
    assert_eq!(
        kinds(&events),
        ["authorize", "code", "token", "token-response", "verdict"]
    );
}

// === rules ===

type Expected = Vec<(&'static str, Option<&'static str>, Severity)>;

fn expect(rule: &'static str, field: &'static str, severity: Severity) -> Expected {
    vec![(rule, Some(field), severity)]
}

#[test]
fn each_rule_fires_on_its_case() {
    use Severity::{Error, Warning};
    let token_url = format!("{TENANT_BASE}/token");
    let flow = |token: Exchange| vec![authorize(&[]), code_issued(2.0), token];
    let at = |secs: f64, changes: Changes<'_>| token_on(&token_url, secs, changes).build();
    let b2c = "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/oauth2/v2.0";

    let cases: Vec<(&str, Vec<Exchange>, Expected)> = vec![
        (
            "token without authorize",
            vec![token(&[])],
            expect("token-without-authorize", "code", Warning),
        ),
        ("code expired", flow(at(2.0 + 11.0 * 60.0, &[])), expect("code-expired", "code", Error)),
        ("code near expiry", flow(at(2.0 + 9.0 * 60.0, &[])), expect("code-near-expiry", "code", Warning)),
        (
            "code reused",
            vec![authorize(&[]), code_issued(2.0), token(&[]), token_on(&token_url, 20.0, &[]).id(4).build()],
            expect("code-reused", "code", Error),
        ),
        (
            "endpoint host (other cloud)",
            flow(token_on("https://login.chinacloudapi.cn/contoso.onmicrosoft.com/oauth2/v2.0/token", 3.0, &[]).build()),
            expect("endpoint-mismatch", "host", Error),
        ),
        (
            "endpoint tenant (/common)",
            flow(token_on("https://login.microsoftonline.com/common/oauth2/v2.0/token", 3.0, &[]).build()),
            expect("endpoint-mismatch", "tenant", Error),
        ),
        (
            "endpoint tenant (guid vs domain) is a warning",
            flow(token_on("https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", 3.0, &[]).build()),
            expect("endpoint-mismatch", "tenant", Warning),
        ),
        (
            "endpoint version (v1 token)",
            flow(token_on("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token", 3.0, &[]).build()),
            expect("endpoint-mismatch", "version", Error),
        ),
        (
            "endpoint policy (b2c)",
            vec![
                authorize_on(b2c, &[]),
                code_issued(2.0),
                token_on("https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_other/oauth2/v2.0/token", 3.0, &[]).build(),
            ],
            expect("endpoint-mismatch", "policy", Error),
        ),
        (
            "endpoint host (discovery names another)",
            vec![
                ex("GET", "https://id.example/.well-known/openid-configuration")
                    .json(200, r#"{"authorization_endpoint":"https://id.example/authorize","token_endpoint":"https://id.example/token"}"#)
                    .build(),
                ex("GET", &format!("https://id.example/authorize?{}", form(&authorize_params(), &[]))).id(1).build(),
                code_issued(2.0),
                token_on("https://other.example/oauth2/token", 3.0, &[]).build(),
            ],
            expect("endpoint-mismatch", "host", Error),
        ),
        (
            "redirect_uri trailing slash",
            flow(at(3.0, &[("redirect_uri", Some("https://app.example.com/signin-oidc/"))])),
            expect("param-mismatch", "redirect_uri", Error),
        ),
        (
            "redirect_uri scheme (reverse proxy)",
            flow(at(3.0, &[("redirect_uri", Some("http://app.example.com/signin-oidc"))])),
            expect("param-mismatch", "redirect_uri", Error),
        ),
        (
            "loopback port only is a warning",
            vec![
                authorize(&[("redirect_uri", Some("http://127.0.0.1:5000/cb"))]),
                code_location(2.0, &format!("http://127.0.0.1:5000/cb?code={}&state=S1", enc(CODE))),
                at(3.0, &[("redirect_uri", Some("http://127.0.0.1:5001/cb"))]),
            ],
            expect("param-mismatch", "redirect_uri", Warning),
        ),
        (
            "client_id differs",
            flow(at(3.0, &[("client_id", Some("99999999-2222-3333-4444-555555555555"))])),
            expect("param-mismatch", "client_id", Error),
        ),
        (
            "scope beyond authorize",
            flow(at(3.0, &[("scope", Some("openid User.Read Mail.Send"))])),
            expect("param-mismatch", "scope", Error),
        ),
        (
            "scope of another resource",
            flow(at(3.0, &[("scope", Some("https://storage.azure.com/.default"))])),
            expect("param-mismatch", "scope", Error),
        ),
        (
            "v1 resource differs",
            vec![
                authorize_on("https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2", &[("resource", Some("https://graph.microsoft.com")), ("scope", None)]),
                code_issued(2.0),
                token_on(
                    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token",
                    3.0,
                    &[("resource", Some("https://management.azure.com")), ("scope", None)],
                )
                .build(),
            ],
            expect("param-mismatch", "resource", Error),
        ),
        (
            "json body",
            flow(
                ex("POST", &token_url)
                    .at(3.0)
                    .header("content-type", "application/json")
                    .body(&format!(
                        r#"{{"grant_type":"authorization_code","code":"{CODE}","client_id":"{CLIENT}","redirect_uri":"{REDIRECT}","code_verifier":"{VERIFIER}","client_secret":"{SECRET}"}}"#
                    ))
                    .json(400, r#"{"error":"invalid_request","error_description":"AADSTS900144: The request body must contain the following parameter: 'grant_type'.","error_codes":[900144]}"#)
                    .build(),
            ),
            vec![
                ("malformed-token-request", Some("content-type"), Error),
                ("idp-error", Some("AADSTS900144"), Error),
            ],
        ),
        (
            "GET with query parameters",
            flow(ex("GET", &format!("{token_url}?{}", form(&token_params(), &[]))).at(3.0).build()),
            vec![
                ("malformed-token-request", Some("method"), Error),
                ("malformed-token-request", Some("query"), Error),
            ],
        ),
        (
            "POST with parameters in the query string",
            flow(ex("POST", &format!("{token_url}?{}", form(&token_params(), &[]))).at(3.0).build()),
            expect("malformed-token-request", "query", Error),
        ),
        (
            "bare GET to the token endpoint",
            vec![ex("GET", &token_url).build()],
            expect("malformed-token-request", "method", Error),
        ),
        (
            "missing grant_type",
            flow(at(3.0, &[("grant_type", None)])),
            expect("malformed-token-request", "grant_type", Error),
        ),
        (
            "empty code",
            vec![at(3.0, &[("code", Some(""))])],
            expect("malformed-token-request", "code", Error),
        ),
        (
            "missing client_id",
            flow(at(3.0, &[("client_id", None)])),
            expect("malformed-token-request", "client_id", Error),
        ),
        (
            "missing redirect_uri",
            flow(at(3.0, &[("redirect_uri", None)])),
            expect("malformed-token-request", "redirect_uri", Error),
        ),
        (
            "duplicate parameter",
            flow(
                ex("POST", &token_url)
                    .at(3.0)
                    .form(&format!("{}&client_id={CLIENT}", form(&token_params(), &[])))
                    .json(200, TOKENS)
                    .build(),
            ),
            expect("malformed-token-request", "duplicate", Error),
        ),
        (
            "two client authentication methods",
            flow(token_on(&token_url, 3.0, &[]).header("authorization", "Basic YTpi").build()),
            // The body's client_id wins over Basic's `a`, so no client_id mismatch.
            expect("malformed-token-request", "client-auth", Error),
        ),
        (
            "double-encoded code",
            vec![
                authorize(&[]),
                code_location(2.0, &format!("{REDIRECT}?code=a%2Fb&state=S1")),
                at(3.0, &[("code", Some("a%2Fb"))]),
            ],
            // Sent as a%252Fb: the code does not match what was issued either.
            vec![
                ("malformed-token-request", Some("encoding"), Error),
                ("token-without-authorize", Some("code"), Warning),
            ],
        ),
        (
            "pkce mismatch",
            flow(at(3.0, &[("code_verifier", Some(&"x".repeat(43)))])),
            expect("pkce-mismatch", "code_verifier", Error),
        ),
        (
            "pkce missing verifier",
            flow(at(3.0, &[("code_verifier", None)])),
            expect("pkce-missing-verifier", "code_verifier", Error),
        ),
        (
            "pkce unexpected verifier",
            vec![
                authorize(&[("code_challenge", None), ("code_challenge_method", None)]),
                code_issued(2.0),
                at(3.0, &[]),
            ],
            expect("pkce-unexpected-verifier", "code_verifier", Error),
        ),
        (
            "pkce invalid verifier",
            flow(at(3.0, &[("code_verifier", Some("too-short"))])),
            expect("pkce-invalid-verifier", "code_verifier", Error),
        ),
    ];
    for (name, exchanges, expected) in cases {
        let events = run(&exchanges);
        let got = summary(&events);
        let expected: Vec<_> = expected
            .into_iter()
            .map(|(r, f, s)| (r, f.map(str::to_owned), s))
            .collect();
        assert_eq!(got, expected, "{name}: {:#?}", findings(&events));
        for f in findings(&events) {
            assert!(!f.message.is_empty() && !f.fix.is_empty(), "{name}: {f:?}");
            assert!(!f.evidence.is_empty(), "{name}: evidence for {f:?}");
        }
    }
}

#[test]
fn malformed_requests_are_still_paired_by_their_code() {
    let token_url = format!("{TENANT_BASE}/token");
    for request in [
        ex("POST", &token_url)
            .at(3.0)
            .header("content-type", "application/json")
            .body(&format!(
                r#"{{"grant_type":"authorization_code","code":"{CODE}"}}"#
            )),
        ex("GET", &format!("{token_url}?code={}", enc(CODE))).at(3.0),
        ex(
            "POST",
            &format!(
                "{token_url}?grant_type=authorization_code&code={}",
                enc(CODE)
            ),
        )
        .at(3.0),
    ] {
        let events = run(&[authorize(&[]), code_issued(2.0), request.build()]);
        let token = events.iter().find_map(|e| match e {
            Event::Token(t) => Some(t),
            _ => None,
        });
        assert_eq!(
            token.and_then(|t| t.attempt),
            Some(AttemptId(1)),
            "{events:#?}"
        );
        assert!(
            findings(&events)
                .iter()
                .all(|f| f.attempt == Some(AttemptId(1)))
        );
        assert!(
            !summary(&events)
                .iter()
                .any(|(r, _, _)| *r == "token-without-authorize")
        );
    }
}

#[test]
fn a_token_request_with_another_or_no_grant_type_is_judged_as_a_code_redemption() {
    // Recognised at a token URL by its code (or by the URL alone when no
    // grant_type is sent): authlens judges it as a code redemption sent with
    // the wrong grant_type, pairs it by its code and runs every code rule.
    let token_url = format!("{TENANT_BASE}/token");
    let wrong_verifier = "x".repeat(43);
    for (grant_type, finding) in [
        (
            Some("authorisation_code"),
            "grant_type is `authorisation_code`, expected `authorization_code`",
        ),
        (
            Some("refresh_token"),
            "grant_type is `refresh_token`, expected `authorization_code`",
        ),
        (None, "token request has no grant_type"),
    ] {
        let events = run(&[
            authorize(&[]),
            code_issued(2.0),
            token(&[
                ("grant_type", grant_type),
                ("code_verifier", Some(&wrong_verifier)),
            ]),
            token_on(&token_url, 20.0, &[]).id(4).build(),
        ]);
        assert_eq!(
            summary(&events),
            vec![
                (
                    "malformed-token-request",
                    Some("grant_type".to_owned()),
                    Severity::Error
                ),
                (
                    "pkce-mismatch",
                    Some("code_verifier".to_owned()),
                    Severity::Error
                ),
                ("code-reused", Some("code".to_owned()), Severity::Error),
            ],
            "{grant_type:?}"
        );
        assert_eq!(findings(&events)[0].message, finding);
        let token = events
            .iter()
            .find_map(|e| match e {
                Event::Token(t) => Some(t),
                _ => None,
            })
            .unwrap();
        assert_eq!(token.attempt, Some(AttemptId(1)));
        assert_eq!(token.grant_type.as_deref(), grant_type);
        assert_eq!(token.code, Some(fingerprint("code", CODE)));
        assert_eq!(token.redirect_uri.as_deref(), Some(REDIRECT));
        assert_eq!(
            token.code_verifier,
            Some(fingerprint("code_verifier", &wrong_verifier))
        );
    }

    // Without a code, another grant is read as itself: no code rule.
    let refresh = token_on(
        &token_url,
        3.0,
        &[("grant_type", Some("refresh_token")), ("code", None)],
    )
    .build();
    let events = run(&[refresh]);
    assert!(findings(&events).is_empty(), "{events:#?}");
    assert!(matches!(events.last(), Some(Event::Verdict(v)) if v.summary == "tokens refreshed"));
}

#[test]
fn redirect_uri_message_names_the_difference() {
    let events = run(&[
        authorize(&[]),
        code_issued(2.0),
        token(&[("redirect_uri", Some("https://app.example.com/signin-oidc/"))]),
    ]);
    let f = findings(&events)[0];
    assert!(f.message.contains("trailing slash"), "{}", f.message);
    assert_eq!(f.evidence["authorize"], REDIRECT);
    assert_eq!(f.evidence["token"], "https://app.example.com/signin-oidc/");
}

#[test]
fn code_lifetime_follows_provider_and_override() {
    let okta = "https://dev-1.okta.com/oauth2/default/v1";
    let okta_flow = |secs: f64| {
        vec![
            ex(
                "GET",
                &format!(
                    "{okta}/authorize?{}",
                    form(&authorize_params(), &[("scope", Some("openid"))])
                ),
            )
            .id(1)
            .build(),
            code_issued(0.0),
            token_on(&format!("{okta}/token"), secs, &[("scope", None)]).build(),
        ]
    };
    assert_eq!(summary(&run(&okta_flow(200.0))), vec![]);
    assert_eq!(summary(&run(&okta_flow(260.0)))[0].0, "code-near-expiry");
    assert_eq!(summary(&run(&okta_flow(301.0)))[0].0, "code-expired");

    let config = AnalyzerConfig {
        code_lifetime: Some(Duration::from_secs(60)),
        ..AnalyzerConfig::default()
    };
    let events = run_with(
        config,
        &[
            authorize(&[]),
            code_issued(0.0),
            token_on(&format!("{TENANT_BASE}/token"), 90.0, &[]).build(),
        ],
    );
    let f = findings(&events)[0];
    assert_eq!(f.rule, Rule::CodeExpired);
    assert_eq!(f.evidence["lifetime_source"], "--code-lifetime");
    assert_eq!(f.evidence["lifetime_seconds"], 60);
}

#[test]
fn code_reused_names_the_first_redemption_and_idp_error_agrees() {
    let token_url = format!("{TENANT_BASE}/token");
    let events = run(&[
        authorize(&[]),
        code_issued(2.0),
        token(&[]),
        token_on(&token_url, 20.0, &[])
            .id(4)
            .json(
                400,
                r#"{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token. Trace ID: x","error_codes":[54005],"trace_id":"t-1","correlation_id":"c-1"}"#,
            )
            .build(),
    ]);
    let all = findings(&events);
    let reused = all.iter().find(|f| f.rule == Rule::CodeReused).unwrap();
    assert!(reused.message.contains("10:00:05"), "{}", reused.message);
    assert!(
        reused.message.contains("tokens issued"),
        "{}",
        reused.message
    );
    assert_eq!(reused.evidence["first_redemption"]["exchange"], 3);
    assert_eq!(
        reused.evidence["first_redemption"]["outcome"],
        "tokens issued"
    );
    assert_eq!(
        reused.evidence["first_redemption"]["time"],
        "2024-05-01T10:00:05Z"
    );
    let idp = all.iter().find(|f| f.rule == Rule::IdpError).unwrap();
    assert_eq!(idp.field.as_deref(), Some("AADSTS54005"));
    assert!(
        idp.message
            .contains("confirmed: code first redeemed at 10:00:05"),
        "{}",
        idp.message
    );
    assert_eq!(idp.evidence["confirmed_by"], "code-reused");
    assert_eq!(idp.evidence["trace_id"], "t-1");
    let v = verdict(&events);
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(
        v.summary.contains("AADSTS54005") && v.summary.contains("code-reused"),
        "{}",
        v.summary
    );
}

#[test]
fn idp_error_that_authlens_cannot_explain_lists_what_it_checked() {
    let events = run(&[
        authorize(&[]),
        code_issued(2.0),
        token_on(&format!("{TENANT_BASE}/token"), 3.0, &[])
            .json(401, r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#)
            .build(),
    ]);
    assert_eq!(
        summary(&events),
        vec![(
            "idp-error",
            Some("AADSTS7000215".to_owned()),
            Severity::Error
        )]
    );
    let idp = findings(&events)[0];
    assert!(
        idp.message
            .ends_with("— authlens checked this redemption and found nothing wrong"),
        "{}",
        idp.message
    );
    let checked = idp.evidence["checked"].as_array().unwrap();
    assert_eq!(checked.len(), 9, "{checked:#?}");
    assert!(
        checked[2].as_str().unwrap().starts_with(
            "age: redeemed 900 ms after issue, within its 10 min lifetime (entra default)"
        ),
        "{checked:#?}"
    );
    // No cause of 7000215 can be seen on the wire: all are left.
    let entry = crate::oauth::catalogue::lookup("AADSTS7000215").unwrap();
    assert_eq!(
        idp.evidence["likely_causes"],
        serde_json::json!(entry.causes)
    );
    assert!(
        idp.fix
            .contains(&entry.causes[0].trim_end_matches('.').to_owned()),
        "{}",
        idp.fix
    );
    assert!(
        idp.fix.ends_with("More: `authlens explain AADSTS7000215`."),
        "{}",
        idp.fix
    );
    assert_eq!(verdict(&events).outcome, Outcome::Failed);
}

#[test]
fn aadsts90056_without_a_visible_cause_is_not_answered_with_itself() {
    let refused = r#"{"error":"invalid_request","error_description":"AADSTS90056: BadResourceRequest: Invalid token redemption request.","error_codes":[90056],"trace_id":"t-9","correlation_id":"c-9"}"#;
    let token_url = format!("{TENANT_BASE}/token");
    let events = run(&[
        authorize(&[]),
        code_issued(2.0),
        token_on(&token_url, 3.0, &[]).json(400, refused).build(),
    ]);
    let idp = findings(&events)[0];
    assert_eq!(idp.field.as_deref(), Some("AADSTS90056"));
    assert!(
        !idp.fix.contains("Check the authlens findings"),
        "{}",
        idp.fix
    );
    assert!(
        idp.fix.contains("`authlens explain AADSTS90056`"),
        "{}",
        idp.fix
    );
    assert_eq!(idp.evidence["not_checked"], serde_json::json!([]));
    // The three wire causes are ruled out by the checks; the unseen ones stay.
    let entry = crate::oauth::catalogue::lookup("AADSTS90056").unwrap();
    assert_eq!(
        idp.evidence["ruled_out_causes"],
        serde_json::json!(entry.causes[..3])
    );
    assert_eq!(
        idp.evidence["likely_causes"],
        serde_json::json!(entry.causes[3..])
    );

    // Without the /authorize request, the pairing checks are not claimed:
    // they are listed as not done, and their causes stay open.
    let events = run(&[
        code_location(2.0, &format!("{REDIRECT}?code={}", enc(CODE))),
        token_on(&token_url, 3.0, &[]).json(400, refused).build(),
    ]);
    let idp = findings(&events)
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .unwrap();
    assert!(
        idp.message
            .ends_with("— nothing authlens could check on this redemption explains it"),
        "{}",
        idp.message
    );
    let checked: Vec<&str> = idp.evidence["checked"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    for pairing in ["endpoint", "redirect_uri", "client_id", "scope", "PKCE"] {
        assert!(
            !checked
                .iter()
                .any(|c| c.starts_with(&format!("{pairing}:"))),
            "{pairing} claimed fine: {checked:#?}"
        );
    }
    assert_eq!(
        idp.evidence["not_checked"],
        serde_json::json!([
            "endpoint, redirect_uri, client_id, scope, PKCE: authlens saw no /authorize request for this code"
        ])
    );
    assert!(
        idp.fix.contains("Not checked: endpoint, redirect_uri, client_id, scope, PKCE: authlens saw no /authorize request for this code."),
        "{}",
        idp.fix
    );
    let likely = idp.evidence["likely_causes"].as_array().unwrap();
    assert!(
        likely.iter().any(|c| c
            .as_str()
            .unwrap()
            .starts_with("redirect_uri, client_id or scope differ")),
        "{likely:#?}"
    );
}

#[test]
fn second_redemption_of_a_refused_code_records_the_refusal() {
    let token_url = format!("{TENANT_BASE}/token");
    let refused = r#"{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired","error_codes":[70008]}"#;
    let events = run(&[
        authorize(&[]),
        code_issued(2.0),
        token_on(&token_url, 700.0, &[]).json(400, refused).build(),
        token_on(&token_url, 701.0, &[]).id(4).build(),
    ]);
    let all = findings(&events);
    let idp = all.iter().find(|f| f.rule == Rule::IdpError).unwrap();
    assert!(
        idp.message.contains("confirmed: code was 11 min 37 s old"),
        "{}",
        idp.message
    );
    let reused = all.iter().find(|f| f.rule == Rule::CodeReused).unwrap();
    assert_eq!(
        reused.evidence["first_redemption"]["outcome"],
        "refused with AADSTS70008"
    );
}

#[test]
fn a_redemption_refused_as_malformed_does_not_use_the_code() {
    let token_url = format!("{TENANT_BASE}/token");
    let json_body = ex("POST", &token_url)
        .at(3.0)
        .header("content-type", "application/json")
        .body(&format!(
            r#"{{"grant_type":"authorization_code","code":"{CODE}","client_id":"{CLIENT}","redirect_uri":"{REDIRECT}","code_verifier":"{VERIFIER}","client_secret":"{SECRET}"}}"#
        ))
        .json(400, r#"{"error":"invalid_request","error_description":"AADSTS900144: The request body must contain the following parameter: 'grant_type'.","error_codes":[900144]}"#)
        .build();
    let get = ex("GET", &format!("{token_url}?{}", form(&token_params(), &[])))
        .at(3.0)
        .json(400, r#"{"error":"invalid_request","error_description":"AADSTS900561: The endpoint only accepts POST requests. Received a GET request.","error_codes":[900561]}"#)
        .build();
    // Refused without a body naming the cause: authlens's own finding (no
    // grant_type) says the IdP could not have read the code.
    let without_grant_type = || {
        ex("POST", &token_url)
            .at(3.0)
            .form(&form(&token_params(), &[("grant_type", None)]))
    };
    let no_grant_type = without_grant_type()
        .json(400, r#"{"error":"unsupported_grant_type"}"#)
        .build();
    let bare_400 = without_grant_type().status(400).build();
    for (name, refused) in [
        ("JSON body", json_body),
        ("GET", get),
        ("no grant_type", no_grant_type),
        ("bare 400 on a request without grant_type", bare_400),
    ] {
        let events = run(&[
            authorize(&[]),
            code_issued(2.0),
            refused,
            token_on(&token_url, 4.0, &[]).id(4).build(),
        ]);
        let rules: Vec<&str> = summary(&events).iter().map(|(r, _, _)| *r).collect();
        assert!(!rules.contains(&"code-reused"), "{name}: {rules:?}");
        let v = verdict(&events);
        assert_eq!(v.outcome, Outcome::SignedIn, "{name}: {v:?}");
    }

    // A refusal after the IdP read the code (invalid_grant) may have used it.
    let pkce = ex("POST", &token_url)
        .at(3.0)
        .form(&form(&token_params(), &[]))
        .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.","error_codes":[501481]}"#)
        .build();
    let events = run(&[
        authorize(&[]),
        code_issued(2.0),
        pkce,
        token_on(&token_url, 4.0, &[]).id(4).build(),
    ]);
    let reused = findings(&events)
        .into_iter()
        .find(|f| f.rule == Rule::CodeReused)
        .expect("code-reused after an invalid_grant refusal");
    assert_eq!(
        reused.evidence["first_redemption"]["outcome"],
        "refused with AADSTS501481"
    );

    // A code never seen issued stays "never seen issued" after a malformed
    // refusal: the second request is not its reuse either.
    let json_only = ex("POST", &token_url)
        .at(3.0)
        .header("content-type", "application/json")
        .body(&format!(
            r#"{{"grant_type":"authorization_code","code":"{CODE}"}}"#
        ))
        .json(400, r#"{"error":"invalid_request","error_codes":[900144]}"#)
        .build();
    let events = run(&[json_only, token_on(&token_url, 4.0, &[]).id(4).build()]);
    let rules: Vec<&str> = summary(&events).iter().map(|(r, _, _)| *r).collect();
    assert!(!rules.contains(&"code-reused"), "{rules:?}");
    assert_eq!(
        rules
            .iter()
            .filter(|r| **r == "token-without-authorize")
            .count(),
        2,
        "{rules:?}"
    );
}

#[test]
fn authorize_leg_errors_from_location_form_post_and_error_page() {
    let location = vec![
        authorize(&[]),
        code_location(
            2.0,
            &format!(
                "{REDIRECT}?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent.&state=S1"
            ),
        ),
        // The browser delivers the same error to the app: not reported twice.
        ex("GET", &format!("{REDIRECT}?error=access_denied&state=S1"))
            .at(2.5)
            .build(),
    ];
    let events = run(&location);
    assert_eq!(
        kinds(&events),
        ["authorize", "code", "finding", "verdict"],
        "{events:#?}"
    );
    let Event::Code(c) = &events[1] else { panic!() };
    assert_eq!(
        (c.error.as_deref(), c.code.as_deref()),
        (Some("access_denied"), None)
    );
    let f = findings(&events)[0];
    assert_eq!(
        (f.rule, f.field.as_deref()),
        (Rule::IdpError, Some("AADSTS65004"))
    );
    assert_eq!(verdict(&events).outcome, Outcome::Failed);

    let page = format!(
        r#"<form method="post" action="{REDIRECT}"><input type="hidden" name="error" value="invalid_request"/><input type="hidden" name="error_description" value="AADSTS90014: missing field"/><input type="hidden" name="state" value="S1"/></form>"#
    );
    let form_post = vec![
        authorize(&[("response_mode", Some("form_post"))]),
        ex("POST", "https://login.microsoftonline.com/common/login")
            .at(2.0)
            .resp_body(&page)
            .build(),
    ];
    let events = run(&form_post);
    assert_eq!(
        summary(&events),
        vec![("idp-error", Some("AADSTS90014".to_owned()), Severity::Error)]
    );

    let error_page = vec![
        ex("GET", &format!("{TENANT_BASE}/authorize?{}", form(&authorize_params(), &[])))
            .status(200)
            .resp_header("content-type", "text/html")
            .resp_body(r#"<script>$Config={"strServiceExceptionMessage":"AADSTS50011: The redirect URI 'https://app.example.com/signin-oidc' specified in the request does not match the redirect URIs configured for the application.","iErrorCode":50011};</script>"#)
            .build(),
    ];
    let events = run(&error_page);
    assert_eq!(kinds(&events), ["authorize", "finding", "verdict"]);
    let f = findings(&events)[0];
    assert_eq!(f.field.as_deref(), Some("AADSTS50011"));
    assert!(f.message.contains("/authorize"), "{}", f.message);
}

#[test]
fn secrets_appear_only_as_fingerprints_unless_asked() {
    let token_url = format!("{TENANT_BASE}/token");
    let exchanges = vec![
        authorize(&[]),
        code_issued(2.0),
        token(&[]),
        // A reuse with everything wrong, to get the secrets into evidence.
        token_on(
            &token_url,
            3.0,
            &[
                ("code_verifier", Some("bad+verifier")),
                ("code", Some(CODE)),
            ],
        )
        .id(4)
        .header("authorization", "Basic YTpi")
        .build(),
        ex("POST", &token_url)
            .at(4.0)
            .header("content-type", "application/json")
            .body(&format!(
                r#"{{"code":"{CODE}","client_secret":"{SECRET}"}}"#
            ))
            .build(),
    ];
    let hidden = format!("{:?}", run(&exchanges));
    for secret in [
        CODE,
        SECRET,
        VERIFIER,
        "bad+verifier",
        "bad verifier",
        "eyJ0eXAi.access",
        "0.refresh",
        "eyJ0eXAi.id",
    ] {
        assert!(!hidden.contains(secret), "{secret} leaked");
    }
    assert!(hidden.contains(&fingerprint("code", CODE)));
    assert!(hidden.contains(&fingerprint("access_token", "eyJ0eXAi.access")));

    let shown = format!(
        "{:?}",
        run_with(
            AnalyzerConfig {
                show_secrets: true,
                ..AnalyzerConfig::default()
            },
            &exchanges
        )
    );
    assert!(shown.contains(CODE) && shown.contains("eyJ0eXAi.access"));
}

#[test]
fn memory_stays_bounded_and_old_attempts_are_forgotten() {
    let config = AnalyzerConfig {
        max_attempts: 8,
        attempt_ttl: Duration::from_secs(60),
        ..AnalyzerConfig::default()
    };
    let mut analyzer = Analyzer::new(config);
    for i in 0..2_000 {
        let state = format!("s{i}");
        analyzer.observe(&authorize(&[("state", Some(&state))]));
        analyzer.observe(&code_location(
            1.0,
            &format!("{REDIRECT}?code=c{i}&state={state}"),
        ));
    }
    let (attempts, codes) = analyzer.store.sizes();
    assert!(attempts <= 8 && codes <= 32, "{attempts} {codes}");

    // Past the TTL, the code is unknown again.
    let late = token_on(
        &format!("{TENANT_BASE}/token"),
        1_000.0,
        &[("code", Some("c1999"))],
    )
    .build();
    let events = analyzer.observe(&late);
    assert_eq!(summary(&events)[0].0, "token-without-authorize");
}

#[test]
fn arbitrary_input_never_panics() {
    let junk = [
        "",
        "%",
        "%%%",
        "&&&===",
        "\u{0}\u{1}\u{7f}",
        "{",
        "{\"code\":{}}",
        "[]",
        "null",
        "<form",
        "<form action='",
        "é€𝄞",
        "code=%ff%fe&state=%",
        "grant_type=authorization_code&code=%",
        "<input name=code value=x>",
    ];
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    analyzer.observe(&authorize(&[]));
    for (i, j) in junk.iter().enumerate() {
        let enc_j = enc(j);
        let urls = [
            format!("{TENANT_BASE}/token?{enc_j}"),
            format!(
                "{TENANT_BASE}/authorize?response_type=code&client_id={enc_j}&redirect_uri={enc_j}&state={enc_j}"
            ),
            format!("{REDIRECT}?code={enc_j}&state=S1"),
            "https://id.example/.well-known/openid-configuration".to_owned(),
        ];
        for url in urls {
            for method in ["GET", "POST"] {
                let e = ex(method, &url)
                    .id(i as u64)
                    .header(
                        "content-type",
                        if i % 2 == 0 {
                            "application/json"
                        } else {
                            "application/x-www-form-urlencoded"
                        },
                    )
                    .header("authorization", "Basic !!!")
                    .body(j)
                    .status(302)
                    .resp_header(
                        "location",
                        &format!("{REDIRECT}?code={enc_j}&error={enc_j}#code={enc_j}"),
                    )
                    .resp_body(j)
                    .build();
                let _ = analyzer.observe(&e);
            }
        }
        let page = ex("POST", "https://idp/x").resp_body(&format!("<form action='{j}'><input name='code' value='{j}'><input name=error value={j}></form>{j}")).build();
        let _ = analyzer.observe(&page);
        let bad_json = ex("POST", &format!("{TENANT_BASE}/token"))
            .form("grant_type=authorization_code&code=x")
            .json(400, j)
            .build();
        let _ = analyzer.observe(&bad_json);
    }
}

const GUID_TENANT: &str = "72f988bf-0000-4000-8000-00000000c0de";

/// A sign-in at a GUID tenant whose token response carries these JWTs.
fn sign_in_with_tokens(id_token: &str, access_token: &str) -> Vec<Event> {
    let base = format!("https://login.microsoftonline.com/{GUID_TENANT}/oauth2/v2.0");
    let body = serde_json::json!({
        "token_type": "Bearer",
        "expires_in": 3600,
        "access_token": access_token,
        "id_token": id_token,
    });
    run(&[
        authorize_on(&base, &[]),
        code_issued(2.0),
        token_on(&format!("{base}/token"), 3.0, &[])
            .json(200, &body.to_string())
            .build(),
    ])
}

fn decoded(events: &[Event]) -> &[crate::oauth::DecodedToken] {
    events
        .iter()
        .find_map(|e| match e {
            Event::TokenResponse(r) => Some(r.decoded.as_slice()),
            _ => None,
        })
        .unwrap()
}

#[test]
fn token_response_jwts_are_decoded_and_a_clean_one_is_silent() {
    use crate::oauth::testing::jwt;
    let iss = format!("https://login.microsoftonline.com/{GUID_TENANT}/v2.0");
    let id_token = jwt(&serde_json::json!({
        "iss": iss, "aud": CLIENT, "tid": GUID_TENANT, "sub": "s-1", "nonce": "N1",
        "exp": 1714561200, "iat": 1714557600,
    }));
    let access_token =
        jwt(&serde_json::json!({ "aud": "https://graph.microsoft.com", "scp": "User.Read" }));
    let events = sign_in_with_tokens(&id_token, &access_token);
    assert_eq!(summary(&events), vec![]);
    let tokens = decoded(&events);
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0].kind, "id_token");
    assert_eq!(tokens[0].shown, fingerprint("id_token", &id_token));
    let claims = tokens[0].jwt.as_ref().unwrap();
    assert_eq!(claims.sub.as_deref(), Some("s-1"));
    assert_eq!(claims.aud, [CLIENT]);
    assert_eq!(tokens[1].kind, "access_token");
    assert_eq!(
        tokens[1].jwt.as_ref().unwrap().scp.as_deref(),
        Some("User.Read")
    );
    let all = format!("{events:?}");
    assert!(!all.contains(&id_token) && !all.contains(&access_token));

    // An opaque access token is not decoded; an id_token that is not a JWT
    // is reported as unreadable and checked no further.
    let events = sign_in_with_tokens("not-a-jwt", "opaque");
    let tokens = decoded(&events);
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].jwt.is_err());
    assert_eq!(summary(&events), vec![]);
}

#[test]
fn id_token_with_another_nonce_and_tenant_is_flagged_after_the_token_response() {
    use crate::oauth::testing::jwt;
    let other = "00000000-0000-0000-0000-0000000000aa";
    let id_token = jwt(&serde_json::json!({
        "iss": format!("https://login.microsoftonline.com/{other}/v2.0"),
        "tid": other, "nonce": "N2",
    }));
    let events = sign_in_with_tokens(&id_token, "opaque");
    assert_eq!(
        kinds(&events),
        [
            "authorize",
            "code",
            "token",
            "token-response",
            "finding",
            "finding",
            "verdict"
        ]
    );
    assert_eq!(
        summary(&events),
        vec![
            ("nonce-mismatch", Some("nonce".to_owned()), Severity::Error),
            (
                "token-issuer-mismatch",
                Some("tid".to_owned()),
                Severity::Warning
            ),
        ]
    );
    let v = verdict(&events);
    assert_eq!(v.outcome, Outcome::SignedIn);
    assert_eq!((v.errors, v.warnings), (1, 1));
    assert!(
        v.summary
            .ends_with("but authlens found 1 error and 1 warning"),
        "{}",
        v.summary
    );

    // Omitted nonce: still a nonce-mismatch.
    let id_token = jwt(&serde_json::json!({ "tid": GUID_TENANT }));
    let events = sign_in_with_tokens(&id_token, "opaque");
    assert_eq!(
        summary(&events),
        vec![("nonce-mismatch", Some("nonce".to_owned()), Severity::Error)]
    );
    assert!(findings(&events)[0].message.contains("has no nonce claim"));
}

#[test]
fn tokens_of_a_redacted_recording_are_read_and_said_to_be_redacted() {
    use crate::oauth::jwt::redact;
    use crate::oauth::testing::jwt;
    let id_token = jwt(&serde_json::json!({
        "iss": format!("https://login.microsoftonline.com/{GUID_TENANT}/v2.0"),
        "aud": CLIENT, "tid": GUID_TENANT, "nonce": "N-other", "sub": "s-1",
        "name": "Alex Mock", "exp": 1714561200,
    }));
    let access_token =
        jwt(&serde_json::json!({ "aud": "https://graph.microsoft.com", "oid": "o-1" }));
    let (id_print, at_print) = (
        fingerprint("id_token", &id_token),
        fingerprint("access_token", &access_token),
    );
    let events = sign_in_with_tokens(
        &redact(&id_token, &id_print).unwrap(),
        &redact(&access_token, &at_print).unwrap(),
    );
    // The kept claims still carry the nonce: the check works on a recording.
    assert_eq!(
        summary(&events),
        vec![
            (
                "token-redacted",
                Some("id_token".to_owned()),
                Severity::Info
            ),
            ("nonce-mismatch", Some("nonce".to_owned()), Severity::Error),
        ]
    );
    let note = findings(&events)[0];
    assert!(
        note.message.starts_with(&format!(
            "{id_print}, {at_print}: signature removed by redaction; the claims shown are the ones authlens keeps"
        )),
        "{}",
        note.message
    );
    assert_eq!(
        note.evidence["tokens"],
        serde_json::json!([id_print, at_print])
    );
    let tokens = decoded(&events);
    assert_eq!(tokens[0].shown, id_print, "the fingerprint of the live run");
    let claims = tokens[0].jwt.as_ref().unwrap();
    assert_eq!(claims.nonce.as_deref(), Some("N-other"));
    assert_eq!(claims.sub, None);
    let Some(Event::TokenResponse(r)) = events.iter().find(|e| e.kind() == "token-response") else {
        panic!()
    };
    assert_eq!(r.tokens, [at_print.clone(), id_print.clone()]);
    let text = format!("{events:?}");
    for word in ["unreadable", "not a JWT", "Alex Mock"] {
        assert!(!text.contains(word), "{word} in {text}");
    }
    // The verdict counts the nonce error only.
    assert_eq!((verdict(&events).errors, verdict(&events).warnings), (1, 0));

    // A recording that kept only the id_token's fingerprint: nothing to
    // decode, and the note says the checks were skipped, not "unreadable".
    let events = sign_in_with_tokens(&id_print, &at_print);
    assert!(decoded(&events).is_empty());
    assert_eq!(
        summary(&events),
        vec![(
            "token-redacted",
            Some("id_token".to_owned()),
            Severity::Info
        )]
    );
    let note = findings(&events)[0];
    assert!(
        note.message.contains(
            "redacted to a fingerprint in this recording, so its claims are not available"
        ),
        "{}",
        note.message
    );
    assert_eq!(
        note.evidence["fingerprint_only"],
        serde_json::json!([id_print])
    );
    assert!(!format!("{events:?}").contains("unreadable"));
}

#[test]
fn a_plain_pkce_mismatch_never_shows_a_verifier_in_clear() {
    // With the plain method the challenge is the verifier itself.
    let sent = "plain-verifier-sent-at-authorize-0123456789abcdefghijk";
    let other = "plain-verifier-sent-at-token-0123456789abcdefghijklmno";
    let events = run(&[
        authorize(&[
            ("code_challenge", Some(sent)),
            ("code_challenge_method", Some("plain")),
        ]),
        code_issued(2.0),
        token(&[("code_verifier", Some(other))]),
    ]);
    let mismatch = events
        .iter()
        .find_map(|e| match e {
            Event::Finding(f) if f.rule == Rule::PkceMismatch => Some(f),
            _ => None,
        })
        .expect("a pkce-mismatch finding");
    let text = format!("{} {:?}", mismatch.message, mismatch.evidence);
    for secret in [sent, other] {
        assert!(!text.contains(secret), "{secret} in clear: {text}");
        assert!(
            text.contains(&fingerprint("code_verifier", secret)),
            "{secret} fingerprinted: {text}"
        );
    }
}

#[test]
fn only_a_refusal_for_the_shape_leaves_the_code_unused() {
    let token_url = format!("{TENANT_BASE}/token");
    // invalid_request with a number that reads the code (a SPA code redeemed
    // server-side), a JSON body answered by a gateway's 502: either may have
    // used the code, so the next redemption is a reuse.
    let spa = ex("POST", &token_url)
        .at(3.0)
        .form(&form(&token_params(), &[]))
        .json(400, r#"{"error":"invalid_request","error_description":"AADSTS9002327: Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.","error_codes":[9002327]}"#)
        .build();
    let gateway = ex("POST", &token_url)
        .at(3.0)
        .header("content-type", "application/json")
        .body(&format!(
            r#"{{"grant_type":"authorization_code","code":"{CODE}","client_id":"{CLIENT}"}}"#
        ))
        .status(502)
        .build();
    for (name, refused) in [("AADSTS9002327", spa), ("a 502", gateway)] {
        let events = run(&[
            authorize(&[]),
            code_issued(2.0),
            refused,
            token_on(&token_url, 4.0, &[]).id(4).build(),
        ]);
        let rules: Vec<&str> = summary(&events).iter().map(|(r, _, _)| *r).collect();
        assert!(rules.contains(&"code-reused"), "{name}: {rules:?}");
    }
}

#[test]
fn first_use_is_not_claimed_for_a_code_never_seen_issued() {
    let events = run(&[ex("POST", &format!("{TENANT_BASE}/token"))
        .at(3.0)
        .form(&form(&token_params(), &[]))
        .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.","error_codes":[54005]}"#)
        .build()]);
    let idp = findings(&events)
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .expect("an idp-error finding");
    let text = format!("{} {} {:?}", idp.message, idp.fix, idp.evidence);
    assert!(
        text.contains("earlier redemptions may have been missed"),
        "{text}"
    );
}

#[test]
fn a_pkce_challenge_of_any_method_but_s256_is_not_shown_in_clear() {
    let sent = "plain-verifier-sent-at-authorize-0123456789abcdefghijk";
    for method in ["PLAIN", "plian"] {
        let events = run(&[
            authorize(&[
                ("code_challenge", Some(sent)),
                ("code_challenge_method", Some(method)),
            ]),
            code_issued(2.0),
            token(&[]),
        ]);
        let found = findings(&events);
        assert!(
            found.iter().any(|f| f.rule == Rule::PkceMismatch),
            "{method}: no pkce-mismatch"
        );
        let text: String = found
            .iter()
            .map(|f| format!("{} {:?}\n", f.message, f.evidence))
            .collect();
        assert!(
            !text.contains(sent),
            "{method}: the challenge in clear: {text}"
        );
    }
}

#[test]
fn a_token_request_whose_coding_cannot_be_undone_is_not_analysed_not_called_malformed() {
    let garbled = ex("POST", &format!("{TENANT_BASE}/token"))
        .id(3)
        .at(5.0)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-encoding", "gzip")
        .body("grant_type=authorization_code but not gzip at all")
        .json(200, TOKENS)
        .build();
    let events = run(&[authorize(&[]), code_issued(2.0), garbled]);
    let rules: Vec<_> = summary(&events)
        .into_iter()
        .map(|(r, f, _)| (r, f))
        .collect();
    assert!(
        rules.contains(&("body-not-analysed", Some("body".into()))),
        "{rules:?}"
    );
    assert!(
        !rules
            .iter()
            .any(|(r, _)| *r == "malformed-token-request" || r.starts_with("pkce")),
        "{rules:?}"
    );
}

#[test]
fn a_fault_marks_the_findings_it_causes_not_the_apps_own_bugs_on_the_same_request() {
    // The fault changed the redirect_uri; the app itself also sent its
    // client secret in the query string (its own bug).
    let mut redeemed = token_on(
        &format!("{TENANT_BASE}/token?client_secret=leaked"),
        5.0,
        &[("redirect_uri", Some("https://app.example.com/signin-oidc/"))],
    )
    .build();
    redeemed.intervention = Some(crate::exchange::Intervention::new(
        crate::exchange::InterventionKind::Rewritten,
        "redirect-mismatch",
        "added a trailing slash",
    ));
    let events = run(&[authorize(&[]), code_issued(2.0), redeemed]);
    let marked: Vec<_> = findings(&events)
        .iter()
        .map(|f| (f.rule.id(), f.injected.is_some()))
        .collect();
    assert!(marked.contains(&("param-mismatch", true)), "{marked:?}");
    assert!(
        marked.contains(&("malformed-token-request", false)),
        "{marked:?}"
    );
    // A request authlens made itself is wholly its own.
    assert!(super::fault_may_cause("some-other-hook", "anything"));
    assert!(!super::fault_may_cause(
        "reuse-code+redirect-mismatch",
        "pkce-mismatch"
    ));
    assert!(super::fault_may_cause(
        "reuse-code+redirect-mismatch",
        "param-mismatch"
    ));
}

mod par;

#[test]
fn a_callback_published_before_its_authorize_is_paired_when_the_authorize_comes() {
    // The IdP's redirect carrying the code is published when its response
    // ends, which can be after the browser followed it to the callback.
    let location = format!("{REDIRECT}?code={}&state=S1&session_state=x", enc(CODE));
    let authorize = ex(
        "GET",
        &format!("{TENANT_BASE}/authorize?{}", form(&authorize_params(), &[])),
    )
    .id(2)
    .at(0.0)
    .redirect(&location)
    .build();
    let callback = ex("GET", &location)
        .id(3)
        .at(0.5)
        .status(200)
        .resp_header("content-type", "text/html")
        .resp_body("<html><body>signed in</body></html>")
        .build();
    let slash = format!("{REDIRECT}/");
    // An earlier sign-in makes the callback's URL known as a redirect URI.
    let earlier = authorize_on(TENANT_BASE, &[("state", Some("S0"))]);
    let events = run(&[
        earlier,
        callback,
        authorize,
        token(&[("redirect_uri", Some(slash.as_str()))]),
    ]);
    let codes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Code(c) => Some((c.pairing, c.attempt)),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes.last().map(|c| c.0),
        Some(Pairing::State),
        "{events:#?}"
    );
    assert!(
        summary(&events).contains(&(
            "param-mismatch",
            Some("redirect_uri".to_owned()),
            Severity::Error
        )),
        "{:#?}",
        summary(&events)
    );
    let Event::Token(t) = events
        .iter()
        .find(|e| matches!(e, Event::Token(_)))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        t.code_age,
        Some(Duration::from_millis(4900)),
        "aged from the IdP's answer, not from the callback"
    );
}

#[test]
fn an_unpaired_callback_delivered_again_does_not_take_an_attempt_waiting_for_its_own_code() {
    // Code X came back to the app with nothing to pair it with (its
    // authorize was never seen); an app sending no state then starts an
    // attempt, and the browser reloads X's callback meanwhile.
    let stale = format!("{REDIRECT}?code=stale-code-X&state=SX");
    let first = ex("GET", &stale)
        .id(1)
        .at(0.0)
        .status(200)
        .resp_header("content-type", "text/html")
        .resp_body("<html><body>signed in</body></html>")
        .build();
    let earlier = authorize_on(TENANT_BASE, &[("state", Some("S0"))]);
    let no_state = authorize_on(TENANT_BASE, &[("state", None)]);
    let mut again = first.clone();
    again.id = 4;
    let events = run(&[earlier, first, no_state, again, code_issued(2.0)]);
    let codes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Code(c) => Some((c.code.clone(), c.pairing)),
            _ => None,
        })
        .collect();
    let own = fingerprint("code", CODE);
    assert!(
        codes.contains(&(Some(own), Pairing::Heuristic)),
        "the attempt's own code pairs with it: {codes:#?}"
    );
    let stale_pairings: Vec<_> = codes
        .iter()
        .filter(|(c, _)| c.as_deref() == Some(fingerprint("code", "stale-code-X").as_str()))
        .map(|(_, p)| *p)
        .collect();
    assert_eq!(stale_pairings, [Pairing::Unpaired], "{codes:#?}");
}
