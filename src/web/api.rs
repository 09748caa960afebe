//! The JSON the page reads, and the downloads: built from the store's
//! events and HAR entries with the renderers the other outputs use (JSON
//! lines, the Markdown report, the HAR writer), never a second analysis.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::store::Store;
use crate::oauth::catalogue;
use crate::oauth::event::Event;
use crate::output::json_lines;

/// Everything the page shows about one attempt: its row, its events (as
/// JSON lines objects, so fields added later show up), each leg's HAR
/// entry and curl, the catalogue's explanations of the IdP's codes, and the
/// code lifetime the timeline draws.
pub fn attempt_detail(store: &Store, id: u64, code_lifetime: Option<Duration>) -> Option<Value> {
    let (summary, events, values) = store.attempt(id)?;
    let mut legs = Vec::new();
    for x in summary["exchanges"].as_array().into_iter().flatten() {
        let Some(x) = x.as_u64() else { continue };
        let entry = store.entry(x);
        legs.push(json!({
            "exchange": x,
            "row": store.row(x),
            "curl": entry.as_deref().map(curl),
            "entry": entry.as_deref(),
        }));
    }
    let lifetime = code_lifetime.or_else(|| {
        let name = summary["provider"].as_str()?;
        json_lines::PROVIDERS
            .iter()
            .find(|p| p.name() == name)
            .map(|p| p.default_code_lifetime())
    });
    Some(json!({
        "summary": summary,
        "events": values,
        "legs": legs,
        "explanations": explanations(&events),
        "code_lifetime_ms": lifetime.map(|d| d.as_millis() as u64),
    }))
}

/// The catalogue's entries for the IdP errors in `events`.
fn explanations(events: &[Arc<Event>]) -> Vec<Value> {
    let mut found: Vec<&'static catalogue::Entry> = Vec::new();
    for event in events {
        let (error, codes, description) = match &**event {
            Event::Code(e) => (&e.error, &e.error_codes, &e.error_description),
            Event::TokenResponse(e) => (&e.error, &e.error_codes, &e.error_description),
            _ => continue,
        };
        let numbers: Vec<u64> = codes
            .iter()
            .flat_map(|c| catalogue::parse_error_numbers(c))
            .collect();
        for entry in
            catalogue::lookup_error_response(error.as_deref(), &numbers, description.as_deref())
        {
            if !found.iter().any(|e| std::ptr::eq(*e, entry)) {
                found.push(entry);
            }
        }
    }
    found
        .into_iter()
        .map(|e| {
            json!({
                "code": e.code,
                "provider": e.provider,
                "meaning": e.meaning,
                "causes": e.causes,
                "fix": e.fix,
            })
        })
        .collect()
}

/// The attempt's events as JSON lines (what `--json` would have written).
pub fn json_lines_download(events: &[Arc<Event>]) -> String {
    let mut text = String::new();
    for event in events {
        text.push_str(&json_lines::to_line(event));
        text.push('\n');
    }
    text
}

/// Headers curl sets itself or that would not make sense replayed.
const CURL_SKIPS: [&str; 6] = [
    "host",
    "content-length",
    "connection",
    "proxy-connection",
    "transfer-encoding",
    "accept-encoding",
];

/// A curl command repeating a leg, from its redacted HAR entry (secrets
/// stay fingerprinted unless `--show-secrets`).
pub fn curl(entry: &Value) -> String {
    let request = &entry["request"];
    let mut cmd = String::from("curl");
    let method = request["method"].as_str().unwrap_or("GET");
    if method != "GET" {
        cmd.push_str(&format!(" -X {}", shell_quote(method)));
    }
    cmd.push(' ');
    cmd.push_str(&shell_quote(request["url"].as_str().unwrap_or("")));
    for h in request["headers"].as_array().into_iter().flatten() {
        let (Some(name), Some(value)) = (h["name"].as_str(), h["value"].as_str()) else {
            continue;
        };
        if name.starts_with(':') || CURL_SKIPS.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        cmd.push_str(" \\\n  -H ");
        cmd.push_str(&shell_quote(&format!("{name}: {value}")));
    }
    if let Some(body) = request["postData"]["text"].as_str() {
        cmd.push_str(" \\\n  --data-raw ");
        cmd.push_str(&shell_quote(body));
    }
    cmd
}

/// `text` as one POSIX shell word.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_quotes_every_value_and_skips_what_curl_sets() {
        let entry = json!({"request": {
            "method": "POST",
            "url": "https://idp.test/token?x=it's",
            "headers": [
                {"name": "Host", "value": "idp.test"},
                {"name": "Content-Type", "value": "application/x-www-form-urlencoded"},
                {"name": "X-Evil", "value": "$(rm -rf /)'; echo"},
            ],
            "postData": {"text": "code=code#3fa2c1&grant_type=authorization_code"},
        }});
        let cmd = curl(&entry);
        assert_eq!(
            cmd,
            "curl -X 'POST' 'https://idp.test/token?x=it'\\''s' \\\n  -H 'Content-Type: application/x-www-form-urlencoded' \\\n  -H 'X-Evil: $(rm -rf /)'\\''; echo' \\\n  --data-raw 'code=code#3fa2c1&grant_type=authorization_code'"
        );
    }
}
