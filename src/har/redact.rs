//! Redaction for `--har`: secrets in a recorded exchange become the same
//! fingerprints the live log shows (`code#3fa2c1`), so pairing stays visible
//! in the file and a re-analysis reads the same values.
//!
//! Two layers. First, structure: parameters of queries, fragments and form
//! bodies, members of JSON bodies, the hidden inputs of a form_post page,
//! `Location`/`Referer` URLs and credential headers are rewritten by name.
//! Then, a net: every secret value learnt so far in the session is replaced
//! wherever else it shows up (a later `Referer`, a page quoting it), raw,
//! percent-encoded, JSON- or HTML-escaped. Nothing here writes files.
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

use std::collections::{HashMap, VecDeque};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::oauth::jwt;
use crate::oauth::params::encode_component;
use crate::oauth::params::{Params, decode_component};
use crate::oauth::secret::{fingerprint, is_fingerprint, secret_kind};

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
/// How many secret values the net remembers (the oldest are forgotten).
const MAX_KNOWN: usize = 1024;

/// Redacts the texts of exchanges, remembering secrets across them.
#[derive(Debug, Default)]
pub struct Redactor {
    /// secret value -> its fingerprint.
    known: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// The fingerprint standing for `value`, remembered for the net.
    fn learn(&mut self, kind: &str, value: &str) -> String {
        if value.is_empty() || is_fingerprint(kind, value) || is_redacted(value) {
            return value.to_owned();
        }
        if let Some(known) = self.known.get(value) {
            return known.clone();
        }
        let print = fingerprint(kind, value);
        self.remember(value, &print);
        print
    }

    /// What stands for a secret of `kind`: a JWT of a [`TOKEN_KINDS`] kind
    /// becomes its redacted form, anything else its fingerprint.
    fn learn_value(&mut self, kind: &str, value: &str) -> String {
        if !TOKEN_KINDS.contains(&kind) || is_redacted(value) || self.known.contains_key(value) {
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
        if self.order.len() >= MAX_KNOWN
            && let Some(old) = self.order.pop_front()
        {
            self.known.remove(&old);
        }
        self.order.push_back(value.to_owned());
        self.known.insert(value.to_owned(), replacement.to_owned());
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
                let kind = match secret_kind(&decoded_name) {
                    Some(kind) => kind,
                    None if plain_challenge && decoded_name == "code_challenge" => "code_verifier",
                    None => return piece.to_owned(),
                };
                let print = self.learn_value(kind, &decode_component(value));
                format!("{name}={}", encode_component(&print))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A header value with credentials redacted.
    pub fn header(&mut self, name: &str, value: &str) -> String {
        match name.to_ascii_lowercase().as_str() {
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
            _ => value.to_owned(),
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
    /// replaces the secret; `Bearer` shows the token's fingerprint.
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
        if scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty() {
            return format!("{scheme} {}", self.learn_value("access_token", credentials));
        }
        self.learn("authorization", trimmed)
    }

    /// A body (already decoded) with secrets redacted, by its media type.
    pub fn body(&mut self, content_type: Option<&str>, text: &str) -> String {
        let ct = content_type.unwrap_or_default().to_ascii_lowercase();
        let start = text.trim_start();
        if ct.contains("json") || (ct.is_empty() && (start.starts_with('{'))) {
            if let Ok(mut value) = serde_json::from_str::<Value>(text) {
                self.json(&mut value);
                return value.to_string();
            }
            return text.to_owned();
        }
        if ct.starts_with("application/x-www-form-urlencoded")
            || (ct.is_empty() && text.contains('=') && !start.starts_with('<'))
        {
            return self.pairs(text);
        }
        if ct.contains("html") || start.starts_with('<') {
            // form_post: learn the hidden inputs; the net replaces them.
            if let Some(form) = crate::oauth::form_post::parse_form(text) {
                for field in form.fields.iter() {
                    if let Some(kind) = secret_kind(&field.name) {
                        self.learn_value(kind, &field.value);
                    }
                }
            }
        }
        text.to_owned()
    }

    /// The fingerprint standing for `value` (a secret of this kind), which
    /// the net then also replaces everywhere else.
    pub fn secret(&mut self, kind: &str, value: &str) -> String {
        self.learn(kind, value)
    }

    /// Redacts the members of a JSON value named like secrets, at any depth.
    pub fn json(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    match (secret_kind(key), &*v) {
                        (Some(kind), Value::String(s)) => {
                            let print = self.learn_value(kind, s);
                            *v = Value::String(print);
                        }
                        _ => self.json(v),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            _ => {}
        }
    }

    /// `text` with every remembered secret replaced by its fingerprint, in
    /// every encoding it could appear in.
    pub fn net(&self, text: &str) -> String {
        if self.known.is_empty() || text.len() < MIN_NET_LEN {
            return text.to_owned();
        }
        let mut secrets: Vec<(&String, &String)> = self.known.iter().collect();
        // Longest first, so a secret containing another goes whole.
        secrets.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        let mut out = text.to_owned();
        for (secret, print) in secrets {
            for (variant, replacement) in variants(secret, print) {
                if out.contains(&variant) {
                    out = out.replace(&variant, &replacement);
                }
            }
        }
        out
    }
}

/// True for a JWT authlens already redacted: it holds no secret.
fn is_redacted(value: &str) -> bool {
    jwt::redacted_fingerprint(value).is_some()
}

/// The forms a secret takes in URLs, forms, JSON and HTML, each with the
/// matching form of its fingerprint.
fn variants(secret: &str, print: &str) -> Vec<(String, String)> {
    let json = |s: &str| {
        let quoted = Value::String(s.to_owned()).to_string();
        quoted[1..quoted.len() - 1].to_owned()
    };
    let html = |s: &str| {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('\'', "&#39;")
    };
    let percent = encode_component(secret);
    let form = percent.replace("%20", "+");
    let slash_escaped = json(secret).replace('/', "\\/");
    vec![
        (secret.to_owned(), print.to_owned()),
        (percent, encode_component(print)),
        (form, encode_component(print)),
        (json(secret), print.to_owned()),
        (slash_escaped, print.to_owned()),
        (html(secret), print.to_owned()),
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
