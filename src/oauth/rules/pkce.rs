//! `pkce-*`: the code_verifier of a redemption against the code_challenge of
//! its /authorize request (RFC 7636, RFC 9700 §2.1.1). The arithmetic is
//! `oauth::pkce`'s; this file only turns its answers into findings.

use serde_json::json;

use super::Draft;
use crate::oauth::event::Rule;
use crate::oauth::message::{AuthorizeRequest, CodeGrant, TokenRequest};
use crate::oauth::pkce::{ChallengeCheck, check_challenge, check_verifier};
use crate::oauth::secret::{SecretPolicy, is_fingerprint};

/// `pkce-*`: challenge at /authorize versus verifier at /token.
pub(super) fn pkce(
    authorize: Option<&AuthorizeRequest>,
    req: &TokenRequest,
    grant: &CodeGrant,
    secrets: SecretPolicy,
) -> Vec<Draft> {
    let verifier = grant.code_verifier.as_deref();
    let challenge = authorize.and_then(|a| a.code_challenge.as_deref());
    let method = authorize.and_then(|a| a.code_challenge_method.as_deref());
    let shown = verifier.map(|v| secrets.show("code_verifier", v));
    // A HAR recorded with secrets redacted holds the verifier's fingerprint:
    // its syntax and its S256 hash cannot be checked (a plain challenge was
    // redacted alike, so equality still can).
    let redacted = verifier.is_some_and(|v| is_fingerprint("code_verifier", v));
    // Unless the method is S256, the challenge may be the verifier itself
    // (plain, none named, or a misspelt `PLAIN`), so it is shown like one: a
    // fingerprint unless the user asked for secrets.
    let plain = method != Some("S256");
    let show_challenge = |c: &str| {
        if plain {
            secrets.show("code_verifier", c)
        } else {
            c.to_owned()
        }
    };
    let mut out = Vec::new();

    if let Some(v) = verifier
        && !redacted
        && let Err(problem) = check_verifier(v)
    {
        out.push(Draft::new(
            Rule::PkceInvalidVerifier,
            Some("code_verifier"),
            format!("code_verifier is not valid PKCE: {}", problem.describe()),
            "Generate the verifier as 43-128 characters of A-Z a-z 0-9 - . _ ~ (e.g. 32 random bytes, base64url without padding).",
            json!({ "code_verifier": shown, "length": v.len() }),
        ));
    }
    let Some(authorize) = authorize else {
        return out;
    };
    match (challenge, verifier) {
        // The verifier may be in the part of the body not read.
        (Some(_), None) if !req.params_known() => {}
        (Some(c), None) => out.push(Draft::new(
            Rule::PkceMissingVerifier,
            Some("code_verifier"),
            "/authorize sent a code_challenge but the token request has no code_verifier".to_owned(),
            "Send the code_verifier that produced the challenge. It is usually lost when several instances don't share session storage, or a cookie holding it was dropped or rewritten.",
            json!({ "code_challenge": show_challenge(c), "code_challenge_method": method }),
        )),
        // The challenge may be among the parameters authlens could not read.
        (None, Some(_)) if !authorize.params_known => {}
        (None, Some(_)) => out.push(Draft::new(
            Rule::PkceUnexpectedVerifier,
            Some("code_verifier"),
            "token request sends a code_verifier but /authorize sent no code_challenge".to_owned(),
            "Send the code_challenge at /authorize too (or no verifier at /token): a verifier without a challenge is refused (RFC 9700 §2.1.1).",
            json!({ "code_verifier": shown, "authorize_client_id": authorize.client_id }),
        )),
        (Some(_), Some(_)) if redacted && method == Some("S256") => {}
        (Some(c), Some(v)) if out.is_empty() => match check_challenge(c, method, v) {
            ChallengeCheck::Matches => {}
            ChallengeCheck::Differs { computed } => {
                let (computed, c) = (show_challenge(&computed), show_challenge(c));
                out.push(Draft::new(
                    Rule::PkceMismatch,
                    Some("code_verifier"),
                    format!(
                        "code_verifier does not match the code_challenge ({} of the verifier gives `{computed}`, /authorize sent `{c}`)",
                        method.unwrap_or("plain")
                    ),
                    "Send the verifier generated with this challenge: it was probably regenerated or taken from another sign-in (several instances, a restart, a rewritten cookie).",
                    json!({ "code_challenge": c, "code_challenge_method": method, "computed_challenge": computed, "code_verifier": shown }),
                ))
            }
            ChallengeCheck::UnknownMethod(m) => out.push(Draft::new(
                Rule::PkceMismatch,
                Some("code_challenge_method"),
                format!("code_challenge_method `{m}` is neither S256 nor plain, so the verifier cannot match"),
                "Use code_challenge_method=S256 (exactly that spelling).",
                json!({ "code_challenge": show_challenge(c), "code_challenge_method": m, "code_verifier": shown }),
            )),
        },
        _ => {}
    }
    out
}
