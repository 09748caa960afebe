//! `token-redacted`: the tokens of a token response came from a recording
//! that authlens redacted (`crate::har::redact`). Information about the
//! recording, not a problem of the sign-in: it says the signature was
//! removed and which claims are shown, so a token without `sub` or a
//! signature is not taken for an IdP bug.

use serde_json::json;

use super::Draft;
use crate::oauth::event::Rule;
use crate::oauth::jwt::KEPT_CLAIMS;

/// A token of a token response, as a redacted recording holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactedToken {
    /// `id_token` or `access_token`.
    pub kind: &'static str,
    /// The fingerprint of the original token.
    pub shown: String,
    /// `true`: a redacted JWT (the claims the analysis needs are kept);
    /// `false`: only the fingerprint was recorded (an older authlens).
    pub claims_kept: bool,
}

/// `token-redacted`, when any token of the response was redacted.
pub(super) fn token_redacted(tokens: &[RedactedToken]) -> Option<Draft> {
    let first = tokens.first()?;
    let prints = |kept: bool| -> Vec<&str> {
        tokens
            .iter()
            .filter(|t| t.claims_kept == kept)
            .map(|t| t.shown.as_str())
            .collect()
    };
    let (kept, bare) = (prints(true), prints(false));
    let mut parts = Vec::new();
    if !kept.is_empty() {
        parts.push(format!(
            "{}: signature removed by redaction; the claims shown are the ones authlens keeps ({}), personal claims were removed",
            kept.join(", "),
            KEPT_CLAIMS.join(", ")
        ));
    }
    if !bare.is_empty() {
        parts.push(format!(
            "{}: redacted to a fingerprint in this recording, so its claims are not available and the nonce and issuer checks were skipped",
            bare.join(", ")
        ));
    }
    let fix = if bare.is_empty() {
        "Nothing to fix: the recording was written without --show-secrets, so the signature and every personal claim (sub, oid, name, …) were removed and the token is no credential. The nonce and issuer checks ran on the claims kept; record with --show-secrets to keep whole tokens."
    } else {
        "Record the session again with this authlens (its recordings keep the claims the checks need and remove only the signature and personal claims), or with --show-secrets to keep whole tokens."
    };
    Some(Draft::new(
        Rule::TokenRedacted,
        Some(first.kind),
        parts.join("; "),
        fix,
        json!({
            "tokens": tokens.iter().map(|t| t.shown.as_str()).collect::<Vec<_>>(),
            "signature": "removed by redaction",
            "kept_claims": KEPT_CLAIMS,
            "fingerprint_only": bare,
        }),
    ))
}
