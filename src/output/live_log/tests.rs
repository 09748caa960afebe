//! The live log as a reader sees it: what each line says (unwrapped), and
//! the demo's sign-ins fitted to 120 columns with nothing lost.

use super::*;
use crate::oauth::analyzer::{Analyzer, AnalyzerConfig};
use crate::oauth::testing::{T0, ex, jwt};

/// Wide enough that nothing wraps: the tests of what a line says.
const UNWRAPPED: usize = 1_000;

fn render_all(events: &[Event], options: LiveLogOptions) -> Vec<String> {
    let mut log = LiveLog::new(options);
    events.iter().flat_map(|e| log.render(e)).collect()
}

fn plain(events: &[Event], verbose: bool) -> Vec<String> {
    render_all(
        events,
        LiveLogOptions {
            color: false,
            verbose,
            width: UNWRAPPED,
        },
    )
}

/// The default log (colourless, the default width).
fn default_log(events: &[Event]) -> Vec<String> {
    render_all(events, LiveLogOptions::default())
}

fn sign_in() -> Vec<Event> {
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let mut events = analyzer.observe(
        &ex("GET", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?response_type=code&client_id=app-1&redirect_uri=https%3A%2F%2Fapp%2Fcb&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
            .build(),
    );
    events.extend(
        analyzer.observe(
            &ex(
                "POST",
                "https://login.microsoftonline.com/contoso.onmicrosoft.com/login",
            )
            .at(1.5)
            .redirect("https://app/cb?code=abc&state=s")
            .build(),
        ),
    );
    events.extend(analyzer.observe(
        &ex("POST", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
            .at(2.0)
            .form("grant_type=authorization_code&code=abc&client_id=app-1&redirect_uri=https%3A%2F%2Fapp%2Fcb%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
            .json(200, r#"{"access_token":"at","token_type":"Bearer"}"#)
            .build(),
    ));
    events
}

#[test]
fn one_line_per_leg_findings_indented_and_a_verdict() {
    let lines = plain(&sign_in(), false);
    let expected = [
        "10:00:00.000 #1   authorize       login.microsoftonline.com  client app-1  entra v2.0 contoso.onmicrosoft.com  → https://app/cb  pkce S256  state s",
        "10:00:01.600 #1   code            login.microsoftonline.com  client app-1  code#ba7816  → https://app/cb  (query, paired by state, 1.6 s after authorize)",
        "10:00:02.000 #1   token           login.microsoftonline.com  client app-1  code#ba7816 (age 400 ms)  POST  pkce code_verifier#",
    ];
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.starts_with(want), "\n got: {line}\nwant: {want}");
    }
    assert!(lines[3].starts_with("    ✖ error param-mismatch [redirect_uri]: redirect_uri differs from /authorize (trailing slash)"), "{}", lines[3]);
    assert!(lines[4].starts_with("      fix: "), "{}", lines[4]);
    assert!(lines[5].starts_with("10:00:02.100 #1   token-response  login.microsoftonline.com  client app-1  200  access_token#"), "{}", lines[5]);
    assert!(lines[6].starts_with("10:00:02.100 #1   verdict         ✔ signed in: tokens issued, but authlens found 1 error"), "{}", lines[6]);
    assert_eq!(lines.len(), 7);
    assert!(lines.iter().all(|l| !l.contains('\x1b')));
}

#[test]
fn verbose_adds_evidence_and_colour_adds_ansi() {
    let events = sign_in();
    let verbose = plain(&events, true);
    assert!(
        verbose
            .iter()
            .any(|l| l.trim_start().starts_with("evidence: {"))
    );
    assert!(verbose[0].contains("response_type code"));
    let coloured = render_all(
        &events,
        LiveLogOptions {
            color: true,
            verbose: false,
            width: UNWRAPPED,
        },
    );
    assert!(coloured[3].contains("\x1b[31m✖ error\x1b[0m"));
}

fn token_response_with(decoded: Vec<DecodedToken>) -> Event {
    Event::TokenResponse(TokenResponseEvent {
        injected: None,
        time: T0,
        exchange: 3,
        attempt: Some(crate::oauth::AttemptId(1)),
        host: "login.microsoftonline.com".into(),
        client_id: Some("app-1".into()),
        status: 200,
        failed: false,
        error: None,
        error_description: None,
        error_codes: Vec::new(),
        trace_id: None,
        correlation_id: None,
        tokens: vec!["id_token#e119ca".into()],
        token_type: Some("Bearer".into()),
        scope: None,
        expires_in: None,
        decoded,
        elapsed: None,
        grant_type: Some("authorization_code".into()),
        pending_poll: None,
    })
}

#[test]
fn token_claims_one_line_by_default_and_in_full_with_verbose() {
    use crate::oauth::jwt::{JwtError, decode};
    let token = jwt(&serde_json::json!({
        "iss": "https://login.microsoftonline.com/t-1/v2.0", "aud": "app-1", "tid": "t-1",
        "oid": "o-1", "sub": "s-1", "nonce": "n-1", "roles": ["A", "B"],
        "exp": 1714561200, "iat": 1714557600, "nbf": 1714557600,
    }));
    let event = token_response_with(vec![
        DecodedToken {
            kind: "id_token",
            shown: "id_token#e119ca".into(),
            jwt: decode(&token),
        },
        DecodedToken {
            kind: "access_token",
            shown: "access_token#65e00d".into(),
            jwt: Err(JwtError::Base64("payload")),
        },
    ]);
    let lines = plain(std::slice::from_ref(&event), false);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(
        lines[1],
        "      tokens: sub s-1  aud app-1 (id_token)  expires 11:00:00 (in 60 min)  access_token unreadable (the JWT payload is not valid base64url)  (signature not verified)"
    );
    let lines = plain(std::slice::from_ref(&event), true);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(
        lines[1],
        "      id_token#e119ca  JWT  alg RS256  kid k-1  typ JWT  (signature not verified)"
    );
    assert_eq!(
        lines[2],
        "        iss https://login.microsoftonline.com/t-1/v2.0  aud app-1  tid t-1  oid o-1  sub s-1  roles A,B  exp 2024-05-01T11:00:00Z  iat 2024-05-01T10:00:00Z  nbf 2024-05-01T10:00:00Z  nonce n-1"
    );
    assert!(
        lines[3].contains("access_token#65e00d  cannot read:"),
        "{}",
        lines[3]
    );
    assert!(!lines.concat().contains(&token));
    // Nothing decoded (an error response, opaque tokens): no extra line.
    assert_eq!(plain(&[token_response_with(Vec::new())], false).len(), 1);
}

#[test]
fn token_summary_prefers_the_user_s_subject_and_the_access_token_s_expiry() {
    let at = |secs: i64| Some(T0 + time::Duration::seconds(secs));
    let decoded = vec![
        DecodedToken {
            kind: "access_token",
            shown: "access_token#1".into(),
            jwt: Ok(Jwt {
                sub: Some("api-pairwise".into()),
                aud: vec!["https://graph.microsoft.com".into()],
                exp: at(-300),
                ..Jwt::default()
            }),
        },
        DecodedToken {
            kind: "id_token",
            shown: "id_token#2".into(),
            jwt: Ok(Jwt {
                sub: Some("user".into()),
                aud: vec!["app-1".into()],
                exp: at(3600),
                ..Jwt::default()
            }),
        },
    ];
    assert_eq!(
        token_summary(&decoded, T0, LiveLogOptions::default()).join("  "),
        "sub user  aud https://graph.microsoft.com (access_token), app-1 (id_token)  expires 09:55:00 (expired 5 min ago)"
    );
}

// === the demo's sign-ins, as the live log shows them ===

const CLIENT: &str = "11111111-1111-4111-8111-111111111111";
const OTHER_CLIENT: &str = "22222222-2222-4222-8222-222222222222";
const TENANT: &str = "72f988bf-0000-4000-8000-00000000c0de";
const REDIRECT: &str = "https://app.test/callback";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// `examples/demo.rs` without the network: Entra with a GUID tenant and
/// client ids, each redemption answered as the mock IdP answers it.
struct Demo {
    analyzer: Analyzer,
    exchange: u64,
    clock: f64,
}

/// How the mock IdP refuses a redemption.
fn refusal(error: &str, number: u64, text: &str) -> String {
    serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{number}: {text}\r\nTrace ID: 90d8da04-05c2-4eaf-9719-60f92b975bfd\r\nCorrelation ID: 452515c1-93a8-46aa-88df-0e60f8ef3ada\r\nTimestamp: 2024-05-01 10:00:00Z"),
        "error_codes": [number],
        "trace_id": "90d8da04-05c2-4eaf-9719-60f92b975bfd",
        "correlation_id": "452515c1-93a8-46aa-88df-0e60f8ef3ada",
    })
    .to_string()
}

/// Tokens as the mock IdP issues them (both JWTs readable).
fn tokens() -> String {
    let id_token = jwt(&serde_json::json!({
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"), "aud": CLIENT,
        "tid": TENANT, "oid": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6",
        "sub": "Szi04dVMod6b4ZFqVmBEaoJOHNm4_xRVT8RNXfDFO8c", "exp": 1714561200,
    }));
    let access_token = jwt(&serde_json::json!({
        "aud": "00000003-0000-0000-c000-000000000000", "tid": TENANT, "exp": 1714561200,
    }));
    serde_json::json!({
        "token_type": "Bearer", "expires_in": 3599, "access_token": access_token,
        "id_token": id_token, "refresh_token": "0.refresh",
    })
    .to_string()
}

/// Parameters to replace, add, or remove (`None`).
type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

/// The demo's token request, `changes` applied.
fn token_form(code: &str, changes: Changes<'_>) -> String {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("client_id", CLIENT),
        ("client_secret", "web-secret"),
        ("code_verifier", VERIFIER),
    ];
    for (name, value) in changes {
        let at = pairs.iter().position(|(n, _)| n == name);
        match (at, value) {
            (Some(i), Some(v)) => pairs[i].1 = v,
            (Some(i), None) => {
                pairs.remove(i);
            }
            (None, Some(v)) => pairs.push((name, v)),
            (None, None) => {}
        }
    }
    serde_urlencoded::to_string(&pairs).unwrap()
}

impl Demo {
    fn new() -> Demo {
        Demo {
            analyzer: Analyzer::new(AnalyzerConfig {
                code_lifetime: Some(std::time::Duration::from_secs(3)),
                ..AnalyzerConfig::default()
            }),
            exchange: 0,
            clock: 0.0,
        }
    }

    fn observe(&mut self, exchange: crate::oauth::testing::Ex, after: f64) -> Vec<Event> {
        self.exchange += 1;
        self.clock += after;
        self.analyzer
            .observe(&exchange.id(self.exchange).at(self.clock).build())
    }

    /// /authorize and the code coming back; the code is `code-{state}`.
    fn sign_in(&mut self, state: &str) -> Vec<Event> {
        let query = serde_urlencoded::to_string([
            ("client_id", CLIENT),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile offline_access"),
            ("state", state),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
        let base = format!("https://login.microsoftonline.com/{TENANT}");
        let mut events = self.observe(
            ex("GET", &format!("{base}/oauth2/v2.0/authorize?{query}")),
            0.15,
        );
        events.extend(
            self.observe(
                ex("POST", &format!("{base}/login"))
                    .redirect(&format!("{REDIRECT}?code=code-{state}&state={state}")),
                0.001,
            ),
        );
        events
    }

    /// A redemption at `tenant`'s token endpoint, answered `status` `body`.
    fn redeem(
        &mut self,
        tenant: &str,
        form: &str,
        status: u16,
        body: &str,
        after: f64,
    ) -> Vec<Event> {
        let url = format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token");
        self.observe(ex("POST", &url).form(form).json(status, body), after)
    }

    /// Scene 3: a clean sign-in, then its code redeemed again.
    fn code_reused(&mut self) -> Vec<Event> {
        let mut events = self.sign_in("demo-reuse");
        let form = token_form("code-demo-reuse", &[]);
        events.extend(self.redeem(TENANT, &form, 200, &tokens(), 0.001));
        events.extend(self.redeem(
            TENANT,
            &form,
            400,
            &refusal("invalid_grant", 54005, "The authorization code was already redeemed (0 s ago). Start a new sign-in to get a new code, or use the refresh token."),
            0.001,
        ));
        events
    }

    /// Every scene of the demo.
    fn all_scenes(&mut self) -> Vec<Event> {
        let mut events = self.sign_in("demo-clean");
        events.extend(self.redeem(
            TENANT,
            &token_form("code-demo-clean", &[]),
            200,
            &tokens(),
            0.001,
        ));
        let unseen = token_form("never-seen", &[("code_verifier", None)]);
        events.extend(self.redeem(TENANT, &unseen, 200, &tokens(), 0.15));
        events.extend(self.code_reused());
        let failures: [(&str, &str, Changes<'_>, u64, &str, &str, f64); 5] = [
            (
                "demo-expired",
                TENANT,
                &[],
                70008,
                "invalid_grant",
                "The provided authorization code or refresh token has expired due to it has passed its expiration time.",
                3.5,
            ),
            (
                "demo-common",
                "common",
                &[],
                700005,
                "invalid_grant",
                "Provided Authorization Code is intended to use against other tenant, thus rejected.",
                0.001,
            ),
            (
                "demo-slash",
                TENANT,
                &[("redirect_uri", Some("https://app.test/callback/"))],
                500112,
                "invalid_grant",
                "The reply address 'https://app.test/callback/' does not match the reply address 'https://app.test/callback' provided when requesting Authorization code.",
                0.001,
            ),
            (
                "demo-client",
                TENANT,
                &[("client_id", Some(OTHER_CLIENT)), ("client_secret", None)],
                70000,
                "invalid_grant",
                "Provided grant is invalid or malformed.",
                0.001,
            ),
            (
                "demo-pkce",
                TENANT,
                &[(
                    "code_verifier",
                    Some("a-fresh-verifier-from-another-instance-0123456789"),
                )],
                501481,
                "invalid_grant",
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                0.001,
            ),
        ];
        for (state, tenant, changes, number, error, text, after) in failures {
            events.extend(self.sign_in(state));
            let form = token_form(&format!("code-{state}"), changes);
            events.extend(self.redeem(tenant, &form, 400, &refusal(error, number, text), after));
        }
        events.extend(self.sign_in("demo-json"));
        let json: serde_json::Map<String, serde_json::Value> =
            serde_urlencoded::from_str::<Vec<(String, String)>>(&token_form("code-demo-json", &[]))
                .unwrap()
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect();
        let url = format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token");
        events.extend(
            self.observe(
                ex("POST", &url)
                    .header("content-type", "application/json")
                    .body(&serde_json::Value::Object(json).to_string())
                    .json(
                        400,
                        &refusal(
                            "invalid_request",
                            900144,
                            "The request body must contain the following parameter: 'grant_type'.",
                        ),
                    ),
                0.001,
            ),
        );
        events
    }
}

/// Rows of a wrapped text joined back (the continuation indent dropped).
fn unwrapped(rows: &[String], first: &str) -> String {
    let mut text = rows[0]
        .strip_prefix(first)
        .expect("the first row")
        .to_owned();
    for row in &rows[1..] {
        text.push(' ');
        text.push_str(row.trim_start());
    }
    text
}

fn strip_ansi(text: &str) -> String {
    console::strip_ansi_codes(text).into_owned()
}

#[test]
fn the_demo_fits_in_120_columns_without_losing_a_word() {
    let events = Demo::new().all_scenes();
    // And on a narrow terminal (the demo's longest word takes 47 columns).
    for width in [60, 80] {
        let rows = render_all(
            &events,
            LiveLogOptions {
                width,
                ..LiveLogOptions::default()
            },
        );
        let too_wide: Vec<&String> = rows.iter().filter(|r| columns(r) > width).collect();
        assert!(too_wide.is_empty(), "{too_wide:#?}");
    }
    let rows = default_log(&events);
    let too_wide: Vec<&String> = rows.iter().filter(|r| columns(r) > DEFAULT_WIDTH).collect();
    assert!(too_wide.is_empty(), "{too_wide:#?}");
    // Each leg and verdict starts a row, each finding a row under it.
    let legs = rows.iter().filter(|r| !r.starts_with(' ')).count();
    let findings = rows
        .iter()
        .filter(|r| r.starts_with("    ✖ ") || r.starts_with("    ▲ "))
        .count();
    let count = |finding: bool| {
        events
            .iter()
            .filter(|e| matches!(e, Event::Finding(_)) == finding)
            .count()
    };
    assert_eq!((legs, findings), (count(false), count(true)));
    // Every message and fix whole, its words in order.
    let text = rows.iter().map(|r| r.trim()).collect::<Vec<_>>().join(" ");
    for f in events.iter().filter_map(Event::as_finding) {
        let message = f.message.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&message), "{message}");
        let fix = f.fix.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(text.contains(&format!("fix: {fix}")), "{fix}");
    }
}

#[test]
fn colour_takes_no_columns() {
    let events = Demo::new().all_scenes();
    let plain_rows = default_log(&events);
    let coloured = render_all(
        &events,
        LiveLogOptions {
            color: true,
            ..LiveLogOptions::default()
        },
    );
    assert!(coloured.iter().any(|r| r.contains('\x1b')));
    let stripped: Vec<String> = coloured.iter().map(|r| strip_ansi(r)).collect();
    assert_eq!(stripped, plain_rows);
}

#[test]
fn guids_are_shortened_by_default_and_whole_with_verbose() {
    let events = Demo::new().code_reused();
    let rows = default_log(&events);
    assert_eq!(
        rows[0],
        "10:00:00.150 #1   authorize       login.microsoftonline.com  client 11111111-…  entra v2.0 72f988bf-…"
    );
    assert!(rows.iter().any(|r| r.trim_start().starts_with(
        "tokens: sub Szi04dVMod6b4ZFqVmBEaoJOHNm4_xRVT8RNXfDFO8c  aud 11111111-… (id_token), 00000003-… (access_token)"
    )));
    let text = rows.join("\n");
    assert!(!text.contains(CLIENT) && !text.contains(TENANT), "{text}");

    let verbose = plain(&events, true).join("\n");
    assert!(
        verbose.contains(&format!("client {CLIENT}  entra v2.0 {TENANT}")),
        "{verbose}"
    );
    assert!(!verbose.contains("-…"), "{verbose}");

    // A finding's message keeps them whole: both ids are the point.
    let mut demo = Demo::new();
    let mut events = demo.sign_in("demo-client");
    let form = token_form("code-demo-client", &[("client_id", Some(OTHER_CLIENT))]);
    events.extend(demo.redeem(
        TENANT,
        &form,
        400,
        &refusal("invalid_grant", 70000, "Bad."),
        0.1,
    ));
    let text = default_log(&events).join("\n");
    assert!(
        text.contains(CLIENT) && text.contains(OTHER_CLIENT),
        "{text}"
    );
    assert!(text.contains("client 22222222-…"), "{text}");
}

#[test]
fn only_guids_are_shortened() {
    let o = LiveLogOptions::default();
    assert_eq!(short_id(CLIENT, o), "11111111-…");
    for other in [
        "app-1",
        "contoso.onmicrosoft.com",
        "11111111-1111-4111-8111-11111111111g",
        "11111111-1111-4111-8111-1111111111111",
        "111111111-111-4111-8111-111111111111",
    ] {
        assert_eq!(short_id(other, o), other);
    }
}

#[test]
fn each_fix_is_shown_once_per_failure() {
    let mut demo = Demo::new();
    let mut events = demo.code_reused();
    // The same code a third time: a second failure, its fix shown again.
    let form = token_form("code-demo-reuse", &[]);
    events.extend(demo.redeem(
        TENANT,
        &form,
        400,
        &refusal("invalid_grant", 54005, "Redeemed."),
        0.1,
    ));
    let findings: Vec<&Finding> = events.iter().filter_map(Event::as_finding).collect();
    assert_eq!(findings.len(), 4, "{findings:#?}");
    let fix = &findings[0].fix;
    // The IdP's refusal carries the fix of the finding that explains it.
    assert!(findings.iter().all(|f| &f.fix == fix), "{findings:#?}");

    let rows = default_log(&events);
    let fixes: Vec<usize> = (0..rows.len())
        .filter(|&i| rows[i].starts_with("      fix: "))
        .collect();
    assert_eq!(fixes.len(), 2, "{rows:#?}");
    for i in fixes {
        // Each one under the code-reused finding, whole.
        assert!(rows[i - 1].contains("code-reused") || rows[i - 2].contains("code-reused"));
        let end = (i + 1..rows.len())
            .find(|&j| !rows[j].starts_with("           "))
            .unwrap_or(rows.len());
        assert_eq!(unwrapped(&rows[i..end], "      fix: "), *fix);
    }
}

#[test]
fn the_verdict_names_its_cause_and_leaves_the_detail_to_the_finding() {
    let events = Demo::new().code_reused();
    let rows = default_log(&events);
    assert_eq!(
        rows.last().unwrap(),
        "10:00:00.253 #1   verdict         ✖ sign-in failed at /token: AADSTS54005 (code-reused)  (103 ms since authorize)"
    );
    let verbose = plain(&events, true);
    let last = verbose.last().unwrap();
    assert!(
        last.contains("AADSTS54005 (code-reused: code first redeemed at 10:00:00)"),
        "{last}"
    );
}

#[test]
fn compact_verdicts_drop_only_the_cause_s_gist() {
    assert_eq!(
        compact(
            "sign-in failed at /token: AADSTS501481 (pkce-mismatch: code_verifier does not match (S256 gives `x`))"
        ),
        "sign-in failed at /token: AADSTS501481 (pkce-mismatch)"
    );
    for whole in [
        "signed in: tokens issued, but authlens found 1 error",
        "sign-in failed at /authorize: AADSTS50011",
        "sign-in failed at /token: HTTP 500",
        "sign-in failed at /token: AADSTS7000215 (not a rule: kept)",
    ] {
        assert_eq!(compact(whole), whole);
    }
}

fn long_finding() -> Finding {
    Finding {
        injected: None,
        rule: Rule::ParamMismatch,
        severity: Severity::Error,
        attempt: Some(crate::oauth::AttemptId(1)),
        exchange: 4,
        field: Some("redirect_uri".into()),
        message: "redirect_uri differs from /authorize (trailing slash): `https://app.example.com/signin-oidc/with/a/rather/long/path/` at /token, `https://app.example.com/signin-oidc` at /authorize".into(),
        fix: "Send exactly the redirect_uri string of /authorize (same trailing slash, case and path): build both from one configuration value.".into(),
        evidence: serde_json::Map::new(),
        time: T0,
    }
}

#[test]
fn a_long_finding_wraps_within_the_width_under_itself() {
    let f = long_finding();
    let options = LiveLogOptions {
        width: 60,
        ..LiveLogOptions::default()
    };
    let rows = LiveLog::new(options).render(&Event::Finding(f.clone()));
    let fix_at = rows
        .iter()
        .position(|r| r.starts_with("      fix: "))
        .unwrap();
    let (message, fix) = rows.split_at(fix_at);
    let first = "    ✖ error param-mismatch [redirect_uri]: ";
    assert!(message[0].starts_with(first), "{rows:#?}");
    for row in &message[1..] {
        assert!(
            row.starts_with("      ") && !row.starts_with("       "),
            "{row:?}"
        );
    }
    for row in &fix[1..] {
        assert!(
            row.starts_with("           ") && !row.starts_with("            "),
            "{row:?}"
        );
    }
    assert_eq!(unwrapped(message, first), f.message);
    assert_eq!(unwrapped(fix, "      fix: "), f.fix);
    // Within the width, but for a word wider than a row: whole, alone.
    for row in &rows {
        let words = row.split_whitespace().count();
        assert!(columns(row) <= 60 || words == 1, "{row:?}");
    }
    assert!(rows.contains(
        &"      `https://app.example.com/signin-oidc/with/a/rather/long/path/`".to_owned()
    ));
}

#[test]
fn leg_lines_wrap_under_their_first_field() {
    let events = Demo::new().code_reused();
    let rows = default_log(&events);
    assert_eq!(
        rows[1],
        format!(
            "{}→ https://app.test/callback  pkce S256  state demo-reuse",
            " ".repeat(34)
        )
    );
    // So narrow that the fields would have no room: under the details.
    let narrow = render_all(
        &events[..1],
        LiveLogOptions {
            width: 60,
            ..LiveLogOptions::default()
        },
    );
    assert_eq!(
        narrow[0],
        "10:00:00.150 #1   authorize       login.microsoftonline.com"
    );
    assert!(
        narrow[1..]
            .iter()
            .all(|r| r.starts_with("      ") && columns(r) <= 60),
        "{narrow:#?}"
    );
}

#[test]
fn a_long_url_is_elided_in_the_middle_by_default_and_whole_with_verbose() {
    let long = format!("https://app.example.com/{}/callback", "segment/".repeat(20));
    let query = serde_urlencoded::to_string([
        ("client_id", CLIENT),
        ("response_type", "code"),
        ("redirect_uri", long.as_str()),
        ("state", "s"),
    ])
    .unwrap();
    let url = format!("https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize?{query}");
    let events = Analyzer::new(AnalyzerConfig::default()).observe(&ex("GET", &url).build());
    let rows = default_log(&events);
    let row = rows.iter().find(|r| r.contains("→ ")).unwrap();
    assert!(columns(row) <= DEFAULT_WIDTH, "{row}");
    assert!(
        row.contains("→ https://app.example.com/segment/")
            && row.contains("…")
            && row.contains("/callback"),
        "{row}"
    );
    let verbose = render_all(
        &events,
        LiveLogOptions {
            verbose: true,
            ..LiveLogOptions::default()
        },
    );
    assert!(
        verbose.iter().any(|r| r.contains(&format!("→ {long}"))),
        "{verbose:#?}"
    );
}

#[test]
fn control_characters_are_shown_not_obeyed() {
    let url = format!(
        "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize?client_id=app-1&response_type=code&state=%1B%5B2J%0Aforged"
    );
    let events = Analyzer::new(AnalyzerConfig::default()).observe(&ex("GET", &url).build());
    let rows = default_log(&events);
    assert!(
        rows.iter().all(|r| !r.contains(['\x1b', '\n'])),
        "{rows:#?}"
    );
    assert!(
        rows.last().unwrap().ends_with("state \\u{1b}[2J\\nforged"),
        "{rows:#?}"
    );
}

#[test]
fn bidi_controls_are_shown_not_obeyed() {
    // U+202E (right-to-left override) would show `…gpj.exe` as `…exe.jpg`.
    let url = format!(
        "https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/authorize?client_id=app-1&response_type=code&state=a%E2%80%AEb%E2%81%A6c"
    );
    let events = Analyzer::new(AnalyzerConfig::default()).observe(&ex("GET", &url).build());
    let rows = default_log(&events);
    assert!(
        rows.iter().all(|r| !r.contains(['\u{202e}', '\u{2066}'])),
        "{rows:#?}"
    );
    assert!(
        rows.last()
            .unwrap()
            .ends_with("state a\\u{202e}b\\u{2066}c"),
        "{rows:#?}"
    );
}

#[test]
fn a_notice_is_one_escaped_line() {
    let text = "could not write --json a\nb\u{1b}[2J.jsonl: No space left on device";
    let shown = notice(text, LiveLogOptions::default());
    assert_eq!(
        shown,
        r"authlens: could not write --json a\nb\u{1b}[2J.jsonl: No space left on device"
    );
    let coloured = notice(
        text,
        LiveLogOptions {
            color: true,
            ..LiveLogOptions::default()
        },
    );
    assert!(coloured.starts_with("\x1b[1;31mauthlens: "), "{coloured}");
    assert_eq!(coloured.matches('\x1b').count(), 2, "{coloured}");
}

/// A device-code sign-in: the device authorization, three polls answered
/// `authorization_pending`, tokens; then a refresh and an unknown grant.
fn lifecycle() -> Vec<Event> {
    let mut analyzer = Analyzer::new(AnalyzerConfig::default());
    let base = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0";
    let poll = |id: u64, at: f64| {
        ex("POST", &format!("{base}/token"))
            .id(id)
            .at(at)
            .form("client_id=app-1&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=DC-1")
    };
    let pending = r#"{"error":"authorization_pending","error_codes":[70016]}"#;
    let tokens = r#"{"token_type":"Bearer","access_token":"opaque","refresh_token":"rt-1"}"#;
    let exchanges = [
        ex("POST", &format!("{base}/devicecode"))
            .id(1)
            .at(0.0)
            .form("client_id=app-1&scope=openid")
            .json(200, r#"{"device_code":"DC-1","user_code":"ABCD-EFGH","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5}"#)
            .build(),
        poll(2, 5.0).json(400, pending).build(),
        poll(3, 10.0).json(400, pending).build(),
        poll(4, 15.0).json(400, pending).build(),
        poll(5, 20.0).json(200, tokens).build(),
        ex("POST", &format!("{base}/token"))
            .id(6)
            .at(30.0)
            .form("client_id=app-1&grant_type=refresh_token&refresh_token=eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.c2ln")
            .json(200, r#"{"token_type":"Bearer","access_token":"opaque"}"#)
            .build(),
        ex("POST", &format!("{base}/token"))
            .id(7)
            .at(31.0)
            .form("client_id=app-1&grant_type=magic")
            .json(400, r#"{"error":"unsupported_grant_type","error_codes":[70003]}"#)
            .build(),
    ];
    exchanges.iter().flat_map(|e| analyzer.observe(e)).collect()
}

#[test]
fn lifecycle_legs_one_line_each_and_pending_polls_counted() {
    let lines = plain(&lifecycle(), false);
    let device: Vec<&String> = lines.iter().filter(|l| l.contains("device")).collect();
    assert!(device[0].contains("device-auth"), "{lines:#?}");
    assert!(device[0].contains("user_code ABCD-EFGH"), "{lines:#?}");
    assert!(device[0].contains("interval 5 s"), "{lines:#?}");
    // Three pending polls: one line, not red, no finding; the count on the
    // poll that ends the wait.
    let pending: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("authorization_pending"))
        .collect();
    assert_eq!(pending.len(), 2, "{lines:#?}");
    assert!(pending[0].contains("device-poll") && pending[0].contains("waiting for the user"));
    assert!(
        pending[1].contains("after 3 authorization_pending polls"),
        "{lines:#?}"
    );
    let until_tokens = lines
        .iter()
        .position(|l| l.contains("device sign-in"))
        .unwrap();
    assert!(
        !lines[..until_tokens].iter().any(|l| l.contains("✖")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("device sign-in: tokens issued"))
    );
    // The refresh names its grant and what its token looks like.
    let refresh = lines
        .iter()
        .find(|l| l.contains(" token ") && l.contains("refresh_token#"))
        .unwrap();
    assert!(
        refresh.contains("refresh") && refresh.contains("(JWT)"),
        "{refresh}"
    );
    // An unknown grant is shown by name, as unknown.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("grant_type magic (not a grant authlens knows)")),
        "{lines:#?}"
    );
    // Nothing cut at the default width either.
    let wrapped = default_log(&lifecycle());
    assert!(
        wrapped
            .iter()
            .all(|l| l.chars().count() <= DEFAULT_WIDTH || !l.contains(' '))
    );
}
