//! Table tests for the id_token rules: nonce and issuer tenant.

use super::*;
use crate::oauth::event::Severity;
use crate::oauth::provider::Discovery;

const TENANT: &str = "72f988bf-0000-4000-8000-00000000c0de";
const OTHER: &str = "00000000-0000-0000-0000-0000000000aa";

fn endpoint(url: &str) -> Endpoint {
    Endpoint::from_uri(&url.parse().unwrap())
}

fn entra(tenant: &str) -> Endpoint {
    endpoint(&format!(
        "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
    ))
}

fn id_token(tid: Option<&str>, iss_tenant: Option<&str>, nonce: Option<&str>) -> Jwt {
    Jwt {
        tid: tid.map(str::to_owned),
        iss: iss_tenant.map(|t| format!("https://login.microsoftonline.com/{t}/v2.0")),
        nonce: nonce.map(str::to_owned),
        ..Jwt::default()
    }
}

#[test]
fn nonce_mismatch_fires_on_a_different_or_missing_nonce_only() {
    let cases: [(Option<&str>, Option<&str>, Option<&str>); 5] = [
        // (sent at /authorize, in the id_token, expected field of the message)
        (Some("n-1"), Some("n-1"), None),
        (None, Some("n-1"), None),
        (None, None, None),
        (Some("n-1"), Some("n-2"), Some("differs")),
        (Some("n-1"), None, Some("has no nonce claim")),
    ];
    for (sent, got, want) in cases {
        let found = nonce_mismatch(sent, &id_token(None, None, got));
        match want {
            None => assert_eq!(found, None, "{sent:?} {got:?}"),
            Some(words) => {
                let d = found.unwrap_or_else(|| panic!("{sent:?} {got:?}: silent"));
                assert_eq!(d.rule, Rule::NonceMismatch);
                assert_eq!(d.severity, Severity::Error);
                assert_eq!(d.field.as_deref(), Some("nonce"));
                assert!(d.message.contains(words), "{}", d.message);
                assert_eq!(d.evidence["authorize"], json!(sent));
                assert_eq!(d.evidence["id_token"], json!(got));
            }
        }
    }
}

#[test]
fn token_issuer_mismatch_table() {
    let known = KnownEndpoints::default();
    let upper = TENANT.to_ascii_uppercase();
    let cases: Vec<(Endpoint, Jwt, Option<&str>)> = vec![
        // Clean: same tenant, in any case.
        (
            entra(TENANT),
            id_token(Some(TENANT), Some(TENANT), None),
            None,
        ),
        (
            entra(&upper),
            id_token(Some(TENANT), Some(TENANT), None),
            None,
        ),
        // Another tenant in tid, or only in iss.
        (
            entra(TENANT),
            id_token(Some(OTHER), Some(OTHER), None),
            Some("tid"),
        ),
        (
            entra(TENANT),
            id_token(None, Some(OTHER), None),
            Some("iss"),
        ),
        (
            entra(TENANT),
            id_token(Some(TENANT), Some(OTHER), None),
            Some("iss"),
        ),
        // v1 issuer shape.
        (
            entra(TENANT),
            Jwt {
                iss: Some(format!("https://sts.windows.net/{OTHER}/")),
                ..Jwt::default()
            },
            Some("iss"),
        ),
        // Multi-tenant segments accept any tenant.
        (
            entra("common"),
            id_token(Some(OTHER), Some(OTHER), None),
            None,
        ),
        (
            entra("organizations"),
            id_token(Some(OTHER), Some(OTHER), None),
            None,
        ),
        (
            entra("Consumers"),
            id_token(Some(OTHER), Some(OTHER), None),
            None,
        ),
        // A domain segment: its tenant id is unknown without discovery.
        (
            entra("contoso.onmicrosoft.com"),
            id_token(Some(OTHER), Some(OTHER), None),
            None,
        ),
        // No tenant claims at all: nothing to compare.
        (entra(TENANT), Jwt::default(), None),
        // Not Entra: the tenant segment means something else.
        (
            endpoint(&format!(
                "https://id.example.com/realms/{TENANT}/protocol/openid-connect/auth"
            )),
            id_token(Some(OTHER), Some(OTHER), None),
            None,
        ),
    ];
    for (authorize, jwt, want) in cases {
        let found = token_issuer_mismatch(&authorize, &known, &jwt);
        assert_eq!(
            found.as_ref().and_then(|d| d.field.as_deref()),
            want,
            "{} {jwt:?}: {found:?}",
            authorize.url()
        );
        if let Some(d) = found {
            assert_eq!(d.rule, Rule::TokenIssuerMismatch);
            assert_eq!(d.severity, Severity::Warning);
            assert!(d.message.contains(OTHER), "{}", d.message);
            assert_eq!(d.evidence["expected_tenant"], TENANT);
        }
    }
}

#[test]
fn token_issuer_mismatch_learns_a_domain_tenant_from_discovery() {
    let authorize = entra("contoso.onmicrosoft.com");
    let mut known = KnownEndpoints::default();
    let doc = json!({
        "issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "authorization_endpoint": authorize.url(),
        "token_endpoint": "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
    });
    known.learn(Discovery::parse(doc.to_string().as_bytes()).unwrap());
    let clean = id_token(Some(TENANT), Some(TENANT), None);
    assert_eq!(token_issuer_mismatch(&authorize, &known, &clean), None);
    let d = token_issuer_mismatch(&authorize, &known, &id_token(Some(OTHER), None, None))
        .expect("fires");
    assert!(
        d.message
            .contains(&format!("/contoso.onmicrosoft.com/ ({TENANT})")),
        "{}",
        d.message
    );
}
