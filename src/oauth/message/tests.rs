use super::*;
use crate::oauth::testing::ex;

const AUTHZ: &str =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize";

#[test]
fn authorize_request_from_query_and_form() {
    let get = ex("GET", &format!("{AUTHZ}?response_type=code&client_id=abc&redirect_uri=https%3A%2F%2Fapp%2Fcb&scope=openid+profile&state=s1&code_challenge=xyz&code_challenge_method=S256")).build();
    let a = AuthorizeRequest::parse(&get.request).unwrap();
    assert_eq!(a.client_id, "abc");
    assert_eq!(a.redirect_uri.as_deref(), Some("https://app/cb"));
    assert_eq!(a.scope.as_deref(), Some("openid profile"));
    assert_eq!(a.code_challenge_method.as_deref(), Some("S256"));

    let post = ex("POST", AUTHZ)
        .form("response_type=code+id_token&client_id=abc&response_mode=form_post")
        .build();
    let a = AuthorizeRequest::parse(&post.request).unwrap();
    assert_eq!(a.response_type, "code id_token");
    assert_eq!(a.response_mode.as_deref(), Some("form_post"));

    for url in [
        format!("{AUTHZ}?response_type=id_token&client_id=abc"),
        format!("{AUTHZ}?response_type=code"),
        format!("{AUTHZ}?client_id=abc"),
        "https://app.example/?code=1".to_owned(),
    ] {
        assert_eq!(
            AuthorizeRequest::parse(&ex("GET", &url).build().request),
            None,
            "{url}"
        );
    }
}

#[test]
fn authorization_response_from_location_query_and_fragment() {
    let q = AuthorizationResponse::from_location("https://app/cb?code=C1&state=s1&session_state=x")
        .unwrap();
    assert_eq!(
        (q.mode, q.code.as_deref(), q.state.as_deref()),
        (ResponseMode::Query, Some("C1"), Some("s1"))
    );
    assert_eq!(q.target.as_deref(), Some("https://app/cb"));

    let f = AuthorizationResponse::from_location("https://app/cb#code=C2&state=s2").unwrap();
    assert_eq!(
        (f.mode, f.code.as_deref()),
        (ResponseMode::Fragment, Some("C2"))
    );

    let e = AuthorizationResponse::from_location(
        "https://app/cb?error=invalid_request&error_description=AADSTS50011%3A+The+redirect+URI&state=s3",
    )
    .unwrap();
    assert_eq!(e.error.as_deref(), Some("invalid_request"));
    assert_eq!(e.error_codes, vec!["AADSTS50011"]);

    assert_eq!(
        AuthorizationResponse::from_location("https://app/home"),
        None
    );
    assert_eq!(AuthorizationResponse::from_location("/cb?code="), None);
}

#[test]
fn authorization_response_from_form_post_page() {
    let page = ex("POST", "https://login.microsoftonline.com/common/login")
        .status(200)
        .resp_header("content-type", "text/html; charset=utf-8")
        .resp_body(r#"<form method="POST" action="https://app/signin-oidc"><input type="hidden" name="code" value="C3"/><input type="hidden" name="state" value="s"/></form>"#)
        .build();
    let r = AuthorizationResponse::from_response(page.response.as_ref().unwrap()).unwrap();
    assert_eq!(r.mode, ResponseMode::FormPost);
    assert_eq!(r.code.as_deref(), Some("C3"));
    assert_eq!(r.target.as_deref(), Some("https://app/signin-oidc"));

    let gz = ex("GET", "https://idp/x")
        .resp_header("content-encoding", "gzip")
        .resp_body("<form><input name=code value=1></form>")
        .build();
    assert_eq!(
        AuthorizationResponse::from_response(gz.response.as_ref().unwrap()),
        None
    );
}

#[test]
fn authorization_response_from_callback_request() {
    let get = ex("GET", "https://app/cb?code=C4&state=s").build();
    let r = AuthorizationResponse::from_callback(&get.request).unwrap();
    assert_eq!(
        (r.mode, r.code.as_deref()),
        (ResponseMode::Callback, Some("C4"))
    );
    assert_eq!(r.target.as_deref(), Some("https://app/cb"));
    let post = ex("POST", "https://app/signin-oidc")
        .form("code=C5&state=s")
        .build();
    assert_eq!(
        AuthorizationResponse::from_callback(&post.request)
            .unwrap()
            .code
            .as_deref(),
        Some("C5")
    );
}

#[test]
fn token_request_recognition() {
    let known = KnownEndpoints::default();
    let parse = |e: crate::exchange::Exchange| TokenRequest::parse(&e.request, &known);

    let ok = parse(
        ex("POST", "https://app.example/anything")
            .form("grant_type=authorization_code&code=C&client_id=a")
            .header("authorization", "Basic YSUzQTE6cyUyNkI=")
            .build(),
    )
    .unwrap();
    assert_eq!(ok.body_format, BodyFormat::Form);
    assert_eq!(
        ok.grant,
        Some(Grant::AuthorizationCode(CodeGrant {
            code: Some("C".into()),
            ..CodeGrant::default()
        }))
    );
    assert_eq!(
        ok.basic,
        Some(BasicAuth {
            client_id: "a:1".into(),
            secret: "s&B".into()
        })
    );
    assert_eq!(ok.client_auth_methods(), vec!["client_secret_basic"]);

    let json = parse(
        ex(
            "POST",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        )
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"authorization_code","code":"J","client_id":1}"#)
        .build(),
    )
    .unwrap();
    assert_eq!(json.body_format, BodyFormat::Json);
    assert_eq!(
        (json.json.get("code"), json.form.get("code")),
        (Some("J"), None)
    );
    assert!(matches!(
        &json.grant,
        Some(Grant::AuthorizationCode(g)) if g.code.as_deref() == Some("J")
    ));
    assert_eq!(json.client_id(), Some("1"));

    let get = parse(
        ex(
            "GET",
            "https://login.microsoftonline.com/common/oauth2/token?code=Q",
        )
        .build(),
    )
    .unwrap();
    assert_eq!(
        (get.query.get("code"), get.param("code"), &get.grant),
        (Some("Q"), Some("Q"), &None)
    );

    let bare = parse(
        ex(
            "GET",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        )
        .build(),
    );
    assert!(bare.is_some());

    assert_eq!(
        parse(
            ex(
                "OPTIONS",
                "https://login.microsoftonline.com/common/oauth2/v2.0/token"
            )
            .build()
        ),
        None
    );
    // Every grant authlens knows, at any URL; an unknown one at a token URL.
    let refresh = parse(
        ex("POST", "https://auth.example/anything")
            .form("grant_type=refresh_token&refresh_token=r")
            .build(),
    )
    .unwrap();
    assert_eq!(refresh.grant.unwrap().name(), "refresh_token");
    let unknown = parse(
        ex(
            "POST",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        )
        .form("grant_type=made_up")
        .build(),
    )
    .unwrap();
    assert_eq!(unknown.grant, Some(Grant::Other("made_up".into())));
    assert_eq!(
        parse(
            ex("POST", "https://app.example/api")
                .form("grant_type=made_up")
                .build()
        ),
        None
    );
    assert_eq!(
        parse(ex("POST", "https://app.example/api").form("code=x").build()),
        None
    );

    // Another grant carrying a code at a token URL: a code redemption under
    // the wrong grant_type, kept by its name.
    let typo = parse(
        ex(
            "POST",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        )
        .form("grant_type=authorisation_code&code=C")
        .build(),
    )
    .unwrap();
    assert_eq!(typo.grant, Some(Grant::Other("authorisation_code".into())));
    assert_eq!(
        parse(
            ex("POST", "https://app.example/api")
                .form("grant_type=authorisation_code&code=C")
                .build()
        ),
        None
    );
}

#[test]
fn token_response_success_and_entra_error() {
    let ok = ex("POST", "https://x/token")
        .json(
            200,
            r#"{"access_token":"AT","token_type":"Bearer","expires_in":"3599","id_token":"IT"}"#,
        )
        .build();
    let r = TokenResponse::parse(ok.response.as_ref().unwrap());
    assert!(!r.is_error());
    assert_eq!(r.expires_in.as_deref(), Some("3599"));

    let err = ex("POST", "https://x/token")
        .json(
            400,
            r#"{"error":"invalid_grant","error_description":"AADSTS70002: Error validating credentials. AADSTS54005: OAuth2 Authorization code was already redeemed.","error_codes":[70002,54005],"trace_id":"t","correlation_id":"c"}"#,
        )
        .build();
    let r = TokenResponse::parse(err.response.as_ref().unwrap());
    assert!(r.is_error());
    assert_eq!(r.error_codes, vec!["AADSTS54005", "AADSTS70002"]);
    assert_eq!(r.error_numbers, vec![70002, 54005]);
    assert_eq!(r.trace_id.as_deref(), Some("t"));

    let github = ex("POST", "https://github.com/login/oauth/access_token")
        .status(200)
        .resp_body("error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.")
        .build();
    let r = TokenResponse::parse(github.response.as_ref().unwrap());
    assert_eq!(r.error.as_deref(), Some("bad_verification_code"));
}

#[test]
fn arbitrary_bytes_never_panic() {
    let known = KnownEndpoints::default();
    let nasty = [
        "\u{0}\u{ff}{",
        "{\"code\":",
        "<form action='",
        "%%%==&&",
        "é=ü&code=%ff",
        "[1,2]",
        "{\"error_codes\":\"x\"}",
    ];
    for body in nasty {
        let e = ex(
            "POST",
            "https://login.microsoftonline.com/common/oauth2/token",
        )
        .form(body)
        .json(400, body)
        .build();
        let _ = TokenRequest::parse(&e.request, &known);
        let _ = AuthorizeRequest::parse(&e.request);
        let _ = AuthorizationResponse::from_callback(&e.request);
        let _ = AuthorizationResponse::from_response(e.response.as_ref().unwrap());
        let _ = TokenResponse::parse(e.response.as_ref().unwrap());
        let _ = AuthorizationResponse::from_location(body);
    }
}

#[test]
fn error_page_text_from_visible_text_but_not_from_login_templates() {
    let page = |status: u16, body: &str| {
        ex("GET", &format!("{AUTHZ}?response_type=code&client_id=x"))
            .status(status)
            .resp_header("content-type", "text/html; charset=utf-8")
            .resp_body(body)
            .build()
            .response
            .unwrap()
    };
    // A plain error page (no `$Config`), answered with 200 as Entra does.
    let plain = page(
        200,
        "<html><body><h1>Sorry, but we're having trouble signing you in.</h1><p>aadsts700016: Application with identifier 'x' was not found in the directory 'contoso'.</p></body></html>",
    );
    let text = error_page_text(&plain).unwrap();
    assert!(
        text.starts_with("aadsts700016: Application with identifier 'x' was not found"),
        "{text}"
    );
    // A login page whose scripts carry message templates is not an error page,
    // and neither is a page that merely mentions a code without stating it.
    for body in [
        "<html><script type=\"text/javascript\">var t = {\"AADSTS50058\": \"AADSTS50058: silent sign-in failed\"};</SCRIPT><form><input name=login></form></html>",
        "<html><p>See AADSTS50011 in the docs.</p></html>",
        "<html><script>var unterminated = 'AADSTS50011: x';",
    ] {
        assert_eq!(error_page_text(&page(200, body)), None, "{body}");
    }
    // An error status needs no statement.
    assert!(error_page_text(&page(400, "<p>AADSTS90002 tenant</p>")).is_some());
}

/// `body` as captured: its first `kept` bytes, `state`, `size` on the wire.
fn captured(body: &str, kept: usize, state: CaptureState) -> CapturedBody {
    CapturedBody {
        bytes: bytes::Bytes::copy_from_slice(&body.as_bytes()[..kept.min(body.len())]),
        size: body.len() as u64,
        state,
    }
}

fn token_request(content_type: &str, body: CapturedBody) -> Option<TokenRequest> {
    let mut req = ex("POST", "https://idp.example/token")
        .header("content-type", content_type)
        .build()
        .request;
    req.body = body;
    TokenRequest::parse(&req, &KnownEndpoints::default())
}

#[test]
fn a_form_body_cut_short_keeps_only_its_whole_pairs() {
    let body = "grant_type=authorization_code&code=abcdef&client_id=app-1&redirect_uri=https%3A%2F%2Fapp%2Fcb";
    let cut = body.find("client_id=app-1").unwrap() + "client_id=ap".len();
    for state in [CaptureState::Truncated, CaptureState::Aborted] {
        let r = token_request(
            "application/x-www-form-urlencoded",
            captured(body, cut, state),
        )
        .expect("recognised by the grant_type it holds");
        assert_eq!(r.body_format, BodyFormat::Form);
        assert_eq!(r.param("code"), Some("abcdef"));
        assert_eq!(r.param("client_id"), None, "cut: unknown, not `ap`");
        assert!(!r.params_known());
        let want = match state {
            CaptureState::Aborted => BodySeen::BrokeOff {
                read: cut,
                size: body.len() as u64,
            },
            _ => BodySeen::TooLarge {
                read: cut,
                size: body.len() as u64,
            },
        };
        assert_eq!(r.body_seen, want);
    }
    let whole = token_request(
        "application/x-www-form-urlencoded",
        CapturedBody::complete(body.to_owned()),
    )
    .unwrap();
    assert!(whole.params_known());
    assert_eq!(whole.body_seen, BodySeen::Whole);
}

#[test]
fn a_json_body_cut_short_keeps_its_whole_members() {
    let body =
        r#"{"grant_type":"authorization_code","code":"abc","expires":1234,"client_id":"app-1"}"#;
    let cut = body.find("\"client_id\"").unwrap() + 16;
    let r = token_request(
        "application/json",
        captured(body, cut, CaptureState::Aborted),
    )
    .unwrap();
    assert_eq!(r.body_format, BodyFormat::Json);
    assert_eq!(r.param("code"), Some("abc"));
    assert_eq!(r.param("client_id"), None);
    // A number that ends the part seen may have been cut.
    let cut = body.find("1234").unwrap() + 2;
    let r = token_request(
        "application/json",
        captured(body, cut, CaptureState::Aborted),
    )
    .unwrap();
    assert_eq!(r.param("code"), Some("abc"));
    assert_eq!(r.param("expires"), None);
}

#[test]
fn a_body_larger_than_authlens_reads_is_read_in_part() {
    let body = format!(
        "grant_type=authorization_code&code=abc&client_id=app-1&padding={}",
        "x".repeat(300 * 1024)
    );
    let r = token_request(
        "application/x-www-form-urlencoded",
        CapturedBody::complete(body.clone()),
    )
    .unwrap();
    assert_eq!(r.body_format, BodyFormat::Form, "not `Other`");
    assert_eq!(r.param("client_id"), Some("app-1"));
    assert_eq!(
        r.body_seen,
        BodySeen::TooLarge {
            read: 256 * 1024,
            size: body.len() as u64
        }
    );

    // Nothing captured at all (`--capture-limit 0`): at a token URL, still
    // a form, with nothing known about its parameters.
    let mut req = ex("POST", "https://idp.example/oauth2/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("content-length", &body.len().to_string())
        .build()
        .request;
    req.body = captured(&body, 0, CaptureState::Truncated);
    let r = TokenRequest::parse(&req, &KnownEndpoints::default()).unwrap();
    assert_eq!(r.body_format, BodyFormat::Form);
    assert!(r.form.is_empty());
    assert_eq!(
        r.body_seen,
        BodySeen::TooLarge {
            read: 0,
            size: body.len() as u64
        }
    );
}

#[test]
fn a_form_post_page_cut_short_yields_only_whole_fields() {
    let html = r#"<html><body><form method="post" action="https://app/cb"><input type="hidden" name="code" value="abcdef"/><input type="hidden" name="state" value="st-123456"/></form></body></html>"#;
    let cut = html.find("st-123").unwrap() + 3;
    let mut resp = ex("POST", "https://login.microsoftonline.com/common/login")
        .status(200)
        .build()
        .response
        .unwrap();
    resp.headers
        .insert(header::CONTENT_TYPE, "text/html".parse().unwrap());
    resp.body = captured(html, cut, CaptureState::Truncated);
    let r = AuthorizationResponse::from_response(&resp).expect("the code was seen whole");
    assert_eq!(r.code.as_deref(), Some("abcdef"));
    assert_eq!(r.state, None, "cut: unknown, not `st-`");

    // A callback's form body alike.
    let mut req = ex("POST", "https://app/cb")
        .form("code=abcdef&state=st-123456")
        .build()
        .request;
    req.body = captured("code=abcdef&state=st-123456", 22, CaptureState::Aborted);
    let r = AuthorizationResponse::from_callback(&req).unwrap();
    assert_eq!(r.code.as_deref(), Some("abcdef"));
    assert_eq!(r.state, None);
}
