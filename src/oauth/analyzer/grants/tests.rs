//! Table tests of the legs beyond the code redemption: every rule fires on
//! its case and stays silent on the clean one (a refresh, a device flow
//! with several `authorization_pending` polls, a client_credentials call).

use std::time::Duration;

use super::super::{Analyzer, AnalyzerConfig};
use crate::exchange::Exchange;
use crate::oauth::event::{Event, Finding, Severity};
use crate::oauth::secret::fingerprint;
use crate::oauth::testing::{Ex, ex, jwt};

const BASE: &str = "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0";
const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const REDIRECT: &str = "https%3A%2F%2Fapp.example.com%2Fcb";
const SCOPE: &str = "openid%20profile%20offline_access%20User.Read";
const DEVICE: &str = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

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

/// `(rule, field, severity)` of every finding.
fn summary(events: &[Event]) -> Vec<(&'static str, Option<String>, Severity)> {
    findings(events)
        .iter()
        .map(|f| (f.rule.id(), f.field.clone(), f.severity))
        .collect()
}

fn tokens(refresh: &str) -> String {
    format!(
        r#"{{"token_type":"Bearer","scope":"openid profile offline_access User.Read","expires_in":3599,"access_token":"{}","refresh_token":"{refresh}"}}"#,
        jwt(&serde_json::json!({"aud": "00000003-0000-0000-c000-000000000000", "tid": "t"}))
    )
}

/// A code flow at t=0..`at` whose redemption (with `Origin` when `spa`)
/// returns refresh token `rt`.
fn signed_in(rt: &str, spa: bool, at: f64) -> Vec<Exchange> {
    let authorize = ex(
        "GET",
        &format!(
            "{BASE}/authorize?client_id={CLIENT}&response_type=code&redirect_uri={REDIRECT}&scope={SCOPE}&state=S1&code_challenge={CHALLENGE}&code_challenge_method=S256"
        ),
    )
    .id(1)
    .at(0.0)
    .status(200)
    .build();
    let code = ex(
        "POST",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/login",
    )
    .id(2)
    .at(1.0)
    .form("login=alex")
    .redirect("https://app.example.com/cb?code=0.AXkA-code-value_123&state=S1")
    .build();
    let mut redeem = ex("POST", &format!("{BASE}/token"))
        .id(3)
        .at(at)
        .form(&format!(
            "client_id={CLIENT}&grant_type=authorization_code&code=0.AXkA-code-value_123&redirect_uri={REDIRECT}&code_verifier={VERIFIER}"
        ));
    if spa {
        redeem = redeem.header("origin", "https://app.example.com");
    }
    vec![authorize, code, redeem.json(200, &tokens(rt)).build()]
}

/// A refresh of `rt` at `at` s by `client`, answered with `new` (or `error`).
fn refresh(id: u64, at: f64, rt: &str, extra: &str) -> Ex {
    ex("POST", &format!("{BASE}/token"))
        .id(id)
        .at(at)
        .form(&format!(
            "client_id={CLIENT}&grant_type=refresh_token&refresh_token={rt}{extra}"
        ))
}

#[test]
fn a_clean_refresh_is_silent_and_never_token_without_authorize() {
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, 3600.0, "rt-1", "&scope=User.Read")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    flow.push(
        refresh(5, 7200.0, "rt-2", "")
            .json(200, &tokens("rt-3"))
            .build(),
    );
    let events = run(&flow);
    assert_eq!(summary(&events), vec![], "{events:#?}");
    let refreshes: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Token(t) if t.grant_type.as_deref() == Some("refresh_token") => Some(t),
            _ => None,
        })
        .collect();
    assert_eq!(refreshes.len(), 2);
    assert_eq!(refreshes[0].attempt, None);
    assert_eq!(
        refreshes[0].grant_credential,
        Some(fingerprint("refresh_token", "rt-1"))
    );
    assert_eq!(refreshes[0].grant_credential_format, Some("opaque"));
    // The tokens of the answer are decoded as for a code redemption.
    let answer = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::TokenResponse(r) => Some(r),
            _ => None,
        })
        .unwrap();
    assert_eq!(answer.grant_type.as_deref(), Some("refresh_token"));
    assert_eq!(answer.decoded.len(), 1);
    assert!(answer.decoded[0].jwt.is_ok());
    // A refresh seen without the sign-in (started before authlens) is fine too.
    let events = run(&[refresh(1, 0.0, "rt-unknown", "")
        .json(200, &tokens("rt-x"))
        .build()]);
    assert_eq!(summary(&events), vec![]);
}

#[test]
fn refresh_token_reused_after_rotation() {
    // Two refreshes 1.5 s apart: racing.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, 100.0, "rt-1", "")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    flow.push(
        refresh(5, 101.5, "rt-1", "")
            .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired or been revoked.","error_codes":[70008]}"#)
            .build(),
    );
    let events = run(&flow);
    assert_eq!(
        summary(&events),
        vec![
            (
                "refresh-token-reused",
                Some("refresh_token".into()),
                Severity::Error
            ),
            ("idp-error", Some("AADSTS70008".into()), Severity::Error),
        ]
    );
    let f = findings(&events)[0];
    assert!(f.message.contains("racing"), "{}", f.message);
    assert_eq!(f.evidence["earlier_redemption"]["exchange"], 4);
    assert_eq!(f.evidence["earlier_redemption"]["outcome"], "tokens issued");
    assert_eq!(
        f.evidence["earlier_redemption"]["time"],
        "2024-05-01T10:01:40Z"
    );
    assert_eq!(f.evidence["looks_like_race"], true);
    // The IdP's refusal is explained by it.
    assert!(
        findings(&events)[1].message.contains("confirmed"),
        "{}",
        findings(&events)[1].message
    );

    // Hours later: replayed, not racing.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, 100.0, "rt-1", "")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    flow.push(
        refresh(5, 5000.0, "rt-1", "")
            .json(200, &tokens("rt-3"))
            .build(),
    );
    let events = run(&flow);
    let f = findings(&events)[0];
    assert_eq!(f.rule.id(), "refresh-token-reused");
    assert!(!f.message.contains("racing"), "{}", f.message);
    assert!(f.message.contains("still accepted it"), "{}", f.message);

    // Not rotated (the answer kept the same refresh token): no reuse.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, 100.0, "rt-1", "")
            .json(200, &tokens("rt-1"))
            .build(),
    );
    flow.push(
        refresh(5, 101.0, "rt-1", "")
            .json(200, &tokens("rt-1"))
            .build(),
    );
    assert_eq!(summary(&run(&flow)), vec![]);
}

#[test]
fn spa_refresh_token_expires_24_hours_after_the_sign_in() {
    let day = 24.0 * 3600.0;
    // Issued to a redemption with Origin: a SPA token. Rotations do not
    // extend it.
    let mut flow = signed_in("rt-1", true, 2.0);
    flow.push(
        refresh(4, 3600.0, "rt-1", "")
            .header("origin", "https://app.example.com")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    flow.push(
        refresh(5, 0.9 * day, "rt-2", "")
            .header("origin", "https://app.example.com")
            .json(200, &tokens("rt-3"))
            .build(),
    );
    flow.push(
        refresh(6, day + 60.0, "rt-3", "")
            .header("origin", "https://app.example.com")
            .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS700084: The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended.","error_codes":[700084]}"#)
            .build(),
    );
    let events = run(&flow);
    assert_eq!(
        summary(&events),
        vec![
            (
                "refresh-token-expired",
                Some("refresh_token".into()),
                Severity::Warning
            ),
            (
                "refresh-token-expired",
                Some("refresh_token".into()),
                Severity::Error
            ),
            ("idp-error", Some("AADSTS700084".into()), Severity::Error),
        ]
    );
    assert!(findings(&events)[0].message.contains("near expiry"));
    assert!(findings(&events)[2].message.contains("confirmed"));

    // Without Origin the same ages are fine (a Web app's token).
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, day + 60.0, "rt-1", "")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    assert_eq!(summary(&run(&flow)), vec![]);

    // A shorter lifetime (as tests configure it).
    let config = AnalyzerConfig {
        spa_refresh_lifetime: Duration::from_secs(10),
        ..AnalyzerConfig::default()
    };
    let mut flow = signed_in("rt-1", true, 2.0);
    flow.push(
        refresh(4, 20.0, "rt-1", "")
            .header("origin", "https://app.example.com")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    assert_eq!(
        summary(&run_with(config, &flow))[0].0,
        "refresh-token-expired"
    );
}

#[test]
fn refresh_by_another_client_or_for_more_scopes_is_a_param_mismatch() {
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        ex("POST", &format!("{BASE}/token"))
            .id(4)
            .at(10.0)
            .form("client_id=other-app&grant_type=refresh_token&refresh_token=rt-1&scope=User.Read%20Mail.Send")
            .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented to use the application.","error_codes":[65001]}"#)
            .build(),
    );
    let events = run(&flow);
    assert_eq!(
        summary(&events),
        vec![
            ("param-mismatch", Some("client_id".into()), Severity::Error),
            ("param-mismatch", Some("scope".into()), Severity::Error),
            ("idp-error", Some("AADSTS65001".into()), Severity::Error),
        ]
    );
    assert_eq!(findings(&events)[0].evidence["issued_to"], CLIENT);
    assert_eq!(findings(&events)[1].evidence["beyond"][0], "Mail.Send");

    // Entra checks scopes against the app's consent: when it issues the
    // tokens, a wider scope was allowed after all.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, 10.0, "rt-1", "&scope=User.Read%20Mail.Send")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    assert_eq!(summary(&run(&flow)), vec![]);

    // Another client whose refresh the IdP answered with tokens: a family
    // of client IDs (Microsoft FOCI: Teams, Outlook, Azure CLI share
    // refresh tokens), not a mismatch.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        ex("POST", &format!("{BASE}/token"))
            .id(4)
            .at(10.0)
            .form("client_id=04b07795-8ddb-461a-bbee-02f9e1bf7b46&grant_type=refresh_token&refresh_token=rt-1")
            .json(200, &tokens("rt-2"))
            .build(),
    );
    assert_eq!(summary(&run(&flow)), vec![]);
}

fn device_authorization(at: f64, body: &str) -> Exchange {
    ex(
        "POST",
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/devicecode",
    )
    .id(10)
    .at(at)
    .form(&format!("client_id={CLIENT}&scope={SCOPE}"))
    .json(200, body)
    .build()
}

const DEVICE_ANSWER: &str = r#"{"device_code":"DC-1","user_code":"ABCD-EFGH","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in, use a web browser"}"#;

fn poll(id: u64, at: f64, code: &str) -> Ex {
    ex("POST", &format!("{BASE}/token"))
        .id(id)
        .at(at)
        .form(&format!(
            "client_id={CLIENT}&grant_type={DEVICE}&device_code={code}"
        ))
}

const PENDING: &str = r#"{"error":"authorization_pending","error_description":"AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.","error_codes":[70016]}"#;
const SLOW_DOWN: &str = r#"{"error":"slow_down","error_description":"Poll less often."}"#;

#[test]
fn a_clean_device_flow_with_pending_polls_is_silent() {
    let mut flow = vec![device_authorization(0.0, DEVICE_ANSWER)];
    for (i, at) in [5.2, 10.3, 15.4].into_iter().enumerate() {
        flow.push(poll(20 + i as u64, at, "DC-1").json(400, PENDING).build());
    }
    flow.push(poll(30, 20.5, "DC-1").json(200, &tokens("rt-d")).build());
    let events = run(&flow);
    assert_eq!(summary(&events), vec![], "{events:#?}");
    let Event::DeviceAuthorization(d) = &events[0] else {
        panic!("{events:#?}")
    };
    assert_eq!(d.device_code, Some(fingerprint("device_code", "DC-1")));
    assert_eq!(
        (d.expires_in, d.interval, d.note.as_deref()),
        (Some(900), Some(5), None)
    );
    let polls: Vec<(Option<u32>, u32)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Token(t) => Some((t.pending_poll, t.pending_before)),
            _ => None,
        })
        .collect();
    assert_eq!(polls, [(Some(1), 0), (Some(2), 1), (Some(3), 2), (None, 3)]);
    // Pending answers are no failure and close nothing; the tokens do.
    let verdicts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Verdict(v) => Some(v.summary.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(verdicts, ["device sign-in: tokens issued"]);
    assert!(
        events
            .iter()
            .all(|e| !matches!(e, Event::TokenResponse(r) if r.failed))
    );
}

#[test]
fn device_polls_too_fast_and_slow_down() {
    // 2 s apart with interval 5: too fast; the IdP says slow_down.
    let events = run(&[
        device_authorization(0.0, DEVICE_ANSWER),
        poll(20, 5.0, "DC-1").json(400, PENDING).build(),
        poll(21, 7.0, "DC-1").json(400, SLOW_DOWN).build(),
    ]);
    assert_eq!(
        summary(&events),
        vec![(
            "device-poll-too-fast",
            Some("interval".into()),
            Severity::Error
        )]
    );
    assert_eq!(findings(&events)[0].evidence["interval_seconds"], 5);
    // A fixed-rate poller's jitter measured at the proxy (4.3 s, then
    // 5.6 s, with interval 5) is on time: the tolerance is max(1 s, 10%).
    let events = run(&[
        device_authorization(0.0, DEVICE_ANSWER),
        poll(20, 5.0, "DC-1").json(400, PENDING).build(),
        poll(21, 9.3, "DC-1").json(400, PENDING).build(),
        poll(22, 14.9, "DC-1").json(400, PENDING).build(),
    ]);
    assert_eq!(summary(&events), vec![], "{events:#?}");
    // 3.9 s is beyond it.
    let events = run(&[
        device_authorization(0.0, DEVICE_ANSWER),
        poll(20, 5.0, "DC-1").json(400, PENDING).build(),
        poll(21, 8.9, "DC-1").json(400, PENDING).build(),
    ]);
    assert_eq!(summary(&events)[0].0, "device-poll-too-fast");
    // After a slow_down the interval is 10 s: 6 s is too fast.
    let events = run(&[
        device_authorization(0.0, DEVICE_ANSWER),
        poll(20, 5.0, "DC-1").json(400, SLOW_DOWN).build(),
        poll(21, 11.0, "DC-1").json(400, PENDING).build(),
    ]);
    let too_fast: Vec<_> = findings(&events)
        .into_iter()
        .filter(|f| f.rule.id() == "device-poll-too-fast")
        .collect();
    assert_eq!(too_fast.len(), 2, "{events:#?}");
    assert_eq!(too_fast[0].evidence["slow_down_answered"], true);
    assert_eq!(too_fast[1].evidence["interval_seconds"], 10);
    // That pending poll has a finding: shown as a leg, not folded away.
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Token(t) if t.exchange == 21 && t.pending_poll.is_none()))
    );
    assert!(
        too_fast[1].message.contains("slow_down"),
        "{}",
        too_fast[1].message
    );
    // Without interval in the answer: 5 s, and a note says so.
    let no_interval = r#"{"device_code":"DC-1","user_code":"U","verification_uri":"https://x/device","expires_in":900}"#;
    let events = run(&[
        device_authorization(0.0, no_interval),
        poll(20, 1.0, "DC-1").json(400, PENDING).build(),
        poll(21, 3.0, "DC-1").json(400, PENDING).build(),
    ]);
    let Event::DeviceAuthorization(d) = &events[0] else {
        panic!()
    };
    assert_eq!(d.interval, None);
    assert!(d.note.as_deref().unwrap().contains("5 s"));
    assert_eq!(summary(&events)[0].0, "device-poll-too-fast");
    // A garbage interval is shown as what it is, and 5 s applies.
    let garbage = r#"{"device_code":"DC-1","user_code":"U","verification_uri":"https://x/device","expires_in":"soon","interval":"fast"}"#;
    let events = run(&[device_authorization(0.0, garbage)]);
    let Event::DeviceAuthorization(d) = &events[0] else {
        panic!()
    };
    assert_eq!((d.expires_in, d.interval), (None, None));
    assert!(d.note.as_deref().unwrap().contains("`fast`"));
}

#[test]
fn device_code_expired_and_reused() {
    let short = r#"{"device_code":"DC-1","user_code":"U","verification_uri":"https://x/device","expires_in":60,"interval":5}"#;
    let events = run(&[
        device_authorization(0.0, short),
        poll(20, 61.0, "DC-1")
            .json(400, r#"{"error":"expired_token","error_description":"AADSTS70019: Verification code expired.","error_codes":[70019]}"#)
            .build(),
    ]);
    assert_eq!(
        summary(&events),
        vec![
            ("code-expired", Some("device_code".into()), Severity::Error),
            ("idp-error", Some("AADSTS70019".into()), Severity::Error),
        ]
    );
    assert!(findings(&events)[1].message.contains("confirmed"));

    let events = run(&[
        device_authorization(0.0, DEVICE_ANSWER),
        poll(20, 6.0, "DC-1").json(200, &tokens("rt-d")).build(),
        poll(21, 12.0, "DC-1")
            .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS70018: Invalid verification code.","error_codes":[70018]}"#)
            .build(),
    ]);
    assert_eq!(
        summary(&events),
        vec![
            ("code-reused", Some("device_code".into()), Severity::Error),
            ("idp-error", Some("AADSTS70018".into()), Severity::Error),
        ]
    );
    assert_eq!(
        findings(&events)[0].evidence["first_redemption"]["exchange"],
        20
    );
}

fn client_credentials(scope: Option<&str>, answer: (u16, &str)) -> Exchange {
    let scope = scope.map(|s| format!("&scope={s}")).unwrap_or_default();
    ex("POST", &format!("{BASE}/token"))
        .id(40)
        .at(0.0)
        .form(&format!(
            "client_id={CLIENT}&client_secret=s3cr3t&grant_type=client_credentials{scope}"
        ))
        .json(answer.0, answer.1)
        .build()
}

#[test]
fn client_credentials_scope_must_be_resource_default() {
    let ok = (
        200,
        r#"{"token_type":"Bearer","expires_in":3599,"access_token":"opaque"}"#,
    );
    let events = run(&[client_credentials(
        Some("https%3A%2F%2Fgraph.microsoft.com%2F.default"),
        ok,
    )]);
    assert_eq!(summary(&events), vec![], "{events:#?}");
    assert!(
        matches!(events.last(), Some(Event::Verdict(v)) if v.summary == "client credentials: tokens issued")
    );

    let refused = (
        400,
        r#"{"error":"invalid_scope","error_description":"AADSTS1002012: The provided value for scope User.Read is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).","error_codes":[1002012]}"#,
    );
    for scope in [Some("User.Read"), None] {
        let events = run(&[client_credentials(scope, refused)]);
        assert_eq!(
            summary(&events),
            vec![
                (
                    "malformed-token-request",
                    Some("scope".into()),
                    Severity::Error
                ),
                ("idp-error", Some("AADSTS1002012".into()), Severity::Error),
            ],
            "{scope:?}"
        );
        assert!(findings(&events)[1].message.contains("confirmed"));
    }
    // B2C is Entra too (Provider::is_entra): its client credentials take
    // `…/.default` as well.
    let b2c = ex(
        "POST",
        "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/oauth2/v2.0/token",
    )
    .form("client_id=c&client_secret=s&grant_type=client_credentials&scope=https%3A%2F%2Fcontoso.onmicrosoft.com%2Fapi%2Fread")
    .json(refused.0, refused.1)
    .build();
    assert_eq!(summary(&run(&[b2c]))[0].0, "malformed-token-request");
}

#[test]
fn other_grants_are_shown_by_name_and_explained_from_the_catalogue() {
    let obo = ex("POST", &format!("{BASE}/token"))
        .id(1)
        .at(0.0)
        .form("client_id=api&client_secret=x&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&requested_token_use=on_behalf_of&assertion=eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default")
        .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS500131: Assertion audience does not match the Client app presenting the assertion.","error_codes":[500131]}"#)
        .build();
    let garbage = ex("POST", &format!("{BASE}/token"))
        .id(2)
        .at(1.0)
        .form("grant_type=%00%FF%1B%5B2J&client_id=x")
        .json(
            400,
            r#"{"error":"unsupported_grant_type","error_codes":[70003]}"#,
        )
        .build();
    let password = ex("POST", &format!("{BASE}/token"))
        .id(3)
        .at(2.0)
        .form("grant_type=password&username=alex&password=hunter2&client_id=x&scope=openid")
        .json(200, r#"{"token_type":"Bearer","access_token":"opaque"}"#)
        .build();
    let exchange = ex("POST", "https://idp.example/oauth2/token")
        .id(4)
        .at(3.0)
        .form("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=st&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=other")
        .json(400, r#"{"error":"invalid_target"}"#)
        .build();
    let events = run(&[obo, garbage, password, exchange]);
    assert_eq!(
        summary(&events),
        vec![
            ("idp-error", Some("AADSTS500131".into()), Severity::Error),
            ("idp-error", Some("AADSTS70003".into()), Severity::Error),
            ("idp-error", Some("invalid_target".into()), Severity::Error),
        ],
        "{events:#?}"
    );
    let grants: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Token(t) => Some((t.grant_type.clone().unwrap(), t.grant_credential.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(grants[0].0, "urn:ietf:params:oauth:grant-type:jwt-bearer");
    assert_eq!(
        grants[0].1,
        Some(fingerprint(
            "assertion",
            "eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0."
        ))
    );
    assert_eq!(grants[1].0, "\0\u{fffd}\u{1b}[2J");
    assert_eq!(grants[2], ("password".to_owned(), None));
    assert_eq!(grants[3].1, Some(fingerprint("subject_token", "st")));
    assert!(events.iter().all(|e| e.attempt().is_none()));
    let verdicts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Verdict(v) => Some(v.summary.clone()),
            _ => None,
        })
        .collect();
    assert!(
        verdicts[0].starts_with("on-behalf-of failed at /token: AADSTS500131"),
        "{verdicts:?}"
    );
    assert_eq!(verdicts[2], "password: tokens issued");
}

#[test]
fn lifecycle_memory_is_bounded() {
    let config = AnalyzerConfig {
        max_attempts: 4,
        ..AnalyzerConfig::default()
    };
    let mut analyzer = Analyzer::new(config);
    for i in 0..200u64 {
        let at = i as f64;
        analyzer.observe(
            &refresh(i, at, &format!("rt-{i}"), "")
                .json(200, &tokens(&format!("rt-new-{i}")))
                .build(),
        );
        analyzer.observe(&device_authorization(
            at,
            &DEVICE_ANSWER.replace("DC-1", &format!("DC-{i}")),
        ));
    }
    assert!(analyzer.refresh.len() <= 4 * 2 + 16);
    assert!(analyzer.devices.len() <= 4 * 2 + 16);
    // And after their time-to-live, all gone.
    analyzer.observe(
        &ex("GET", "https://x/")
            .at(200.0 + 3.0 * 24.0 * 3600.0)
            .build(),
    );
    assert_eq!((analyzer.refresh.len(), analyzer.devices.len()), (0, 0));
}

#[test]
fn a_device_endpoint_learnt_from_discovery_is_recognised_even_when_it_refuses() {
    let refused = || {
        ex("POST", "https://idp.example/custom/device-start")
            .id(2)
            .at(1.0)
            .form("client_id=unknown")
            .json(
                400,
                r#"{"error":"invalid_client","error_description":"Unknown client"}"#,
            )
            .build()
    };
    // Unknown path, refused: nothing to tell it is a device authorization.
    assert_eq!(run(&[refused()]), vec![]);
    let discovery = ex("GET", "https://idp.example/.well-known/openid-configuration")
        .id(1)
        .at(0.0)
        .json(
            200,
            r#"{"issuer":"https://idp.example","authorization_endpoint":"https://idp.example/authorize","token_endpoint":"https://idp.example/token","device_authorization_endpoint":"https://idp.example/custom/device-start"}"#,
        )
        .build();
    let events = run(&[discovery, refused()]);
    assert!(
        matches!(&events[0], Event::DeviceAuthorization(d) if d.failed && d.error.as_deref() == Some("invalid_client")),
        "{events:#?}"
    );
    assert_eq!(
        summary(&events),
        vec![("idp-error", Some("invalid_client".into()), Severity::Error)]
    );
}

#[test]
fn a_refresh_scope_is_judged_against_the_grant_not_the_access_token() {
    // RFC 6749 §6: a rotated refresh token keeps the grant of the one it
    // replaces. A refresh narrowed to `read` got an access token for `read`;
    // the next refresh may still ask for `write`.
    let url = "https://idp.example/oauth/token";
    let answer = |scope: &str, rt: &str| {
        format!(
            r#"{{"token_type":"Bearer","scope":"{scope}","access_token":"at","refresh_token":"{rt}"}}"#
        )
    };
    let at = |id: u64, secs: f64, body: &str| {
        ex("POST", url)
            .id(id)
            .at(secs)
            .form(&format!("client_id=c&grant_type=refresh_token&{body}"))
    };
    let flow = [
        at(1, 0.0, "refresh_token=rt-0")
            .json(200, &answer("read write", "rt-1"))
            .build(),
        at(2, 10.0, "refresh_token=rt-1&scope=read")
            .json(200, &answer("read", "rt-2"))
            .build(),
        at(3, 20.0, "refresh_token=rt-2&scope=write")
            .json(200, &answer("write", "rt-3"))
            .build(),
        // Beyond the grant still is.
        at(4, 30.0, "refresh_token=rt-3&scope=admin")
            .json(400, r#"{"error":"invalid_scope"}"#)
            .build(),
    ];
    let events = run(&flow);
    assert_eq!(
        summary(&events),
        vec![
            ("param-mismatch", Some("scope".into()), Severity::Error),
            ("idp-error", Some("invalid_scope".into()), Severity::Error),
        ],
        "{events:#?}"
    );
    assert_eq!(findings(&events)[0].evidence["granted"], "read write");

    // On Entra a refusal for another reason (inactivity, 700082) does not
    // name a scope beyond what authlens saw granted as its cause.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(
        refresh(4, 10.0, "rt-1", "&scope=User.Read%20Mail.Send")
            .json(400, r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.","error_codes":[700082]}"#)
            .build(),
    );
    let events = run(&flow);
    assert_eq!(
        summary(&events),
        vec![("idp-error", Some("AADSTS700082".into()), Severity::Error)]
    );
    let verdict = events
        .iter()
        .find_map(|e| match e {
            Event::Verdict(v) => Some(v),
            _ => None,
        })
        .unwrap();
    assert!(
        !verdict.summary.contains("param-mismatch"),
        "{}",
        verdict.summary
    );
}

#[test]
fn concurrent_refreshes_are_said_concurrent_whatever_their_completion_order() {
    // Exchange 4 rotates rt-1; its answer takes 2 s. Exchange 5 presents
    // rt-1 again, sent before exchange 4 (0.2 s earlier) but completing
    // after it, so it reaches the analyzer second.
    let slow = |mut e: Exchange| {
        e.timings.response_head = Some(Duration::from_secs(2));
        e
    };
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(slow(
        refresh(4, 100.0, "rt-1", "")
            .json(200, &tokens("rt-2"))
            .build(),
    ));
    flow.push(slow(
        refresh(5, 99.8, "rt-1", "")
            .json(400, r#"{"error":"invalid_grant","error_codes":[70008]}"#)
            .build(),
    ));
    let events = run(&flow);
    let f = findings(&events)[0];
    assert_eq!(f.rule.id(), "refresh-token-reused");
    assert!(
        f.message
            .contains("sent concurrently with exchange 4 (200 ms before it"),
        "{}",
        f.message
    );
    let apart = f.evidence["seconds_apart"].as_f64().unwrap();
    assert!((apart + 0.2).abs() < 1e-6, "signed, never 0: {apart}");
    assert_eq!(f.evidence["concurrent"], true);
    assert_eq!(f.evidence["looks_like_race"], true);

    // Sent 1 s after exchange 4 but before its answer (2 s) arrived.
    let mut flow = signed_in("rt-1", false, 2.0);
    flow.push(slow(
        refresh(4, 100.0, "rt-1", "")
            .json(200, &tokens("rt-2"))
            .build(),
    ));
    flow.push(
        refresh(5, 101.0, "rt-1", "")
            .json(400, r#"{"error":"invalid_grant","error_codes":[70008]}"#)
            .build(),
    );
    let f = findings(&run(&flow))[0].clone();
    assert!(
        f.message
            .contains("concurrently with exchange 4 (1.0 s after it"),
        "{}",
        f.message
    );
}

#[test]
fn a_spa_refresh_token_from_an_unseen_sign_in_has_no_known_age() {
    // The sign-in happened before authlens: the first refresh seen does not
    // start the 24 h, so a refresh 22 h later is not called near expiry.
    let day = 24.0 * 3600.0;
    let spa = |id: u64, at: f64, rt: &str, next: &str| {
        refresh(id, at, rt, "")
            .header("origin", "https://app.example.com")
            .json(200, &tokens(next))
            .build()
    };
    let events = run(&[
        spa(1, 0.0, "rt-unseen", "rt-2"),
        spa(2, 0.92 * day, "rt-2", "rt-3"),
    ]);
    assert_eq!(summary(&events), vec![], "{events:#?}");
}

#[test]
fn an_apps_own_device_api_is_not_a_device_authorization() {
    // The app's own API at a device-flow-like path, refusing a JSON call.
    let own = ex("POST", "https://app.example.com/api/device/authorize")
        .header("content-type", "application/json")
        .body(r#"{"deviceId":"printer-7"}"#)
        .json(401, r#"{"error":"unauthorized"}"#)
        .build();
    let events = run(&[own]);
    assert!(events.is_empty(), "{events:#?}");
    // A form without a client_id there is not one either.
    let form = ex("POST", "https://app.example.com/api/device/authorize")
        .form("name=printer-7")
        .json(401, r#"{"error":"unauthorized"}"#)
        .build();
    assert!(run(&[form]).is_empty());
    // Shaped like one (a form with client_id): a refused device sign-in.
    let okta = ex("POST", "https://dev-1.okta.com/oauth2/v1/device/authorize")
        .form("client_id=0oa1&scope=openid")
        .json(401, r#"{"error":"invalid_client"}"#)
        .build();
    let events = run(&[okta]);
    assert!(
        matches!(events.first(), Some(Event::DeviceAuthorization(_))),
        "{events:#?}"
    );
    assert_eq!(
        summary(&events),
        vec![("idp-error", Some("invalid_client".into()), Severity::Error)]
    );
}
