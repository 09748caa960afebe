//! `idp-error`: what the IdP's own refusal means (from the catalogue) and
//! whether authlens's other findings on the same leg explain it. When none
//! does, it lists what authlens checked and found fine on the redemption and
//! the catalogue causes still open, rather than a guess. It reports the IdP's
//! answer beside the other findings; it never drops or rewrites one.

use serde_json::{Value, json};

use super::Draft;
use super::checks::{self, Check, CheckResult};
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
/// (`seen`, earlier on this redemption) agree. When none explains it, what
/// authlens checked on the redemption (`checks`, empty on the authorize leg)
/// and the catalogue causes those checks leave open.
pub fn idp_error(input: &IdpErrorInput<'_>, seen: &[Draft], checks: &[Check]) -> Draft {
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
    let leg = if input.leg == "authorize" {
        "/authorize"
    } else {
        "the token request"
    };
    let mut evidence = json!({
        "leg": input.leg,
        "status": input.status,
        "error": input.error,
        "error_description": input.description,
        "error_codes": input.codes,
        "trace_id": input.trace_id,
        "correlation_id": input.correlation_id,
        "catalogue": entries.iter().map(|e| e.code.clone()).collect::<Vec<_>>(),
        "confirmed_by": explained.map(|d| d.rule.id()),
    });
    if let Some(d) = explained {
        return Draft::new(
            Rule::IdpError,
            field.as_deref(),
            format!(
                "IdP refused {leg}: {label}: {meaning} — confirmed: {}",
                d.gist
            ),
            &d.fix,
            evidence,
        );
    }

    let unexplained = Unexplained::new(input, entries.first().copied(), field.as_deref(), checks);
    let agreement = match input.leg {
        "authorize" => "refused before any code was issued",
        _ if seen.iter().any(|d| d.rule != Rule::IdpError) => {
            "none of authlens's findings on this redemption explains it"
        }
        _ if checks.is_empty() => "authlens has no finding that explains it",
        _ if checks.iter().all(Check::is_fine) => {
            "authlens checked this redemption and found nothing wrong"
        }
        _ => "nothing authlens could check on this redemption explains it",
    };
    let fix = if input.leg == "authorize" {
        let first = entries.first().and_then(|e| e.fix.first()).cloned();
        let mut fix = first.unwrap_or_else(|| unexplained.look_up());
        if let Some(explain) = &unexplained.explain {
            fix.push_str(&format!(" More: `{explain}`."));
        }
        fix
    } else {
        unexplained.fix()
    };
    if let Value::Object(map) = &mut evidence {
        map.extend(unexplained.evidence());
    }
    Draft::new(
        Rule::IdpError,
        field.as_deref(),
        format!("IdP refused {leg}: {label}: {meaning} — {agreement}"),
        &fix,
        evidence,
    )
}

/// What `idp-error` says of an error nothing explains: what authlens checked,
/// the causes left, and where to read more.
struct Unexplained<'a> {
    input: &'a IdpErrorInput<'a>,
    field: Option<&'a str>,
    /// `checked` lines (`redirect_uri: identical to /authorize`).
    fine: Vec<String>,
    fine_names: Vec<&'static str>,
    /// `endpoint, PKCE: authlens saw no /authorize request for this code`.
    not_checked: Vec<String>,
    known: bool,
    likely: Vec<String>,
    ruled_out: Vec<String>,
    /// `authlens explain AADSTS90056`.
    explain: Option<String>,
}

impl<'a> Unexplained<'a> {
    fn new(
        input: &'a IdpErrorInput<'a>,
        entry: Option<&Entry>,
        field: Option<&'a str>,
        checks: &[Check],
    ) -> Unexplained<'a> {
        let mut fine = Vec::new();
        let mut fine_names = Vec::new();
        // Skipped checks grouped by reason, in order.
        let mut skipped: Vec<(String, Vec<&'static str>)> = Vec::new();
        for c in checks {
            match &c.result {
                CheckResult::Fine(detail) => {
                    fine.push(format!("{}: {detail}", c.name));
                    fine_names.push(c.name);
                }
                CheckResult::NotChecked(why) => match skipped.iter_mut().find(|(w, _)| w == why) {
                    Some((_, names)) => names.push(c.name),
                    None => skipped.push((why.clone(), vec![c.name])),
                },
                CheckResult::Flagged => {}
            }
        }
        let not_checked = skipped
            .iter()
            .map(|(why, names)| format!("{}: {why}", names.join(", ")))
            .collect();
        let (mut likely, mut ruled_out) = (Vec::new(), Vec::new());
        for (i, cause) in entry
            .map(|e| e.causes.as_slice())
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            let rules = entry.and_then(|e| e.cause_rules.get(i));
            let out = rules.is_some_and(|rules| {
                !rules.is_empty() && rules.iter().all(|r| checks::cleared(checks, r))
            });
            if out {
                ruled_out.push(cause.clone());
            } else {
                likely.push(cause.clone());
            }
        }
        // Something `authlens explain` can look up (or suggest neighbours for).
        let explain = entry
            .map(|e| e.code.clone())
            .or_else(|| input.codes.first().cloned())
            .or_else(|| input.error.map(str::to_owned))
            .map(|code| format!("authlens explain {code}"));
        Unexplained {
            input,
            field,
            fine,
            fine_names,
            not_checked,
            known: entry.is_some(),
            likely,
            ruled_out,
            explain,
        }
    }

    fn look_up(&self) -> String {
        format!(
            "Look up {} in the provider's documentation and compare the token request with its /authorize request.",
            self.field.unwrap_or("the error")
        )
    }

    /// Checked, not checked, the causes left, then where to read more.
    fn fix(&self) -> String {
        let mut parts = Vec::new();
        if !self.fine_names.is_empty() {
            parts.push(format!(
                "authlens checked and found fine: {}.",
                self.fine_names.join(", ")
            ));
        }
        if !self.not_checked.is_empty() {
            parts.push(format!("Not checked: {}.", self.not_checked.join("; ")));
        }
        if !self.known {
            parts.push(self.look_up());
        } else if self.likely.is_empty() {
            let mut text =
                "Every cause the catalogue lists is ruled out by these checks: the difference is in something authlens cannot see (the app registration, or a proxy after authlens changing the request).".to_owned();
            if let Some(trace) = self.input.trace_id {
                text.push_str(&format!(
                    " Give the provider's support the trace_id {trace}{}.",
                    self.input
                        .correlation_id
                        .map(|c| format!(" and correlation_id {c}"))
                        .unwrap_or_default()
                ));
            }
            parts.push(text);
        } else {
            let causes: Vec<String> = self
                .likely
                .iter()
                .enumerate()
                .map(|(i, c)| format!("({}) {}.", i + 1, c.trim_end_matches('.')))
                .collect();
            let which = if self.ruled_out.is_empty() {
                "Likely causes"
            } else {
                "Likely causes left"
            };
            parts.push(format!("{which}: {}", causes.join(" ")));
        }
        if let Some(explain) = &self.explain {
            parts.push(format!("More: `{explain}`."));
        }
        parts.join(" ")
    }

    fn evidence(&self) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        if self.input.leg != "authorize" {
            map.insert("checked".into(), json!(self.fine));
            map.insert("not_checked".into(), json!(self.not_checked));
            map.insert("ruled_out_causes".into(), json!(self.ruled_out));
        }
        map.insert("likely_causes".into(), json!(self.likely));
        map.insert("explain".into(), json!(self.explain));
        map
    }
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
