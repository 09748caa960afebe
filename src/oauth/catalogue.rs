//! The error catalogue: what an identity provider's error code means, why it
//! usually happens, how to fix it, and which authlens rules see the cause on
//! the wire.
//!
//! The entries live in `catalogue.json` beside this file, compiled into the
//! binary and parsed once on first use. This module only parses and searches
//! them: it knows nothing about traffic and never prints.
//!
//! Keys come in three shapes:
//! - numbered codes: `AADSTS54005`, `AADB2C90088` (a bare `54005` finds them
//!   too; Entra wins if a number exists in both families);
//! - OAuth `error` values: `invalid_grant`, `login_required`, …;
//! - provider-scoped keys: `github:bad_verification_code` (found by the bare
//!   `bad_verification_code` as well) and text matchers such as
//!   `okta:invalid_grant:expired`, recognised by substrings of
//!   `error_description` (`matches`), for providers that have no numbers.

use std::collections::HashMap;
use std::sync::LazyLock;

/// One catalogue entry.
///
/// `rules` names the authlens rules that detect the cause on the wire by
/// themselves; an entry whose cause cannot be seen in traffic (a wrong secret,
/// a disabled app) lists only `idp-error`, the rule that reports the IdP's own
/// verdict. `error` is the OAuth `error` value the provider usually sends with
/// the code (`None` when it varies).
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// `AADSTS54005`, `AADB2C90088`, `invalid_grant`, `github:bad_verification_code`,
    /// `okta:invalid_grant:expired`.
    pub code: String,
    /// `entra`, `b2c`, `rfc6749`, `rfc8628`, `rfc8693`, `oidc`, `okta`, `auth0`, `google`, `keycloak`, `github`.
    pub provider: String,
    pub error: Option<String>,
    /// One line a developer understands without reading the spec.
    pub meaning: String,
    pub causes: Vec<String>,
    pub fix: Vec<String>,
    pub rules: Vec<String>,
    /// For each of `causes`, the authlens rules that see that cause on the
    /// wire (`[]`: it cannot be seen). When every rule of a cause ran on a
    /// redemption and found nothing, `idp-error` leaves the cause out. Empty
    /// when not worked out for this entry: then no cause is left out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cause_rules: Vec<Vec<String>>,
    /// For an entry no rule of its own detects: what authlens reads on the
    /// wire to confirm the IdP's answer inside its `idp-error` (the `Origin`
    /// of a redemption, a request_uri's history). `explain` says so instead
    /// of "cannot see".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<String>,
    /// Older or alternative codes for the same error (`AADSTS50148` for `AADSTS501481`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Substrings of `error_description` that identify this entry, for
    /// providers that answer with text only. Compared ASCII case-insensitively.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
}

/// Entra legacy responses wrap the real cause: `error_codes: [70002, 54005]`.
/// Wrappers are reported after the specific codes they accompany.
const WRAPPER_CODES: &[&str] = &["AADSTS70002"];

const NUMBERED_PREFIXES: [&str; 2] = ["aadsts", "aadb2c"];

struct Catalogue {
    entries: Vec<Entry>,
    /// Normalised key (lower case) -> index into `entries`.
    index: HashMap<String, usize>,
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    let entries: Vec<Entry> = serde_json::from_str(include_str!("catalogue.json"))
        .expect("catalogue.json is valid (checked by the unit tests)");
    let index = build_index(&entries);
    Catalogue { entries, index }
});

fn build_index(entries: &[Entry]) -> HashMap<String, usize> {
    let mut index = HashMap::new();
    // Exact codes and aliases first, so they win over the short forms below.
    for (i, entry) in entries.iter().enumerate() {
        for name in names(entry) {
            index.entry(name.to_ascii_lowercase()).or_insert(i);
        }
    }
    // Short forms: bare numbers and unscoped error values, first entry wins.
    for (i, entry) in entries.iter().enumerate() {
        for name in names(entry) {
            if let Some(short) = short_form(name) {
                index.entry(short.to_ascii_lowercase()).or_insert(i);
            }
        }
    }
    index
}

/// The code and its aliases.
fn names(entry: &Entry) -> impl Iterator<Item = &str> {
    std::iter::once(entry.code.as_str()).chain(entry.aliases.iter().map(String::as_str))
}

/// `AADSTS54005` -> `54005`; `github:bad_verification_code` -> `bad_verification_code`.
fn short_form(name: &str) -> Option<&str> {
    if let Some((_, digits)) = split_numbered(name) {
        return Some(digits);
    }
    scoped_error(name)
}

/// `AADSTS54005` -> (`aadsts`, `54005`), any case.
fn split_numbered(name: &str) -> Option<(&'static str, &str)> {
    NUMBERED_PREFIXES.iter().find_map(|prefix| {
        let head = name.get(..prefix.len())?;
        let digits = &name[prefix.len()..];
        (head.eq_ignore_ascii_case(prefix) && is_digits(digits)).then_some((*prefix, digits))
    })
}

/// The error value of a provider-scoped key with exactly one `:`
/// (`github:redirect_uri_mismatch`); text matchers have two and are not scoped errors.
fn scoped_error(code: &str) -> Option<&str> {
    let (_, rest) = code.split_once(':')?;
    (!rest.contains(':')).then_some(rest)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn normalise(key: &str) -> String {
    key.trim().trim_end_matches(':').trim().to_ascii_lowercase()
}

/// Every entry, in file order.
pub fn all() -> &'static [Entry] {
    &CATALOGUE.entries
}

/// Finds an entry by code, bare number, alias or error value, ignoring ASCII
/// case and surrounding blanks: `AADSTS54005`, `aadsts54005`, `54005`,
/// `50148` (alias), `invalid_grant`, `AADB2C90088`, `bad_verification_code`.
pub fn lookup(key: &str) -> Option<&'static Entry> {
    let catalogue = &*CATALOGUE;
    catalogue
        .index
        .get(&normalise(key))
        .map(|&i| &catalogue.entries[i])
}

/// Every entry an error response gives evidence for, most specific first and
/// without duplicates:
/// 1. the numbers in `error_codes` and the `AADSTSnnn` / `AADB2Cnnn` codes in
///    `description` (legacy wrappers such as 70002 after the others);
/// 2. when the response carries no such number, the text matchers of
///    providers that answer in words (Okta, Auth0, Google, Keycloak), provided
///    their `error` value agrees with `error`;
/// 3. the `error` value itself: provider-scoped entries
///    (`github:redirect_uri_mismatch`, `google:redirect_uri_mismatch`), then
///    the generic one (`invalid_grant`).
///
/// Codes absent from the catalogue are skipped; callers that want to name them
/// can use [`scan_codes`] on the description.
pub fn lookup_error_response(
    error: Option<&str>,
    error_codes: &[u64],
    description: Option<&str>,
) -> Vec<&'static Entry> {
    fn push(found: &mut Vec<&'static Entry>, entry: &'static Entry) {
        if !found.iter().any(|e| std::ptr::eq(*e, entry)) {
            found.push(entry);
        }
    }
    let mut found: Vec<&'static Entry> = Vec::new();

    let described = description.map(scan_codes).unwrap_or_default();
    for number in error_codes {
        if let Some(entry) = lookup(&number.to_string()) {
            push(&mut found, entry);
        }
    }
    for code in &described {
        if let Some(entry) = lookup(code) {
            push(&mut found, entry);
        }
    }
    // Stable: keeps the order among specific codes and among wrappers.
    found.sort_by_key(|e| WRAPPER_CODES.contains(&e.code.as_str()));

    let numbered = !error_codes.is_empty() || !described.is_empty();
    if let (false, Some(description)) = (numbered, description) {
        let haystack = description.to_ascii_lowercase();
        for entry in all() {
            let error_agrees = match (error, &entry.error) {
                (Some(sent), Some(expected)) => sent.eq_ignore_ascii_case(expected),
                _ => true,
            };
            if error_agrees
                && entry
                    .matches
                    .iter()
                    .any(|m| haystack.contains(&m.to_ascii_lowercase()))
            {
                push(&mut found, entry);
            }
        }
    }

    if let Some(error) = error.map(str::trim).filter(|e| !e.is_empty()) {
        for entry in all() {
            if scoped_error(&entry.code).is_some_and(|s| s.eq_ignore_ascii_case(error)) {
                push(&mut found, entry);
            }
        }
        if let Some(entry) = all().iter().find(|e| e.code.eq_ignore_ascii_case(error)) {
            push(&mut found, entry);
        }
    }
    found
}

/// The numbers in an `error_codes` value, whatever its shape (`[70002, 54005]`
/// from JSON, `70002,54005` from a form or a query).
pub fn parse_error_numbers(text: &str) -> Vec<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// Every code an error response names: its `error_codes` numbers (as
/// `AADSTSn`), then codes written in the description, without duplicates;
/// wrapper codes such as 70002 ("error validating credentials") go last so
/// the specific cause comes first.
pub fn named_codes(numbers: &[u64], description: Option<&str>) -> Vec<String> {
    let mut codes: Vec<String> = numbers.iter().map(|n| format!("AADSTS{n}")).collect();
    for code in description.map(scan_codes).unwrap_or_default() {
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes.dedup();
    codes.sort_by_key(|c| WRAPPER_CODES.contains(&c.as_str()));
    codes
}

/// The `AADSTSnnn` and `AADB2Cnnn` codes written in a text, in order of
/// appearance, without duplicates, upper-cased (`AADSTS54005`). The prefix is
/// matched in any case; a prefix not followed by a digit is ignored.
pub fn scan_codes(text: &str) -> Vec<String> {
    // Entra numbers have at most 7 digits today; anything far longer is not a code.
    const MAX_DIGITS: usize = 10;
    let bytes = text.as_bytes();
    let mut codes: Vec<String> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let prefix = NUMBERED_PREFIXES.iter().find(|p| {
            bytes
                .get(i..i + p.len())
                .is_some_and(|window| window.eq_ignore_ascii_case(p.as_bytes()))
        });
        let Some(prefix) = prefix else {
            i += 1;
            continue;
        };
        let start = i + prefix.len();
        let end = start
            + bytes[start..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
        if end > start && end - start <= MAX_DIGITS {
            let code = format!("{}{}", prefix.to_ascii_uppercase(), &text[start..end]);
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        i = end.max(i + 1);
    }
    codes
}

/// Up to `n` known entries that look like `key`, best first, for an unknown
/// code: for numbers, the longest shared digit prefix then the smallest edit
/// distance, then the nearest number (same family first when `key` names
/// one); for words, the edit
/// distance to codes, aliases and error values (a containing name counts as
/// close). Entries too far from `key` are left out, so the list may be short.
pub fn closest(key: &str, n: usize) -> Vec<&'static Entry> {
    let key = normalise(key);
    if key.is_empty() || n == 0 {
        return Vec::new();
    }
    let (family, digits) = match split_numbered(&key) {
        Some((family, digits)) => (Some(family), Some(digits)),
        None if is_digits(&key) => (None, Some(key.as_str())),
        None => (None, None),
    };

    /// (other family, -shared prefix, edit distance, numeric gap): smaller is closer.
    type Score = (usize, usize, usize, u64);
    let mut scored: Vec<(Score, &'static Entry)> = Vec::new();
    for entry in all() {
        let best = names(entry)
            .filter_map(|name| {
                let name = name.to_ascii_lowercase();
                match digits {
                    Some(digits) => {
                        let (their_family, theirs) = split_numbered(&name)?;
                        let shared = common_prefix(digits, theirs);
                        let distance = edit_distance(digits, theirs);
                        if shared == 0 && distance > 2 {
                            return None;
                        }
                        let other_family = usize::from(family.is_some_and(|f| f != their_family));
                        // Last tie-break: numerically nearest (90089 -> 90088, not 90080).
                        let gap = match (digits.parse::<u64>(), theirs.parse::<u64>()) {
                            (Ok(a), Ok(b)) if digits.len() == theirs.len() => a.abs_diff(b),
                            _ => u64::MAX,
                        };
                        Some((other_family, usize::MAX - shared, distance, gap))
                    }
                    None => {
                        let word = short_form(&name).unwrap_or(&name).to_string();
                        let distance = if word.contains(&key) || key.contains(&word) {
                            1
                        } else {
                            edit_distance(&key, &word)
                        };
                        (distance <= (key.len() / 3).max(2)).then_some((0, 0, distance, 0))
                    }
                }
            })
            .min();
        if let Some(score) = best {
            scored.push((score, entry));
        }
    }
    scored.sort_by(|(a, ea), (b, eb)| a.cmp(b).then_with(|| ea.code.cmp(&eb.code)));
    scored.into_iter().take(n).map(|(_, e)| e).collect()
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        current[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(x != y);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_numbers_and_named_codes_put_the_specific_cause_first() {
        assert_eq!(parse_error_numbers("[70002, 54005]"), vec![70002, 54005]);
        assert_eq!(parse_error_numbers("70002,54005"), vec![70002, 54005]);
        assert!(parse_error_numbers("none").is_empty());
        assert_eq!(
            named_codes(
                &[70002, 54005],
                Some("AADSTS54005: already redeemed. AADB2C90088: other policy")
            ),
            vec!["AADSTS54005", "AADB2C90088", "AADSTS70002"]
        );
        assert!(named_codes(&[], None).is_empty());
    }

    use super::*;

    /// Every AADSTS number named in OAUTH.md section 5 (older numbers are aliases).
    const OAUTH_MD_AADSTS: &[u64] = &[
        54005, 70008, 70000, 9002313, 700005, 501481, 50148, 50147, 501491, 50149, 50011, 500112,
        500113, 900971, 70004, 90056, 900561, 900144, 90014, 7000218, 700025, 7000215, 7000222,
        700027, 50012, 70002, 700016, 70001, 7000112, 50194, 50059, 90002, 9001023, 90124, 90130,
        9002332, 901002, 70011, 28002, 28003, 700022, 700023, 65001, 9002326, 9002327, 70003,
        70005, 700054, 70007,
    ];
    /// Every AADB2C number named in OAUTH.md section 5.
    const OAUTH_MD_AADB2C: &[u64] = &[
        90079, 90080, 90081, 90083, 90084, 90086, 90087, 90088, 90090, 90117, 90006,
    ];
    const RFC_ERRORS: &[&str] = &[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
        "unsupported_response_type",
        "server_error",
        "temporarily_unavailable",
        "consent_required",
        "login_required",
        "interaction_required",
    ];
    const RULES: &[&str] = &[
        "token-without-authorize",
        "code-expired",
        "code-near-expiry",
        "code-reused",
        "endpoint-mismatch",
        "param-mismatch",
        "malformed-token-request",
        "pkce-mismatch",
        "pkce-missing-verifier",
        "pkce-unexpected-verifier",
        "pkce-invalid-verifier",
        "idp-error",
        "nonce-mismatch",
        "token-issuer-mismatch",
        "token-redacted",
        "body-not-analysed",
        "refresh-token-reused",
        "refresh-token-expired",
        "device-poll-too-fast",
    ];
    const PROVIDERS: &[&str] = &[
        "entra", "b2c", "rfc6749", "rfc8628", "rfc8693", "oidc", "rfc9126", "rfc9101", "okta",
        "auth0", "google", "keycloak", "github",
    ];

    fn codes(entries: &[&Entry]) -> Vec<String> {
        entries.iter().map(|e| e.code.clone()).collect()
    }

    #[test]
    fn schema_every_entry_is_complete() {
        assert!(all().len() >= 80, "only {} entries", all().len());
        for e in all() {
            assert!(!e.code.trim().is_empty());
            assert!(
                PROVIDERS.contains(&e.provider.as_str()),
                "{}: provider {}",
                e.code,
                e.provider
            );
            assert!(!e.meaning.trim().is_empty(), "{}: no meaning", e.code);
            assert!(!e.meaning.contains('\n'), "{}: meaning is one line", e.code);
            assert!(!e.causes.is_empty(), "{}: no cause", e.code);
            assert!(!e.fix.is_empty(), "{}: no fix", e.code);
            assert!(!e.rules.is_empty(), "{}: no rule", e.code);
            for text in e.causes.iter().chain(&e.fix).chain(&e.matches) {
                assert!(!text.trim().is_empty(), "{}: empty text", e.code);
            }
            for rule in &e.rules {
                assert!(
                    RULES.contains(&rule.as_str()),
                    "{}: unknown rule {rule}",
                    e.code
                );
            }
            if let Some(error) = &e.error {
                assert!(
                    error.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{}: error value {error}",
                    e.code
                );
            }
            match e.provider.as_str() {
                "entra" => assert!(e.code.starts_with("AADSTS"), "{}", e.code),
                "b2c" => assert!(e.code.starts_with("AADB2C"), "{}", e.code),
                "rfc6749" | "rfc8628" | "rfc8693" | "oidc" | "rfc9126" | "rfc9101" => {
                    assert_eq!(e.error.as_deref(), Some(e.code.as_str()))
                }
                provider => assert!(e.code.starts_with(&format!("{provider}:")), "{}", e.code),
            }
            if !e.cause_rules.is_empty() {
                assert_eq!(
                    e.cause_rules.len(),
                    e.causes.len(),
                    "{}: one cause_rules list per cause",
                    e.code
                );
                for rule in e.cause_rules.iter().flatten() {
                    assert!(
                        e.rules.contains(rule),
                        "{}: cause rule {rule} is not among the entry's rules",
                        e.code
                    );
                }
            }
            if e.code.matches(':').count() == 2 {
                assert!(
                    !e.matches.is_empty(),
                    "{}: text key without matchers",
                    e.code
                );
            }
        }
    }

    #[test]
    fn schema_names_are_unique() {
        let mut seen = HashMap::new();
        for e in all() {
            for name in names(e) {
                let previous = seen.insert(name.to_ascii_lowercase(), &e.code);
                assert!(
                    previous.is_none(),
                    "{name} used by {previous:?} and {}",
                    e.code
                );
            }
        }
        // A bare number must not name two entries: lookup("90080") is unambiguous.
        let mut numbers = HashMap::new();
        for e in all() {
            for name in names(e) {
                if let Some((_, digits)) = split_numbered(name) {
                    let previous = numbers.insert(digits.to_string(), &e.code);
                    assert!(previous.is_none(), "{digits}: {previous:?} and {}", e.code);
                }
            }
        }
    }

    #[test]
    fn every_oauth_md_code_is_present() {
        for n in OAUTH_MD_AADSTS {
            let e = lookup(&format!("AADSTS{n}")).unwrap_or_else(|| panic!("AADSTS{n} missing"));
            assert_eq!(e.provider, "entra");
        }
        for n in OAUTH_MD_AADB2C {
            let e = lookup(&format!("AADB2C{n}")).unwrap_or_else(|| panic!("AADB2C{n} missing"));
            assert_eq!(e.provider, "b2c");
        }
        for error in RFC_ERRORS {
            assert_eq!(lookup(error).map(|e| e.code.as_str()), Some(*error));
        }
        for key in [
            "github:bad_verification_code",
            "github:redirect_uri_mismatch",
            "github:incorrect_client_credentials",
            "google:redirect_uri_mismatch",
        ] {
            assert!(lookup(key).is_some(), "{key} missing");
        }
    }

    /// Every AADSTS number and error value named in OAUTH.md section 7 (the
    /// lifecycle beyond the code redemption).
    #[test]
    fn every_oauth_md_lifecycle_code_is_present() {
        for n in [
            700082u64, 70008, 70043, 50173, 700003, 700084, 70016, 70018, 70019, 90120, 1002012,
            7000215, 7000222, 7000218, 700027, 700024, 700016, 50049, 50013, 500133, 500131, 65001,
        ] {
            let e = lookup(&format!("AADSTS{n}")).unwrap_or_else(|| panic!("AADSTS{n} missing"));
            assert_eq!(e.provider, "entra");
        }
        for error in [
            "authorization_pending",
            "slow_down",
            "expired_token",
            "access_denied",
            "authorization_declined",
            "invalid_target",
        ] {
            assert_eq!(lookup(error).map(|e| e.code.as_str()), Some(error));
        }
        // Refresh reuse as other providers word it.
        for (error, description, rule) in [
            (
                "invalid_grant",
                "Unknown or invalid refresh token.",
                "auth0:invalid_grant:refresh",
            ),
            (
                "invalid_grant",
                "The refresh token is invalid or expired.",
                "okta:invalid_grant:refresh",
            ),
            (
                "invalid_grant",
                "Maximum allowed refresh token reuse exceeded",
                "keycloak:invalid_grant:refresh_reuse",
            ),
        ] {
            let found = lookup_error_response(Some(error), &[], Some(description));
            assert_eq!(
                found.first().map(|e| e.code.as_str()),
                Some(rule),
                "{description}"
            );
            assert!(found[0].rules.iter().any(|r| r == "refresh-token-reused"));
        }
    }

    #[test]
    fn lookup_by_number_prefix_case_and_alias() {
        let e = lookup("AADSTS54005").unwrap();
        assert_eq!(e.code, "AADSTS54005");
        assert_eq!(e.error.as_deref(), Some("invalid_grant"));
        assert_eq!(e.rules, ["code-reused"]);
        for key in ["aadsts54005", "54005", " AADSTS54005: ", "AadSts54005"] {
            assert!(std::ptr::eq(lookup(key).unwrap(), e), "{key}");
        }
        assert_eq!(lookup("90056").unwrap().code, "AADSTS90056");
        assert_eq!(lookup("AADB2C90088").unwrap().code, "AADB2C90088");
        assert_eq!(lookup("aadb2c90088").unwrap().code, "AADB2C90088");
        assert_eq!(lookup("90088").unwrap().code, "AADB2C90088");
        // Aliases: older numbers.
        assert_eq!(lookup("50148").unwrap().code, "AADSTS501481");
        assert_eq!(lookup("AADSTS50148").unwrap().code, "AADSTS501481");
        assert_eq!(lookup("90014").unwrap().code, "AADSTS900144");
        // Error values and scoped short forms.
        assert_eq!(lookup("INVALID_GRANT").unwrap().code, "invalid_grant");
        assert_eq!(
            lookup("bad_verification_code").unwrap().code,
            "github:bad_verification_code"
        );
        assert_eq!(
            lookup("Okta:Invalid_Grant:Expired").unwrap().provider,
            "okta"
        );
        // A family prefix is not interchangeable.
        assert!(lookup("AADB2C54005").is_none());
    }

    #[test]
    fn unknown_codes_give_none_and_suggestions() {
        for key in [
            "AADSTS54006",
            "54006",
            "invalid_grnt",
            "AADB2C90089",
            "",
            "   ",
            "AADSTS",
        ] {
            assert!(lookup(key).is_none(), "{key}");
        }
        assert_eq!(closest("AADSTS54006", 3)[0].code, "AADSTS54005");
        assert_eq!(closest("5400", 1)[0].code, "AADSTS54005");
        assert_eq!(closest("AADB2C90089", 1)[0].code, "AADB2C90088");
        assert_eq!(closest("AADSTS7000216", 2)[0].code, "AADSTS7000215");
        assert_eq!(closest("invalid_grnt", 1)[0].code, "invalid_grant");
        assert_eq!(
            closest("bad_verification", 1)[0].code,
            "github:bad_verification_code"
        );
        assert_eq!(closest("AADSTS54006", 3).len(), 3);
        assert!(closest("AADSTS54006", 0).is_empty());
        assert!(closest("zzzzzzzzzzzz", 5).is_empty());
        assert!(closest("", 5).is_empty());
    }

    #[test]
    fn error_response_from_entra_json() {
        let body = serde_json::json!({
            "error": "invalid_grant",
            "error_description": "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2024-01-01 10:02:11Z",
            "error_codes": [70002, 54005],
            "timestamp": "2024-01-01 10:02:11Z",
            "trace_id": "0000aaaa-11bb-cccc-dd22-eeeeee333333",
            "correlation_id": "aaaa0000-bb11-2222-33cc-444444dddddd",
            "error_uri": "https://login.microsoftonline.com/error?code=54005"
        });
        let error_codes: Vec<u64> = body["error_codes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_u64())
            .collect();
        let found = lookup_error_response(
            body["error"].as_str(),
            &error_codes,
            body["error_description"].as_str(),
        );
        assert_eq!(
            codes(&found),
            ["AADSTS54005", "AADSTS70002", "invalid_grant"]
        );
    }

    #[test]
    fn error_response_description_only_and_unknown_numbers() {
        let found = lookup_error_response(
            Some("invalid_request"),
            &[],
            Some(
                "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
            ),
        );
        assert_eq!(codes(&found), ["AADSTS900144", "invalid_request"]);
        // An unknown number is skipped but still suppresses text matchers.
        let found = lookup_error_response(Some("invalid_grant"), &[1234567], Some("Bad Request"));
        assert_eq!(codes(&found), ["invalid_grant"]);
        assert!(lookup_error_response(None, &[], None).is_empty());
    }

    #[test]
    fn error_response_b2c_description() {
        let found = lookup_error_response(
            Some("invalid_grant"),
            &[],
            Some(
                "AADB2C90088: The provided grant has not been issued for this endpoint. Actual Value : B2C_1_signin and Expected Value : B2C_1_signup\r\nCorrelation ID: 1c2b3a4d\r\nTimestamp: 2024-01-01 10:00:00Z\r\n",
            ),
        );
        assert_eq!(codes(&found), ["AADB2C90088", "invalid_grant"]);
        assert_eq!(found[0].rules, ["endpoint-mismatch"]);
    }

    #[test]
    fn error_response_github_form_encoded() {
        let body = "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com%2Fapps%2Ftroubleshooting";
        let form: HashMap<String, String> = serde_urlencoded::from_str(body).unwrap();
        let found = lookup_error_response(
            form.get("error").map(String::as_str),
            &[],
            form.get("error_description").map(String::as_str),
        );
        assert_eq!(codes(&found), ["github:bad_verification_code"]);

        let found = lookup_error_response(Some("redirect_uri_mismatch"), &[], None);
        assert_eq!(
            codes(&found),
            [
                "google:redirect_uri_mismatch",
                "github:redirect_uri_mismatch"
            ]
        );
    }

    #[test]
    fn error_response_provider_texts() {
        let cases = [
            (
                "The authorization code is invalid or has expired.",
                "okta:invalid_grant:expired",
            ),
            ("PKCE verification failed.", "okta:invalid_grant:pkce"),
            ("Invalid authorization code", "auth0:invalid_grant:code"),
            ("Bad Request", "google:invalid_grant:bad_request"),
            (
                "Code was already redeemed.",
                "google:invalid_grant:redeemed",
            ),
            ("Malformed auth code.", "google:invalid_grant:malformed"),
            ("Invalid code verifier.", "google:invalid_grant:verifier"),
            ("Code not valid", "keycloak:invalid_grant:code_not_valid"),
            ("Code is expired", "keycloak:invalid_grant:code_expired"),
            (
                "Incorrect redirect_uri",
                "keycloak:invalid_grant:redirect_uri",
            ),
            (
                "PKCE verification failed: Code mismatch",
                "keycloak:invalid_grant:pkce_mismatch",
            ),
            (
                "PKCE code verifier not specified",
                "keycloak:invalid_grant:pkce_missing",
            ),
        ];
        for (text, code) in cases {
            let found = lookup_error_response(Some("invalid_grant"), &[], Some(text));
            assert_eq!(codes(&found), [code, "invalid_grant"], "{text}");
        }
        // A text matcher needs the error value to agree.
        let found = lookup_error_response(Some("invalid_request"), &[], Some("Code not valid"));
        assert_eq!(codes(&found), ["invalid_request"]);
        // Entra's own wording never triggers another provider's matcher.
        let found = lookup_error_response(
            Some("invalid_grant"),
            &[54005],
            Some("AADSTS54005: OAuth2 Authorization code was already redeemed."),
        );
        assert_eq!(codes(&found), ["AADSTS54005", "invalid_grant"]);
    }

    #[test]
    fn scanner_finds_codes_in_any_case_once() {
        assert_eq!(
            scan_codes(
                "aadsts70002: Error validating credentials. AADSTS54005: again AADSTS54005, AADB2C90080"
            ),
            ["AADSTS70002", "AADSTS54005", "AADB2C90080"]
        );
        assert!(scan_codes("AADSTS: no number, AADB2Cx, AADSTS12345678901234").is_empty());
        assert_eq!(scan_codes("xAADSTSAADSTS50011é"), ["AADSTS50011"]);
        assert!(scan_codes("").is_empty());
    }

    #[test]
    fn rules_named_by_entries_are_the_analyzer_s_rules() {
        use crate::oauth::event::Rule;
        for e in all() {
            for rule in &e.rules {
                assert!(Rule::from_id(rule).is_some(), "{}: {rule}", e.code);
            }
        }
        // The list above mirrors the analyzer's rules exactly.
        let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids, RULES);
    }

    #[test]
    fn edit_distance_basics() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("54005", "54005"), 0);
    }
}
