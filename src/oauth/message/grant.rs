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
    /// `grant_type=refresh_token` (RFC 6749 §6).
    RefreshToken(RefreshGrant),
    /// `grant_type=client_credentials` (RFC 6749 §4.4): no user, no /authorize.
    ClientCredentials(ClientCredentialsGrant),
    /// `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4):
    /// a device-code poll.
    DeviceCode(DeviceCodeGrant),
    /// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523),
    /// Entra's on-behalf-of with `requested_token_use=on_behalf_of`.
    JwtBearer(JwtBearerGrant),
    /// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693).
    TokenExchange(TokenExchangeGrant),
    /// `grant_type=password` (ROPC, RFC 6749 §4.3).
    Password(PasswordGrant),
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

/// A refresh: the refresh token (a JWT or opaque, never read) and the
/// scopes asked for, which may narrow but never widen the grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshGrant {
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

/// A client-credentials call: on Entra v2 the scope must be `{resource}/.default`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCredentialsGrant {
    pub scope: Option<String>,
}

/// A device-code poll: the `device_code` of the device authorization response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCodeGrant {
    pub device_code: Option<String>,
}

/// A JWT bearer assertion; `on_behalf_of` in `requested_token_use` makes it
/// Entra's on-behalf-of flow (the assertion is the incoming access token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwtBearerGrant {
    pub assertion: Option<String>,
    pub requested_token_use: Option<String>,
    pub scope: Option<String>,
}

impl JwtBearerGrant {
    /// True for Entra's on-behalf-of flow.
    pub fn on_behalf_of(&self) -> bool {
        self.requested_token_use.as_deref() == Some("on_behalf_of")
    }
}

/// An RFC 8693 token exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenExchangeGrant {
    pub subject_token: Option<String>,
    pub subject_token_type: Option<String>,
    pub audience: Option<String>,
    pub resource: Option<String>,
    pub scope: Option<String>,
}

/// A resource-owner password grant: the user name only (the password is
/// never kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PasswordGrant {
    pub username: Option<String>,
    pub scope: Option<String>,
}

/// `grant_type` of the device authorization grant.
pub const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// `grant_type` of JWT bearer assertions (and Entra on-behalf-of).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// `grant_type` of RFC 8693 token exchange.
pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

impl Grant {
    /// The grant named by `grant_type`, its fields read through `param` (which
    /// treats an empty value as absent). `None` when no grant_type was sent.
    pub fn parse<'a>(param: impl Fn(&str) -> Option<&'a str>) -> Option<Grant> {
        let text = |name: &str| param(name).map(str::to_owned);
        Some(match param("grant_type")? {
            "authorization_code" => Grant::AuthorizationCode(CodeGrant::read(&param)),
            "refresh_token" => Grant::RefreshToken(RefreshGrant {
                refresh_token: text("refresh_token"),
                scope: text("scope"),
            }),
            "client_credentials" => Grant::ClientCredentials(ClientCredentialsGrant {
                scope: text("scope"),
            }),
            DEVICE_CODE => Grant::DeviceCode(DeviceCodeGrant {
                device_code: text("device_code"),
            }),
            JWT_BEARER => Grant::JwtBearer(JwtBearerGrant {
                assertion: text("assertion"),
                requested_token_use: text("requested_token_use"),
                scope: text("scope"),
            }),
            TOKEN_EXCHANGE => Grant::TokenExchange(TokenExchangeGrant {
                subject_token: text("subject_token"),
                subject_token_type: text("subject_token_type"),
                audience: text("audience"),
                resource: text("resource"),
                scope: text("scope"),
            }),
            "password" => Grant::Password(PasswordGrant {
                username: text("username"),
                scope: text("scope"),
            }),
            other => Grant::Other(other.to_owned()),
        })
    }

    /// The `grant_type` value it was parsed from.
    pub fn name(&self) -> &str {
        match self {
            Grant::AuthorizationCode(_) => "authorization_code",
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials(_) => "client_credentials",
            Grant::DeviceCode(_) => DEVICE_CODE,
            Grant::JwtBearer(_) => JWT_BEARER,
            Grant::TokenExchange(_) => TOKEN_EXCHANGE,
            Grant::Password(_) => "password",
            Grant::Other(name) => name,
        }
    }

    /// A short name for people: `refresh`, `device code`, `on-behalf-of`, or
    /// the grant_type as sent.
    pub fn label(&self) -> &str {
        match self {
            Grant::AuthorizationCode(_) => "code",
            Grant::RefreshToken(_) => "refresh",
            Grant::ClientCredentials(_) => "client credentials",
            Grant::DeviceCode(_) => "device code",
            Grant::JwtBearer(g) if g.on_behalf_of() => "on-behalf-of",
            Grant::JwtBearer(_) => "jwt-bearer",
            Grant::TokenExchange(_) => "token exchange",
            Grant::Password(_) => "password",
            Grant::Other(name) => name,
        }
    }

    /// The credential the grant presents, with the kind it is fingerprinted
    /// as: the refresh token, device code, assertion or subject token.
    pub fn credential(&self) -> Option<(&'static str, &str)> {
        match self {
            Grant::RefreshToken(g) => Some(("refresh_token", g.refresh_token.as_deref()?)),
            Grant::DeviceCode(g) => Some(("device_code", g.device_code.as_deref()?)),
            Grant::JwtBearer(g) => Some(("assertion", g.assertion.as_deref()?)),
            Grant::TokenExchange(g) => Some(("subject_token", g.subject_token.as_deref()?)),
            _ => None,
        }
    }

    /// True for a grant of the lifecycle (any but the code grant) that
    /// carries what it needs to be read as itself: a request naming such a
    /// grant but carrying a `code` and not its own credential is a code
    /// redemption under the wrong grant_type.
    pub fn is_lifecycle(&self, has_code: bool) -> bool {
        match self {
            Grant::AuthorizationCode(_) => false,
            Grant::RefreshToken(_) | Grant::DeviceCode(_) | Grant::JwtBearer(_) => {
                !has_code || self.credential().is_some()
            }
            Grant::TokenExchange(_) => !has_code || self.credential().is_some(),
            Grant::ClientCredentials(_) | Grant::Password(_) | Grant::Other(_) => !has_code,
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
    fn every_grant_with_its_fields() {
        assert_eq!(
            parse("grant_type=refresh_token&refresh_token=0.AR.x&scope=User.Read"),
            Some(Grant::RefreshToken(RefreshGrant {
                refresh_token: Some("0.AR.x".to_owned()),
                scope: Some("User.Read".to_owned()),
            }))
        );
        assert_eq!(
            parse(
                "grant_type=client_credentials&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default"
            ),
            Some(Grant::ClientCredentials(ClientCredentialsGrant {
                scope: Some("https://graph.microsoft.com/.default".to_owned()),
            }))
        );
        let device = parse(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=DC",
        )
        .unwrap();
        assert_eq!(
            device,
            Grant::DeviceCode(DeviceCodeGrant {
                device_code: Some("DC".to_owned())
            })
        );
        assert_eq!(device.name(), DEVICE_CODE);
        assert_eq!(device.credential(), Some(("device_code", "DC")));
        let obo = parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJ.a.b&requested_token_use=on_behalf_of&scope=api%3A%2F%2Fx%2F.default").unwrap();
        assert_eq!(obo.label(), "on-behalf-of");
        assert_eq!(obo.name(), JWT_BEARER);
        assert_eq!(obo.credential(), Some(("assertion", "eyJ.a.b")));
        let plain =
            parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a")
                .unwrap();
        assert_eq!(plain.label(), "jwt-bearer");
        let exchange = parse("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=st&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&audience=api").unwrap();
        assert_eq!(
            exchange,
            Grant::TokenExchange(TokenExchangeGrant {
                subject_token: Some("st".to_owned()),
                subject_token_type: Some(
                    "urn:ietf:params:oauth:token-type:access_token".to_owned()
                ),
                audience: Some("api".to_owned()),
                resource: None,
                scope: None,
            })
        );
        assert_eq!(
            parse("grant_type=password&username=alex&password=hunter2"),
            Some(Grant::Password(PasswordGrant {
                username: Some("alex".to_owned()),
                scope: None,
            }))
        );
    }

    #[test]
    fn another_grant_by_name() {
        for name in [
            "authorisation_code",
            "Authorization_Code",
            "refresh-token",
            "urn:example:custom",
            "\u{1b}[31mred",
        ] {
            let form = format!("grant_type={name}&code=C&refresh_token=r");
            let grant = parse(&form);
            assert_eq!(grant, Some(Grant::Other(name.to_owned())), "{name}");
            assert_eq!(grant.unwrap().name(), name);
        }
    }

    #[test]
    fn a_lifecycle_grant_is_read_as_itself_unless_it_carries_only_a_code() {
        let grant = |form: &str| parse(form).unwrap();
        // Its own credential, or no code: itself.
        assert!(grant("grant_type=refresh_token&refresh_token=r").is_lifecycle(false));
        assert!(grant("grant_type=refresh_token&refresh_token=r&code=C").is_lifecycle(true));
        assert!(grant("grant_type=refresh_token").is_lifecycle(false));
        assert!(grant("grant_type=client_credentials").is_lifecycle(false));
        assert!(grant("grant_type=made_up").is_lifecycle(false));
        // A code instead of its own credential: a code redemption misnamed.
        assert!(!grant("grant_type=refresh_token&code=C").is_lifecycle(true));
        assert!(!grant("grant_type=client_credentials&code=C").is_lifecycle(true));
        assert!(!grant("grant_type=authorisation_code&code=C").is_lifecycle(true));
        assert!(!grant("grant_type=authorization_code").is_lifecycle(false));
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
