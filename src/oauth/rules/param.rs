//! `param-mismatch`: what a code redemption must repeat from /authorize
//! (redirect_uri, client_id, scope, Entra v1 resource; OAUTH.md §2). The
//! endpoints are `endpoint.rs`'s to compare, the PKCE pair `pkce.rs`'s.

use serde_json::json;

use super::Draft;
use crate::oauth::event::{Rule, Severity};
use crate::oauth::message::{AuthorizeRequest, CodeGrant, TokenRequest};
use crate::oauth::redirect_uri::compare;

/// `param-mismatch`: redirect_uri, client_id, scope, resource.
pub(super) fn param_mismatch(
    authorize: &AuthorizeRequest,
    req: &TokenRequest,
    grant: &CodeGrant,
) -> Vec<Draft> {
    let rule = Rule::ParamMismatch;
    let mut out = Vec::new();

    if let (Some(a), Some(t)) = (
        authorize.redirect_uri.as_deref(),
        grant.redirect_uri.as_deref(),
    ) && let Some(diff) = compare(a, t)
    {
        let fix = if diff.loopback_port_only {
            "Loopback redirect URIs may use any port (RFC 8252 §7.3), but reuse the port of /authorize if the IdP refuses it."
        } else if diff
            .aspects
            .iter()
            .any(|a| matches!(*a, "scheme" | "host" | "port"))
        {
            "Send exactly the redirect_uri of /authorize. A reverse proxy or load balancer may be changing scheme, host or port: honour X-Forwarded-* headers or configure the redirect URI explicitly."
        } else if diff.aspects.contains(&"percent-encoding") {
            "Encode the redirect_uri once, the same way in both requests (pass the raw URL to the form encoder)."
        } else {
            "Send exactly the redirect_uri string of /authorize (same trailing slash, case and path): build both from one configuration value."
        };
        let mut d = Draft::new(
            rule,
            Some("redirect_uri"),
            format!(
                "redirect_uri differs from /authorize ({}): `{t}` at /token, `{a}` at /authorize",
                diff.describe()
            ),
            fix,
            json!({ "authorize": a, "token": t, "difference": diff.aspects }),
        )
        .gist(format!(
            "authlens saw `{t}` at /token vs `{a}` at /authorize ({})",
            diff.describe()
        ));
        if diff.loopback_port_only {
            d = d.severity(Severity::Warning);
        }
        out.push(d);
    }

    if let Some(t) = req.client_id()
        && t != authorize.client_id
    {
        let source = if req.param("client_id").is_some() {
            "body"
        } else {
            "basic"
        };
        out.push(Draft::new(
            rule,
            Some("client_id"),
            format!("client_id differs: `{t}` at /token, `{}` at /authorize; a code is bound to the client that asked for it", authorize.client_id),
            "Redeem the code with the same client (application) id that requested it.",
            json!({ "authorize": authorize.client_id, "token": t, "token_source": source }),
        ));
    }

    if let (Some(a), Some(t)) = (authorize.scope.as_deref(), req.param("scope")) {
        let entra = authorize.endpoint.provider.is_entra();
        let granted: Vec<Scope> = a
            .split_whitespace()
            .map(|s| Scope::parse(s, entra))
            .collect();
        let beyond: Vec<&str> = t
            .split_whitespace()
            .filter(|s| {
                let s = Scope::parse(s, entra);
                !s.oidc && !granted.iter().any(|g| g.covers(&s))
            })
            .collect();
        if !beyond.is_empty() {
            let other_resource = t
                .split_whitespace()
                .map(|s| Scope::parse(s, entra))
                .any(|s| s.resource.is_some() && !granted.iter().any(|g| g.resource == s.resource));
            out.push(Draft::new(
                rule,
                Some("scope"),
                if other_resource {
                    format!("scope at /token names another resource than /authorize: `{}` not in `{a}`", beyond.join(" "))
                } else {
                    format!("scope at /token asks beyond what /authorize requested: `{}` not in `{a}`", beyond.join(" "))
                },
                "Send at /token the scopes of /authorize (or none); ask for other resources afterwards with the refresh token.",
                json!({ "authorize": a, "token": t, "beyond": beyond }),
            ));
        }
    }

    if let (Some(a), Some(t)) = (authorize.resource.as_deref(), req.param("resource"))
        && a != t
    {
        out.push(Draft::new(
            rule,
            Some("resource"),
            format!("resource differs: `{t}` at /token, `{a}` at /authorize"),
            "Send the same resource at both legs (Entra v1).",
            json!({ "authorize": a, "token": t }),
        ));
    }
    out
}

/// One scope, with the resource it belongs to where that can be told.
#[derive(Debug, PartialEq, Eq)]
struct Scope {
    full: String,
    resource: Option<String>,
    permission: String,
    oidc: bool,
}

impl Scope {
    fn parse(s: &str, entra: bool) -> Scope {
        const OIDC: &[&str] = &[
            "openid",
            "profile",
            "email",
            "offline_access",
            "address",
            "phone",
        ];
        let oidc = OIDC.contains(&s);
        let (resource, permission) = match s.rfind('/') {
            Some(i) if entra && i > 0 => {
                let r = &s[..i];
                let r = if r == "00000003-0000-0000-c000-000000000000" {
                    "https://graph.microsoft.com"
                } else {
                    r
                };
                (
                    Some(r.trim_end_matches('/').to_ascii_lowercase()),
                    s[i + 1..].to_owned(),
                )
            }
            // A bare Entra scope (`User.Read`) is Microsoft Graph.
            _ if entra && !oidc => (Some("https://graph.microsoft.com".to_owned()), s.to_owned()),
            _ => (None, s.to_owned()),
        };
        Scope {
            full: s.to_owned(),
            resource,
            permission,
            oidc,
        }
    }

    /// True when this granted scope covers `asked`.
    fn covers(&self, asked: &Scope) -> bool {
        if self.full == asked.full {
            return true;
        }
        if self.resource.is_none() || self.resource != asked.resource {
            return false;
        }
        self.permission.eq_ignore_ascii_case(&asked.permission)
            || self.permission == ".default"
            || asked.permission == ".default"
    }
}
