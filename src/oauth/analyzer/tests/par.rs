//! PAR (RFC 9126) and JAR (RFC 9101): an /authorize that names its
//! parameters elsewhere is judged exactly as if they had been on it.

use super::*;
use crate::oauth::testing::jwt;

const REQUEST_URI: &str = "urn:ietf:params:oauth:request_uri:bwc4JK-ESC0w8acc191e-Y1LTC2";

/// The push at t=-1 of the authorization parameters (with `changes`),
/// answered with `REQUEST_URI` valid 60 s.
fn push(changes: Changes<'_>) -> Exchange {
    let mut body = form(&authorize_params(), changes);
    body.push_str("&client_secret=s3cr3t");
    ex("POST", &format!("{TENANT_BASE}/par"))
        .id(10)
        .at(0.0)
        .form(&body)
        .json(
            201,
            &format!(r#"{{"request_uri":"{REQUEST_URI}","expires_in":60}}"#),
        )
        .build()
}

/// /authorize at `at` carrying only client_id and the request_uri.
fn authorize_par(at: f64) -> Exchange {
    ex(
        "GET",
        &format!(
            "{TENANT_BASE}/authorize?client_id={CLIENT}&request_uri={}",
            enc(REQUEST_URI)
        ),
    )
    .id(1)
    .at(at)
    .status(200)
    .resp_header("content-type", "text/html")
    .resp_body("<html><body><form action=\"/login\"><input name=\"login\"></form></body></html>")
    .build()
}

fn par_flow(push_changes: Changes<'_>, token: Exchange) -> Vec<Exchange> {
    vec![
        push(push_changes),
        authorize_par(0.5),
        code_issued(2.0),
        token,
    ]
}

#[test]
fn a_clean_par_sign_in_is_silent_and_says_via_par() {
    let events = run(&par_flow(&[], token(&[])));
    assert_eq!(
        kinds(&events),
        ["authorize", "code", "token", "token-response", "verdict"]
    );
    assert_clean("par", &events);
    let Event::Authorize(a) = &events[0] else {
        panic!()
    };
    assert_eq!(a.via, Some("par"));
    assert_eq!(
        a.redirect_uri.as_deref(),
        Some(REDIRECT),
        "read from the push"
    );
    assert_eq!(a.pkce_method.as_deref(), Some("S256"));
    assert_eq!(a.via_note, None);
}

#[test]
fn a_push_not_seen_still_starts_a_sign_in_whose_parameters_are_unknown() {
    // .NET 9 pushed before capture started: /authorize names only client_id
    // and request_uri. The sign-in is followed (the code and the redemption
    // pair with it) and the user told why its parameters are unknown; the
    // redemption's verifier and redirect_uri are not judged against
    // parameters authlens never saw.
    let events = run(&[authorize_par(0.5), code_issued(2.0), token(&[])]);
    assert_eq!(
        kinds(&events),
        ["authorize", "code", "token", "token-response", "verdict"],
        "{events:#?}"
    );
    assert!(events.iter().all(|e| e.attempt().is_some()), "{events:#?}");
    let Event::Authorize(a) = &events[0] else {
        panic!()
    };
    assert_eq!((a.via, a.client_id.as_str()), (Some("par"), CLIENT));
    assert_eq!(
        (a.redirect_uri.as_deref(), a.pkce_method.as_deref()),
        (None, None)
    );
    let note = a.via_note.as_deref().unwrap_or_default();
    assert!(
        note.starts_with("authlens did not see the pushed request")
            && note.contains("its parameters are unknown"),
        "{note}"
    );
    assert!(findings(&events).is_empty(), "{:#?}", findings(&events));
    let v = verdict(&events);
    assert_eq!(v.outcome, Outcome::SignedIn);

    // A push whose request object could not be read: its note is carried to
    // the /authorize that names it, and the sign-in is followed the same way.
    let broken = ex("POST", &format!("{TENANT_BASE}/par"))
        .id(10)
        .at(0.0)
        .form(&format!("client_id={CLIENT}&request=not-a-jwt"))
        .json(
            201,
            &format!(r#"{{"request_uri":"{REQUEST_URI}","expires_in":60}}"#),
        )
        .build();
    let events = run(&[broken, authorize_par(0.5), code_issued(2.0), token(&[])]);
    assert_eq!(
        kinds(&events),
        ["authorize", "code", "token", "token-response", "verdict"],
        "{events:#?}"
    );
    let Event::Authorize(a) = &events[0] else {
        panic!()
    };
    let note = a.via_note.as_deref().unwrap_or_default();
    assert!(note.contains("not a readable JWT"), "{note}");
    assert!(findings(&events).is_empty(), "{:#?}", findings(&events));
}

#[test]
fn a_push_to_an_endpoint_only_discovery_names_is_read() {
    let discovery = ex("GET", "https://id.example/.well-known/openid-configuration")
        .json(
            200,
            r#"{"authorization_endpoint":"https://id.example/authorize","token_endpoint":"https://id.example/token","pushed_authorization_request_endpoint":"https://id.example/push-here"}"#,
        )
        .build();
    let pushed = ex("POST", "https://id.example/push-here")
        .at(0.0)
        .form(&form(&authorize_params(), &[]))
        .json(
            201,
            &format!(r#"{{"request_uri":"{REQUEST_URI}","expires_in":90}}"#),
        )
        .build();
    let authorize = ex(
        "GET",
        &format!(
            "https://id.example/authorize?client_id={CLIENT}&request_uri={}",
            enc(REQUEST_URI)
        ),
    )
    .id(1)
    .at(0.5)
    .build();
    let events = run(&[
        discovery,
        pushed.clone(),
        authorize.clone(),
        code_issued(2.0),
        token_on("https://id.example/token", 3.0, &[]).build(),
    ]);
    assert_clean("discovery-learnt PAR", &events);
    // Without the discovery document the push is not recognised as one: it
    // reads as a form-POST /authorize, and the request_uri names nothing known.
    // (The /authorize naming it is then a sign-in whose parameters are unknown.)
    let events = run(&[pushed, authorize]);
    assert_eq!(kinds(&events), ["authorize", "authorize"], "{events:#?}");
    let Event::Authorize(a) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (a.via, a.endpoint.as_str()),
        (None, "https://id.example/push-here")
    );
}

#[test]
fn every_mismatch_rule_fires_through_par() {
    use Severity::{Error, Warning};
    let token_url = format!("{TENANT_BASE}/token");
    let at = |secs: f64, changes: Changes<'_>| token_on(&token_url, secs, changes).build();
    let cases: Vec<(&str, Vec<Exchange>, Expected)> = vec![
        (
            "redirect_uri trailing slash",
            par_flow(&[], at(3.0, &[("redirect_uri", Some("https://app.example.com/signin-oidc/"))])),
            expect("param-mismatch", "redirect_uri", Error),
        ),
        (
            "redirect_uri pushed differs",
            par_flow(&[("redirect_uri", Some("https://app.example.com/other"))], at(3.0, &[])),
            expect("param-mismatch", "redirect_uri", Error),
        ),
        (
            "client_id differs",
            par_flow(&[], at(3.0, &[("client_id", Some("99999999-2222-3333-4444-555555555555"))])),
            expect("param-mismatch", "client_id", Error),
        ),
        (
            "scope beyond the push",
            par_flow(&[], at(3.0, &[("scope", Some("openid User.Read Mail.Send"))])),
            expect("param-mismatch", "scope", Error),
        ),
        (
            "pkce mismatch",
            par_flow(&[], at(3.0, &[("code_verifier", Some(&"x".repeat(43)))])),
            expect("pkce-mismatch", "code_verifier", Error),
        ),
        (
            "pkce missing verifier",
            par_flow(&[], at(3.0, &[("code_verifier", None)])),
            expect("pkce-missing-verifier", "code_verifier", Error),
        ),
        (
            "pkce unexpected verifier",
            par_flow(&[("code_challenge", None), ("code_challenge_method", None)], at(3.0, &[])),
            expect("pkce-unexpected-verifier", "code_verifier", Error),
        ),
        (
            "endpoint tenant",
            par_flow(&[], token_on("https://login.microsoftonline.com/common/oauth2/v2.0/token", 3.0, &[]).build()),
            expect("endpoint-mismatch", "tenant", Error),
        ),
        (
            "code expired",
            par_flow(&[], at(2.0 + 11.0 * 60.0, &[])),
            expect("code-expired", "code", Error),
        ),
        (
            "code near expiry",
            par_flow(&[], at(2.0 + 9.0 * 60.0, &[])),
            expect("code-near-expiry", "code", Warning),
        ),
        (
            "code reused",
            {
                let mut flow = par_flow(&[], at(3.0, &[]));
                flow.push(token_on(&token_url, 20.0, &[]).id(4).build());
                flow
            },
            expect("code-reused", "code", Error),
        ),
        (
            "nonce",
            par_flow(
                &[],
                token_on(&token_url, 3.0, &[])
                    .json(
                        200,
                        &format!(
                            r#"{{"token_type":"Bearer","access_token":"opaque","id_token":"{}"}}"#,
                            jwt(&serde_json::json!({"nonce": "N2", "tid": "contoso.onmicrosoft.com"}))
                        ),
                    )
                    .build(),
            ),
            expect("nonce-mismatch", "nonce", Error),
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
        let Event::Authorize(a) = &events[0] else {
            panic!("{name}: {events:#?}")
        };
        assert_eq!(a.via, Some("par"), "{name}");
    }
}

/// The IdP's answer to a second /authorize with the same request_uri.
fn refused_request_uri(at: f64) -> Exchange {
    ex(
        "GET",
        &format!(
            "{TENANT_BASE}/authorize?client_id={CLIENT}&request_uri={}",
            enc(REQUEST_URI)
        ),
    )
    .id(5)
    .at(at)
    .redirect(&format!(
        "{REDIRECT}?error=invalid_request_uri&error_description=request_uri+is+invalid&state=S1"
    ))
    .build()
}

#[test]
fn a_reused_or_expired_request_uri_is_explained() {
    let mut reused = par_flow(&[], token(&[]));
    reused.push(refused_request_uri(30.0));
    let events = run(&reused);
    let f = findings(&events)
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .expect("idp-error");
    assert_eq!(f.field.as_deref(), Some("invalid_request_uri"));
    assert!(
        f.message.contains("confirmed: request_uri")
            && f.message
                .contains("already used by /authorize at 10:00:00 (exchange 1, 29.5 s earlier)"),
        "{}",
        f.message
    );
    assert!(f.fix.contains("new authorization request"), "{}", f.fix);
    assert_eq!(
        f.evidence["request_uri"]["earlier_uses"],
        serde_json::json!([1])
    );

    // First use, but 75 s after a push valid 60 s.
    let events = run(&[push(&[]), refused_request_uri(75.0)]);
    let f = findings(&events)[0];
    assert!(
        f.message.contains("used 1 min 15 s after it was pushed")
            && f.message.contains("expires_in 60 s"),
        "{}",
        f.message
    );
    // Another error on the same /authorize is left as the catalogue says.
    let other = ex(
        "GET",
        &format!(
            "{TENANT_BASE}/authorize?client_id={CLIENT}&request_uri={}",
            enc(REQUEST_URI)
        ),
    )
    .at(1.0)
    .redirect(&format!("{REDIRECT}?error=access_denied&state=S1"))
    .build();
    let events = run(&[push(&[]), other]);
    assert!(!findings(&events)[0].message.contains("request_uri"));
}

#[test]
fn a_refused_or_unreadable_push_ends_the_sign_in_there() {
    let refused = ex("POST", &format!("{TENANT_BASE}/par"))
        .form(&form(&authorize_params(), &[]))
        .json(
            400,
            r#"{"error":"invalid_request","error_description":"redirect_uri not allowed"}"#,
        )
        .build();
    let events = run(&[refused]);
    assert_eq!(
        kinds(&events),
        ["authorize", "finding", "verdict"],
        "{events:#?}"
    );
    let f = findings(&events)[0];
    assert!(
        f.message
            .starts_with("IdP refused the pushed authorization request"),
        "{}",
        f.message
    );
    assert_eq!(verdict(&events).outcome, Outcome::Failed);

    let html = ex("POST", &format!("{TENANT_BASE}/par"))
        .form(&form(&authorize_params(), &[]))
        .status(200)
        .resp_header("content-type", "text/html")
        .resp_body("<html>maintenance</html>")
        .build();
    let events = run(&[html]);
    assert_eq!(kinds(&events), ["authorize", "verdict"], "{events:#?}");
    let v = verdict(&events);
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(
        v.summary.contains("not a JSON object") && v.summary.contains("text/html"),
        "{}",
        v.summary
    );
}

#[test]
fn a_request_object_is_read_from_its_claims() {
    let claims: serde_json::Map<String, serde_json::Value> = authorize_params()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v.to_owned())))
        .collect();
    let object = jwt(&serde_json::Value::Object(claims));
    let jar = |object: &str| {
        ex(
            "GET",
            &format!("{TENANT_BASE}/authorize?client_id={CLIENT}&request={object}"),
        )
        .id(1)
        .at(0.0)
        .status(200)
        .resp_header("content-type", "text/html")
        .resp_body("<html></html>")
        .build()
    };
    let events = run(&[jar(&object), code_issued(2.0), token(&[])]);
    assert_clean("jar", &events);
    let Event::Authorize(a) = &events[0] else {
        panic!()
    };
    assert_eq!(
        (a.via, a.nonce.as_deref()),
        (Some("request_object"), Some("N1"))
    );
    // The claims are what the token request is held to.
    let events = run(&[
        jar(&object),
        code_issued(2.0),
        token(&[("redirect_uri", Some("https://app.example.com/x"))]),
    ]);
    assert_eq!(
        summary(&events),
        vec![(
            "param-mismatch",
            Some("redirect_uri".to_owned()),
            Severity::Error
        )]
    );
    // Not a JWT, beside the parameters on the query: those, and a note.
    let query = form(&authorize_params(), &[("request", Some("a.b.c.d.e"))]);
    let events = run(&[ex("GET", &format!("{TENANT_BASE}/authorize?{query}"))
        .at(0.0)
        .build()]);
    let Event::Authorize(a) = &events[0] else {
        panic!("{events:#?}")
    };
    assert_eq!(a.via, Some("request_object"));
    assert!(
        a.via_note.as_deref().unwrap().contains("encrypted"),
        "{a:?}"
    );
}

#[test]
fn spa_origin_refusals_are_confirmed_from_the_wire() {
    let token_url = format!("{TENANT_BASE}/token");
    let refusal = |code: u64, text: &str| {
        format!(
            r#"{{"error":"invalid_request","error_description":"AADSTS{code}: {text}","error_codes":[{code}]}}"#
        )
    };
    let web = par_flow(
        &[],
        token_on(&token_url, 3.0, &[("client_secret", None)])
            .header("origin", "https://app.example")
            .json(400, &refusal(9002326, "Cross-origin token redemption is permitted only for the 'Single-Page Application' client type."))
            .build(),
    );
    let events = run(&web);
    let f = findings(&events)
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .unwrap();
    assert!(
        f.message.contains("the request carried `Origin: https://app.example`, so Entra treated it as a browser redemption; the redirect URI is registered as Web"),
        "{}",
        f.message
    );
    assert!(
        f.fix.contains("'Single-page application'") && f.fix.contains(REDIRECT),
        "{}",
        f.fix
    );

    let spa = par_flow(
        &[],
        token_on(&token_url, 3.0, &[("client_secret", None)])
            .json(400, &refusal(9002327, "Tokens issued for the 'Single-Page Application' client type may only be redeemed via cross-origin requests."))
            .build(),
    );
    let f = findings(&run(&spa))
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .cloned()
        .unwrap();
    assert!(
        f.message.contains("carried no `Origin` header"),
        "{}",
        f.message
    );
    assert!(f.fix.contains("Web platform"), "{}", f.fix);

    let secret = par_flow(
        &[],
        token_on(&token_url, 3.0, &[])
            .header("origin", "https://app.example")
            .json(401, &refusal(700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented."))
            .build(),
    );
    let f = findings(&run(&secret))
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .cloned()
        .unwrap();
    assert!(
        f.message
            .contains("`Origin: https://app.example` and a client credential (client_secret_post)"),
        "{}",
        f.message
    );
}

#[test]
fn an_idp_page_refusing_a_request_uri_is_explained_too() {
    let page = |at: f64| {
        ex(
            "GET",
            &format!(
                "{TENANT_BASE}/authorize?client_id={CLIENT}&request_uri={}",
                enc(REQUEST_URI)
            ),
        )
        .id(5)
        .at(at)
        .status(400)
        .resp_header("content-type", "text/html")
        .resp_body(
            "<html><body><p>invalid_request_uri: The request_uri is unknown.</p></body></html>",
        )
        .build()
    };
    // Seen pushed, used once before: the page is the refusal of a reuse.
    let mut reused = par_flow(&[], token(&[]));
    reused.push(page(30.0));
    let events = run(&reused);
    let f = findings(&events)
        .into_iter()
        .find(|f| f.rule == Rule::IdpError)
        .expect("idp-error");
    assert_eq!(f.field.as_deref(), Some("invalid_request_uri"));
    assert_eq!(f.attempt, Some(AttemptId(2)));
    assert!(
        f.message.contains("was already used by /authorize"),
        "{}",
        f.message
    );
    assert_eq!(verdict(&events).outcome, Outcome::Failed);

    // Never seen pushed: a sign-in of unknown parameters, and the refusal is still said.
    let events = run(&[page(1.0)]);
    assert_eq!(
        kinds(&events),
        ["authorize", "finding", "verdict"],
        "{events:#?}"
    );
    let f = findings(&events)[0];
    assert!(
        f.message.contains("authlens did not see request_uri"),
        "{}",
        f.message
    );

    // A page that names no such error on an ordinary /authorize is not one.
    let other = ex(
        "GET",
        &format!("{TENANT_BASE}/authorize?{}", form(&authorize_params(), &[])),
    )
    .status(400)
    .resp_header("content-type", "text/html")
    .resp_body("<html>invalid_request_uri</html>")
    .build();
    assert_eq!(kinds(&run(&[other])), ["authorize"]);
}
