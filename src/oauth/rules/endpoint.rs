//! `endpoint-mismatch`: a code redeemed at another provider, cloud, tenant,
//! protocol version or B2C policy than the one that issued it (OAUTH.md §2,
//! §4). Endpoints only: the parameters sent to them are `param.rs`'s.

use serde_json::{Value, json};

use super::Draft;
use crate::oauth::event::{Rule, Severity};
use crate::oauth::provider::{Endpoint, KnownEndpoints, Provider, is_guid};

/// `endpoint-mismatch`: cloud/host, tenant, protocol version, B2C policy.
pub(super) fn endpoint_mismatch(
    authorize: &Endpoint,
    token: &Endpoint,
    known: &KnownEndpoints,
) -> Vec<Draft> {
    let rule = Rule::EndpointMismatch;
    let mut out = Vec::new();
    let both = json!({ "authorize": authorize.url(), "token": token.url() });
    let with = |extra: Value| {
        let mut v = both.clone();
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        v
    };

    let learnt = known
        .for_authorize(&authorize.url())
        .and_then(|d| d.token_endpoint.as_deref())
        .filter(|t| {
            t.parse::<http::Uri>().is_ok_and(|u| {
                u.host()
                    .is_some_and(|h| !h.eq_ignore_ascii_case(&token.host))
            })
        });
    if let Some(expected) = learnt {
        out.push(Draft::new(
            rule,
            Some("host"),
            format!(
                "code redeemed at {} but the provider's discovery document names {expected}",
                token.host
            ),
            "Redeem the code at the token_endpoint of the same provider that issued it.",
            with(json!({ "discovery_token_endpoint": expected })),
        ));
    } else if authorize.hosts_comparable(token) && authorize.host_group() != token.host_group() {
        let describe = |e: &Endpoint| match e.cloud {
            Some(cloud) => format!("{} ({cloud} cloud)", e.host),
            None => e.host.clone(),
        };
        out.push(Draft::new(
            rule,
            Some("host"),
            format!("code issued by {} redeemed at {}", describe(authorize), describe(token)),
            "Redeem the code at the token endpoint of the same provider and cloud that issued it (one authority setting for both legs).",
            with(json!({ "authorize_host": authorize.host, "token_host": token.host })),
        ));
    }

    let same_family = authorize.provider == token.provider
        || (matches!(authorize.provider, Provider::Entra | Provider::EntraB2c)
            && matches!(token.provider, Provider::Entra | Provider::EntraB2c));
    if !same_family {
        return out;
    }
    if let (Some(a), Some(t)) = (&authorize.tenant, &token.tenant)
        && !Endpoint::same_tenant(a, t)
    {
        let maybe_same = is_guid(a) != is_guid(t) && (a.contains('.') || t.contains('.'));
        let mut d = Draft::new(
            rule,
            Some("tenant"),
            if maybe_same {
                format!(
                    "tenant segment differs: /{a}/ at /authorize, /{t}/ at /token (the same tenant only if that GUID belongs to that domain)"
                )
            } else {
                format!("tenant segment differs: /{a}/ at /authorize, /{t}/ at /token")
            },
            "Use the same authority (tenant segment) for /authorize and /token; a code from /common or another tenant is refused (AADSTS700005).",
            with(json!({ "authorize_tenant": a, "token_tenant": t })),
        );
        if maybe_same {
            d = d.severity(Severity::Warning);
        }
        out.push(d);
    }
    if let (Some(a), Some(t)) = (authorize.version, token.version)
        && a != t
    {
        out.push(Draft::new(
            rule,
            Some("version"),
            format!("protocol version differs: {} at /authorize, {} at /token", a.as_str(), t.as_str()),
            "Use the same endpoint version for both legs: /oauth2/v2.0/authorize with /oauth2/v2.0/token, or /oauth2/authorize with /oauth2/token.",
            with(json!({ "authorize_version": a.as_str(), "token_version": t.as_str() })),
        ));
    }
    let b2c = authorize.provider == Provider::EntraB2c || token.provider == Provider::EntraB2c;
    let policy = |e: &Endpoint| e.policy.as_deref().map(str::to_ascii_lowercase);
    if b2c && policy(authorize) != policy(token) {
        let show = |p: &Option<String>| p.clone().unwrap_or_else(|| "(none)".to_owned());
        out.push(Draft::new(
            rule,
            Some("policy"),
            format!(
                "B2C policy differs: {} at /authorize, {} at /token",
                show(&authorize.policy),
                show(&token.policy)
            ),
            "Redeem the code at the token endpoint of the same user flow / custom policy that issued it (AADB2C90088).",
            with(json!({ "authorize_policy": authorize.policy, "token_policy": token.policy })),
        ));
    }
    out
}
