//! `authlens report`: a Markdown report of a recorded session for a bug
//! ticket.
//!
//! An outlet ([`ReportOutlet`]) of the one event stream, whether the events
//! come from HAR files (analysed by `Session::replay`, like live traffic) or
//! from a `--json` file written earlier (read back with
//! [`read_json_lines`]). Each sign-in attempt
//! becomes a short timeline with relative times, followed by its findings and
//! their fixes; the IdP's errors are explained from the catalogue;
//! environment facts are gathered from the legs.
//!
//! No secret is written in clear, even from a file written with
//! `--show-secrets`: the fields that hold a secret are fingerprinted, then
//! those values are hunted down in every other text. A value is a secret
//! because of the field it is in, never because of a JSON key it happens to
//! sit under (the `token` side of a comparison is not a token).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::har::redact::Redactor;
use crate::oauth::catalogue;
use crate::oauth::event::{
    AttemptId, DecodedToken, Event, Finding, Outcome, Severity, TokenEvent, TokenResponseEvent,
    human_duration,
};
use crate::oauth::secret::{is_fingerprint, secret_kind};
use crate::output::Outlet;
use crate::output::escape::escape_controls;
use crate::output::file::Target;
use crate::output::json_lines::{self, EventError};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not an authlens JSON line: {source}")]
    JsonLine {
        path: String,
        line: usize,
        source: EventError,
    },
}

/// Reads a `--json` file back into its events (one event per line; blank
/// lines are skipped).
pub fn read_json_lines(path: &Path) -> Result<Vec<Event>, ReportError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: name.clone(),
        source,
    })?;
    let mut events = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let event = json_lines::from_line(line).map_err(|source| ReportError::JsonLine {
            path: name.clone(),
            line: i + 1,
            source,
        })?;
        events.push(event);
    }
    Ok(events)
}

/// The report as an outlet of a run (live or replayed): keeps the events,
/// writes the Markdown when the run ends.
pub struct ReportOutlet {
    out: Target,
    name: String,
    /// One line saying what was read (`session.har (42 exchanges)`).
    source: String,
    events: Vec<Event>,
}

impl ReportOutlet {
    /// The report, written to `out` at the end (whole: a file is left
    /// empty if the disk refuses part of it).
    pub fn new(out: Target, name: String, source: String) -> ReportOutlet {
        ReportOutlet {
            out,
            name,
            source,
            events: Vec::new(),
        }
    }
}

impl Outlet for ReportOutlet {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn event(&mut self, event: &Event) -> std::io::Result<()> {
        self.events.push(event.clone());
        Ok(())
    }

    fn finish(&mut self) -> std::io::Result<()> {
        let markdown = render(&self.source, &self.events);
        self.out.write_record(markdown.as_bytes())?;
        self.out.finish()
    }
}

/// The report of `events` (read from `source`) as Markdown, every secret in
/// it fingerprinted (the events may hold them in clear).
pub fn render(source: &str, events: &[Event]) -> String {
    let events = scrubbed(events);
    let mut md = String::new();
    let _ = writeln!(md, "# Sign-in report\n");
    let _ = writeln!(md, "Source: {}  ", inline(source));
    let times = || events.iter().map(Event::time);
    if let (Some(first), Some(last)) = (times().min(), times().max()) {
        let span = (last - first).try_into().unwrap_or_default();
        let _ = writeln!(
            md,
            "Period: {} to {} ({})  ",
            stamp(first),
            stamp(last),
            human_duration(span)
        );
    }
    let _ = writeln!(
        md,
        "Secrets (codes, client secrets, verifiers, assertions, tokens) appear only as fingerprints such as `code#3fa2c1`: the same value always gets the same fingerprint.\n"
    );
    summary(&mut md, &events);
    environment(&mut md, &events);

    let mut attempts: Vec<AttemptId> = Vec::new();
    for a in events.iter().filter_map(Event::attempt) {
        if !attempts.contains(&a) {
            attempts.push(a);
        }
    }
    for a in attempts {
        let group: Vec<&Event> = events.iter().filter(|e| e.attempt() == Some(a)).collect();
        attempt(&mut md, &format!("Attempt {a}"), &group);
    }
    let loose: Vec<&Event> = events.iter().filter(|e| e.attempt().is_none()).collect();
    if !loose.is_empty() {
        attempt(&mut md, "Outside any attempt", &loose);
    }
    explanations(&mut md, &events);
    md
}

// === sections ===

/// A code redemption, rather than a token request of another grant (a
/// request that carries a code is judged as one, whatever its grant_type).
fn is_code_redemption(t: &TokenEvent) -> bool {
    t.code.is_some()
        || t.grant_credential.is_none()
            && t.grant_type
                .as_deref()
                .is_none_or(|g| g == "authorization_code")
}

fn summary(md: &mut String, events: &[Event]) {
    let count = |leg: fn(&Event) -> bool| events.iter().filter(|e| leg(e)).count();
    let verdicts = events.iter().filter_map(|e| match e {
        Event::Verdict(v) => Some(v),
        _ => None,
    });
    let (signed_in, failed) = verdicts.fold((0usize, 0usize), |(ok, ko), v| match v.outcome {
        Outcome::SignedIn => (ok + 1, ko),
        Outcome::Failed => (ok, ko + 1),
    });
    let severity = |s: Severity| {
        events
            .iter()
            .filter_map(Event::as_finding)
            .filter(|f| f.severity == s)
            .count()
    };
    let (errors, warnings) = (severity(Severity::Error), severity(Severity::Warning));
    let injected: Vec<&Finding> = events
        .iter()
        .filter_map(Event::as_finding)
        .filter(|f| f.injected.is_some() && f.severity != Severity::Info)
        .collect();
    let injected_errors = injected
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let injected_failures = events
        .iter()
        .filter(|e| matches!(e, Event::Verdict(v) if v.outcome == Outcome::Failed && v.injected.is_some()))
        .count();
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "- {} sign-in attempt(s) started, {} redemption(s) seen",
        count(|e| matches!(e, Event::Authorize(_))),
        count(|e| matches!(e, Event::Token(t) if is_code_redemption(t)))
    );
    let others = count(|e| matches!(e, Event::Token(t) if !is_code_redemption(t)));
    if others > 0 {
        let _ = writeln!(
            md,
            "- {others} token request(s) of other grants (refresh, device code, client credentials, …)"
        );
    }
    let _ = writeln!(md, "- {signed_in} signed in, {failed} failed");
    let _ = writeln!(md, "- {errors} error finding(s), {warnings} warning(s)");
    if !injected.is_empty() {
        let mut faults: Vec<&str> = injected
            .iter()
            .filter_map(|f| f.injected.as_ref().map(|i| i.fault.as_str()))
            .collect();
        faults.sort_unstable();
        faults.dedup();
        let _ = writeln!(
            md,
            "- {} of these finding(s) were caused on purpose by --fault ({}): they are not app bugs",
            injected.len(),
            inline(&faults.join(", "))
        );
    }
    let result = match (
        errors.saturating_sub(injected_errors),
        failed.saturating_sub(injected_failures),
    ) {
        (0, 0) if !injected.is_empty() => "no error of the app's own (the failures were injected)",
        (0, 0) => "no error found",
        _ => "**errors found**",
    };
    let _ = writeln!(md, "- Result: {result}\n");
}

fn environment(md: &mut String, events: &[Event]) {
    let mut rows: Vec<(&str, BTreeSet<String>)> = vec![
        ("IdP host", BTreeSet::new()),
        ("Provider", BTreeSet::new()),
        ("Tenant", BTreeSet::new()),
        ("B2C policy", BTreeSet::new()),
        ("client_id", BTreeSet::new()),
        ("redirect_uri", BTreeSet::new()),
        ("Authorize endpoint", BTreeSet::new()),
        ("Token endpoint", BTreeSet::new()),
        ("Response mode", BTreeSet::new()),
        ("Authorization request via", BTreeSet::new()),
        ("PKCE", BTreeSet::new()),
        ("Client authentication", BTreeSet::new()),
    ];
    let mut add = |row: &str, value: Option<&str>| {
        let Some(text) = value.filter(|v| !v.is_empty()) else {
            return;
        };
        if let Some((_, set)) = rows.iter_mut().find(|(name, _)| *name == row) {
            set.insert(text.to_owned());
        }
    };
    for e in events {
        match e {
            Event::Authorize(a) => {
                add("IdP host", Some(&a.host));
                let provider = match a.version {
                    Some(version) => format!("{} {version}", a.provider),
                    None => a.provider.to_owned(),
                };
                add("Provider", Some(&provider));
                add("Tenant", a.tenant.as_deref());
                add("B2C policy", a.policy.as_deref());
                add("client_id", Some(&a.client_id));
                add("redirect_uri", a.redirect_uri.as_deref());
                add("Authorize endpoint", Some(&a.endpoint));
                add("Response mode", a.response_mode.as_deref());
                add("Authorization request via", via_text(a.via));
                add("PKCE", a.pkce_method.as_deref());
            }
            Event::Token(t) => {
                add("IdP host", Some(&t.host));
                add("client_id", t.client_id.as_deref());
                add("redirect_uri", t.redirect_uri.as_deref());
                add("Token endpoint", Some(&t.endpoint));
                for method in &t.client_auth {
                    add("Client authentication", Some(method));
                }
            }
            _ => {}
        }
    }
    let _ = writeln!(md, "## Environment\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    for (name, values) in rows {
        if !values.is_empty() {
            let joined = values
                .iter()
                .map(|v| cell(&code(v)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(md, "| {name} | {joined} |");
        }
    }
    md.push('\n');
}

fn attempt(md: &mut String, title: &str, events: &[&Event]) {
    let verdict = events.iter().rev().find_map(|e| match e {
        Event::Verdict(v) => Some(v),
        _ => None,
    });
    let heading = match verdict {
        Some(v) if v.outcome == Outcome::SignedIn => format!("{title}: signed in"),
        Some(v) => match &v.injected {
            Some(i) => format!("{title}: failed on purpose (--fault {})", inline(&i.fault)),
            None => format!("{title}: failed"),
        },
        None if title.starts_with("Attempt") => format!("{title}: not finished"),
        None => title.to_owned(),
    };
    let _ = writeln!(md, "## {heading}\n");
    let start = events.first().map(|e| e.time());
    if let Some(start) = start {
        let _ = writeln!(md, "Started {}\n", stamp(start));
    }
    let _ = writeln!(md, "| time | leg | details |\n|---|---|---|");
    for e in events {
        let Some((leg, details)) = leg_row(e) else {
            continue;
        };
        let at = start.map_or_else(String::new, |s| {
            format!(
                "+{}",
                human_duration((e.time() - s).try_into().unwrap_or_default())
            )
        });
        // Every part of `details` is escaped already (see `leg_row`).
        let _ = writeln!(md, "| {at} | {leg} | {details} |");
    }
    md.push('\n');
    let findings: Vec<&Finding> = events.iter().filter_map(|e| e.as_finding()).collect();
    if !findings.is_empty() {
        let _ = writeln!(md, "Findings:\n");
        for f in findings {
            let field = f
                .field
                .as_deref()
                .map(|x| format!(" [{}]", inline(x)))
                .unwrap_or_default();
            // Caused on purpose by --fault: never reads as the app's bug.
            let (severity, cause) = match &f.injected {
                Some(i) => (
                    format!("injected {}", f.severity.as_str()),
                    format!(" (caused by --fault {}, not an app bug)", inline(&i.fault)),
                ),
                None => (f.severity.as_str().to_owned(), String::new()),
            };
            let _ = writeln!(
                md,
                "- **{severity}** `{}`{field}: {}{}",
                f.rule,
                inline(&f.message),
                cause
            );
            let _ = writeln!(md, "  - Fix: {}", inline(&f.fix));
            if !f.evidence.is_empty() {
                let evidence = Value::Object(f.evidence.clone()).to_string();
                let _ = writeln!(md, "  - Evidence: {}", code(&evidence));
            }
        }
        md.push('\n');
    }
    if let Some(v) = verdict {
        let _ = writeln!(md, "Verdict: {}\n", inline(&v.summary));
    }
}

/// The timeline row of a leg event, each value from the wire escaped for
/// a table cell.
fn leg_row(e: &Event) -> Option<(&'static str, String)> {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |label: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            let v = inline(v);
            parts.push(if label.is_empty() {
                v
            } else {
                format!("{label} {v}")
            });
        }
    };
    let leg = match e {
        Event::Authorize(a) => {
            push("", Some(&a.endpoint));
            push("client", Some(&a.client_id));
            push("→", a.redirect_uri.as_deref());
            push("via", via_text(a.via));
            push("mode", a.response_mode.as_deref());
            push("pkce", a.pkce_method.as_deref());
            push("state", a.state.as_deref());
            push("", a.via_note.as_deref());
            "authorize"
        }
        Event::Code(c) => {
            push("", Some(&c.host));
            push("", c.code.as_deref());
            push("error", c.error.as_deref());
            push("", Some(&c.error_codes.join(" ")));
            push("→", c.redirect_to.as_deref());
            push("via", Some(c.mode));
            push("paired by", Some(c.pairing.as_str()));
            if c.error.is_some() {
                "authorize error"
            } else {
                "code issued"
            }
        }
        // Later `authorization_pending` answers are counted on the poll
        // that ends the wait, not listed.
        Event::Token(t) if t.pending_poll.is_some() => return None,
        Event::TokenResponse(r) if r.pending_poll.is_some_and(|n| n > 1) => return None,
        Event::TokenResponse(r) if r.pending_poll.is_some() => {
            push("HTTP", Some(&r.status.to_string()));
            push("", r.error.as_deref());
            push("", Some(&r.error_codes.join(" ")));
            parts.push(
                "the user is still signing in (normal; later pending polls are not listed)"
                    .to_owned(),
            );
            "device poll pending"
        }
        Event::Token(t) if !is_code_redemption(t) => {
            push("", Some(&t.method));
            push("", Some(&t.endpoint));
            push("grant_type", t.grant_type.as_deref());
            push("", t.grant_credential.as_deref());
            push("scope", t.scope.as_deref());
            push("auth", Some(&t.client_auth.join("+")));
            if t.pending_before > 0 {
                parts.push(format!(
                    "after {} authorization_pending poll(s)",
                    t.pending_before
                ));
            }
            "token request"
        }
        Event::DeviceAuthorization(d) => {
            push("", Some(&d.endpoint));
            push("client", d.client_id.as_deref());
            push("HTTP", d.status.map(|s| s.to_string()).as_deref());
            push("", d.error.as_deref());
            push("", Some(&d.error_codes.join(" ")));
            push("", d.device_code.as_deref());
            push("user_code", d.user_code.as_deref());
            push(
                "expires_in",
                d.expires_in.map(|s| format!("{s} s")).as_deref(),
            );
            push("interval", d.interval.map(|s| format!("{s} s")).as_deref());
            push("", d.note.as_deref());
            "device authorization"
        }
        Event::Token(t) => {
            push("", Some(&t.method));
            push("", Some(&t.endpoint));
            push("", t.code.as_deref());
            push("code age", t.code_age.map(human_duration).as_deref());
            push("auth", Some(&t.client_auth.join("+")));
            push("pkce", t.code_verifier.as_deref());
            "redeemed"
        }
        Event::TokenResponse(r) => {
            push("HTTP", Some(&r.status.to_string()));
            push("", r.error.as_deref());
            push("", Some(&r.error_codes.join(" ")));
            push("", Some(&r.tokens.join(" ")));
            push("trace_id", r.trace_id.as_deref());
            push("correlation_id", r.correlation_id.as_deref());
            "IdP answer"
        }
        Event::Finding(_) | Event::Verdict(_) => return None,
    };
    if let Some(injected) = e.injected() {
        // The injector's notes already start `injected <fault>: `.
        parts.push(match injected.note.strip_prefix("injected ") {
            Some(rest) => format!("**injected** {}", inline(rest)),
            None => format!(
                "**injected {}**: {}",
                inline(&injected.fault),
                inline(&injected.note)
            ),
        });
    }
    Some((leg, parts.join(", ")))
}

fn explanations(md: &mut String, events: &[Event]) {
    let mut seen: Vec<&'static str> = Vec::new();
    let mut entries: Vec<&'static catalogue::Entry> = Vec::new();
    for e in events {
        let (error, description, codes) = match e {
            Event::Code(c) => (&c.error, &c.error_description, &c.error_codes),
            // `authorization_pending` is the normal wait, not an error.
            Event::TokenResponse(r) if r.pending_poll.is_some() => continue,
            Event::TokenResponse(r) => (&r.error, &r.error_description, &r.error_codes),
            Event::DeviceAuthorization(d) => (&d.error, &d.error_description, &d.error_codes),
            _ => continue,
        };
        // The same lookup as the live `idp-error` finding and `explain`.
        let numbers: Vec<u64> = codes
            .iter()
            .filter_map(|code| code.strip_prefix("AADSTS"))
            .filter_map(|n| n.parse().ok())
            .collect();
        for entry in
            catalogue::lookup_error_response(error.as_deref(), &numbers, description.as_deref())
        {
            if !seen.contains(&entry.code.as_str()) {
                seen.push(entry.code.as_str());
                entries.push(entry);
            }
        }
    }
    if entries.is_empty() {
        return;
    }
    let _ = writeln!(md, "## IdP errors explained\n");
    for entry in entries {
        let _ = writeln!(md, "### {}: {}\n", entry.code, entry.meaning);
        if !entry.causes.is_empty() {
            let _ = writeln!(md, "Usual causes:\n");
            for c in &entry.causes {
                let _ = writeln!(md, "- {c}");
            }
            md.push('\n');
        }
        if !entry.fix.is_empty() {
            let _ = writeln!(md, "Fix:\n");
            for f in &entry.fix {
                let _ = writeln!(md, "- {f}");
            }
            md.push('\n');
        }
    }
}

// === secrets ===

/// The events with every secret fingerprinted. The analyzer already did it
/// unless the file was written with `--show-secrets`; a fingerprint is kept
/// as it is. One pass, in order: a leg comes before the findings and the
/// verdict that quote its secrets, and the net remembers only the latest
/// secrets, so learning them as they come keeps a long session covered.
fn scrubbed(events: &[Event]) -> Vec<Event> {
    let mut redactor = Redactor::new();
    let mut out = events.to_vec();
    for e in &mut out {
        for (kind, value) in secrets_mut(e) {
            *value = redactor.secret(kind, value);
        }
        for text in texts_mut(e) {
            *text = redactor.net(text);
        }
        if let Some(note) = injected_note_mut(e) {
            *note = redactor.net(note);
        }
    }
    out
}

/// The note of a `--fault` on `e`, which may quote a secret.
fn injected_note_mut(e: &mut Event) -> Option<&mut String> {
    let injected = match e {
        Event::Authorize(x) => &mut x.injected,
        Event::Code(x) => &mut x.injected,
        Event::Token(x) => &mut x.injected,
        Event::TokenResponse(x) => &mut x.injected,
        Event::Finding(x) => &mut x.injected,
        Event::Verdict(x) => &mut x.injected,
        Event::DeviceAuthorization(x) => &mut x.injected,
    };
    injected.as_mut().map(|i| &mut i.note)
}

/// The fields of `e` that hold a secret, each with its kind: exactly the
/// ones the analyzer passes through its `SecretPolicy`.
fn secrets_mut(e: &mut Event) -> Vec<(&'static str, &mut String)> {
    match e {
        Event::Code(c) => c.code.iter_mut().map(|v| ("code", v)).collect(),
        Event::Token(t) => {
            let credential =
                credential_kind(t.grant_type.as_deref(), t.grant_credential.as_deref());
            t.code
                .iter_mut()
                .map(|v| ("code", v))
                .chain(t.code_verifier.iter_mut().map(|v| ("code_verifier", v)))
                .chain(t.grant_credential.iter_mut().map(|v| (credential, v)))
                .collect()
        }
        Event::DeviceAuthorization(d) => d
            .device_code
            .iter_mut()
            .map(|v| ("device_code", v))
            .collect(),
        Event::TokenResponse(r) => {
            let TokenResponseEvent {
                tokens, decoded, ..
            } = r;
            let kinds: Vec<&'static str> = tokens.iter().map(|t| token_kind(t, decoded)).collect();
            kinds
                .into_iter()
                .zip(tokens.iter_mut())
                .chain(decoded.iter_mut().map(|d| (d.kind, &mut d.shown)))
                .collect()
        }
        Event::Finding(f) => {
            let secrets = evidence_secrets(&f.evidence);
            f.evidence
                .iter_mut()
                .filter_map(|(key, value)| {
                    let (_, kind) = secrets.iter().find(|(k, _)| k == key)?;
                    match value {
                        Value::String(s) => Some((*kind, s)),
                        _ => None,
                    }
                })
                .collect()
        }
        Event::Authorize(_) | Event::Verdict(_) => Vec::new(),
    }
}

/// What a grant's credential is: its fingerprint says so
/// (`refresh_token#7edf2f`); in clear, the grant_type tells.
fn credential_kind(grant_type: Option<&str>, credential: Option<&str>) -> &'static str {
    let fingerprinted = credential
        .and_then(|c| c.split_once('#'))
        .and_then(|(kind, _)| secret_kind(kind))
        .filter(|kind| credential.is_some_and(|c| is_fingerprint(kind, c)));
    fingerprinted.unwrap_or(match grant_type {
        Some("refresh_token") => "refresh_token",
        Some(crate::oauth::message::DEVICE_CODE) => "device_code",
        Some(crate::oauth::message::JWT_BEARER) => "assertion",
        Some(crate::oauth::message::TOKEN_EXCHANGE) => "subject_token",
        _ => "token",
    })
}

/// What a token of a token response is. Its fingerprint says so
/// (`access_token#7edf2f`); in clear, only the decoded JWT it is can tell, so
/// an opaque one is just a `token`.
fn token_kind(token: &str, decoded: &[DecodedToken]) -> &'static str {
    let fingerprinted = token
        .split_once('#')
        .and_then(|(kind, _)| secret_kind(kind))
        .filter(|kind| is_fingerprint(kind, token));
    fingerprinted
        .or_else(|| decoded.iter().find(|d| d.shown == token).map(|d| d.kind))
        .unwrap_or("token")
}

/// The evidence entries that hold a secret, with its kind, by how the rules
/// build evidence (`oauth/rules.rs`): the code a finding is about, a
/// verifier, the value of a badly encoded secret parameter, and a plain PKCE
/// challenge, which is the verifier itself. Nothing else: the
/// `authorize`/`token` pair of a mismatch compares redirect URIs, endpoints,
/// client ids or scopes, and a nonce mismatch's `id_token` is the token's
/// nonce claim.
fn evidence_secrets(evidence: &Map<String, Value>) -> Vec<(String, &'static str)> {
    let text = |key: &str| evidence.get(key).and_then(Value::as_str);
    let plain_pkce = text("code_challenge_method").is_none_or(|m| m.eq_ignore_ascii_case("plain"));
    evidence
        .keys()
        .filter_map(|key| {
            let kind = match key.as_str() {
                "code" => Some("code"),
                "code_verifier" => Some("code_verifier"),
                "refresh_token" => Some("refresh_token"),
                "device_code" => Some("device_code"),
                "value" => text("parameter").and_then(secret_kind),
                "code_challenge" | "computed_challenge" if plain_pkce => Some("code_verifier"),
                _ => None,
            };
            kind.map(|kind| (key.clone(), kind))
        })
        .collect()
}

/// `PAR` / `request object` for an authorize event's `via`.
fn via_text(via: Option<&str>) -> Option<&str> {
    match via {
        Some("par") => Some("PAR"),
        Some("request_object") => Some("request object"),
        other => other,
    }
}

/// Every text of `e` that is not a secret field, where a secret could be
/// quoted. The `&'static str` fields are names authlens chose.
fn texts_mut(e: &mut Event) -> Vec<&mut String> {
    let mut out: Vec<&mut String> = Vec::new();
    match e {
        Event::Authorize(a) => {
            out.extend([
                &mut a.host,
                &mut a.endpoint,
                &mut a.client_id,
                &mut a.response_type,
            ]);
            out.extend(
                [
                    &mut a.tenant,
                    &mut a.policy,
                    &mut a.redirect_uri,
                    &mut a.response_mode,
                    &mut a.scope,
                    &mut a.state,
                    &mut a.nonce,
                    &mut a.pkce_method,
                    &mut a.via_note,
                ]
                .into_iter()
                .flatten(),
            );
        }
        Event::Code(c) => {
            out.push(&mut c.host);
            out.extend(
                [
                    &mut c.client_id,
                    &mut c.redirect_to,
                    &mut c.state,
                    &mut c.iss,
                    &mut c.error,
                    &mut c.error_description,
                ]
                .into_iter()
                .flatten(),
            );
            out.extend(&mut c.error_codes);
        }
        Event::Token(t) => {
            out.extend([&mut t.host, &mut t.endpoint, &mut t.method]);
            out.extend(
                [
                    &mut t.content_type,
                    &mut t.client_id,
                    &mut t.grant_type,
                    &mut t.redirect_uri,
                    &mut t.scope,
                ]
                .into_iter()
                .flatten(),
            );
        }
        Event::DeviceAuthorization(d) => {
            out.extend([&mut d.host, &mut d.endpoint]);
            out.extend(
                [
                    &mut d.client_id,
                    &mut d.scope,
                    &mut d.error,
                    &mut d.error_description,
                    &mut d.user_code,
                    &mut d.verification_uri,
                    &mut d.note,
                ]
                .into_iter()
                .flatten(),
            );
            out.extend(&mut d.error_codes);
        }
        Event::TokenResponse(r) => {
            out.push(&mut r.host);
            out.extend(
                [
                    &mut r.client_id,
                    &mut r.error,
                    &mut r.error_description,
                    &mut r.trace_id,
                    &mut r.correlation_id,
                    &mut r.token_type,
                    &mut r.scope,
                    &mut r.expires_in,
                    &mut r.grant_type,
                ]
                .into_iter()
                .flatten(),
            );
            out.extend(&mut r.error_codes);
            for jwt in r.decoded.iter_mut().filter_map(|d| d.jwt.as_mut().ok()) {
                out.extend(
                    [
                        &mut jwt.alg,
                        &mut jwt.kid,
                        &mut jwt.typ,
                        &mut jwt.iss,
                        &mut jwt.tid,
                        &mut jwt.oid,
                        &mut jwt.sub,
                        &mut jwt.scp,
                        &mut jwt.nonce,
                    ]
                    .into_iter()
                    .flatten(),
                );
                out.extend(jwt.aud.iter_mut().chain(&mut jwt.roles));
            }
        }
        Event::Finding(f) => {
            out.extend(&mut f.field);
            out.extend([&mut f.message, &mut f.fix]);
            let secrets = evidence_secrets(&f.evidence);
            for (key, value) in &mut f.evidence {
                if !secrets.iter().any(|(k, _)| k == key) {
                    strings_mut(value, &mut out);
                }
            }
        }
        Event::Verdict(v) => {
            out.extend([&mut v.host, &mut v.summary]);
            out.extend(&mut v.client_id);
        }
    }
    out
}

fn strings_mut<'a>(value: &'a mut Value, out: &mut Vec<&'a mut String>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter_mut().for_each(|v| strings_mut(v, out)),
        Value::Object(members) => members.values_mut().for_each(|v| strings_mut(v, out)),
        _ => {}
    }
}

// === helpers ===

fn stamp(t: OffsetDateTime) -> String {
    let offset = t.offset();
    let zone = if offset.is_utc() {
        "UTC".to_owned()
    } else {
        let (h, m, _) = offset.as_hms();
        format!("UTC{h:+03}:{:02}", m.abs())
    };
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} {zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

// Every value from the wire goes through one of these: once its control
// characters are escaped it holds no line break, so it can never start a
// line of the document (a heading, a list item, a table row of its own).

/// Safe as Markdown prose and inside a table cell: control characters
/// escaped (so it cannot start a line of its own), and what could make a
/// link, an image, raw HTML, an entity or a new cell taken literally.
/// Emphasis and code spans are left alone: at worst they change a value's
/// look, and fingerprints (`code_verifier#13d31e`) stay searchable.
fn inline(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in escape_controls(s).chars() {
        if matches!(c, '\\' | '[' | ']' | '<' | '>' | '|' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A code span (see [`code`]) safe inside a Markdown table cell: a `|`
/// cannot end the cell.
fn cell(s: &str) -> String {
    escape_controls(s).replace('|', "\\|")
}

/// `s` as inline code that nothing in it can close: the fence is one
/// backtick longer than the longest run of backticks inside, with a space
/// either side when the text starts or ends with one (CommonMark strips it).
fn code(s: &str) -> String {
    let s = escape_controls(s);
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with(['`', ' ']) || s.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::oauth::event::{
        AuthorizeEvent, CodeEvent, Pairing, Rule, TokenEvent, TokenResponseEvent, Verdict,
    };
    use crate::oauth::{AnalyzerConfig, fingerprint};

    /// A failed sign-in, one leg of each kind, the code in clear.
    fn sample() -> Vec<Event> {
        let host = "login.microsoftonline.com".to_owned();
        let mut evidence = Map::new();
        evidence.insert("note".into(), json!("raw-code-value-123 seen"));
        vec![
            Event::Authorize(AuthorizeEvent {
                injected: None,
                time: datetime!(2024-05-01 10:00:00 UTC),
                exchange: 1,
                attempt: AttemptId(1),
                host: host.clone(),
                endpoint: "https://login.microsoftonline.com/t1/oauth2/v2.0/authorize".into(),
                provider: "entra",
                tenant: Some("t1".into()),
                version: Some("v2.0"),
                policy: None,
                client_id: "c1".into(),
                redirect_uri: Some("https://app/cb".into()),
                response_type: "code".into(),
                response_mode: None,
                scope: None,
                state: Some("s".into()),
                nonce: None,
                pkce_method: Some("S256".into()),
                via: None,
                via_note: None,
            }),
            Event::Code(CodeEvent {
                injected: None,
                time: datetime!(2024-05-01 10:00:01.5 UTC),
                exchange: 2,
                attempt: Some(AttemptId(1)),
                pairing: Pairing::State,
                host: host.clone(),
                client_id: None,
                mode: "query",
                redirect_to: Some("https://app/cb".into()),
                code: Some("raw-code-value-123".into()),
                state: None,
                iss: None,
                error: None,
                error_description: None,
                error_codes: Vec::new(),
                since_authorize: None,
            }),
            Event::Token(TokenEvent {
                injected: None,
                time: datetime!(2024-05-01 10:00:02 UTC),
                exchange: 3,
                attempt: Some(AttemptId(1)),
                host: host.clone(),
                endpoint: "https://login.microsoftonline.com/common/oauth2/v2.0/token".into(),
                method: "POST".into(),
                content_type: None,
                client_id: Some("c1".into()),
                client_auth: vec!["client_secret_post"],
                grant_type: None,
                code: Some("raw-code-value-123".into()),
                redirect_uri: None,
                code_verifier: Some("code_verifier#13d31e".into()),
                scope: None,
                code_age: Some(Duration::from_millis(500)),
                grant_credential: None,
                grant_credential_format: None,
                pending_poll: None,
                pending_before: 0,
            }),
            Event::Finding(Finding {
                injected: None,
                rule: Rule::EndpointMismatch,
                severity: Severity::Error,
                attempt: Some(AttemptId(1)),
                exchange: 3,
                field: Some("tenant".into()),
                message: "tenant differs".into(),
                fix: "use t1".into(),
                evidence,
                time: datetime!(2024-05-01 10:00:02 UTC),
            }),
            Event::TokenResponse(TokenResponseEvent {
                injected: None,
                time: datetime!(2024-05-01 10:00:02.1 UTC),
                exchange: 3,
                attempt: Some(AttemptId(1)),
                host: host.clone(),
                client_id: None,
                status: 400,
                failed: true,
                error: Some("invalid_grant".into()),
                error_description: None,
                error_codes: vec!["AADSTS700005".into()],
                trace_id: None,
                correlation_id: None,
                tokens: Vec::new(),
                token_type: None,
                scope: None,
                expires_in: None,
                decoded: Vec::new(),
                elapsed: None,
                grant_type: None,
                pending_poll: None,
            }),
            Event::Verdict(Verdict {
                injected: None,
                time: datetime!(2024-05-01 10:00:02.1 UTC),
                attempt: Some(AttemptId(1)),
                host,
                client_id: None,
                outcome: Outcome::Failed,
                summary: "sign-in failed at /token: AADSTS700005".into(),
                errors: 1,
                warnings: 0,
                duration: None,
            }),
        ]
    }

    #[test]
    fn a_report_has_timeline_findings_environment_and_explanations() {
        let md = render("x.har", &sample());
        for want in [
            "# Sign-in report",
            "## Summary",
            "- 1 sign-in attempt(s) started, 1 redemption(s) seen",
            "- 0 signed in, 1 failed",
            "| Tenant | `t1` |",
            "| client_id | `c1` |",
            "| redirect_uri | `https://app/cb` |",
            "| Token endpoint | `https://login.microsoftonline.com/common/oauth2/v2.0/token` |",
            "## Attempt #1: failed",
            "| +0 ms | authorize |",
            "| +1.5 s | code issued |",
            "| +2.0 s | redeemed |",
            "| +2.1 s | IdP answer | HTTP 400, invalid_grant, AADSTS700005 |",
            "- **error** `endpoint-mismatch` [tenant]: tenant differs",
            "  - Fix: use t1",
            "Verdict: sign-in failed at /token: AADSTS700005",
            "## IdP errors explained",
            "### AADSTS700005: ",
        ] {
            assert!(md.contains(want), "missing {want:?} in\n{md}");
        }
    }

    #[test]
    fn secrets_in_clear_are_fingerprinted_everywhere() {
        let md = render("x.jsonl", &sample());
        assert!(!md.contains("raw-code-value-123"), "{md}");
        let print = fingerprint("code", "raw-code-value-123");
        assert!(md.contains(&format!("\"note\":\"{print} seen\"")), "{md}");
        assert!(md.contains("code_verifier#13d31e"));
    }

    #[test]
    fn bad_json_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let good = json_lines::to_line(&sample()[0]);
        std::fs::write(&path, format!("{good}\n\nnot json\n")).unwrap();
        let err = read_json_lines(&path).unwrap_err().to_string();
        assert!(err.contains("line 3 is not an authlens JSON line"), "{err}");
        std::fs::write(&path, "{\"type\":\"authorize\"}\n").unwrap();
        let err = read_json_lines(&path).unwrap_err().to_string();
        assert!(
            err.ends_with("x.jsonl: line 1 is not an authlens JSON line: \"time\" is missing"),
            "{err}"
        );
    }

    // === the values a scrubber by key name mistook for secrets ===

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const CLIENT_SECRET: &str = "app-secret-Zq8~x";
    const ACCESS_TOKEN: &str = "at-opaque-9d8e7f6a";
    const REFRESH_TOKEN: &str = "rt-1a2b3c4d5e";
    const CODES: [&str; 5] = [
        "0.AXEA-code-redirect",
        "0.AXEA-code-version",
        "0.AXEA-code-client",
        "0.AXEA-code-scope",
        "0.AXEA-code-success",
    ];
    const IDP_DESCRIPTION: &str =
        "AADSTS700054: response_type 'id_token' is not enabled for the application.";

    fn id_token() -> String {
        crate::oauth::testing::jwt(&json!({"aud": "c1", "sub": "s-1", "nonce": "n-1"}))
    }

    /// Four refused redemptions whose /token side is no secret (a redirect_uri
    /// with a trailing slash, a v1 token endpoint, another client_id, other
    /// scopes), an authorize error quoting `id_token`, and a sign-in that
    /// gets every kind of token.
    fn mismatch_session(show_secrets: bool) -> Vec<Event> {
        use crate::oauth::Analyzer;
        use crate::oauth::testing::ex;
        let mut analyzer = Analyzer::new(AnalyzerConfig {
            show_secrets,
            ..AnalyzerConfig::default()
        });
        let base = "https://login.microsoftonline.com/t1/oauth2";
        let callback = "https%3A%2F%2Fapp.test%2Fcallback";
        let mut events = Vec::new();
        let mut at = 0.0;
        let mut attempt = |state: &str,
                           code: Option<&str>,
                           token_url: &str,
                           token_form: &str,
                           response: (u16, String)| {
            let authorize = format!(
                "{base}/v2.0/authorize?response_type=code&client_id=c1&redirect_uri={callback}&scope=openid%20User.Read&state={state}&nonce=n-1&code_challenge={CHALLENGE}&code_challenge_method=S256"
            );
            events.extend(analyzer.observe(&ex("GET", &authorize).at(at).build()));
            let back = match code {
                Some(code) => format!("https://app.test/callback?code={code}&state={state}"),
                None => format!(
                    "https://app.test/callback?error=unsupported_response_type&error_description={}&state={state}",
                    crate::oauth::params::encode_component(IDP_DESCRIPTION)
                ),
            };
            events.extend(
                analyzer.observe(
                    &ex("POST", &format!("{base}/login"))
                        .at(at + 1.0)
                        .redirect(&back)
                        .build(),
                ),
            );
            if let Some(code) = code {
                let form = format!(
                    "grant_type=authorization_code&code={code}&client_secret={}&code_verifier={VERIFIER}&{token_form}",
                    crate::oauth::params::encode_component(CLIENT_SECRET)
                );
                events.extend(
                    analyzer.observe(
                        &ex("POST", token_url)
                            .at(at + 2.0)
                            .form(&form)
                            .json(response.0, &response.1)
                            .build(),
                    ),
                );
            }
            at += 10.0;
        };
        let refused = |code: &str, description: &str| {
            let error = json!({"error": "invalid_grant", "error_description": description, "error_codes": [code.trim_start_matches("AADSTS").parse::<u64>().unwrap()]});
            (400, error.to_string())
        };
        let v2 = format!("{base}/v2.0/token");
        attempt(
            "st-redirect",
            Some(CODES[0]),
            &v2,
            &format!("client_id=c1&redirect_uri={callback}%2F"),
            refused(
                "AADSTS500112",
                "AADSTS500112: The reply address 'https://app.test/callback/' does not match the reply address 'https://app.test/callback' provided when requesting Authorization code.",
            ),
        );
        attempt(
            "st-version",
            Some(CODES[1]),
            &format!("{base}/token"),
            &format!("client_id=c1&redirect_uri={callback}"),
            refused(
                "AADSTS70000",
                "AADSTS70000: The provided authorization code or refresh token is invalid, was issued to a different client, or is expired.",
            ),
        );
        attempt(
            "st-client",
            Some(CODES[2]),
            &v2,
            &format!("client_id=c2&redirect_uri={callback}"),
            refused(
                "AADSTS700016",
                "AADSTS700016: Application with identifier 'c2' was not found in the directory 't1'.",
            ),
        );
        attempt(
            "st-scope",
            Some(CODES[3]),
            &v2,
            &format!("client_id=c1&redirect_uri={callback}&scope=openid%20Mail.Send"),
            refused(
                "AADSTS70011",
                "AADSTS70011: The provided value for the input parameter 'scope' is not valid. The scope openid Mail.Send is not valid.",
            ),
        );
        attempt("st-denied", None, &v2, "", (0, String::new()));
        let tokens = json!({"token_type": "Bearer", "access_token": ACCESS_TOKEN, "id_token": id_token(), "refresh_token": REFRESH_TOKEN});
        attempt(
            "st-ok",
            Some(CODES[4]),
            &v2,
            &format!("client_id=c1&redirect_uri={callback}"),
            (200, tokens.to_string()),
        );
        events
    }

    /// `kind#xxxxxx#yyyyyy`: a fingerprint fingerprinted again.
    fn double_fingerprint(md: &str) -> Option<&str> {
        md.split(|c: char| c.is_whitespace() || "`\"|,".contains(c))
            .find(|word| word.matches('#').count() > 1 && !word.starts_with('#'))
    }

    #[test]
    fn only_secrets_are_fingerprinted_whatever_key_they_sit_under() {
        let fingerprinted = mismatch_session(false);
        let clear = mismatch_session(true);
        let from_file: Vec<Event> = clear
            .iter()
            .map(|e| json_lines::from_line(&json_lines::to_line(e)).unwrap())
            .collect();
        for (name, events, token_kinds) in [
            (
                "fingerprinted",
                fingerprinted,
                ["access_token", "refresh_token"],
            ),
            ("clear", clear, ["token", "token"]),
            ("--show-secrets file", from_file, ["token", "token"]),
        ] {
            let md = render(name, &events);
            let at = |want: &str| assert!(md.contains(want), "{name}: missing {want:?} in\n{md}");
            // Every value compared at /authorize and /token, as it was sent.
            at(
                "Verdict: sign-in failed at /token: AADSTS500112 (param-mismatch: authlens saw `https://app.test/callback/` at /token vs `https://app.test/callback` at /authorize (trailing slash))",
            );
            at(
                r#""authorize":"https://app.test/callback","difference":["trailing slash"],"token":"https://app.test/callback/""#,
            );
            at("| redirect_uri | `https://app.test/callback`, `https://app.test/callback/` |");
            at(
                "| Token endpoint | `https://login.microsoftonline.com/t1/oauth2/token`, `https://login.microsoftonline.com/t1/oauth2/v2.0/token` |",
            );
            at(
                r#""token":"https://login.microsoftonline.com/t1/oauth2/token","token_version":"v1.0""#,
            );
            at("| client_id | `c1`, `c2` |");
            at(r#""authorize":"c1","token":"c2","token_source":"body""#);
            at(
                r#""authorize":"openid User.Read","beyond":["Mail.Send"],"token":"openid Mail.Send""#,
            );
            // The IdP's words, quoted as it wrote them.
            at(&format!("\"error_description\":\"{IDP_DESCRIPTION}\""));
            at(
                "\"error_description\":\"AADSTS500112: The reply address 'https://app.test/callback/' does not match the reply address 'https://app.test/callback' provided when requesting Authorization code.\"",
            );
            // Every secret as its fingerprint, never in clear.
            for code in CODES {
                at(&fingerprint("code", code));
                assert!(!md.contains(code), "{name}: {code} in\n{md}");
            }
            at(&format!("pkce {}", fingerprint("code_verifier", VERIFIER)));
            at(&format!(
                "HTTP 200, {} {} {}",
                fingerprint(token_kinds[0], ACCESS_TOKEN),
                fingerprint("id_token", &id_token()),
                fingerprint(token_kinds[1], REFRESH_TOKEN)
            ));
            for secret in [
                VERIFIER,
                CLIENT_SECRET,
                ACCESS_TOKEN,
                REFRESH_TOKEN,
                &id_token(),
            ] {
                assert!(!md.contains(secret), "{name}: {secret} in\n{md}");
            }
            assert_eq!(double_fingerprint(&md), None, "{name}:\n{md}");
        }
    }

    #[test]
    fn a_long_session_quotes_no_early_secret() {
        // More secrets after the first redemption than the net remembers.
        let mut events = sample();
        let Event::Token(token) = events[2].clone() else {
            unreachable!()
        };
        // Texts too short for the net to search keep the test fast.
        events.extend((0..1500).map(|i| {
            Event::Token(TokenEvent {
                host: "idp".into(),
                endpoint: "/token".into(),
                client_id: None,
                code: Some(format!("later-code-{i:04}")),
                ..token.clone()
            })
        }));
        let md = render("x.jsonl", &events);
        assert!(
            !md.contains("raw-code-value-123"),
            "an early finding quotes it"
        );
        assert!(!md.contains("later-code-"));
    }

    #[test]
    fn a_plain_pkce_challenge_is_the_verifier() {
        let mut evidence = Map::new();
        evidence.insert("code_challenge".into(), json!("plain-verifier-one"));
        evidence.insert("code_challenge_method".into(), json!("plain"));
        evidence.insert("computed_challenge".into(), json!("plain-verifier-two"));
        evidence.insert("code_verifier".into(), json!("plain-verifier-two"));
        let Event::Finding(template) = &sample()[3] else {
            unreachable!()
        };
        let finding = Finding {
            rule: Rule::PkceMismatch,
            field: Some("code_verifier".into()),
            message: "plain of the verifier gives `plain-verifier-two`, /authorize sent `plain-verifier-one`".into(),
            evidence,
            ..template.clone()
        };
        let md = render("x.jsonl", &[Event::Finding(finding.clone())]);
        assert!(!md.contains("plain-verifier"), "{md}");
        assert!(
            md.contains(&fingerprint("code_verifier", "plain-verifier-one")),
            "{md}"
        );
        // With S256 the challenge is a hash: nothing to hide.
        let mut s256 = finding;
        s256.evidence
            .insert("code_challenge_method".into(), json!("S256"));
        s256.evidence.remove("code_verifier");
        s256.evidence.remove("computed_challenge");
        s256.message = "S256".into();
        let md = render("x.jsonl", &[Event::Finding(s256)]);
        assert!(
            md.contains(r#""code_challenge":"plain-verifier-one""#),
            "{md}"
        );
    }

    // === values from the wire ===

    /// An OSC title change, a screen clear, a forged line, a bidi override
    /// and a table delimiter.
    const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J\r\n✔ signed in\u{202e}|x`y";

    #[test]
    fn wire_values_cannot_make_links_images_or_html_in_the_report() {
        const MARKUP: &str = "![x](https://tracker.test/p.png) [click](javascript:alert(1)) <img src=x onerror=alert(1)> &lt;";
        let mut events = sample();
        for e in &mut events {
            match e {
                Event::Authorize(a) => a.redirect_uri = Some(MARKUP.into()),
                Event::Finding(f) => {
                    f.message = format!("the IdP says {MARKUP}");
                    f.fix = MARKUP.into();
                }
                Event::Verdict(v) => v.summary = MARKUP.into(),
                _ => {}
            }
        }
        let md = render("x.jsonl", &events);
        // Outside code spans (where Markdown reads nothing), nothing is live.
        let prose: Vec<&str> = md.lines().filter(|l| !l.contains("`![x]")).collect();
        for raw in ["[x]", "[click]", " <img", " &lt;"] {
            assert!(
                prose.iter().all(|l| !l.contains(raw)),
                "{raw} left live in:\n{md}"
            );
        }
        assert!(md.contains(r"!\[x\](https://tracker.test/p.png)"), "{md}");
        assert!(md.contains(r"\<img src=x onerror=alert(1)\>"), "{md}");
    }

    #[test]
    fn wire_values_cannot_drive_the_terminal_or_forge_the_document() {
        let mut events = sample();
        for e in &mut events {
            match e {
                Event::Authorize(a) => {
                    a.state = Some(HOSTILE.into());
                    a.client_id = HOSTILE.into();
                    a.redirect_uri = Some(HOSTILE.into());
                }
                Event::Code(c) => c.redirect_to = Some(HOSTILE.into()),
                Event::TokenResponse(r) => {
                    r.error_description = Some(HOSTILE.into());
                    r.error = Some(HOSTILE.into());
                }
                Event::Finding(f) => {
                    f.message = format!("the IdP says {HOSTILE}");
                    f.field = Some(HOSTILE.into());
                    f.evidence
                        .insert("error_description".into(), json!(HOSTILE));
                }
                Event::Verdict(v) => v.summary = format!("sign-in failed: {HOSTILE}"),
                Event::Token(_) | Event::DeviceAuthorization(_) => {}
            }
        }
        let md = render("x.jsonl", &events);
        assert!(
            !md.chars()
                .any(|c| c != '\n' && (c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c))),
            "{md:?}"
        );
        assert!(md.contains(r"\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n✔ signed in\u{202e}"));
        for line in md.lines() {
            assert!(!line.starts_with('✔'), "forged line {line:?}");
            if line.starts_with('|') && !line.starts_with("|---") {
                let delimiters = line.matches('|').count() - line.matches("\\|").count();
                let columns = if line.starts_with("| +") || line.starts_with("| time") {
                    3
                } else {
                    2
                };
                assert_eq!(delimiters, columns + 1, "forged cell in {line:?}");
            }
        }
        // Inline code that the backtick inside cannot close.
        assert!(
            md.contains(r"| client_id | ``\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n✔ signed in\u{202e}\|x`y``, `c1` |"),
            "{md}"
        );
    }

    #[test]
    fn inline_code_outlasts_the_backticks_inside() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`a``"), "``` `a`` ```");
    }
}
