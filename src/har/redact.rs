//! Redaction for `--har`: secrets in a recorded exchange become the same
//! fingerprints the live log shows (`code#3fa2c1`), so pairing stays visible
//! in the file and a re-analysis reads the same values.
//!
//! Two layers, neither trusting the declared content type. First,
//! structure: parameters of queries, fragments and form bodies, members of
//! JSON bodies, parts of multipart bodies, the hidden inputs of a form_post
//! page, `Location`/`Referer` URLs, credential headers and headers named
//! like secrets (`X-Api-Key`, `Ocp-Apim-Subscription-Key`, `X-Auth-Token`,
//! `DPoP`, …) are rewritten by name; a body is read as JSON, a form or
//! multipart when it looks like one, whatever its `Content-Type` says, and
//! any other text is searched for `name=value`, `name: value`,
//! `"name":"value"` and `<name>value</name>` with a secret's name. Then, a
//! net ([`net`]): every secret value learnt so far in the session is
//! replaced wherever else it shows up (a later `Referer`, a page quoting it,
//! a binary body), raw, percent-encoded, JSON- or HTML-escaped, in one pass
//! however many secrets are known. Nothing here writes files.
//!
//! A token that is a signed JWT (an id_token, a JWT access token, a client
//! assertion) is not reduced to its fingerprint: the nonce and issuer checks
//! need some of its claims. It becomes `header.claims.` (see
//! [`crate::oauth::jwt::redact`]):
//!
//! - the signature is removed (the third part is empty), so the token is no
//!   longer a credential anywhere;
//! - the header keeps only `alg`, `kid` and `typ`;
//! - the claims keep only `iss`, `aud`, `tid`, `nonce`, `exp`, `iat`, `nbf`,
//!   `azp` and `ver`; every other claim is removed, in particular all that
//!   name a person (`sub`, `oid`, `upn`, `email`, `name`,
//!   `preferred_username`, `unique_name`, roles, groups, custom claims);
//! - a marker claim, `"authlens_redacted": "id_token#e119ca"`, holds the
//!   fingerprint of the original token, so the same token is followed from
//!   one leg to the next and `authlens analyze` shows the fingerprint the
//!   live log showed, and says the signature was removed by redaction.
//!
//! An opaque token (or one that cannot be read as a JWT) keeps being
//! replaced by its fingerprint.

mod net;

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use self::net::{Net, Replacement};
use crate::oauth::jwt;
use crate::oauth::params::encode_component;
use crate::oauth::params::{Params, decode_component};
use crate::oauth::secret::{SECRET_NAMES, fingerprint, is_fingerprint, secret_kind};

/// Secret kinds whose values are often JWTs: those are redacted to their
/// claims subset ([`jwt::redact`]) rather than to a fingerprint.
const TOKEN_KINDS: [&str; 7] = [
    "id_token",
    "access_token",
    "refresh_token",
    "client_assertion",
    "assertion",
    "subject_token",
    "token",
];

/// Values shorter than this are not hunted down across texts (too likely to
/// match innocent text); they are still redacted where their name is seen.
const MIN_NET_LEN: usize = 8;
/// How many secret values the net remembers (the oldest are forgotten): a
/// long session's worth (a sign-in teaches it five or six), in a few MiB.
const MAX_KNOWN: usize = 16_384;
/// A value found by name in free text is taken for a secret from this
/// length on (`code: 0` in a script is not one).
const MIN_SNIFFED_LEN: usize = 4;

/// Redacts the texts of exchanges, remembering secrets across them.
#[derive(Debug)]
pub struct Redactor {
    net: Net,
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::new()
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor {
            net: Net::with_cap(MAX_KNOWN),
        }
    }

    /// The fingerprint standing for `value`, remembered for the net.
    fn learn(&mut self, kind: &str, value: &str) -> String {
        if value.is_empty() || is_fingerprint(kind, value) || is_redacted(value) {
            return value.to_owned();
        }
        if let Some(known) = self.net.get(value) {
            return known.raw.clone();
        }
        let print = fingerprint(kind, value);
        self.remember(value, &print);
        print
    }

    /// What stands for a secret of `kind`: a JWT of a [`TOKEN_KINDS`] kind
    /// becomes its redacted form, anything else its fingerprint.
    fn learn_value(&mut self, kind: &str, value: &str) -> String {
        if !TOKEN_KINDS.contains(&kind) || is_redacted(value) || self.net.get(value).is_some() {
            return self.learn(kind, value);
        }
        match jwt::redact(value, &fingerprint(kind, value)) {
            Some(redacted) => {
                self.remember(value, &redacted);
                redacted
            }
            None => self.learn(kind, value),
        }
    }

    /// Lets the net replace `value` with `replacement` from now on.
    fn remember(&mut self, value: &str, replacement: &str) {
        if value.len() < MIN_NET_LEN {
            return;
        }
        let replacement = Replacement {
            raw: replacement.to_owned(),
            percent: encode_component(replacement),
        };
        self.net.insert(value, replacement, &forms(value));
    }

    /// A URL with secret query and fragment parameters redacted.
    pub fn url(&mut self, url: &str) -> String {
        let (before, fragment) = match url.split_once('#') {
            Some((b, f)) => (b, Some(f)),
            None => (url, None),
        };
        let mut out = match before.split_once('?') {
            Some((path, query)) => format!("{path}?{}", self.pairs(query)),
            None => before.to_owned(),
        };
        if let Some(fragment) = fragment {
            out.push('#');
            out.push_str(&self.pairs(fragment));
        }
        out
    }

    /// `a=1&code=…` with secret values replaced, everything else as sent.
    pub fn pairs(&mut self, raw: &str) -> String {
        let params = Params::parse(raw);
        // With plain PKCE (or no method) the challenge *is* the verifier.
        let plain_challenge = params.get("code_challenge").is_some()
            && params
                .get("code_challenge_method")
                .is_none_or(|m| m.eq_ignore_ascii_case("plain"));
        raw.split('&')
            .map(|piece| {
                let Some((name, value)) = piece.split_once('=') else {
                    return piece.to_owned();
                };
                let decoded_name = decode_component(name);
                let kind = match param_kind(&decoded_name) {
                    Some(kind) => kind,
                    None if plain_challenge && decoded_name == "code_challenge" => {
                        "code_verifier".to_owned()
                    }
                    // A URL in a parameter (a `redirect_uri`, a `return_to`)
                    // can carry secrets of its own.
                    None => return format!("{name}={}", self.sniff(value)),
                };
                let print = self.learn_value(&kind, &decode_component(value));
                format!("{name}={}", encode_component(&print))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A header value with credentials redacted.
    pub fn header(&mut self, name: &str, value: &str) -> String {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "authorization" | "proxy-authorization" => self.authorization(value),
            "cookie" => value
                .split(';')
                .map(|c| self.cookie_pair(c.trim()))
                .collect::<Vec<_>>()
                .join("; "),
            "set-cookie" => {
                let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
                let pair = self.cookie_pair(pair.trim());
                if attributes.is_empty() {
                    pair
                } else {
                    format!("{pair};{attributes}")
                }
            }
            "location" | "referer" | "content-location" | "origin" => self.url(value),
            _ if is_secret_header(&name) => self.learn(&name, value.trim()),
            _ => self.sniff(value),
        }
    }

    fn cookie_pair(&mut self, pair: &str) -> String {
        match pair.split_once('=') {
            Some((name, value)) if !value.is_empty() => {
                format!("{name}={}", self.learn("cookie", value))
            }
            _ => pair.to_owned(),
        }
    }

    /// `Basic` keeps the client id readable (the analysis needs it) and
    /// replaces the secret; `Bearer` and `DPoP` show the token's
    /// fingerprint; any other scheme keeps its name.
    fn authorization(&mut self, value: &str) -> String {
        let trimmed = value.trim();
        let (scheme, credentials) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        let credentials = credentials.trim();
        if scheme.eq_ignore_ascii_case("basic")
            && let Ok(decoded) = STANDARD.decode(credentials)
            && let Ok(decoded) = String::from_utf8(decoded)
        {
            let (id, secret) = decoded.split_once(':').unwrap_or((&decoded, ""));
            let print = self.learn("client_secret", &decode_component(secret));
            self.learn("authorization", credentials);
            let rebuilt = format!("{id}:{}", encode_component(&print));
            return format!("{scheme} {}", STANDARD.encode(rebuilt));
        }
        if credentials.is_empty() {
            return self.learn("authorization", trimmed);
        }
        let kind = if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop") {
            "access_token"
        } else {
            "authorization"
        };
        format!("{scheme} {}", self.learn_value(kind, credentials))
    }

    /// A body (already decoded) with secrets redacted: JSON, a form or
    /// multipart when it looks like one, whatever `content_type` says; any
    /// other text is searched for secrets by name.
    pub fn body(&mut self, content_type: Option<&str>, text: &str) -> String {
        let ct = content_type.unwrap_or_default().to_ascii_lowercase();
        let start = text.trim_start();
        if (start.starts_with('{') || start.starts_with('[') || ct.contains("json"))
            && let Ok(mut value) = serde_json::from_str::<Value>(text)
        {
            self.json(&mut value);
            return value.to_string();
        }
        if let Some(boundary) = multipart_boundary(&ct, text) {
            return self.multipart(text, &boundary);
        }
        if ct.starts_with("application/x-www-form-urlencoded") || looks_like_form(text) {
            return self.pairs(text);
        }
        if (start.starts_with('<') || ct.contains("html")) && FORM_TAG.is_match(text) {
            // form_post: learn the hidden inputs; the net replaces them.
            if let Some(form) = crate::oauth::form_post::parse_form(text) {
                for field in form.fields.iter() {
                    if let Some(kind) = param_kind(&field.name) {
                        self.learn_value(&kind, &field.value);
                    }
                }
            }
        }
        self.sniff(text)
    }

    /// A multipart body with each part redacted: a part named like a
    /// secret becomes its fingerprint, any other part is read as a body of
    /// its own. Everything else (boundaries, part headers) is kept as sent.
    fn multipart(&mut self, text: &str, boundary: &str) -> String {
        let delimiter = format!("--{boundary}");
        let mut pieces = text.split(delimiter.as_str());
        let mut out = pieces.next().unwrap_or_default().to_owned();
        for piece in pieces {
            out.push_str(&delimiter);
            out.push_str(&self.part(piece));
        }
        out
    }

    /// One part as it follows its delimiter: `\r\n` headers, an empty
    /// line, the content, `\r\n` (or `--` and the epilogue for the last).
    fn part(&mut self, piece: &str) -> String {
        let Some((head, rest)) = piece
            .split_once("\r\n\r\n")
            .map(|(h, r)| (h, r, "\r\n\r\n"))
            .or_else(|| piece.split_once("\n\n").map(|(h, r)| (h, r, "\n\n")))
            .map(|(h, r, sep)| (format!("{h}{sep}"), r))
        else {
            return piece.to_owned();
        };
        let (content, tail) = match rest.strip_suffix("\r\n") {
            Some(content) => (content, "\r\n"),
            None => match rest.strip_suffix('\n') {
                Some(content) => (content, "\n"),
                None => (rest, ""),
            },
        };
        let mut name = None;
        let mut content_type = None;
        for line in head.lines() {
            let Some((field, value)) = line.split_once(':') else {
                continue;
            };
            if field.trim().eq_ignore_ascii_case("content-disposition") {
                name = disposition_name(value);
            } else if field.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(value.trim().to_owned());
            }
        }
        let content = match name.as_deref().and_then(param_kind) {
            Some(kind) => self.learn_value(&kind, content),
            None => self.body(content_type.as_deref(), content),
        };
        format!("{head}{content}{tail}")
    }

    /// The fingerprint standing for `value` (a secret of this kind), which
    /// the net then also replaces everywhere else.
    pub fn secret(&mut self, kind: &str, value: &str) -> String {
        self.learn(kind, value)
    }

    /// Redacts the members of a JSON value named like secrets, at any depth;
    /// other strings are searched for secrets by name (a URL with a code).
    pub fn json(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match (param_kind(key), &*v) {
                        (Some(kind), Value::String(s)) => {
                            let print = self.learn_value(&kind, s);
                            *v = Value::String(print);
                        }
                        _ => self.json(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Value::String(s) => {
                let sniffed = self.sniff(s);
                if sniffed != *s {
                    *s = sniffed;
                }
            }
            _ => {}
        }
    }

    /// Free text with every `name=value`, `name: value`, `"name":"value"`
    /// or `<name>value` whose name is a secret's replaced by its fingerprint.
    fn sniff(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::new();
        let mut copied = 0;
        let mut after = 0;
        for hint in NAME_HINTS.find_iter(text) {
            if hint.start() < after {
                continue;
            }
            let mut start = hint.start();
            while start > 0 && is_name_byte(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = hint.end();
            while end < bytes.len() && is_name_byte(bytes[end]) {
                end += 1;
            }
            after = end;
            let Some(kind) = param_kind(&text[start..end]) else {
                continue;
            };
            let opened_tag = start > 0 && bytes[start - 1] == b'<';
            let Some(value) = value_after(bytes, end, opened_tag) else {
                continue;
            };
            let raw = &text[value.clone()];
            if !plausible(raw) {
                continue;
            }
            let print = if raw.contains('%') {
                encode_component(&self.learn_value(&kind, &decode_component(raw)))
            } else {
                self.learn_value(&kind, raw)
            };
            out.push_str(&text[copied..value.start]);
            out.push_str(&print);
            copied = value.end;
            after = value.end;
        }
        if copied == 0 {
            return text.to_owned();
        }
        out.push_str(&text[copied..]);
        out
    }

    /// `text` with every remembered secret replaced by its fingerprint, in
    /// every encoding it could appear in.
    pub fn net(&mut self, text: &str) -> String {
        if self.net.is_empty() || text.len() < MIN_NET_LEN {
            return text.to_owned();
        }
        self.net.compile();
        self.net.replace(text).unwrap_or_else(|| text.to_owned())
    }

    /// Runs the net over every string of a JSON value (a HAR entry).
    pub fn net_value(&mut self, value: &mut Value) {
        if self.net.is_empty() {
            return;
        }
        self.net.compile();
        net_strings(&self.net, value);
    }

    /// Bytes that are not text (a binary body) with every remembered
    /// secret replaced.
    pub fn net_bytes(&mut self, bytes: Vec<u8>) -> Vec<u8> {
        if self.net.is_empty() {
            return bytes;
        }
        self.net.compile();
        self.net.replace_bytes(&bytes).unwrap_or(bytes)
    }
}

fn net_strings(net: &Net, value: &mut Value) {
    match value {
        Value::String(s) => {
            if s.len() >= MIN_NET_LEN
                && let Some(cleaned) = net.replace(s)
            {
                *s = cleaned;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| net_strings(net, v)),
        Value::Object(map) => map.values_mut().for_each(|v| net_strings(net, v)),
        _ => {}
    }
}

/// True for a JWT authlens already redacted: it holds no secret.
fn is_redacted(value: &str) -> bool {
    jwt::redacted_fingerprint(value).is_some()
}

/// The secret kind of a parameter, JSON member, form field or multipart
/// part: the names of [`SECRET_NAMES`] in any case and with `_`, `-` or
/// camelCase (`accessToken`, `Client-Secret`), `id_token_hint`, and names
/// that say they hold a key, a secret, a password or a token (`api_key`,
/// `x-api-key`, `csrf_token`, `sessionToken`). `token_type` and
/// `*_endpoint` are not secrets.
pub fn param_kind(name: &str) -> Option<String> {
    if let Some(kind) = secret_kind(name) {
        return Some(kind.to_owned());
    }
    let squashed: String = name
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if let Some(kind) = SECRET_NAMES
        .iter()
        .find(|n| n.bytes().filter(|b| *b != b'_').eq(squashed.bytes()))
    {
        return Some((*kind).to_owned());
    }
    if squashed == "idtokenhint" {
        return Some("id_token".to_owned());
    }
    let secret = squashed.ends_with("token")
        || squashed.ends_with("secret")
        || squashed.contains("password")
        || squashed.contains("passwd")
        || squashed.contains("apikey")
        || squashed.ends_with("subscriptionkey")
        || squashed.ends_with("accesskey")
        || squashed.ends_with("privatekey")
        || squashed.ends_with("sessionid")
        || squashed.ends_with("sessionkey")
        || squashed == "key"
        || squashed == "sig";
    secret.then(|| name.to_ascii_lowercase())
}

/// Header names (lower case) whose whole value is a credential: named
/// like one (`X-Api-Key`, `X-Client-Secret`, `Ocp-Apim-Subscription-Key`,
/// `X-Auth-Token`, `DPoP`, `X-Session-Id`, `X-CSRF-Token`). The challenge
/// headers and the WebSocket handshake's nonces are not.
fn is_secret_header(name: &str) -> bool {
    const PARTS: [&str; 12] = [
        "auth",
        "token",
        "secret",
        "key",
        "password",
        "passwd",
        "session",
        "cookie",
        "csrf",
        "xsrf",
        "dpop",
        "credential",
    ];
    const NOT: [&str; 4] = [
        "www-authenticate",
        "proxy-authenticate",
        "sec-websocket-key",
        "sec-websocket-accept",
    ];
    PARTS.iter().any(|p| name.contains(p))
        && !NOT.contains(&name)
        && !name.starts_with("access-control-")
}

/// Words whose presence in a name may make it a secret's name (see
/// [`param_kind`]), found in one pass over a text.
static NAME_HINTS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "code",
            "secret",
            "token",
            "password",
            "passwd",
            "assertion",
            "key",
            "session",
            "sig",
        ])
        .unwrap_or_else(|e| unreachable!("nine short literals: {e}"))
});

/// A page with a form (the only pages whose inputs are read).
static FORM_TAG: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(["<form"])
        .unwrap_or_else(|e| unreachable!("one short literal: {e}"))
});

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Where the value after a name ends at `at` lies: past a closing quote
/// (`"`, `'`, `\"`), spaces, `=` or `:` (or `>` after `<name`), spaces and
/// an opening quote, up to a quote, a space, `&`, `,`, `;`, `<`, `}`, `)`
/// or a backslash.
fn value_after(bytes: &[u8], at: usize, opened_tag: bool) -> Option<std::ops::Range<usize>> {
    let mut i = at;
    let skip_quote = |i: &mut usize| {
        if bytes.get(*i) == Some(&b'\\') && matches!(bytes.get(*i + 1), Some(b'"' | b'\'')) {
            *i += 2;
        } else if matches!(bytes.get(*i), Some(b'"' | b'\'')) {
            *i += 1;
        }
    };
    let skip_spaces = |i: &mut usize| {
        while matches!(bytes.get(*i), Some(b' ' | b'\t')) {
            *i += 1;
        }
    };
    skip_quote(&mut i);
    skip_spaces(&mut i);
    match bytes.get(i) {
        Some(b'=' | b':') => i += 1,
        Some(b'>') if opened_tag => i += 1,
        _ => return None,
    }
    skip_spaces(&mut i);
    skip_quote(&mut i);
    let start = i;
    while i < bytes.len()
        && !matches!(
            bytes[i],
            b'"' | b'\''
                | b' '
                | b'\t'
                | b'\r'
                | b'\n'
                | b'&'
                | b','
                | b';'
                | b'<'
                | b'>'
                | b'}'
                | b')'
                | b'\\'
        )
    {
        i += 1;
    }
    (i > start).then_some(start..i)
}

/// A value found by name in free text worth taking for a secret: not a
/// number, a literal or a word too short to be one.
fn plausible(value: &str) -> bool {
    value.len() >= MIN_SNIFFED_LEN
        && !value.bytes().all(|b| b.is_ascii_digit())
        && !["null", "true", "false", "undefined", "none"]
            .iter()
            .any(|l| value.eq_ignore_ascii_case(l))
}

/// True for text that reads as `a=1&b=2` (a form, whatever its declared
/// type): one line, no spaces, every piece a name and a value.
fn looks_like_form(text: &str) -> bool {
    let text = text.trim_end_matches(['\r', '\n']);
    !text.is_empty()
        && text.contains('=')
        && !text.contains(|c: char| c.is_whitespace() || c == '<' || c == '{' || c == '"')
        && text.split('&').all(|piece| {
            let name = piece.split_once('=').map_or(piece, |(n, _)| n);
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.[]%+*~:".contains(&b))
        })
}

/// The boundary of a multipart body: from its `Content-Type`, or, when
/// that says something else, from a first line `--boundary` followed by a
/// part's `Content-Disposition`.
fn multipart_boundary(content_type: &str, text: &str) -> Option<String> {
    if content_type.starts_with("multipart/")
        && let Some(at) = content_type.find("boundary=")
    {
        let boundary = content_type[at + "boundary=".len()..]
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"');
        // The header was lower-cased: find the boundary as the body spells it.
        let first = text.lines().next().unwrap_or_default().trim_end();
        if let Some(sent) = first.strip_prefix("--")
            && sent.eq_ignore_ascii_case(boundary)
        {
            return Some(sent.to_owned());
        }
        let lower = text.to_ascii_lowercase();
        if let Some(i) = lower.find(&format!("--{boundary}")) {
            return Some(text[i + 2..i + 2 + boundary.len()].to_owned());
        }
    }
    let first = text.lines().next()?.trim_end();
    let boundary = first.strip_prefix("--")?;
    let valid = (1..=70).contains(&boundary.len())
        && boundary
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"'()+_,-./:=?".contains(&b));
    let rest = text[first.len()..].trim_start_matches(['\r', '\n']);
    let head = rest.get(..rest.len().min(1024))?.to_ascii_lowercase();
    (valid && head.contains("content-disposition")).then(|| boundary.to_owned())
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"`.
fn disposition_name(value: &str) -> Option<String> {
    value.split(';').find_map(|param| {
        let (key, v) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("name")
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The forms a secret takes in URLs, forms, JSON and HTML, each with
/// whether it is percent-encoded (and so replaced by the percent-encoded
/// fingerprint).
fn forms(secret: &str) -> Vec<(String, bool)> {
    let json = {
        let quoted = Value::String(secret.to_owned()).to_string();
        quoted[1..quoted.len() - 1].to_owned()
    };
    let html = crate::output::escape::html_escape(secret);
    let percent = encode_component(secret);
    let form = percent.replace("%20", "+");
    let slash_escaped = json.replace('/', "\\/");
    vec![
        (secret.to_owned(), false),
        (percent, true),
        (form, true),
        (json, false),
        (slash_escaped, false),
        (html, false),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_fragment_secrets_become_fingerprints() {
        let mut r = Redactor::new();
        let url = r.url("https://app/cb?code=0.AXYZ%2Fabc&state=s1#access_token=tok-1234567&x=1");
        assert_eq!(
            url,
            format!(
                "https://app/cb?code={}&state=s1#access_token={}&x=1",
                encode_component(&fingerprint("code", "0.AXYZ/abc")),
                encode_component(&fingerprint("access_token", "tok-1234567"))
            )
        );
        assert!(url.contains("code%23"), "{url}");
    }

    #[test]
    fn plain_pkce_challenge_is_the_verifier_and_s256_is_not_secret() {
        let mut r = Redactor::new();
        let plain = r.pairs("code_challenge=verifier-verifier&response_type=code");
        assert_eq!(
            plain,
            format!(
                "code_challenge={}&response_type=code",
                encode_component(&fingerprint("code_verifier", "verifier-verifier"))
            )
        );
        let s256 = r.pairs("code_challenge=E9Mel&code_challenge_method=S256");
        assert_eq!(s256, "code_challenge=E9Mel&code_challenge_method=S256");
        // The verifier sent later gets the same fingerprint as the challenge.
        let token = r.pairs("code_verifier=verifier-verifier");
        assert!(token.contains(&encode_component(&fingerprint(
            "code_verifier",
            "verifier-verifier"
        ))));
    }

    #[test]
    fn basic_keeps_the_client_id_and_hides_the_secret() {
        let mut r = Redactor::new();
        let header = format!("Basic {}", STANDARD.encode("my-client:s3cr%2Bet!"));
        let out = r.header("Authorization", &header);
        let decoded = String::from_utf8(STANDARD.decode(&out[6..]).unwrap()).unwrap();
        let (id, secret) = decoded.split_once(':').unwrap();
        assert_eq!(id, "my-client");
        assert_eq!(
            decode_component(secret),
            fingerprint("client_secret", "s3cr+et!")
        );
        assert_eq!(
            r.header("authorization", "Bearer eyJ.abc.def"),
            format!("Bearer {}", fingerprint("access_token", "eyJ.abc.def"))
        );
    }

    #[test]
    fn cookies_keep_names_and_attributes() {
        let mut r = Redactor::new();
        assert_eq!(
            r.header("Cookie", "a=1; session=xyz"),
            format!(
                "a={}; session={}",
                fingerprint("cookie", "1"),
                fingerprint("cookie", "xyz")
            )
        );
        assert_eq!(
            r.header("Set-Cookie", "pkce=abcdefgh; Path=/; HttpOnly"),
            format!(
                "pkce={}; Path=/; HttpOnly",
                fingerprint("cookie", "abcdefgh")
            )
        );
    }

    #[test]
    fn json_and_form_bodies_are_redacted_by_name() {
        let mut r = Redactor::new();
        let json = r.body(
            Some("application/json; charset=utf-8"),
            r#"{"token_type":"Bearer","access_token":"at-123456789","nested":{"refresh_token":"rt-123456789"}}"#,
        );
        assert!(
            !json.contains("at-123456789") && !json.contains("rt-123456789"),
            "{json}"
        );
        assert!(json.contains(&fingerprint("access_token", "at-123456789")));
        assert!(json.contains("\"token_type\":\"Bearer\""));
        let form = r.body(
            Some("application/x-www-form-urlencoded"),
            "grant_type=authorization_code&client_secret=web-secret&redirect_uri=https%3A%2F%2Fapp%2Fcb",
        );
        assert_eq!(
            form,
            format!(
                "grant_type=authorization_code&client_secret={}&redirect_uri=https%3A%2F%2Fapp%2Fcb",
                encode_component(&fingerprint("client_secret", "web-secret"))
            )
        );
    }

    #[test]
    fn the_net_catches_form_post_inputs_and_later_reappearances() {
        let mut r = Redactor::new();
        let html = r#"<html><body><form method="POST" action="https://app/cb"><input type="hidden" name="code" value="0.ABC-def_ghi"/><input name="state" value="s"/></form></body></html>"#;
        let body = r.body(Some("text/html"), html);
        let body = r.net(&body);
        assert!(!body.contains("0.ABC-def_ghi"), "{body}");
        assert!(body.contains(&fingerprint("code", "0.ABC-def_ghi")));
        assert!(body.contains("value=\"s\""));
        // The same code later, percent-encoded in a Referer and JSON-escaped.
        let later = r.net("ref https://app/cb?x=0.ABC-def_ghi and \"0.ABC-def_ghi\"");
        assert!(!later.contains("0.ABC-def_ghi"), "{later}");
        let mut r = Redactor::new();
        r.pairs("client_secret=a%2Fb%20c%2Bsecret");
        let text =
            r.net(r#"{"x":"a\/b c+secret","y":"a%2Fb%20c%2Bsecret","z":"a%2Fb+c%2Bsecret"}"#);
        assert!(!text.contains("secret\""), "{text}");
    }

    #[test]
    fn bodies_are_read_by_their_shape_not_their_declared_type() {
        let mut r = Redactor::new();
        let json = r.body(
            Some("text/plain"),
            r#"{"access_token":"at-plain-123456","token_type":"Bearer"}"#,
        );
        assert!(!json.contains("at-plain-123456"), "{json}");
        assert!(json.contains(&fingerprint("access_token", "at-plain-123456")));
        assert_eq!(
            r.body(Some("text/plain"), "refresh_token=rt-plain-123456&x=1"),
            format!(
                "refresh_token={}&x=1",
                encode_component(&fingerprint("refresh_token", "rt-plain-123456"))
            )
        );
        let multipart = "--b0und\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\ncode-in-part-1\r\n--b0und\r\nContent-Disposition: form-data; name=\"scope\"\r\n\r\nopenid\r\n--b0und--\r\n";
        assert_eq!(
            r.body(Some("application/octet-stream"), multipart),
            multipart.replace("code-in-part-1", &fingerprint("code", "code-in-part-1"))
        );
        let text = r.body(
            Some("text/html"),
            "<p>password: hunter22</p><script>var accessToken = 'tok-js-9876';</script><refresh_token>rt-xml-5555</refresh_token> error code: 500",
        );
        for gone in ["hunter22", "tok-js-9876", "rt-xml-5555"] {
            assert!(!text.contains(gone), "{text}");
        }
        assert!(text.contains(&fingerprint("access_token", "tok-js-9876")));
        assert!(text.contains("error code: 500"), "{text}");
    }

    #[test]
    fn headers_named_like_credentials_are_fingerprinted() {
        let mut r = Redactor::new();
        for name in [
            "X-Api-Key",
            "api-key",
            "Ocp-Apim-Subscription-Key",
            "X-Auth-Token",
            "X-Client-Secret",
            "DPoP",
            "X-CSRF-Token",
        ] {
            let value = format!("value-of-{name}");
            assert_eq!(
                r.header(name, &value),
                fingerprint(&name.to_ascii_lowercase(), &value)
            );
        }
        for (name, value) in [
            ("WWW-Authenticate", "Bearer error=\"invalid_token\""),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Access-Control-Allow-Headers", "Authorization, X-Api-Key"),
            ("Content-Type", "application/json"),
        ] {
            assert_eq!(r.header(name, value), value);
        }
        assert_eq!(
            r.header("Authorization", "DPoP at-dpop-123456"),
            format!("DPoP {}", fingerprint("access_token", "at-dpop-123456"))
        );
        assert_eq!(
            r.header("Refresh", "0; url=https://app/cb?code=c-refresh-1"),
            format!(
                "0; url=https://app/cb?code={}",
                fingerprint("code", "c-refresh-1")
            )
        );
    }

    #[test]
    fn secret_names_in_any_case_and_shape() {
        for (name, kind) in [
            ("accessToken", Some("access_token")),
            ("Client-Secret", Some("client_secret")),
            ("id_token_hint", Some("id_token")),
            ("api_key", Some("api_key")),
            ("csrf_token", Some("csrf_token")),
            ("sig", Some("sig")),
            ("token_type", None),
            ("token_endpoint", None),
            ("code_challenge", None),
            ("session_state", None),
            ("keys", None),
        ] {
            assert_eq!(param_kind(name).as_deref(), kind, "{name}");
        }
    }

    /// A signed JWT with personal claims (a fake signature).
    fn id_token() -> String {
        crate::oauth::testing::jwt(&serde_json::json!({
            "iss": "https://login.microsoftonline.com/t-1/v2.0", "aud": "app-1", "tid": "t-1",
            "nonce": "n-1", "exp": 1714561200, "sub": "subject-123", "oid": "object-456",
            "name": "Alex Mock", "preferred_username": "alex@contoso.test",
        }))
    }

    fn claims_of(token: &str) -> serde_json::Map<String, Value> {
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn jwts_keep_the_analysed_claims_without_signature_or_person() {
        let token = id_token();
        let print = fingerprint("id_token", &token);
        let mut r = Redactor::new();
        let body = r.body(
            Some("application/json"),
            &serde_json::json!({"id_token": token, "access_token": "opaque-access-1", "token_type": "Bearer"}).to_string(),
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        let redacted = v["id_token"].as_str().unwrap();
        assert!(redacted.ends_with('.'), "{redacted}");
        let claims = claims_of(redacted);
        let mut names: Vec<&str> = claims.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["aud", "authlens_redacted", "exp", "iss", "nonce", "tid"]
        );
        assert_eq!(claims["authlens_redacted"], print.as_str());
        assert_eq!(claims["nonce"], "n-1");
        // An opaque token is still a fingerprint.
        assert_eq!(
            v["access_token"],
            fingerprint("access_token", "opaque-access-1")
        );
        for personal in [
            "subject-123",
            "object-456",
            "Alex Mock",
            "alex@contoso.test",
        ] {
            assert!(!body.contains(personal) && !redacted.contains(personal));
        }

        // The same token later, in a fragment, a Bearer header or a page, is
        // the same redacted token; a redacted token is left as it is.
        let url = r.url(&format!("https://app/cb#id_token={token}&state=s"));
        assert_eq!(url, format!("https://app/cb#id_token={redacted}&state=s"));
        assert_eq!(
            r.header("Authorization", &format!("Bearer {token}")),
            format!("Bearer {redacted}")
        );
        assert_eq!(
            r.net(&format!("<p>{token}</p>")),
            format!("<p>{redacted}</p>")
        );
        assert_eq!(
            r.pairs(&format!("id_token={redacted}")),
            format!("id_token={redacted}")
        );
        let mut fresh = Redactor::new();
        assert_eq!(
            fresh.pairs(&format!("client_assertion={redacted}")),
            format!("client_assertion={redacted}")
        );
    }

    #[test]
    fn an_already_redacted_value_stays_as_it_is() {
        let mut r = Redactor::new();
        let print = fingerprint("code", "abc");
        assert_eq!(
            r.pairs(&format!("code={}", encode_component(&print))),
            format!("code={}", encode_component(&print))
        );
    }
}
