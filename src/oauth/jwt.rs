//! Reads the header and the claims a developer checks from a JWT (JWS
//! compact serialisation), so the live log can say who a token is for, from
//! whom, and until when.
//!
//! The signature is NOT verified (there are no keys here, and authlens is a
//! debugging aid, not a relying party): nothing decoded by this module may be
//! trusted for a security decision, and every outlet says so. It also makes
//! and recognises the redacted form of a JWT that recordings keep
//! ([`redact`]): no signature, only the claims the analysis needs. Pure and
//! defensive: any input, however large or broken, gives a value or a
//! [`JwtError`], never a panic.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Tokens longer than this are not decoded. Entra tokens are a few KiB; a
/// token far beyond that is not worth the memory of decoding it.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Base64url, with or without padding (some issuers pad).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64url without padding, as JWTs are written.
const BASE64URL_NOPAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false),
);

/// Why a token could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("token is {0} bytes, more than the {MAX_TOKEN_LEN} bytes authlens decodes")]
    TooLarge(usize),
    /// Five parts is an encrypted token (JWE), which cannot be read without the key.
    #[error("encrypted token (JWE, 5 parts): its claims cannot be read without the key")]
    Encrypted,
    #[error("not a JWT: {0} dot-separated part(s) instead of 3")]
    PartCount(usize),
    #[error("the JWT {0} is not valid base64url")]
    Base64(&'static str),
    #[error("the JWT {0} is not a JSON object")]
    NotJson(&'static str),
}

/// The readable parts of a JWT. Claims absent from the token are `None` /
/// empty; a time claim that is not a plausible number is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwt {
    // Header.
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub typ: Option<String>,
    // Claims.
    pub iss: Option<String>,
    /// `aud` is a string or an array of strings.
    pub aud: Vec<String>,
    /// Entra tenant id.
    pub tid: Option<String>,
    /// Entra object id of the user (or service principal).
    pub oid: Option<String>,
    pub sub: Option<String>,
    /// Delegated permissions (space-separated), Entra `scp` or generic `scope`.
    pub scp: Option<String>,
    /// Application permissions / app roles.
    pub roles: Vec<String>,
    pub exp: Option<OffsetDateTime>,
    pub iat: Option<OffsetDateTime>,
    pub nbf: Option<OffsetDateTime>,
    pub nonce: Option<String>,
}

// === redacted tokens ===

/// The claims a redacted JWT keeps: those the analysis reads (the nonce, the
/// issuer and tenant, the audience, the times, the version). None names a
/// person; every other claim is removed.
pub const KEPT_CLAIMS: [&str; 9] = [
    "iss", "aud", "tid", "nonce", "exp", "iat", "nbf", "azp", "ver",
];

/// The header members a redacted JWT keeps.
const KEPT_HEADER: [&str; 3] = ["alg", "kid", "typ"];

/// The claim that marks a JWT redacted by authlens. Its value is the
/// fingerprint of the original token (`id_token#e119ca`), so pairing still
/// works on the redacted one.
const REDACTED_CLAIM: &str = "authlens_redacted";

/// `token` with its signature removed and only [`KEPT_CLAIMS`] (and
/// `alg`, `kid`, `typ` in its header) left, marked with [`REDACTED_CLAIM`]:
/// `header.claims.`, which reads as a JWT but is no credential. `print` is the
/// original's fingerprint. `None` when `token` is not a readable signed JWT
/// (opaque, encrypted, broken): those are fingerprinted whole instead. A token
/// already redacted comes back unchanged, keeping its original fingerprint;
/// one that only looks redacted (a forged `authlens_redacted` claim beside
/// personal ones) still loses every claim not kept.
pub fn redact(token: &str, print: &str) -> Option<String> {
    let token = token.trim();
    let earlier = redacted_fingerprint(token);
    let print = earlier.as_deref().unwrap_or(print);
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, _signature] = parts.as_slice() else {
        return None;
    };
    let keep = |map: Map<String, Value>, names: &[&str]| -> Map<String, Value> {
        map.into_iter()
            .filter(|(k, _)| names.contains(&k.as_str()))
            .collect()
    };
    let header = keep(json_object(header, "header").ok()?, &KEPT_HEADER);
    let mut claims = keep(json_object(claims, "payload").ok()?, &KEPT_CLAIMS);
    claims.insert(REDACTED_CLAIM.to_owned(), Value::String(print.to_owned()));
    let encode = |map: Map<String, Value>| BASE64URL_NOPAD.encode(Value::Object(map).to_string());
    Some(format!("{}.{}.", encode(header), encode(claims)))
}

/// The fingerprint of the original token, when `token` is a JWT redacted by
/// [`redact`] (empty signature, a [`REDACTED_CLAIM`] holding `kind#xxxxxx`).
pub fn redacted_fingerprint(token: &str) -> Option<String> {
    let token = token.trim();
    let (head, signature) = token.rsplit_once('.')?;
    if !signature.is_empty() || !token.starts_with("eyJ") || token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let (_, claims) = head.split_once('.')?;
    let print = match json_object(claims, "payload")
        .ok()?
        .remove(REDACTED_CLAIM)?
    {
        Value::String(print) => print,
        _ => return None,
    };
    let (kind, hex) = print.split_once('#')?;
    let hex_ok = hex.len() == 6 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (!kind.is_empty() && hex_ok).then_some(print)
}

/// Decodes `token` without verifying its signature.
pub fn decode(token: &str) -> Result<Jwt, JwtError> {
    let (header, claims) = header_and_claims(token)?;
    let text = |map: &Map<String, Value>, key: &str| match map.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let strings = |key: &str| match claims.get(key) {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Jwt {
        alg: text(&header, "alg"),
        kid: text(&header, "kid"),
        typ: text(&header, "typ"),
        iss: text(&claims, "iss"),
        aud: strings("aud"),
        tid: text(&claims, "tid"),
        oid: text(&claims, "oid"),
        sub: text(&claims, "sub"),
        scp: text(&claims, "scp").or_else(|| text(&claims, "scope")),
        roles: strings("roles"),
        exp: numeric_date(claims.get("exp")),
        iat: numeric_date(claims.get("iat")),
        nbf: numeric_date(claims.get("nbf")),
        nonce: text(&claims, "nonce"),
    })
}

/// Every claim of `token`, read without verifying its signature (a JAR
/// request object's claims are the authorization request's parameters).
pub fn claims(token: &str) -> Result<Map<String, Value>, JwtError> {
    header_and_claims(token).map(|(_, claims)| claims)
}

/// A JSON object: a JWT's header or its claims.
type Object = Map<String, Value>;

/// The header and the claims of a signed (three-part) JWT, as JSON objects;
/// the one place that splits and bounds a token.
fn header_and_claims(token: &str) -> Result<(Object, Object), JwtError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::TooLarge(token.len()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    match parts.len() {
        3 => {}
        5 => return Err(JwtError::Encrypted),
        n => return Err(JwtError::PartCount(n)),
    }
    Ok((
        json_object(parts[0], "header")?,
        json_object(parts[1], "payload")?,
    ))
}

/// True when `token` has the shape of a signed JWT (three base64url parts,
/// a JSON header), so an opaque access token is not reported as broken.
pub fn looks_like_jwt(token: &str) -> bool {
    let token = token.trim();
    token.starts_with("eyJ") && token.bytes().filter(|&b| b == b'.').count() == 2
}

fn json_object(part: &str, which: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = BASE64URL
        .decode(part)
        .map_err(|_| JwtError::Base64(which))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::NotJson(which)),
    }
}

/// RFC 7519 NumericDate: seconds since the epoch, possibly fractional.
fn numeric_date(value: Option<&Value>) -> Option<OffsetDateTime> {
    let seconds = match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        // Some issuers write numbers as strings.
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    OffsetDateTime::from_unix_timestamp(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use time::macros::datetime;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn jwt(header: &str, claims: &str) -> String {
        format!("{}.{}.c2lnbmF0dXJl", b64(header), b64(claims))
    }

    #[test]
    fn reads_header_and_the_claims_a_developer_checks() {
        let token = jwt(
            r#"{"alg":"RS256","kid":"k-1","typ":"JWT"}"#,
            r#"{"iss":"https://login.microsoftonline.com/72f988bf-0000-4000-8000-00000000c0de/v2.0","aud":"api://x","tid":"72f988bf-0000-4000-8000-00000000c0de","oid":"o-1","sub":"s-1","scp":"User.Read Mail.Send","roles":["Admin","Reader"],"exp":1714561200,"iat":1714557600,"nbf":1714557600.5,"nonce":"n-1","name":"ignored"}"#,
        );
        let t = decode(&token).unwrap();
        assert_eq!(t.alg.as_deref(), Some("RS256"));
        assert_eq!(t.kid.as_deref(), Some("k-1"));
        assert_eq!(t.typ.as_deref(), Some("JWT"));
        assert_eq!(t.aud, ["api://x"]);
        assert_eq!(
            t.tid.as_deref(),
            Some("72f988bf-0000-4000-8000-00000000c0de")
        );
        assert_eq!(t.oid.as_deref(), Some("o-1"));
        assert_eq!(t.sub.as_deref(), Some("s-1"));
        assert_eq!(t.scp.as_deref(), Some("User.Read Mail.Send"));
        assert_eq!(t.roles, ["Admin", "Reader"]);
        assert_eq!(t.exp, Some(datetime!(2024-05-01 11:00:00 UTC)));
        assert_eq!(t.iat, Some(datetime!(2024-05-01 10:00:00 UTC)));
        assert_eq!(t.nbf, Some(datetime!(2024-05-01 10:00:00 UTC)));
        assert_eq!(t.nonce.as_deref(), Some("n-1"));
        assert!(looks_like_jwt(&token));
    }

    #[test]
    fn aud_array_padding_and_string_times_are_accepted() {
        let token = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE.encode(r#"{"alg":"none"}"#),
            b64(r#"{"aud":["a","b",3],"exp":"1714561200","scope":"read write"}"#)
        );
        let t = decode(&token).unwrap();
        assert_eq!(t.alg.as_deref(), Some("none"));
        assert_eq!(t.aud, ["a", "b"]);
        assert_eq!(t.exp, Some(datetime!(2024-05-01 11:00:00 UTC)));
        assert_eq!(t.scp.as_deref(), Some("read write"));
        assert_eq!(t.sub, None);
        assert!(t.roles.is_empty());
    }

    #[test]
    fn malformed_tokens_give_errors_not_panics() {
        let good_header = b64(r#"{"alg":"RS256"}"#);
        let cases: Vec<(String, JwtError)> = vec![
            ("".to_owned(), JwtError::PartCount(1)),
            ("opaque-access-token".to_owned(), JwtError::PartCount(1)),
            ("a.b".to_owned(), JwtError::PartCount(2)),
            ("a.b.c.d".to_owned(), JwtError::PartCount(4)),
            ("a.b.c.d.e".to_owned(), JwtError::Encrypted),
            (
                format!("{good_header}.***.sig"),
                JwtError::Base64("payload"),
            ),
            ("e$J.e30.sig".to_owned(), JwtError::Base64("header")),
            (
                format!("{good_header}.{}.sig", b64("not json")),
                JwtError::NotJson("payload"),
            ),
            (
                format!("{good_header}.{}.sig", b64("[1,2]")),
                JwtError::NotJson("payload"),
            ),
            (
                format!("{}.e30.sig", b64("\"alg\"")),
                JwtError::NotJson("header"),
            ),
        ];
        for (token, want) in cases {
            assert_eq!(decode(&token), Err(want), "{token}");
        }
        let huge = format!(
            "{good_header}.{}.sig",
            "A".repeat(MAX_TOKEN_LEN + 1 - good_header.len())
        );
        assert_eq!(decode(&huge), Err(JwtError::TooLarge(huge.len())));
        assert!(!looks_like_jwt("opaque-access-token"));
        assert!(!looks_like_jwt("eyJ.only-two"));
    }

    #[test]
    fn a_redacted_jwt_keeps_the_analysed_claims_and_nothing_personal() {
        let token = format!(
            "{}.{}.c2lnbmF0dXJl",
            b64(r#"{"alg":"RS256","kid":"k-1","typ":"JWT","x5t":"thumb","nonce":"header-nonce"}"#),
            b64(
                r#"{"iss":"https://login.microsoftonline.com/t-1/v2.0","aud":"app-1","tid":"t-1","nonce":"n-1","exp":1714561200,"iat":1714557600,"nbf":1714557600,"azp":"app-1","ver":"2.0","sub":"s-1","oid":"o-1","upn":"alex@contoso.test","email":"alex@contoso.test","name":"Alex Mock","preferred_username":"alex@contoso.test","unique_name":"alex","roles":["Admin"],"custom":"x"}"#
            )
        );
        let redacted = redact(&token, "id_token#e119ca").unwrap();
        assert!(redacted.ends_with('.'), "no signature: {redacted}");
        for personal in [
            "s-1",
            "o-1",
            "alex",
            "Alex Mock",
            "Admin",
            "thumb",
            "header-nonce",
            "custom",
            "c2lnbmF0dXJl",
        ] {
            let parts: Vec<String> = redacted
                .split('.')
                .map(|p| String::from_utf8(BASE64URL.decode(p).unwrap()).unwrap())
                .collect();
            assert!(
                !parts.concat().contains(personal),
                "{personal} in {parts:?}"
            );
        }
        let t = decode(&redacted).unwrap();
        assert_eq!(t.alg.as_deref(), Some("RS256"));
        assert_eq!(t.kid.as_deref(), Some("k-1"));
        assert_eq!(
            t.iss.as_deref(),
            Some("https://login.microsoftonline.com/t-1/v2.0")
        );
        assert_eq!(t.aud, ["app-1"]);
        assert_eq!(t.tid.as_deref(), Some("t-1"));
        assert_eq!(t.nonce.as_deref(), Some("n-1"));
        assert_eq!(t.exp, Some(datetime!(2024-05-01 11:00:00 UTC)));
        assert_eq!((t.sub, t.oid, t.roles.len()), (None, None, 0));
        assert!(looks_like_jwt(&redacted));
        assert_eq!(
            redacted_fingerprint(&redacted).as_deref(),
            Some("id_token#e119ca")
        );
        // Once redacted, always the same: a second pass changes nothing.
        assert_eq!(
            redact(&redacted, "id_token#000000").as_deref(),
            Some(redacted.as_str())
        );
        // Not a signed JWT: nothing to keep.
        for other in ["opaque-token", "a.b.c.d.e", "e30.***.sig", ""] {
            assert_eq!(redact(other, "x#000000"), None, "{other}");
        }
        assert_eq!(redacted_fingerprint(&token), None);
        assert_eq!(redacted_fingerprint("eyJ.e30."), None);
        let forged = format!(
            "{}.{}.",
            b64(r#"{"alg":"none"}"#),
            b64(r#"{"authlens_redacted":"not a print"}"#)
        );
        assert_eq!(redacted_fingerprint(&forged), None);
        // A token that looks redacted but carries personal claims loses them,
        // and keeps the fingerprint it claims.
        let posing = format!(
            "{}.{}.",
            b64(r#"{"alg":"RS256","x5t":"thumb"}"#),
            b64(
                r#"{"authlens_redacted":"id_token#abc123","iss":"i","upn":"alex@contoso.test","name":"Alex Mock"}"#
            )
        );
        let cleaned = redact(&posing, "id_token#ffffff").unwrap();
        let text: String = cleaned
            .split('.')
            .map(|p| String::from_utf8(BASE64URL.decode(p).unwrap()).unwrap())
            .collect();
        assert!(
            !text.contains("alex") && !text.contains("Alex") && !text.contains("thumb"),
            "{text}"
        );
        assert!(text.contains(r#""iss":"i""#), "{text}");
        assert_eq!(
            redacted_fingerprint(&cleaned).as_deref(),
            Some("id_token#abc123")
        );
    }

    #[test]
    fn implausible_times_and_odd_claim_types_are_left_out() {
        let token = jwt(
            r#"{"alg":"RS256","kid":7}"#,
            r#"{"exp":1e300,"iat":true,"nbf":-99999999999999,"sub":{"x":1},"tid":42}"#,
        );
        let t = decode(&token).unwrap();
        assert_eq!(t.kid.as_deref(), Some("7"));
        assert_eq!(t.exp, None);
        assert_eq!(t.iat, None);
        assert_eq!(t.nbf, None);
        assert_eq!(t.sub, None);
        assert_eq!(t.tid.as_deref(), Some("42"));
    }
}
