//! Secret fingerprints: a short, stable stand-in for a credential.
//!
//! Codes, client secrets, verifiers, assertions, tokens, `Authorization` and
//! `Cookie` values never leave authlens in clear unless the user asks: they
//! are shown as `kind#xxxxxx` (the first 3 bytes of SHA-256 of the value), so
//! the same code can still be followed from one leg to the next. Nothing here
//! reads a clock or holds state.

use sha2::{Digest, Sha256};

use super::jwt::redacted_fingerprint;

/// Parameter and JSON member names whose values are credentials: the live
/// log, the findings and the HAR redaction all hide exactly these.
pub const SECRET_NAMES: [&str; 12] = [
    "code",
    "client_secret",
    "code_verifier",
    "client_assertion",
    "access_token",
    "id_token",
    "refresh_token",
    "password",
    "assertion",
    "device_code",
    "token",
    "subject_token",
];

/// The secret kind of a parameter name (its own name), if it is one.
pub fn secret_kind(name: &str) -> Option<&'static str> {
    SECRET_NAMES.iter().copied().find(|n| *n == name)
}

/// `kind#` followed by the first 3 bytes of SHA-256(`value`) in lower-case hex,
/// e.g. `code#3fa2c1`. The kind is not hashed, so one value gets the same
/// suffix whatever it is called.
pub fn fingerprint(kind: &str, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    format!("{kind}#{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2])
}

/// True when `value` already is a fingerprint of this kind (`code#3fa2c1`),
/// as in a HAR file that authlens wrote with secrets redacted.
pub fn is_fingerprint(kind: &str, value: &str) -> bool {
    value
        .strip_prefix(kind)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|hex| {
            hex.len() == 6 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// How secrets are shown in events: fingerprinted, or in clear when the user
/// passed `--show-secrets`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecretPolicy {
    pub show_secrets: bool,
}

impl SecretPolicy {
    /// The value as it may appear in an event, a finding or its evidence.
    /// A value that is already a fingerprint of `kind` (read from a redacted
    /// HAR) is shown as it is, and a redacted JWT as the fingerprint of the
    /// token it stands for, so a recording reads like the live run.
    pub fn show(&self, kind: &str, value: &str) -> String {
        if let Some(print) = redacted_fingerprint(value) {
            return print;
        }
        if self.show_secrets || is_fingerprint(kind, value) {
            value.to_owned()
        } else {
            fingerprint(kind, value)
        }
    }

    /// A parameter's value for display: fingerprinted when its name is a
    /// secret ([`SECRET_NAMES`]), else as it is.
    pub fn show_param(&self, name: &str, value: &str) -> String {
        match secret_kind(name) {
            Some(kind) => self.show(kind, value),
            None => value.to_owned(),
        }
    }

    /// Like [`SecretPolicy::show`], for an optional value.
    pub fn show_opt(&self, kind: &str, value: Option<&str>) -> Option<String> {
        value.map(|v| self.show(kind, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_named_as_secrets_are_fingerprinted() {
        let hide = SecretPolicy::default();
        assert_eq!(
            hide.show_param("client_secret", "s3cr3t"),
            fingerprint("client_secret", "s3cr3t")
        );
        assert_eq!(
            hide.show_param("refresh_token", "rt"),
            fingerprint("refresh_token", "rt")
        );
        assert_eq!(
            hide.show_param("redirect_uri", "https://app/cb"),
            "https://app/cb"
        );
    }

    #[test]
    fn fingerprint_is_stable_short_and_kind_prefixed() {
        // SHA-256("abc") = ba7816bf...
        assert_eq!(fingerprint("code", "abc"), "code#ba7816");
        assert_eq!(fingerprint("access_token", "abc"), "access_token#ba7816");
        assert_ne!(fingerprint("code", "abd"), fingerprint("code", "abc"));
    }

    #[test]
    fn policy_shows_clear_only_on_request() {
        let hidden = SecretPolicy::default();
        assert_eq!(hidden.show("code", "abc"), "code#ba7816");
        let shown = SecretPolicy { show_secrets: true };
        assert_eq!(shown.show("code", "abc"), "abc");
        assert_eq!(shown.show_opt("code", None), None);
    }

    #[test]
    fn a_fingerprint_is_not_fingerprinted_again() {
        let print = fingerprint("code", "abc");
        assert!(is_fingerprint("code", &print));
        assert!(!is_fingerprint("code_verifier", &print));
        assert!(!is_fingerprint("code", "code#ba781"));
        assert!(!is_fingerprint("code", "code#BA7816"));
        assert_eq!(SecretPolicy::default().show("code", &print), print);
    }

    #[test]
    fn a_redacted_jwt_is_shown_as_the_token_it_stands_for() {
        let token = crate::oauth::testing::jwt(&serde_json::json!({"aud": "a", "sub": "s"}));
        let print = fingerprint("id_token", &token);
        let redacted = crate::oauth::jwt::redact(&token, &print).unwrap();
        for policy in [SecretPolicy::default(), SecretPolicy { show_secrets: true }] {
            assert_eq!(policy.show("id_token", &redacted), print);
        }
    }
}
