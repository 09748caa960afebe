//! `authlens report`: a Markdown report of a recorded session for a bug
//! ticket.
//!
//! Built from analysis events in their JSON-lines shape, whether they come
//! from a HAR file (analysed here with the one engine) or from a `--json`
//! file written earlier. Each sign-in attempt becomes a short timeline with
//! relative times, followed by its findings and their fixes; the IdP's errors
//! are explained from the catalogue; environment facts are gathered from the
//! legs. No secret is written in clear: values under secret names become
//! fingerprints and are then hunted down in every other text.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::har::redact::Redactor;
use crate::har::{HarError, ReadOptions, load};
use crate::oauth::catalogue;
use crate::oauth::event::human_duration;
use crate::oauth::{AnalyzerConfig, secret};
use crate::output::json_lines;

/// The events a report is made of, and where they came from.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// One line saying what was read (`session.har (42 exchanges)`).
    pub source: String,
    /// Events as JSON lines objects (`{"type":"authorize",…}`).
    pub events: Vec<Value>,
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Har(#[from] HarError),
    #[error("{path}: cannot read the file: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: line {line} is not an authlens JSON line: {detail}")]
    JsonLine {
        path: String,
        line: usize,
        detail: String,
    },
}

/// Analyses HAR files (secrets are never shown, whatever the config says).
pub fn from_har(
    paths: &[PathBuf],
    read: ReadOptions,
    mut config: AnalyzerConfig,
) -> Result<ReportInput, ReportError> {
    config.show_secrets = false;
    let recording = load(paths, read)?;
    let mut analyzer = crate::oauth::Analyzer::new(config);
    let events = recording
        .exchanges
        .iter()
        .flat_map(|exchange| analyzer.observe(exchange))
        .map(|event| json_lines::to_value(&event))
        .collect();
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok(ReportInput {
        source: format!(
            "{} ({} exchanges)",
            names.join(", "),
            recording.exchanges.len()
        ),
        events,
    })
}

/// Reads a `--json` file (one event per line; blank lines are skipped).
pub fn from_json_lines(path: &Path) -> Result<ReportInput, ReportError> {
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
        let bad = |detail: String| ReportError::JsonLine {
            path: name.clone(),
            line: i + 1,
            detail,
        };
        let value: Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if !value["type"].is_string() {
            return Err(bad("it has no \"type\"".into()));
        }
        events.push(value);
    }
    Ok(ReportInput {
        source: format!("{name} ({} events)", events.len()),
        events,
    })
}

/// The report as Markdown.
pub fn render(input: &ReportInput) -> String {
    let events = scrubbed(&input.events);
    let mut md = String::new();
    let _ = writeln!(md, "# Sign-in report\n");
    let _ = writeln!(md, "Source: {}  ", cell(&input.source));
    let times: Vec<OffsetDateTime> = events.iter().filter_map(time_of).collect();
    if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
        let span = (*last - *first).try_into().unwrap_or_default();
        let _ = writeln!(
            md,
            "Period: {} to {} ({})  ",
            stamp(*first),
            stamp(*last),
            human_duration(span)
        );
    }
    let _ = writeln!(
        md,
        "Secrets (codes, client secrets, verifiers, assertions, tokens) appear only as fingerprints such as `code#3fa2c1`: the same value always gets the same fingerprint.\n"
    );
    summary(&mut md, &events);
    environment(&mut md, &events);

    let mut attempts: Vec<u64> = Vec::new();
    for e in &events {
        if let Some(a) = e["attempt"].as_u64()
            && !attempts.contains(&a)
        {
            attempts.push(a);
        }
    }
    for a in attempts {
        let group: Vec<&Value> = events
            .iter()
            .filter(|e| e["attempt"].as_u64() == Some(a))
            .collect();
        attempt(&mut md, &format!("Attempt #{a}"), &group);
    }
    let loose: Vec<&Value> = events.iter().filter(|e| e["attempt"].is_null()).collect();
    if !loose.is_empty() {
        attempt(&mut md, "Outside any attempt", &loose);
    }
    explanations(&mut md, &events);
    md
}

// === sections ===

fn summary(md: &mut String, events: &[Value]) {
    let count = |kind: &str| events.iter().filter(|e| e["type"] == kind).count();
    let verdicts: Vec<&Value> = events.iter().filter(|e| e["type"] == "verdict").collect();
    let signed_in = verdicts
        .iter()
        .filter(|v| v["outcome"] == "signed-in")
        .count();
    let failed = verdicts.len() - signed_in;
    let severity = |s: &str| {
        events
            .iter()
            .filter(|e| e["type"] == "finding" && e["severity"] == s)
            .count()
    };
    let (errors, warnings) = (severity("error"), severity("warning"));
    let _ = writeln!(md, "## Summary\n");
    let _ = writeln!(
        md,
        "- {} sign-in attempt(s) started, {} redemption(s) seen",
        count("authorize"),
        count("token")
    );
    let _ = writeln!(md, "- {signed_in} signed in, {failed} failed");
    let _ = writeln!(md, "- {errors} error finding(s), {warnings} warning(s)");
    let result = match (errors, failed) {
        (0, 0) => "no error found",
        _ => "**errors found**",
    };
    let _ = writeln!(md, "- Result: {result}\n");
}

fn environment(md: &mut String, events: &[Value]) {
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
        ("PKCE", BTreeSet::new()),
        ("Client authentication", BTreeSet::new()),
    ];
    let mut add = |row: &str, value: &Value| {
        let text = match value {
            Value::String(s) if !s.is_empty() => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return,
        };
        if let Some((_, set)) = rows.iter_mut().find(|(name, _)| *name == row) {
            set.insert(text);
        }
    };
    for e in events {
        match e["type"].as_str() {
            Some("authorize") => {
                add("IdP host", &e["host"]);
                let provider = [&e["provider"], &e["version"]]
                    .iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                add("Provider", &Value::String(provider));
                add("Tenant", &e["tenant"]);
                add("B2C policy", &e["policy"]);
                add("client_id", &e["client_id"]);
                add("redirect_uri", &e["redirect_uri"]);
                add("Authorize endpoint", &e["endpoint"]);
                add("Response mode", &e["response_mode"]);
                add("PKCE", &e["pkce"]);
            }
            Some("token") => {
                add("IdP host", &e["host"]);
                add("client_id", &e["client_id"]);
                add("redirect_uri", &e["redirect_uri"]);
                add("Token endpoint", &e["endpoint"]);
                if let Some(methods) = e["client_auth"].as_array() {
                    for m in methods {
                        add("Client authentication", m);
                    }
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
                .map(|v| format!("`{}`", cell(v)))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(md, "| {name} | {joined} |");
        }
    }
    md.push('\n');
}

fn attempt(md: &mut String, title: &str, events: &[&Value]) {
    let verdict = events.iter().rev().find(|e| e["type"] == "verdict");
    let heading = match verdict {
        Some(v) if v["outcome"] == "signed-in" => format!("{title}: signed in"),
        Some(_) => format!("{title}: failed"),
        None if title.starts_with("Attempt") => format!("{title}: not finished"),
        None => title.to_owned(),
    };
    let _ = writeln!(md, "## {heading}\n");
    let start = events.iter().find_map(|e| time_of(e));
    if let Some(start) = start {
        let _ = writeln!(md, "Started {}\n", stamp(start));
    }
    let _ = writeln!(md, "| time | leg | details |\n|---|---|---|");
    for e in events {
        let Some((leg, details)) = leg_row(e) else {
            continue;
        };
        let at = match (start, time_of(e)) {
            (Some(s), Some(t)) => format!(
                "+{}",
                human_duration((t - s).try_into().unwrap_or_default())
            ),
            _ => String::new(),
        };
        let _ = writeln!(md, "| {at} | {leg} | {} |", cell(&details));
    }
    md.push('\n');
    let findings: Vec<&&Value> = events.iter().filter(|e| e["type"] == "finding").collect();
    if !findings.is_empty() {
        let _ = writeln!(md, "Findings:\n");
        for f in findings {
            let field = f["field"]
                .as_str()
                .map(|x| format!(" [{x}]"))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- **{}** `{}`{field}: {}",
                text(&f["severity"]),
                text(&f["rule"]),
                text(&f["message"])
            );
            let _ = writeln!(md, "  - Fix: {}", text(&f["fix"]));
            if let Some(evidence) = f["evidence"].as_object().filter(|m| !m.is_empty()) {
                let _ = writeln!(md, "  - Evidence: `{}`", Value::Object(evidence.clone()));
            }
        }
        md.push('\n');
    }
    if let Some(v) = verdict {
        let _ = writeln!(md, "Verdict: {}\n", text(&v["summary"]));
    }
}

/// The timeline row of a leg event.
fn leg_row(e: &Value) -> Option<(&'static str, String)> {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |label: &str, v: &Value| match v {
        Value::String(s) if !s.is_empty() => parts.push(if label.is_empty() {
            s.clone()
        } else {
            format!("{label} {s}")
        }),
        Value::Number(n) => parts.push(format!("{label} {n}")),
        _ => {}
    };
    let leg = match e["type"].as_str()? {
        "authorize" => {
            push("", &e["endpoint"]);
            push("client", &e["client_id"]);
            push("→", &e["redirect_uri"]);
            push("mode", &e["response_mode"]);
            push("pkce", &e["pkce"]);
            push("state", &e["state"]);
            "authorize"
        }
        "code" => {
            push("", &e["host"]);
            push("", &e["code"]);
            push("error", &e["error"]);
            push("", &Value::String(codes(&e["error_codes"])));
            push("→", &e["redirect_to"]);
            push("via", &e["mode"]);
            push("paired by", &e["pairing"]);
            if e["error"].is_string() {
                "authorize error"
            } else {
                "code issued"
            }
        }
        "token" => {
            push("", &e["method"]);
            push("", &e["endpoint"]);
            push("", &e["code"]);
            if let Some(ms) = e["code_age_ms"].as_u64() {
                push(
                    "code age",
                    &Value::String(human_duration(std::time::Duration::from_millis(ms))),
                );
            }
            if let Some(auth) = e["client_auth"].as_array().filter(|a| !a.is_empty()) {
                let auth: Vec<&str> = auth.iter().filter_map(Value::as_str).collect();
                push("auth", &Value::String(auth.join("+")));
            }
            push("pkce", &e["code_verifier"]);
            "redeemed"
        }
        "token-response" => {
            push("HTTP", &e["status"]);
            push("", &e["error"]);
            push("", &Value::String(codes(&e["error_codes"])));
            if let Some(tokens) = e["tokens"].as_array().filter(|t| !t.is_empty()) {
                let tokens: Vec<&str> = tokens.iter().filter_map(Value::as_str).collect();
                push("", &Value::String(tokens.join(" ")));
            }
            push("trace_id", &e["trace_id"]);
            push("correlation_id", &e["correlation_id"]);
            "IdP answer"
        }
        _ => return None,
    };
    Some((leg, parts.join(", ")))
}

fn explanations(md: &mut String, events: &[Value]) {
    let mut seen: Vec<&'static str> = Vec::new();
    let mut entries: Vec<&'static catalogue::Entry> = Vec::new();
    for e in events {
        if !matches!(e["type"].as_str(), Some("code" | "token-response")) {
            continue;
        }
        let error = e["error"].as_str();
        let description = e["error_description"].as_str();
        // The same lookup as the live `idp-error` finding and `explain`.
        let numbers: Vec<u64> = e["error_codes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter_map(|code| code.strip_prefix("AADSTS"))
            .filter_map(|n| n.parse().ok())
            .collect();
        for entry in catalogue::lookup_error_response(error, &numbers, description) {
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

// === helpers ===

/// The events with every secret-named value fingerprinted (a `--json` file
/// written with `--show-secrets` holds them in clear), then those values
/// replaced in every other text too.
fn scrubbed(events: &[Value]) -> Vec<Value> {
    let mut redactor = Redactor::new();
    let mut out: Vec<Value> = events.to_vec();
    for e in &mut out {
        redactor.json(e);
        if let Some(tokens) = e.get_mut("tokens").and_then(Value::as_array_mut) {
            for t in tokens {
                if let Value::String(s) = t
                    && !looks_fingerprinted(s)
                {
                    *s = redactor.secret("token", s);
                }
            }
        }
    }
    fn net(redactor: &Redactor, v: &mut Value) {
        match v {
            Value::String(s) => *s = redactor.net(s),
            Value::Array(a) => a.iter_mut().for_each(|v| net(redactor, v)),
            Value::Object(m) => m.values_mut().for_each(|v| net(redactor, v)),
            _ => {}
        }
    }
    for e in &mut out {
        net(&redactor, e);
    }
    out
}

/// `kind#xxxxxx` for any kind.
fn looks_fingerprinted(s: &str) -> bool {
    s.split_once('#')
        .is_some_and(|(kind, _)| secret::is_fingerprint(kind, s))
}

fn time_of(e: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(e["time"].as_str()?, &Rfc3339).ok()
}

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

fn codes(v: &Value) -> String {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_default()
}

/// Safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Vec<Value> {
        vec![
            json!({"type":"authorize","time":"2024-05-01T10:00:00Z","attempt":1,"host":"login.microsoftonline.com","endpoint":"https://login.microsoftonline.com/t1/oauth2/v2.0/authorize","provider":"entra","version":"v2.0","tenant":"t1","client_id":"c1","redirect_uri":"https://app/cb","pkce":"S256","state":"s"}),
            json!({"type":"code","time":"2024-05-01T10:00:01.5Z","attempt":1,"host":"login.microsoftonline.com","code":"raw-code-value-123","mode":"query","pairing":"state","redirect_to":"https://app/cb","error_codes":[]}),
            json!({"type":"token","time":"2024-05-01T10:00:02Z","attempt":1,"host":"login.microsoftonline.com","endpoint":"https://login.microsoftonline.com/common/oauth2/v2.0/token","method":"POST","client_id":"c1","client_auth":["client_secret_post"],"code":"raw-code-value-123","code_verifier":"code_verifier#13d31e","code_age_ms":500}),
            json!({"type":"finding","time":"2024-05-01T10:00:02Z","attempt":1,"rule":"endpoint-mismatch","severity":"error","field":"tenant","message":"tenant differs","fix":"use t1","evidence":{"note":"raw-code-value-123 seen"}}),
            json!({"type":"token-response","time":"2024-05-01T10:00:02.1Z","attempt":1,"host":"login.microsoftonline.com","status":400,"error":"invalid_grant","error_codes":["AADSTS700005"],"tokens":[]}),
            json!({"type":"verdict","time":"2024-05-01T10:00:02.1Z","attempt":1,"outcome":"failed","summary":"sign-in failed at /token: AADSTS700005"}),
        ]
    }

    #[test]
    fn a_report_has_timeline_findings_environment_and_explanations() {
        let md = render(&ReportInput {
            source: "x.har".into(),
            events: sample(),
        });
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
        let md = render(&ReportInput {
            source: "x.jsonl".into(),
            events: sample(),
        });
        assert!(!md.contains("raw-code-value-123"), "{md}");
        let print = crate::oauth::fingerprint("code", "raw-code-value-123");
        assert!(md.contains(&print), "{md}");
        assert!(md.contains("code_verifier#13d31e"));
    }

    #[test]
    fn bad_json_lines_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        std::fs::write(&path, "{\"type\":\"authorize\"}\n\nnot json\n").unwrap();
        let err = from_json_lines(&path).unwrap_err().to_string();
        assert!(err.contains("line 3 is not an authlens JSON line"), "{err}");
    }
}
