//! What an IdP's refusal of a pushed authorization request (RFC 9126)
//! means on the wire: an `invalid_request_uri` at /authorize explained by
//! the request_uri's history (used before, used after its `expires_in`),
//! and a refused or unreadable push. These sharpen the `idp-error` finding;
//! they never add one of their own.

use std::time::Duration;

use serde_json::json;

use super::Draft;
use crate::oauth::event::{clock, human_duration};
use crate::oauth::pushed::RequestUriUse;

/// The `idp-error` `draft` for an /authorize that named a request_uri,
/// confirmed from what authlens saw of it when the IdP answered
/// `invalid_request_uri`: an earlier use (single use), its age against
/// `expires_in`, or that authlens never saw it pushed. Other errors come
/// back unchanged.
pub fn request_uri_refused(mut draft: Draft, facts: &RequestUriUse) -> Draft {
    let error = draft.evidence.get("error").and_then(|e| e.as_str());
    if error != Some("invalid_request_uri") {
        return draft;
    }
    let uri = &facts.request_uri;
    let age = facts
        .pushed_at
        .and_then(|p| Duration::try_from(facts.time - p).ok());
    let expired = match (age, facts.expires_in) {
        (Some(age), Some(limit)) => age.as_secs_f64() > limit as f64,
        _ => false,
    };
    let why = if let Some((exchange, time)) = facts.earlier_uses.first() {
        let gap = Duration::try_from(facts.time - *time).unwrap_or_default();
        format!(
            "request_uri {uri} was already used by /authorize at {} (exchange {exchange}, {} earlier); a pushed request is single-use",
            clock(*time),
            human_duration(gap)
        )
    } else if expired {
        format!(
            "request_uri {uri} was used {} after it was pushed, but the IdP gave it expires_in {} s",
            human_duration(age.unwrap_or_default()),
            facts.expires_in.unwrap_or_default()
        )
    } else if facts.pushed_at.is_none() {
        format!(
            "authlens did not see request_uri {uri} pushed (pushed before capture started, to another host, or forgotten), so it cannot tell whether it was used before or expired"
        )
    } else {
        format!(
            "authlens saw request_uri {uri} pushed {} earlier (expires_in {}) and this is its first use: the IdP may have forgotten it (a restart, another instance) or bound it to another client",
            human_duration(age.unwrap_or_default()),
            facts
                .expires_in
                .map_or_else(|| "not given".to_owned(), |s| format!("{s} s"))
        )
    };
    let head = draft
        .message
        .split_once(" — ")
        .map_or(draft.message.as_str(), |(head, _)| head)
        .to_owned();
    let confirmed = !facts.earlier_uses.is_empty() || expired;
    draft.message = if confirmed {
        format!("{head} — confirmed: {why}")
    } else {
        format!("{head} — {why}")
    };
    draft.gist = why;
    draft.fix = "Push a new authorization request (POST to the PAR endpoint) for every sign-in and send its request_uri to /authorize once, within expires_in: a reload, a back button or a retried redirect must start over with a new push.".to_owned();
    draft.evidence.insert(
        "request_uri".into(),
        json!({
            "value": uri,
            "pushed_by_exchange": facts.push_exchange,
            "seconds_since_push": age.map(|a| a.as_secs_f64()),
            "expires_in": facts.expires_in,
            "earlier_uses": facts.earlier_uses.iter().map(|(e, _)| e).collect::<Vec<_>>(),
        }),
    );
    draft
}

/// The `idp-error` `draft` for a refused push, said of the push rather than
/// of /authorize, with `note` on an answer that was not JSON.
pub fn pushed_refused(mut draft: Draft, note: Option<&str>) -> Draft {
    draft.message = draft.message.replacen(
        "IdP refused /authorize",
        "IdP refused the pushed authorization request",
        1,
    );
    if let Some(note) = note {
        draft.message.push_str(&format!(" ({note})"));
        draft.evidence.insert("note".into(), json!(note));
    }
    draft
}
