//! What an endpoint URL says about the identity provider behind it.
//!
//! Recognition of OAuth messages never depends on this (it is by content);
//! the endpoint rules do: Entra cloud, tenant segment, protocol version and
//! B2C policy must be the same at /authorize and /token. Also learns
//! endpoints from discovery documents seen through the proxy. Pure: URL and
//! JSON in, facts out.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use http::Uri;

use super::params::Params;

/// The identity provider families authlens knows the URL shapes of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Microsoft Entra ID (any cloud).
    Entra,
    /// Azure AD B2C (b2clogin.com, legacy login.microsoftonline.com, custom domains).
    EntraB2c,
    /// Entra External ID (ciamlogin.com).
    EntraExternalId,
    Adfs,
    Okta,
    Auth0,
    Google,
    Keycloak,
    Cognito,
    Ping,
    GitHub,
    /// Any other OAuth 2.0 / OIDC server.
    Generic,
}

impl Provider {
    /// Entra ID and its kin (B2C, External ID): one token service, so one
    /// set of rules (consent-based refresh scopes, the SPA refresh lifetime,
    /// `/.default` for client credentials, `tid` in id_tokens). B2C is
    /// included everywhere: it issues SPA refresh tokens of the same fixed
    /// 24 h and its client-credentials flow takes `…/.default` too.
    pub fn is_entra(self) -> bool {
        matches!(
            self,
            Provider::Entra | Provider::EntraB2c | Provider::EntraExternalId
        )
    }

    /// A stable lower-case name, used in events.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Entra => "entra",
            Provider::EntraB2c => "entra-b2c",
            Provider::EntraExternalId => "entra-external-id",
            Provider::Adfs => "adfs",
            Provider::Okta => "okta",
            Provider::Auth0 => "auth0",
            Provider::Google => "google",
            Provider::Keycloak => "keycloak",
            Provider::Cognito => "cognito",
            Provider::Ping => "ping",
            Provider::GitHub => "github",
            Provider::Generic => "generic",
        }
    }

    /// How long a code of this provider stays redeemable by default
    /// (OAUTH.md §3; undocumented providers get the RFC 6749 10 minutes).
    pub fn default_code_lifetime(self) -> Duration {
        match self {
            Provider::Okta => Duration::from_secs(300),
            Provider::Keycloak | Provider::Ping => Duration::from_secs(60),
            _ => Duration::from_secs(600),
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which protocol endpoint a URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    Authorize,
    Token,
    Other,
}

/// Entra protocol version, from the path (`/oauth2/` vs `/oauth2/v2.0/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtocolVersion {
    V1,
    V2,
}

impl ProtocolVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ProtocolVersion::V1 => "v1.0",
            ProtocolVersion::V2 => "v2.0",
        }
    }
}

/// The facts one endpoint URL carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub provider: Provider,
    pub kind: EndpointKind,
    pub scheme: String,
    /// Lower-case host, without port.
    pub host: String,
    pub port: Option<u16>,
    pub path: String,
    /// Entra cloud (host alias group): `global`, `usgov`, `china`.
    pub cloud: Option<&'static str>,
    /// Entra tenant segment, Keycloak realm or Okta authorization server, as sent.
    pub tenant: Option<String>,
    pub version: Option<ProtocolVersion>,
    /// B2C user flow / custom policy, from the path or `?p=`.
    pub policy: Option<String>,
}

/// The consumer tenant GUID, which is the same tenant as `consumers`.
const CONSUMERS_GUID: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

const ENTRA_CLOUDS: &[(&str, &[&str])] = &[
    (
        "global",
        &[
            "login.microsoftonline.com",
            "login.windows.net",
            "login.microsoft.com",
            "sts.windows.net",
        ],
    ),
    (
        "usgov",
        &["login.microsoftonline.us", "login.usgovcloudapi.net"],
    ),
    (
        "china",
        &["login.partner.microsoftonline.cn", "login.chinacloudapi.cn"],
    ),
];

/// The Entra cloud a host belongs to, if it is an Entra login host.
pub fn entra_cloud(host: &str) -> Option<&'static str> {
    let host = host.to_ascii_lowercase();
    ENTRA_CLOUDS
        .iter()
        .find(|(_, hosts)| hosts.contains(&host.as_str()))
        .map(|(cloud, _)| *cloud)
}

impl Endpoint {
    /// Classifies an absolute request URI. Never fails: unknown shapes are
    /// [`Provider::Generic`] / [`EndpointKind::Other`].
    pub fn from_uri(uri: &Uri) -> Endpoint {
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let path = uri.path().to_owned();
        let query = Params::parse(uri.query().unwrap_or_default());
        let mut ep = Endpoint {
            provider: Provider::Generic,
            kind: EndpointKind::Other,
            scheme: uri.scheme_str().unwrap_or("https").to_ascii_lowercase(),
            port: uri.port_u16(),
            cloud: entra_cloud(&host),
            host,
            path,
            tenant: None,
            version: None,
            policy: None,
        };
        ep.classify(query.get("p"));
        ep
    }

    /// `scheme://host[:port]/path`, without query.
    pub fn url(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{}{}", self.scheme, self.host, port, self.path),
            None => format!("{}://{}{}", self.scheme, self.host, self.path),
        }
    }

    fn classify(&mut self, p_param: Option<&str>) {
        let lower_path = self.path.to_ascii_lowercase();
        let segs: Vec<&str> = lower_path.split('/').filter(|s| !s.is_empty()).collect();
        let raw_segs: Vec<&str> = self.path.split('/').filter(|s| !s.is_empty()).collect();
        let last = segs.last().copied().unwrap_or_default();
        let host = self.host.as_str();

        let oauth2_at = segs.iter().position(|s| *s == "oauth2");
        let is_b2c_policy = |s: &str| s.starts_with("b2c_1_") || s.starts_with("b2c_1a_");
        let entra_like = self.cloud.is_some()
            || host.ends_with(".b2clogin.com")
            || host.ends_with(".ciamlogin.com")
            || (oauth2_at.is_some_and(|i| i >= 2 && is_b2c_policy(segs[i - 1])));

        if entra_like {
            self.provider = if host.ends_with(".ciamlogin.com") {
                Provider::EntraExternalId
            } else {
                Provider::Entra
            };
            // `/tfp/{tenant}/{policy}/…` is the legacy B2C shape.
            let base = usize::from(segs.first() == Some(&"tfp"));
            self.tenant = raw_segs.get(base).map(|s| s.to_string());
            if let Some(i) = oauth2_at {
                if i == base + 2 {
                    self.policy = raw_segs.get(base + 1).map(|s| s.to_string());
                }
                self.version = Some(if segs.get(i + 1) == Some(&"v2.0") {
                    ProtocolVersion::V2
                } else {
                    ProtocolVersion::V1
                });
                self.kind = match last {
                    "authorize" => EndpointKind::Authorize,
                    "token" => EndpointKind::Token,
                    _ => self.kind,
                };
            }
            if self.policy.is_none() {
                self.policy = p_param.map(str::to_owned);
            }
            if self.policy.is_some() || host.ends_with(".b2clogin.com") {
                self.provider = Provider::EntraB2c;
            }
            if oauth2_at == Some(0) {
                // No tenant segment at all (`/oauth2/…`).
                self.tenant = None;
            }
            return;
        }

        if segs.starts_with(&["adfs", "oauth2"]) {
            self.provider = Provider::Adfs;
            self.kind = kind_of(
                segs.get(2).copied().unwrap_or_default(),
                "authorize",
                "token",
            );
            return;
        }
        if let Some(i) = segs.iter().position(|s| *s == "realms")
            && segs.get(i + 2) == Some(&"protocol")
            && segs.get(i + 3) == Some(&"openid-connect")
        {
            self.provider = Provider::Keycloak;
            self.tenant = raw_segs.get(i + 1).map(|s| s.to_string());
            self.kind = kind_of(
                segs.get(i + 4).copied().unwrap_or_default(),
                "auth",
                "token",
            );
            return;
        }
        if matches!(
            host,
            "accounts.google.com" | "oauth2.googleapis.com" | "www.googleapis.com"
        ) {
            self.provider = Provider::Google;
            self.kind = match lower_path.trim_end_matches('/') {
                "/o/oauth2/v2/auth" | "/o/oauth2/auth" => EndpointKind::Authorize,
                "/token" | "/o/oauth2/token" | "/oauth2/v4/token" | "/oauth2/v3/token" => {
                    EndpointKind::Token
                }
                _ => self.kind,
            };
            return;
        }
        if segs.starts_with(&["login", "oauth"]) {
            self.provider = Provider::GitHub;
            self.kind = kind_of(
                segs.get(2).copied().unwrap_or_default(),
                "authorize",
                "access_token",
            );
            return;
        }
        if segs.first() == Some(&"as") && matches!(last, "authorization.oauth2" | "token.oauth2") {
            self.provider = Provider::Ping;
            self.kind = kind_of(last, "authorization.oauth2", "token.oauth2");
            return;
        }
        if host.ends_with(".amazoncognito.com") {
            self.provider = Provider::Cognito;
            if segs.first() == Some(&"oauth2") {
                self.kind = kind_of(last, "authorize", "token");
            }
            return;
        }
        let okta_host = [".okta.com", ".oktapreview.com", ".okta-emea.com"]
            .iter()
            .any(|d| host.ends_with(d));
        if segs.first() == Some(&"oauth2")
            && (segs.get(1) == Some(&"v1") || segs.get(2) == Some(&"v1"))
        {
            self.provider = Provider::Okta;
            self.tenant = Some(if segs.get(1) == Some(&"v1") {
                "(org)".to_owned()
            } else {
                raw_segs[1].to_owned()
            });
            self.kind = kind_of(last, "authorize", "token");
            return;
        }
        if okta_host {
            self.provider = Provider::Okta;
            return;
        }
        if host.ends_with(".auth0.com") {
            self.provider = Provider::Auth0;
        }
        // Generic shapes (also Auth0 custom domains, IdentityServer, OpenIddict).
        let trimmed = lower_path.trim_end_matches('/');
        const TOKEN_SUFFIXES: &[&str] = &[
            "/oauth2/token",
            "/oauth/token",
            "/connect/token",
            "/openid-connect/token",
            "/oauth/access_token",
            "/oauth2/access_token",
        ];
        if TOKEN_SUFFIXES.iter().any(|s| trimmed.ends_with(s)) {
            self.kind = EndpointKind::Token;
        } else if matches!(last, "authorize" | "authorization") {
            self.kind = EndpointKind::Authorize;
        }
    }

    /// True for the same tenant segment, ignoring case and the `consumers` alias.
    pub fn same_tenant(a: &str, b: &str) -> bool {
        normalise_tenant(a) == normalise_tenant(b)
    }

    /// Host identity for comparing two legs: the Entra cloud for Entra hosts
    /// (aliases are interchangeable), one name for Google's split hosts, else
    /// the host itself.
    pub fn host_group(&self) -> String {
        if let Some(cloud) = self.cloud {
            return format!("entra:{cloud}");
        }
        if self.provider == Provider::Google {
            return "google".to_owned();
        }
        self.host.clone()
    }

    /// True when both endpoints belong to providers whose hosts authlens can
    /// compare (two unknown servers may legitimately use separate hosts).
    pub fn hosts_comparable(&self, other: &Endpoint) -> bool {
        let known = |e: &Endpoint| e.provider != Provider::Generic;
        known(self) && known(other) || (self.provider.is_entra() && other.provider.is_entra())
    }
}

fn kind_of(seg: &str, authorize: &str, token: &str) -> EndpointKind {
    let seg = seg.trim_end_matches('/');
    if seg == authorize {
        EndpointKind::Authorize
    } else if seg == token {
        EndpointKind::Token
    } else {
        EndpointKind::Other
    }
}

fn normalise_tenant(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    if t == CONSUMERS_GUID {
        "consumers".to_owned()
    } else {
        t
    }
}

/// True for a tenant segment that is a GUID (as opposed to a domain or alias).
pub fn is_guid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

// === Discovery ===

/// The parts of an OIDC discovery / RFC 8414 metadata document authlens uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    /// RFC 9126 `pushed_authorization_request_endpoint`.
    pub pushed_authorization_request_endpoint: Option<String>,
    /// RFC 8628 `device_authorization_endpoint`.
    pub device_authorization_endpoint: Option<String>,
}

impl Discovery {
    /// True for `…/.well-known/openid-configuration` and
    /// `…/.well-known/oauth-authorization-server…` URLs.
    pub fn is_discovery_url(uri: &Uri) -> bool {
        let path = uri.path();
        path.ends_with("/.well-known/openid-configuration")
            || path.contains("/.well-known/oauth-authorization-server")
    }

    /// Parses a metadata document; `None` unless it names a token endpoint.
    pub fn parse(body: &[u8]) -> Option<Discovery> {
        let json: serde_json::Value = serde_json::from_slice(body).ok()?;
        let text = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let doc = Discovery {
            issuer: text("issuer"),
            authorization_endpoint: text("authorization_endpoint"),
            token_endpoint: text("token_endpoint"),
            pushed_authorization_request_endpoint: text("pushed_authorization_request_endpoint"),
            device_authorization_endpoint: text("device_authorization_endpoint"),
        };
        doc.token_endpoint.as_ref()?;
        Some(doc)
    }
}

/// Endpoints learnt from discovery documents, most recent first, bounded.
#[derive(Debug, Clone)]
pub struct KnownEndpoints {
    docs: VecDeque<Discovery>,
    cap: usize,
}

impl Default for KnownEndpoints {
    fn default() -> Self {
        KnownEndpoints::new(64)
    }
}

impl KnownEndpoints {
    pub fn new(cap: usize) -> Self {
        KnownEndpoints {
            docs: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Remembers a document (replacing an older one with the same token endpoint).
    pub fn learn(&mut self, doc: Discovery) {
        self.docs.retain(|d| d.token_endpoint != doc.token_endpoint);
        self.docs.push_front(doc);
        self.docs.truncate(self.cap);
    }

    /// True when `url` (no query) is a learnt token endpoint.
    pub fn is_token_endpoint(&self, url: &str) -> bool {
        let url = normalise_url(url);
        self.docs
            .iter()
            .filter_map(|d| d.token_endpoint.as_deref())
            .any(|t| normalise_url(t) == url)
    }

    /// True when `url` (no query) is a learnt PAR endpoint (RFC 9126).
    pub fn is_par_endpoint(&self, url: &str) -> bool {
        let url = normalise_url(url);
        self.docs
            .iter()
            .filter_map(|d| d.pushed_authorization_request_endpoint.as_deref())
            .any(|p| normalise_url(p) == url)
    }

    /// True when `url` (no query) is a learnt device authorization endpoint
    /// (RFC 8628): one at an unusual path is recognised even when it refuses.
    pub fn is_device_endpoint(&self, url: &str) -> bool {
        let url = normalise_url(url);
        self.docs
            .iter()
            .filter_map(|d| d.device_authorization_endpoint.as_deref())
            .any(|p| normalise_url(p) == url)
    }

    /// The learnt document whose authorization endpoint is `url` (no query).
    pub fn for_authorize(&self, url: &str) -> Option<&Discovery> {
        let url = normalise_url(url);
        self.docs.iter().find(|d| {
            d.authorization_endpoint
                .as_deref()
                .is_some_and(|a| normalise_url(a) == url)
        })
    }
}

/// Lower-cases scheme and host, drops query, fragment and a trailing slash.
fn normalise_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    format!(
        "{}://{}{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase(),
        path.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(url: &str) -> Endpoint {
        Endpoint::from_uri(&url.parse().unwrap())
    }

    #[test]
    fn entra_shapes() {
        let v2 = ep(
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/authorize?client_id=x",
        );
        assert_eq!(v2.provider, Provider::Entra);
        assert_eq!(v2.kind, EndpointKind::Authorize);
        assert_eq!(v2.cloud, Some("global"));
        assert_eq!(v2.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
        assert_eq!(v2.version, Some(ProtocolVersion::V2));
        assert_eq!(v2.policy, None);

        let v1 = ep("https://login.windows.net/common/oauth2/token");
        assert_eq!(v1.kind, EndpointKind::Token);
        assert_eq!(v1.version, Some(ProtocolVersion::V1));
        assert_eq!(v1.tenant.as_deref(), Some("common"));
        assert_eq!(v1.host_group(), v2.host_group());

        let cn = ep("https://login.chinacloudapi.cn/common/oauth2/v2.0/token");
        assert_eq!(cn.cloud, Some("china"));
        assert_ne!(cn.host_group(), v2.host_group());
    }

    #[test]
    fn b2c_shapes() {
        let a = ep(
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/B2C_1_signin/oauth2/v2.0/authorize",
        );
        assert_eq!(a.provider, Provider::EntraB2c);
        assert_eq!(a.policy.as_deref(), Some("B2C_1_signin"));
        assert_eq!(a.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
        let q = ep(
            "https://contoso.b2clogin.com/contoso.onmicrosoft.com/oauth2/v2.0/token?p=B2C_1_other",
        );
        assert_eq!(q.policy.as_deref(), Some("B2C_1_other"));
        assert_eq!(q.kind, EndpointKind::Token);
        let tfp = ep(
            "https://login.microsoftonline.com/tfp/contoso.onmicrosoft.com/b2c_1_x/oauth2/v2.0/token",
        );
        assert_eq!(tfp.provider, Provider::EntraB2c);
        assert_eq!(tfp.policy.as_deref(), Some("b2c_1_x"));
        assert_eq!(tfp.tenant.as_deref(), Some("contoso.onmicrosoft.com"));
        let custom =
            ep("https://login.contoso.com/contoso.onmicrosoft.com/B2C_1A_signup/oauth2/v2.0/token");
        assert_eq!(custom.provider, Provider::EntraB2c);
        assert_eq!(custom.cloud, None);
    }

    #[test]
    fn other_provider_shapes() {
        let cases = [
            (
                "https://adfs.contoso.com/adfs/oauth2/token/",
                Provider::Adfs,
                EndpointKind::Token,
            ),
            (
                "https://dev-1.okta.com/oauth2/default/v1/authorize",
                Provider::Okta,
                EndpointKind::Authorize,
            ),
            (
                "https://dev-1.okta.com/oauth2/v1/token",
                Provider::Okta,
                EndpointKind::Token,
            ),
            (
                "https://x.eu.auth0.com/oauth/token",
                Provider::Auth0,
                EndpointKind::Token,
            ),
            (
                "https://x.eu.auth0.com/authorize",
                Provider::Auth0,
                EndpointKind::Authorize,
            ),
            (
                "https://accounts.google.com/o/oauth2/v2/auth",
                Provider::Google,
                EndpointKind::Authorize,
            ),
            (
                "https://oauth2.googleapis.com/token",
                Provider::Google,
                EndpointKind::Token,
            ),
            (
                "https://kc.example/realms/demo/protocol/openid-connect/auth",
                Provider::Keycloak,
                EndpointKind::Authorize,
            ),
            (
                "https://kc.example/auth/realms/demo/protocol/openid-connect/token",
                Provider::Keycloak,
                EndpointKind::Token,
            ),
            (
                "https://app.auth.eu-west-1.amazoncognito.com/oauth2/token",
                Provider::Cognito,
                EndpointKind::Token,
            ),
            (
                "https://sso.example/as/token.oauth2",
                Provider::Ping,
                EndpointKind::Token,
            ),
            (
                "https://github.com/login/oauth/access_token",
                Provider::GitHub,
                EndpointKind::Token,
            ),
            (
                "https://id.example/connect/token",
                Provider::Generic,
                EndpointKind::Token,
            ),
            (
                "https://app.example/api/token",
                Provider::Generic,
                EndpointKind::Other,
            ),
        ];
        for (url, provider, kind) in cases {
            let e = ep(url);
            assert_eq!((e.provider, e.kind), (provider, kind), "{url}");
        }
        assert_eq!(
            ep("https://kc.example/realms/demo/protocol/openid-connect/token")
                .tenant
                .as_deref(),
            Some("demo")
        );
        assert_eq!(
            ep("https://dev-1.okta.com/oauth2/default/v1/token")
                .tenant
                .as_deref(),
            Some("default")
        );
    }

    #[test]
    fn tenants_and_guids() {
        assert!(Endpoint::same_tenant("Consumers", CONSUMERS_GUID));
        assert!(Endpoint::same_tenant(
            "Contoso.onmicrosoft.com",
            "contoso.onmicrosoft.com"
        ));
        assert!(!Endpoint::same_tenant("common", "organizations"));
        assert!(is_guid("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
    }

    #[test]
    fn lifetimes() {
        assert_eq!(
            Provider::Entra.default_code_lifetime(),
            Duration::from_secs(600)
        );
        assert_eq!(
            Provider::Okta.default_code_lifetime(),
            Duration::from_secs(300)
        );
        assert_eq!(
            Provider::Keycloak.default_code_lifetime(),
            Duration::from_secs(60)
        );
        assert_eq!(
            Provider::Generic.default_code_lifetime(),
            Duration::from_secs(600)
        );
    }

    #[test]
    fn learns_from_discovery() {
        let body = br#"{"issuer":"https://id.example","authorization_endpoint":"https://id.example/login/auth","token_endpoint":"https://tok.example/x/redeem","code_challenge_methods_supported":["S256"]}"#;
        assert!(Discovery::is_discovery_url(
            &"https://id.example/.well-known/openid-configuration"
                .parse()
                .unwrap()
        ));
        let doc = Discovery::parse(body).unwrap();
        let mut known = KnownEndpoints::new(2);
        known.learn(doc);
        assert!(known.is_token_endpoint("https://TOK.example/x/redeem/"));
        assert!(!known.is_token_endpoint("https://tok.example/x/other"));
        assert!(!known.is_par_endpoint("https://id.example/push"));
        known.learn(
            Discovery::parse(br#"{"token_endpoint":"https://id.example/t","pushed_authorization_request_endpoint":"https://id.example/push"}"#)
                .unwrap(),
        );
        assert!(known.is_par_endpoint("https://ID.example/push/"));
        assert!(
            known
                .for_authorize("https://id.example/login/auth")
                .is_some()
        );
        assert_eq!(Discovery::parse(b"not json"), None);
        assert_eq!(Discovery::parse(b"{\"issuer\":1}"), None);
        for i in 0..5 {
            known.learn(
                Discovery::parse(
                    format!("{{\"token_endpoint\":\"https://t{i}/token\"}}").as_bytes(),
                )
                .unwrap(),
            );
        }
        assert_eq!(known.docs.len(), 2);
    }
}
