//! client_credentials (OAUTH.md §7): on Entra v2 the scope must be
//! `{resource}/.default` (AADSTS1002012 otherwise), reported as
//! `malformed-token-request` on the field `scope`.

use serde_json::json;

use super::Draft;
use crate::oauth::event::Rule;
use crate::oauth::provider::{Endpoint, ProtocolVersion};

/// `malformed-token-request` (field `scope`) for an Entra v2
/// client_credentials call whose scope is not one `{resource}/.default`.
pub(super) fn scope_not_default(endpoint: &Endpoint, scope: Option<&str>) -> Option<Draft> {
    if !endpoint.provider.is_entra() || endpoint.version != Some(ProtocolVersion::V2) {
        return None;
    }
    let scopes: Vec<&str> = scope.unwrap_or_default().split_whitespace().collect();
    let fine = scopes.len() == 1
        && scopes[0].len() > "/.default".len()
        && scopes[0].ends_with("/.default");
    if fine {
        return None;
    }
    let message = match scopes.as_slice() {
        [] => "client_credentials on the Entra v2 endpoint sent no scope; it must be `{resource}/.default`".to_owned(),
        _ => format!(
            "client_credentials on the Entra v2 endpoint sent scope `{}`; it must be exactly one `{{resource}}/.default` (the app permissions granted to the app, not delegated scopes)",
            scopes.join(" ")
        ),
    };
    Some(
        Draft::new(
            Rule::MalformedTokenRequest,
            Some("scope"),
            message,
            "Send scope={resource}/.default, e.g. `https://graph.microsoft.com/.default` or `api://<app-id>/.default`, and grant the app its application permissions (roles) in the registration.",
            json!({ "scope": scope, "expected": "{resource}/.default" }),
        )
        .gist("scope is not `{resource}/.default`".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::from_uri(&url.parse().unwrap())
    }

    #[test]
    fn entra_v2_needs_one_default_scope() {
        let v2 = endpoint("https://login.microsoftonline.com/t/oauth2/v2.0/token");
        assert!(scope_not_default(&v2, Some("https://graph.microsoft.com/.default")).is_none());
        assert!(scope_not_default(&v2, Some("api://x/.default")).is_none());
        for bad in [
            None,
            Some("User.Read"),
            Some("https://graph.microsoft.com/User.Read"),
            Some("/.default"),
            Some("a/.default b/.default"),
        ] {
            let d = scope_not_default(&v2, bad).unwrap_or_else(|| panic!("{bad:?}"));
            assert_eq!(d.field.as_deref(), Some("scope"));
        }
        // v1 takes `resource`; other providers have their own rules.
        let v1 = endpoint("https://login.microsoftonline.com/t/oauth2/token");
        assert!(scope_not_default(&v1, None).is_none());
        let okta = endpoint("https://dev-1.okta.com/oauth2/default/v1/token");
        assert!(scope_not_default(&okta, Some("read")).is_none());
    }
}
