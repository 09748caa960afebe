//! `authlens explain`: what an identity provider's error code means, from
//! the built-in catalogue ([`crate::oauth::catalogue`]).
//!
//! Pure: a code or a pasted error response in, text or JSON out. Reading
//! stdin, printing and the exit status belong to the binary.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::oauth::catalogue::{self, Entry};
use crate::output::escape::escape_controls;

/// How many close codes an unknown code suggests.
pub const SUGGESTIONS: usize = 3;

/// The most the binary reads from stdin; error responses are a few KiB.
pub const MAX_INPUT: usize = 1 << 20;

/// What the user asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// One code or error value: `AADSTS90056`, `54005`, `invalid_grant`.
    Code(String),
    /// A pasted error response: a JSON body, an `error_description` text, or
    /// a URL / query string with `error=…&error_description=…`.
    Text(String),
}

impl Input {
    /// The command-line argument. Something that cannot be a code (it holds
    /// blanks, `=` or `{`) is read as a pasted response, so
    /// `authlens explain "AADSTS54005: OAuth2 Authorization code was already redeemed"`
    /// works too.
    pub fn from_arg(arg: &str) -> Input {
        let arg = arg.trim();
        if arg.contains(|c: char| c.is_whitespace() || c == '=' || c == '{') {
            Input::Text(arg.to_owned())
        } else {
            Input::Code(arg.to_owned())
        }
    }
}

/// One code and what the catalogue says about it.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// As asked, or as found in the pasted response.
    pub query: String,
    /// `None`: not in the catalogue.
    pub entry: Option<&'static Entry>,
    /// Close known codes, for an unknown one.
    pub suggestions: Vec<&'static Entry>,
}

impl Explanation {
    fn of(query: &str) -> Explanation {
        match catalogue::lookup(query) {
            Some(entry) => Explanation::found(query, entry),
            None => Explanation {
                query: query.trim().to_owned(),
                entry: None,
                suggestions: catalogue::closest(query, SUGGESTIONS),
            },
        }
    }

    fn found(query: &str, entry: &'static Entry) -> Explanation {
        Explanation {
            query: query.trim().to_owned(),
            entry: Some(entry),
            suggestions: Vec::new(),
        }
    }
}

/// The answer to one `authlens explain`.
#[derive(Debug, Clone)]
pub struct Report {
    pub explanations: Vec<Explanation>,
    /// The input was a pasted response (rendered as a list).
    pub from_text: bool,
}

impl Report {
    /// True when something was asked and every code is in the catalogue:
    /// exit status 0.
    pub fn found(&self) -> bool {
        !self.explanations.is_empty() && self.explanations.iter().all(|e| e.entry.is_some())
    }

    /// Readable text (ends with a newline). What came from the input (an
    /// unknown code) is shown with its control characters escaped.
    pub fn to_text(&self) -> String {
        if self.explanations.is_empty() {
            return "No error code or OAuth error value found in the input. Paste the JSON error body, \
                    the error_description text, or the URL carrying error=…&error_description=….\n"
                .to_owned();
        }
        let mut out = String::new();
        if self.from_text {
            let names: Vec<String> = self
                .explanations
                .iter()
                .map(|e| {
                    e.entry.map_or_else(
                        || escape_controls(&e.query).into_owned(),
                        |x| x.code.clone(),
                    )
                })
                .collect();
            let _ = writeln!(out, "Found in the input: {}\n", names.join(", "));
        }
        for (i, e) in self.explanations.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            match e.entry {
                Some(entry) => entry_text(entry, &mut out),
                None => unknown_text(e, &mut out),
            }
        }
        out
    }

    /// JSON: an object for a code asked on the command line, an array of
    /// such objects for a pasted response. Each object has `query`, `found`,
    /// `entry` (the catalogue entry or null) and `suggestions`.
    pub fn to_json(&self) -> Value {
        let items: Vec<Value> = self.explanations.iter().map(explanation_json).collect();
        match (self.from_text, items.as_slice()) {
            (false, [one]) => one.clone(),
            _ => Value::Array(items),
        }
    }
}

/// Explains a code or a pasted response.
pub fn explain(input: &Input) -> Report {
    match input {
        Input::Code(code) => Report {
            explanations: vec![Explanation::of(code)],
            from_text: false,
        },
        Input::Text(text) => Report {
            explanations: explain_response(text),
            from_text: true,
        },
    }
}

/// The parts of an error response that name its cause.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PastedError {
    pub error: Option<String>,
    pub description: Option<String>,
    /// Entra `error_codes`.
    pub numbers: Vec<u64>,
}

/// Reads a pasted error response: a JSON body, a URL or query string with
/// `error=`, or else plain text (an `error_description`, a log line).
pub fn parse_pasted(text: &str) -> PastedError {
    let text = text.trim().trim_start_matches('\u{feff}');
    if text.starts_with('{')
        && let Ok(Value::Object(body)) = serde_json::from_str::<Value>(text)
    {
        let string = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let (error, nested) = match body.get("error") {
            // `{"error": {"code": …, "message": …}}` (Graph, Azure management).
            Some(Value::Object(inner)) => (string(inner.get("code")), string(inner.get("message"))),
            other => (string(other), None),
        };
        let numbers = match body.get("error_codes") {
            Some(Value::Array(items)) => items.iter().filter_map(json_number).collect(),
            Some(single) => json_number(single).into_iter().collect(),
            None => Vec::new(),
        };
        return PastedError {
            error,
            description: string(body.get("error_description")).or(nested),
            numbers,
        };
    }
    let mut pasted = PastedError::default();
    for part in text.split(['?', '#', '\n', '\r']) {
        let part = part.trim();
        if !part.contains("error=") {
            continue;
        }
        for param in crate::oauth::params::Params::parse(part).iter() {
            let value = param.value.trim().to_owned();
            match param.name.as_str() {
                "error" if pasted.error.is_none() => pasted.error = Some(value),
                "error_description" if pasted.description.is_none() => {
                    pasted.description = Some(value)
                }
                "error_codes" => pasted
                    .numbers
                    .extend(catalogue::parse_error_numbers(&value)),
                _ => {}
            }
        }
    }
    if pasted.error.is_some() || pasted.description.is_some() {
        return pasted;
    }
    // Plain text: the first word that is a known OAuth error value.
    let error = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|w| w.contains('_') && catalogue::lookup(w).is_some())
        .map(str::to_owned);
    PastedError {
        error,
        description: Some(text.to_owned()),
        numbers: Vec::new(),
    }
}

fn json_number(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

/// Every code found in a pasted response, most specific first: the catalogue
/// entries it gives evidence for, then the numbered codes it names that the
/// catalogue does not know.
pub fn explain_response(text: &str) -> Vec<Explanation> {
    let pasted = parse_pasted(text);
    let entries = catalogue::lookup_error_response(
        pasted.error.as_deref(),
        &pasted.numbers,
        pasted.description.as_deref(),
    );
    let mut out: Vec<Explanation> = entries
        .iter()
        .map(|e| Explanation::found(&e.code, e))
        .collect();
    for code in catalogue::named_codes(&pasted.numbers, pasted.description.as_deref()) {
        let known = catalogue::lookup(&code).is_some();
        let listed = out.iter().any(|e| e.query.eq_ignore_ascii_case(&code));
        if !known && !listed {
            out.push(Explanation::of(&code));
        }
    }
    out
}

fn provider_name(provider: &str) -> &str {
    match provider {
        "entra" => "Microsoft Entra ID",
        "b2c" => "Azure AD B2C",
        "rfc6749" => "OAuth 2.0 (RFC 6749)",
        "rfc8628" => "OAuth 2.0 Device Authorization Grant (RFC 8628)",
        "rfc8693" => "OAuth 2.0 Token Exchange (RFC 8693)",
        "oidc" => "OpenID Connect",
        "okta" => "Okta",
        "auth0" => "Auth0",
        "google" => "Google",
        "keycloak" => "Keycloak",
        "github" => "GitHub",
        other => other,
    }
}

fn entry_text(e: &Entry, out: &mut String) {
    let mut head = format!("{}  ({}", e.code, provider_name(&e.provider));
    if let Some(error) = &e.error {
        let _ = write!(head, ", error `{error}`");
    }
    head.push(')');
    let _ = writeln!(out, "{head}");
    let _ = writeln!(out, "  {}", e.meaning);
    if !e.aliases.is_empty() {
        let _ = writeln!(out, "  Also known as: {}", e.aliases.join(", "));
    }
    if !e.matches.is_empty() {
        let quoted: Vec<String> = e.matches.iter().map(|m| format!("\"{m}\"")).collect();
        let _ = writeln!(out, "  Recognised by the text: {}", quoted.join(" or "));
    }
    let _ = writeln!(out, "\n  Likely causes:");
    for cause in &e.causes {
        let _ = writeln!(out, "    - {cause}");
    }
    let _ = writeln!(out, "\n  How to fix:");
    for (i, step) in e.fix.iter().enumerate() {
        let _ = writeln!(out, "    {}. {step}", i + 1);
    }
    let wire: Vec<&str> = e
        .rules
        .iter()
        .map(String::as_str)
        .filter(|r| *r != "idp-error")
        .collect();
    if let (true, Some(confirms)) = (wire.is_empty(), &e.wire) {
        let _ = writeln!(
            out,
            "\n  authlens reports the IdP's answer as idp-error, checked against the traffic: {confirms}."
        );
    } else if wire.is_empty() {
        let _ = writeln!(
            out,
            "\n  authlens cannot see this cause in traffic; it reports the IdP's answer as idp-error."
        );
    } else {
        let _ = writeln!(
            out,
            "\n  authlens detects the cause on the wire with: {}",
            wire.join(", ")
        );
    }
}

fn unknown_text(e: &Explanation, out: &mut String) {
    let _ = writeln!(
        out,
        "{}: not in the authlens catalogue.",
        escape_controls(&e.query)
    );
    if e.suggestions.is_empty() {
        let _ = writeln!(out, "  No known code is close to it.");
    } else {
        let _ = writeln!(out, "  Closest known codes:");
        for s in &e.suggestions {
            let _ = writeln!(out, "    {:<16} {}", s.code, s.meaning);
        }
    }
    if let Some(number) = e.query.to_ascii_uppercase().strip_prefix("AADSTS") {
        let _ = writeln!(
            out,
            "  Microsoft's own lookup: https://login.microsoftonline.com/error?code={number}"
        );
    }
}

fn explanation_json(e: &Explanation) -> Value {
    json!({
        "query": e.query,
        "found": e.entry.is_some(),
        "entry": e.entry,
        "suggestions": e.suggestions.iter().map(|s| json!({
            "code": s.code,
            "provider": s.provider,
            "meaning": s.meaning,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(report: &Report) -> Vec<String> {
        report
            .explanations
            .iter()
            .map(|e| {
                e.entry
                    .map_or_else(|| format!("?{}", e.query), |x| x.code.clone())
            })
            .collect()
    }

    fn text(input: &str) -> Report {
        explain(&Input::Text(input.to_owned()))
    }

    #[test]
    fn arguments_that_cannot_be_codes_are_pasted_text() {
        for code in [
            "AADSTS90056",
            "90056",
            "invalid_grant",
            " AADB2C90088 ",
            "-x",
        ] {
            assert_eq!(Input::from_arg(code), Input::Code(code.trim().to_owned()));
        }
        for pasted in [
            "AADSTS54005: already redeemed",
            "error=invalid_grant",
            "{\"error\":\"x\"}",
        ] {
            assert_eq!(Input::from_arg(pasted), Input::Text(pasted.to_owned()));
        }
    }

    #[test]
    fn a_known_code_in_any_spelling() {
        for q in ["AADSTS90056", "aadsts90056", "90056"] {
            let r = explain(&Input::Code(q.to_owned()));
            assert!(r.found());
            assert_eq!(codes(&r), ["AADSTS90056"], "{q}");
            assert_eq!(r.explanations[0].query, q);
        }
        let r = explain(&Input::Code("AADB2C90088".into()));
        assert_eq!(codes(&r), ["AADB2C90088"]);
        let r = explain(&Input::Code("Invalid_Grant".into()));
        assert_eq!(codes(&r), ["invalid_grant"]);
    }

    #[test]
    fn an_unknown_code_is_not_found_and_suggests_close_ones() {
        let r = explain(&Input::Code("AADSTS54006".into()));
        assert!(!r.found());
        let e = &r.explanations[0];
        assert!(e.entry.is_none());
        assert_eq!(e.suggestions[0].code, "AADSTS54005");
        assert!(e.suggestions.len() <= SUGGESTIONS);
        let out = r.to_text();
        assert!(
            out.starts_with("AADSTS54006: not in the authlens catalogue.\n  Closest known codes:\n    AADSTS54005"),
            "{out}"
        );
        assert!(out.contains("https://login.microsoftonline.com/error?code=54006"));
        let far = explain(&Input::Code("zzzzzzzzzzzzzz".into()));
        assert!(far.to_text().contains("No known code is close to it."));
    }

    #[test]
    fn parse_pasted_json_url_and_text() {
        let json = r#"{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed.","error_codes":[70002,"54005"],"trace_id":"t"}"#;
        assert_eq!(
            parse_pasted(json),
            PastedError {
                error: Some("invalid_grant".into()),
                description: Some(
                    "AADSTS54005: OAuth2 Authorization code was already redeemed.".into()
                ),
                numbers: vec![70002, 54005],
            }
        );
        let url = "https://app.test/callback?error=invalid_request&error_description=AADSTS90014%3A+The+required+field+%27code%27+is+missing.&state=s#x";
        let p = parse_pasted(url);
        assert_eq!(p.error.as_deref(), Some("invalid_request"));
        assert_eq!(
            p.description.as_deref(),
            Some("AADSTS90014: The required field 'code' is missing.")
        );
        let fragment = "https://app/cb#error=access_denied&error_description=AADSTS65004%3A+User+declined&error_codes=65004";
        let p = parse_pasted(fragment);
        assert_eq!(p.error.as_deref(), Some("access_denied"));
        assert_eq!(p.numbers, [65004]);
        let nested = r#"{"error":{"code":"invalid_grant","message":"AADSTS70008: expired"}}"#;
        let p = parse_pasted(nested);
        assert_eq!(p.error.as_deref(), Some("invalid_grant"));
        assert_eq!(p.description.as_deref(), Some("AADSTS70008: expired"));
        let plain =
            "MsalUiRequiredException: invalid_grant: AADSTS700082: The refresh token has expired";
        let p = parse_pasted(plain);
        assert_eq!(p.error.as_deref(), Some("invalid_grant"));
        assert_eq!(p.description.as_deref(), Some(plain));
        // Broken JSON is read as text.
        let p = parse_pasted("{\"error\":\"invalid_grant\", \"error_descr");
        assert_eq!(p.error.as_deref(), Some("invalid_grant"));
    }

    #[test]
    fn every_code_in_a_pasted_response_is_explained() {
        let r = text(
            r#"{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.\r\nTrace ID: 0000aaaa","error_codes":[70002,54005]}"#,
        );
        assert_eq!(codes(&r), ["AADSTS54005", "AADSTS70002", "invalid_grant"]);
        assert!(r.found());

        let r = text(
            "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.",
        );
        assert_eq!(codes(&r), ["github:bad_verification_code"]);

        let r = text("The authorization code is invalid or has expired.");
        assert_eq!(codes(&r), ["okta:invalid_grant:expired"]);

        // An unknown number is listed, and makes the answer "not found".
        let r = text("AADSTS9999999: something new. Also AADSTS50011: reply URL");
        assert_eq!(codes(&r), ["AADSTS50011", "?AADSTS9999999"]);
        assert!(!r.found());

        let r = text("nothing to see here");
        assert!(r.explanations.is_empty());
        assert!(!r.found());
        assert!(
            r.to_text()
                .starts_with("No error code or OAuth error value found")
        );
    }

    #[test]
    fn text_rendering_reads_like_a_help_page() {
        let r = explain(&Input::Code("54005".into()));
        let out = r.to_text();
        let e = catalogue::lookup("54005").unwrap();
        assert!(
            out.starts_with(&format!(
                "AADSTS54005  (Microsoft Entra ID, error `invalid_grant`)\n  {}\n",
                e.meaning
            )),
            "{out}"
        );
        assert!(out.contains("\n  Likely causes:\n    - "), "{out}");
        assert!(out.contains("\n  How to fix:\n    1. "), "{out}");
        assert!(
            out.contains("detects the cause on the wire with: code-reused"),
            "{out}"
        );
        let wrong_secret = explain(&Input::Code("AADSTS7000215".into())).to_text();
        assert!(
            wrong_secret.contains("cannot see this cause in traffic"),
            "{wrong_secret}"
        );
        let platform = explain(&Input::Code("AADSTS9002326".into())).to_text();
        assert!(
            platform.contains(
                "checked against the traffic: whether the redemption carried an `Origin` header"
            ) && !platform.contains("cannot see"),
            "{platform}"
        );
        let alias = explain(&Input::Code("AADSTS501481".into())).to_text();
        assert!(alias.contains("Also known as: AADSTS50148"), "{alias}");
        let pasted = text("AADSTS50011: The redirect URI does not match.").to_text();
        assert!(
            pasted.starts_with("Found in the input: AADSTS50011\n\nAADSTS50011  ("),
            "{pasted}"
        );
    }

    #[test]
    fn json_shape() {
        let v = explain(&Input::Code("aadsts54005".into())).to_json();
        assert_eq!(v["query"], "aadsts54005");
        assert_eq!(v["found"], true);
        assert_eq!(v["entry"]["code"], "AADSTS54005");
        assert_eq!(v["entry"]["provider"], "entra");
        assert_eq!(v["entry"]["error"], "invalid_grant");
        assert_eq!(v["entry"]["rules"], json!(["code-reused"]));
        assert!(
            v["entry"]["causes"]
                .as_array()
                .is_some_and(|c| !c.is_empty())
        );
        assert!(v["entry"]["fix"].as_array().is_some_and(|c| !c.is_empty()));
        assert_eq!(v["suggestions"], json!([]));

        let v = explain(&Input::Code("invalid_grnt".into())).to_json();
        assert_eq!(v["found"], false);
        assert_eq!(v["entry"], Value::Null);
        assert_eq!(v["suggestions"][0]["code"], "invalid_grant");

        let v = text("error=invalid_grant").to_json();
        assert_eq!(v.as_array().map(Vec::len), Some(1));
        assert_eq!(v[0]["entry"]["code"], "invalid_grant");
        assert_eq!(text("").to_json(), json!([]));
    }

    #[test]
    fn pasted_control_characters_are_shown_not_obeyed() {
        let hostile = "\x1b]0;pwned\x07\x1b[2J\r\n✔ signed in\u{202e}|x";
        let body = json!({
            "error": "invalid_grant",
            "error_description": format!("AADSTS9999999: {hostile}"),
            "error_codes": [9999999],
        });
        for out in [
            text(&body.to_string()).to_text(),
            explain(&Input::Code(hostile.into())).to_text(),
            text(&format!("error=x{hostile}")).to_text(),
        ] {
            assert!(
                !out.chars().any(
                    |c| c != '\n' && (c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c))
                ),
                "{out:?}"
            );
            assert!(
                out.lines().all(|l| !l.trim_start().starts_with('✔')),
                "{out}"
            );
        }
        let out = explain(&Input::Code(hostile.into())).to_text();
        assert!(
            out.starts_with(r"\u{1b}]0;pwned\u{7}\u{1b}[2J\r\n✔ signed in\u{202e}|x: not in"),
            "{out}"
        );
    }
}
