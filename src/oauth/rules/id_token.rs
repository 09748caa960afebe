//! The id_token of a successful redemption against its /authorize request:
//! `nonce-mismatch` and `token-issuer-mismatch`. Claims are read, never
//! verified: checking signatures is the app's job, not authlens's.

use serde_json::json;

use super::Draft;
use crate::oauth::event::Rule;
use crate::oauth::jwt::Jwt;
use crate::oauth::provider::{Endpoint, KnownEndpoints, is_guid};

/// `nonce-mismatch`: the id_token must carry the nonce sent at /authorize
/// (OpenID Connect Core §3.1.3.7); `sent` is that nonce.
pub(super) fn nonce_mismatch(sent: Option<&str>, id_token: &Jwt) -> Option<Draft> {
    let sent = sent?;
    let (message, got) = match id_token.nonce.as_deref() {
        Some(got) if got == sent => return None,
        Some(got) => (
            format!("id_token nonce `{got}` differs from the nonce `{sent}` sent at /authorize"),
            Some(got),
        ),
        None => (
            format!("id_token has no nonce claim although /authorize sent nonce `{sent}`"),
            None,
        ),
    };
    Some(Draft::new(
        Rule::NonceMismatch,
        Some("nonce"),
        message,
        "Reject this id_token: compare its nonce with the one stored for this sign-in. A different nonce means the token belongs to another sign-in (two tabs, a stale session value overwritten by a parallel login, a replayed response) or the nonce storage (cookie, session) was lost between the legs.",
        json!({ "authorize": sent, "id_token": got }),
    ))
}

/// `token-issuer-mismatch`: an Entra id_token whose `tid` or `iss` names
/// another tenant than the authorize endpoint. Silent for the multi-tenant
/// segments (`common`, `organizations`, `consumers`), which accept users of
/// any tenant, and for a domain segment whose tenant id is unknown (learnt
/// only from a discovery document seen through the proxy).
pub(super) fn token_issuer_mismatch(
    authorize: &Endpoint,
    known: &KnownEndpoints,
    id_token: &Jwt,
) -> Option<Draft> {
    if !authorize.provider.is_entra() {
        return None;
    }
    let segment = authorize.tenant.as_deref()?;
    if ["common", "organizations", "consumers"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(segment))
    {
        return None;
    }
    let expected = if is_guid(segment) {
        segment.to_ascii_lowercase()
    } else {
        known
            .for_authorize(&authorize.url())
            .and_then(|d| d.issuer.as_deref())
            .and_then(issuer_tenant)?
    };
    let from_iss = id_token.iss.as_deref().and_then(issuer_tenant);
    let from_tid = id_token.tid.as_deref().map(str::to_ascii_lowercase);
    let (field, other) = [("tid", from_tid), ("iss", from_iss)]
        .into_iter()
        .find_map(|(field, t)| t.filter(|t| *t != expected).map(|t| (field, t)))?;
    Some(Draft::new(
        Rule::TokenIssuerMismatch,
        Some(field),
        format!(
            "id_token issued by tenant {other} ({field}), but /authorize went to tenant /{segment}/{}",
            if is_guid(segment) {
                String::new()
            } else {
                format!(" ({expected})")
            }
        ),
        "Check which tenant the app trusts: the authority (tenant) configured for sign-in and the issuer the app validates must be the same directory. A token from another tenant usually means a wrong tenant id in one configuration value, or a response meant for another app.",
        json!({
            "authorize_tenant": segment,
            "expected_tenant": expected,
            "iss": id_token.iss,
            "tid": id_token.tid,
        }),
    ))
}

/// The tenant GUID in an Entra issuer URL
/// (`https://login.microsoftonline.com/{tid}/v2.0`, `https://sts.windows.net/{tid}/`,
/// `https://{t}.b2clogin.com/{tid}/v2.0/`), lower-cased.
fn issuer_tenant(iss: &str) -> Option<String> {
    let uri: http::Uri = iss.parse().ok()?;
    let first = uri.path().split('/').find(|s| !s.is_empty())?;
    is_guid(first).then(|| first.to_ascii_lowercase())
}

#[cfg(test)]
mod tests;
