//! `idp-error`: what the IdP's own refusal means (from the catalogue) and
//! whether authlens's other findings on the same leg explain it. It reports
//! the IdP's answer beside them; it never drops or rewrites another finding.

use serde_json::json;

use super::Draft;
use crate::oauth::catalogue::{Entry, lookup_error_response};
use crate::oauth::event::Rule;
use crate::oauth::message::{AuthorizationResponse, TokenResponse};

/// The catalogue entries that describe this error most specifically: the
/// numbered ones (AADSTS…, AADB2C…) when the IdP named a number, else the
/// description matchers, else the provider-scoped and generic `error` entries.
fn most_specific(entries: Vec<&'static Entry>) -> Vec<&'static Entry> {
    fn tier(e: &Entry) -> u8 {
        let upper = e.code.to_ascii_uppercase();
        if upper.starts_with("AADSTS") || upper.starts_with("AADB2C") {
            0
        } else if e.code.matches(':').count() >= 2 {
            1
        } else {
            2
        }
    }
    let Some(best) = entries.iter().map(|e| tier(e)).min() else {
        return entries;
    };
    entries.into_iter().filter(|e| tier(e) == best).collect()
}

/// The IdP's error, as given to [`idp_error`].
pub struct IdpErrorInput<'a> {
    /// `"token"` or `"authorize"`.
    pub leg: &'static str,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Most specific first (`AADSTS54005`, …).
    pub codes: &'a [String],
    pub numbers: &'a [u64],
    pub trace_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

impl<'a> IdpErrorInput<'a> {
    pub fn from_token(resp: &'a TokenResponse) -> Self {
        IdpErrorInput {
            leg: "token",
            status: Some(resp.status),
            error: resp.error.as_deref(),
            description: resp.error_description.as_deref(),
            codes: &resp.error_codes,
            numbers: &resp.error_numbers,
            trace_id: resp.trace_id.as_deref(),
            correlation_id: resp.correlation_id.as_deref(),
        }
    }

    pub fn from_authorize(resp: &'a AuthorizationResponse) -> Self {
        IdpErrorInput {
            leg: "authorize",
            status: None,
            error: resp.error.as_deref(),
            description: resp.error_description.as_deref(),
            codes: &resp.error_codes,
            numbers: &[],
            trace_id: resp.params.get("trace_id"),
            correlation_id: resp.params.get("correlation_id"),
        }
    }
}

/// `idp-error`: the catalogue meaning, and whether authlens's own findings
/// (`seen`, earlier on this redemption) agree.
pub fn idp_error(input: &IdpErrorInput<'_>, seen: &[Draft]) -> Draft {
    let entries = most_specific(lookup_error_response(
        input.error,
        input.numbers,
        input.description,
    ));
    let field = input
        .codes
        .first()
        .cloned()
        .or_else(|| input.error.map(str::to_owned))
        .or_else(|| input.status.map(|s| format!("HTTP {s}")));
    let label = match (input.codes.first(), input.error) {
        (Some(code), Some(error)) => format!("{code} {error}"),
        (Some(code), None) => code.clone(),
        (None, Some(error)) => error.to_owned(),
        (None, None) => format!("HTTP {}", input.status.unwrap_or_default()),
    };
    let meaning = entries
        .first()
        .map(|e| e.meaning.clone())
        .or_else(|| input.description.map(first_sentence))
        .unwrap_or_else(|| "no description given".to_owned());
    let meaning = meaning.trim_end_matches('.');
    // A finding of a rule the entry names; one about the field the entry
    // talks of first (500112 is about redirect_uri, not scope).
    let candidates = seen.iter().filter(|d| {
        d.rule != Rule::IdpError
            && entries
                .iter()
                .any(|e| e.rules.iter().any(|r| r == d.rule.id()))
    });
    let named = |d: &&Draft| {
        d.field.as_deref().is_some_and(|f| {
            entries.iter().any(|e| {
                e.meaning
                    .to_ascii_lowercase()
                    .contains(&f.to_ascii_lowercase())
            })
        })
    };
    let explained = candidates
        .clone()
        .find(named)
        .or_else(|| candidates.clone().next());
    let agreement = match (explained, input.leg) {
        (Some(d), _) => format!("confirmed: {}", d.gist),
        (None, "authorize") => "refused before any code was issued".to_owned(),
        (None, _) if seen.iter().any(|d| d.rule != Rule::IdpError) => {
            "not explained by authlens's other findings".to_owned()
        }
        (None, _) => "IdP error not explained by anything authlens saw: check the app registration"
            .to_owned(),
    };
    let leg = if input.leg == "authorize" {
        "/authorize"
    } else {
        "the token request"
    };
    let fix = explained
        .map(|d| d.fix.clone())
        .or_else(|| entries.first().and_then(|e| e.fix.first().cloned()))
        .unwrap_or_else(|| {
            format!(
                "Look up {} in the provider's documentation and compare the token request with its /authorize request.",
                field.as_deref().unwrap_or("the error")
            )
        });
    Draft::new(
        Rule::IdpError,
        field.as_deref(),
        format!("IdP refused {leg}: {label}: {meaning} — {agreement}"),
        &fix,
        json!({
            "leg": input.leg,
            "status": input.status,
            "error": input.error,
            "error_description": input.description,
            "error_codes": input.codes,
            "trace_id": input.trace_id,
            "correlation_id": input.correlation_id,
            "catalogue": entries.iter().map(|e| e.code.clone()).collect::<Vec<_>>(),
            "confirmed_by": explained.map(|d| d.rule.id()),
        }),
    )
}

/// The description up to its first line break or trace footer, capped.
fn first_sentence(text: &str) -> String {
    let line = text.split(['\r', '\n']).next().unwrap_or_default();
    let line = line.split(" Trace ID:").next().unwrap_or(line).trim();
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
