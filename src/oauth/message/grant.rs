//! What a token request asks for: the grant its `grant_type` names, with that
//! grant's own fields, read once from the request's parameters.
//!
//! Names and values only: which grants are judged, and how, is for the
//! analyzer and the rules to say.

/// The grant a token request names (OAUTH.md §1 and §7). A grant authlens
/// reads gets its own variant with its own fields; any other is kept by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `grant_type=authorization_code`: a code redemption (RFC 6749 §4.1.3).
    AuthorizationCode(CodeGrant),
    /// Any other `grant_type`, as sent (decoded).
    Other(String),
}

/// The parameters of a code redemption.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeGrant {
    pub code: Option<String>,
    /// Must be the string sent at /authorize, whenever one was sent there.
    pub redirect_uri: Option<String>,
    /// PKCE (RFC 7636): pairs with the `code_challenge` of /authorize.
    pub code_verifier: Option<String>,
}

impl Grant {
    /// The grant named by `grant_type`, its fields read through `param` (which
    /// treats an empty value as absent). `None` when no grant_type was sent.
    pub fn parse<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Option<Grant> {
        Some(match param("grant_type")? {
            "authorization_code" => Grant::AuthorizationCode(CodeGrant::read(param)),
            other => Grant::Other(other.to_owned()),
        })
    }

    /// The `grant_type` value it was parsed from.
    pub fn name(&self) -> &str {
        match self {
            Grant::AuthorizationCode(_) => "authorization_code",
            Grant::Other(name) => name,
        }
    }
}

impl CodeGrant {
    /// The code-redemption parameters, read through `param` whatever
    /// `grant_type` says (a redemption may name the wrong grant).
    pub fn read<'a>(param: impl Fn(&str) -> Option<&'a str>) -> CodeGrant {
        let text = |name: &str| param(name).map(str::to_owned);
        CodeGrant {
            code: text("code"),
            redirect_uri: text("redirect_uri"),
            code_verifier: text("code_verifier"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::params::Params;

    fn parse(form: &str) -> Option<Grant> {
        let params = Params::parse(form);
        Grant::parse(|name| params.get(name))
    }

    #[test]
    fn authorization_code_with_its_fields() {
        let grant = parse(
            "client_id=c&grant_type=authorization_code&code=0.AX%2Bk&redirect_uri=https%3A%2F%2Fapp%2Fcb&code_verifier=v-1",
        );
        assert_eq!(
            grant,
            Some(Grant::AuthorizationCode(CodeGrant {
                code: Some("0.AX+k".to_owned()),
                redirect_uri: Some("https://app/cb".to_owned()),
                code_verifier: Some("v-1".to_owned()),
            }))
        );
        assert_eq!(grant.unwrap().name(), "authorization_code");

        // Absent and empty fields are both absent.
        assert_eq!(
            parse("grant_type=authorization_code&code=&redirect_uri="),
            Some(Grant::AuthorizationCode(CodeGrant::default()))
        );
    }

    #[test]
    fn another_grant_by_name() {
        for name in [
            "refresh_token",
            "client_credentials",
            "urn:ietf:params:oauth:grant-type:device_code",
            "authorisation_code",
            "Authorization_Code",
        ] {
            let form = format!("grant_type={name}&code=C&refresh_token=r");
            let grant = parse(&form);
            assert_eq!(grant, Some(Grant::Other(name.to_owned())), "{name}");
            assert_eq!(grant.unwrap().name(), name);
        }
        assert_eq!(
            parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"),
            Some(Grant::Other(
                "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned()
            ))
        );
    }

    #[test]
    fn missing_or_empty_grant_type_is_none() {
        assert_eq!(parse("code=C&redirect_uri=https%3A%2F%2Fapp%2Fcb"), None);
        assert_eq!(parse("grant_type=&code=C"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn code_fields_read_whatever_the_grant_type() {
        let params = Params::parse("grant_type=refresh_token&code=C&code_verifier=v");
        assert_eq!(
            CodeGrant::read(|name| params.get(name)),
            CodeGrant {
                code: Some("C".to_owned()),
                redirect_uri: None,
                code_verifier: Some("v".to_owned()),
            }
        );
    }
}
