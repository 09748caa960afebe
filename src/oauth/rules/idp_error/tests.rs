//! The idp-error agreement line: unexplained, or confirmed by the finding
//! that names the field the catalogue entry talks of.

use super::*;

fn token_error(codes: &[String], numbers: &[u64], error: &str, description: &str) -> Draft {
    let input = IdpErrorInput {
        leg: "token",
        status: Some(400),
        error: Some(error),
        description: Some(description),
        codes,
        numbers,
        trace_id: None,
        correlation_id: None,
    };
    idp_error(&input, &[], &[])
}

#[test]
fn idp_error_agreement_lines() {
    // Not explained by anything seen.
    let d = token_error(
        &["AADSTS7000215".to_owned()],
        &[7000215],
        "invalid_client",
        "AADSTS7000215: Invalid client secret provided.",
    );
    assert!(
        d.message
            .ends_with("— authlens has no finding that explains it"),
        "{}",
        d.message
    );
    // The catalogue's causes, and where to read the whole entry.
    assert!(
        d.fix.starts_with(
            "Likely causes: (1) The secret's ID was sent instead of its value. (2) A typo"
        ),
        "{}",
        d.fix
    );
    assert!(
        d.fix.ends_with("More: `authlens explain AADSTS7000215`."),
        "{}",
        d.fix
    );
    assert_eq!(d.evidence["explain"], "authlens explain AADSTS7000215");

    // Explained by a redirect_uri difference: both values named, and the
    // redirect_uri finding wins over a scope finding of the same rule.
    let scope = Draft::new(
        Rule::ParamMismatch,
        Some("scope"),
        "scope differs".to_owned(),
        "fix scope",
        json!({}),
    );
    let redirect = Draft::new(
        Rule::ParamMismatch,
        Some("redirect_uri"),
        "redirect_uri differs".to_owned(),
        "fix redirect",
        json!({}),
    )
    .gist("authlens saw `https://a/cb/` at /token vs `https://a/cb` at /authorize".to_owned());
    let codes = ["AADSTS500112".to_owned()];
    let input = IdpErrorInput {
        leg: "token",
        status: Some(400),
        error: Some("invalid_grant"),
        description: Some("AADSTS500112: The reply address does not match."),
        codes: &codes,
        numbers: &[500112],
        trace_id: None,
        correlation_id: None,
    };
    let d = idp_error(&input, &[scope, redirect], &[]);
    assert!(
        d.message.ends_with(
            "confirmed: authlens saw `https://a/cb/` at /token vs `https://a/cb` at /authorize"
        ),
        "{}",
        d.message
    );
    assert_eq!(d.fix, "fix redirect");
    assert_eq!(d.evidence["confirmed_by"], "param-mismatch");
}
