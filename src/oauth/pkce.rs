//! PKCE (RFC 7636): verifier syntax and challenge recomputation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Why a `code_verifier` breaks RFC 7636 §4.1 (43-128 chars of `[A-Za-z0-9-._~]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierProblem {
    TooShort(usize),
    TooLong(usize),
    /// The first character outside the allowed set.
    BadCharacter(char),
}

impl VerifierProblem {
    /// One line for a developer.
    pub fn describe(&self) -> String {
        match self {
            VerifierProblem::TooShort(n) => format!("it is {n} characters long, the minimum is 43"),
            VerifierProblem::TooLong(n) => format!("it is {n} characters long, the maximum is 128"),
            VerifierProblem::BadCharacter(c) => {
                format!("it contains {c:?}, only letters, digits and - . _ ~ are allowed")
            }
        }
    }
}

/// Checks the verifier syntax.
pub fn check_verifier(verifier: &str) -> Result<(), VerifierProblem> {
    if let Some(c) = verifier
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')))
    {
        return Err(VerifierProblem::BadCharacter(c));
    }
    match verifier.len() {
        n if n < 43 => Err(VerifierProblem::TooShort(n)),
        n if n > 128 => Err(VerifierProblem::TooLong(n)),
        _ => Ok(()),
    }
}

/// `BASE64URL_NOPAD(SHA256(ASCII(verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The outcome of recomputing the challenge from the verifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeCheck {
    Matches,
    /// `computed` is what the verifier gives with the method that was sent.
    Differs {
        computed: String,
    },
    /// The method is neither `S256` nor `plain`.
    UnknownMethod(String),
}

/// Recomputes the challenge; a missing method means `plain` (RFC 7636 §4.3).
pub fn check_challenge(challenge: &str, method: Option<&str>, verifier: &str) -> ChallengeCheck {
    let computed = match method.unwrap_or("plain") {
        "S256" => s256_challenge(verifier),
        "plain" => verifier.to_owned(),
        other => return ChallengeCheck::UnknownMethod(other.to_owned()),
    };
    if computed == challenge {
        ChallengeCheck::Matches
    } else {
        ChallengeCheck::Differs { computed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(s256_challenge(VERIFIER), CHALLENGE);
        assert_eq!(
            check_challenge(CHALLENGE, Some("S256"), VERIFIER),
            ChallengeCheck::Matches
        );
        assert_eq!(
            check_challenge(VERIFIER, None, VERIFIER),
            ChallengeCheck::Matches
        );
        assert_eq!(
            check_challenge(VERIFIER, Some("plain"), VERIFIER),
            ChallengeCheck::Matches
        );
        assert!(matches!(
            check_challenge(CHALLENGE, None, VERIFIER),
            ChallengeCheck::Differs { .. }
        ));
        assert_eq!(
            check_challenge(CHALLENGE, Some("s256"), VERIFIER),
            ChallengeCheck::UnknownMethod("s256".into())
        );
    }

    #[test]
    fn verifier_syntax() {
        assert_eq!(check_verifier(VERIFIER), Ok(()));
        assert_eq!(check_verifier("short"), Err(VerifierProblem::TooShort(5)));
        assert_eq!(
            check_verifier(&"a".repeat(129)),
            Err(VerifierProblem::TooLong(129))
        );
        assert_eq!(check_verifier(&"a".repeat(128)), Ok(()));
        let with_plus = format!("{}+", "a".repeat(50));
        assert_eq!(
            check_verifier(&with_plus),
            Err(VerifierProblem::BadCharacter('+'))
        );
        assert_eq!(check_verifier("é"), Err(VerifierProblem::BadCharacter('é')));
    }
}
