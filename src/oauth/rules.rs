//! The rules: each one looks at one redemption (and the attempt it belongs
//! to) and says what is wrong, why, and how to fix it.
//!
//! Every function here is pure and returns [`Draft`]s; the analyzer stamps
//! them with attempt, exchange and time. Facts come from OAUTH.md; a clean
//! sign-in must produce nothing.

use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use super::attempt::Redemption;
use super::catalogue::{Entry, lookup_error_response};
use super::event::{Rule, Severity, clock, human_duration};
use super::jwt::Jwt;
use super::message::{
    AuthorizationResponse, AuthorizeRequest, BodyFormat, CodeGrant, Grant, TokenRequest,
    TokenResponse,
};
use super::params::has_percent_escape;
use super::pkce::{ChallengeCheck, check_challenge, check_verifier};
use super::provider::{Endpoint, KnownEndpoints, Provider, is_guid};
use super::redirect_uri::compare;
use super::secret::SecretPolicy;

/// A finding before the analyzer gives it an attempt, an exchange and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub rule: Rule,
    pub severity: Severity,
    pub field: Option<String>,
    pub message: String,
    pub fix: String,
    pub evidence: Map<String, Value>,
    /// A few words for an `idp-error` that this finding explains
    /// ("code first redeemed at 10:02:11").
    pub gist: String,
}

impl Draft {
    fn new(rule: Rule, field: Option<&str>, message: String, fix: &str, evidence: Value) -> Draft {
        Draft {
            rule,
            severity: rule.default_severity(),
            field: field.map(str::to_owned),
            gist: message.clone(),
            message,
            fix: fix.to_owned(),
            evidence: match evidence {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    fn severity(mut self, severity: Severity) -> Draft {
        self.severity = severity;
        self
    }

    fn gist(mut self, gist: String) -> Draft {
        self.gist = gist;
        self
    }
}

// === malformed-token-request ===

/// Parameters that belong in the token request body.
const TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "client_assertion",
    "client_assertion_type",
    "scope",
];

/// `malformed-token-request`: method, encoding, placement and presence of
/// parameters, client authentication.
pub fn malformed(
    req: &TokenRequest,
    grant: &CodeGrant,
    authorize: Option<&AuthorizeRequest>,
    secrets: SecretPolicy,
) -> Vec<Draft> {
    let rule = Rule::MalformedTokenRequest;
    let mut out = Vec::new();
    let names = |p: &super::params::Params| p.iter().map(|p| p.name.clone()).collect::<Vec<_>>();

    if req.method != http::Method::POST {
        out.push(Draft::new(
            rule,
            Some("method"),
            format!("token request sent with {}; the token endpoint accepts only POST", req.method),
            "Send the token request as POST with an application/x-www-form-urlencoded body (a GET usually means the token URL was opened in a browser or a client called it with the wrong method).",
            json!({ "method": req.method.as_str(), "endpoint": req.endpoint.url() }),
        ));
        let nothing = req.form.is_empty() && req.json.is_empty() && req.query.is_empty();
        if nothing {
            return out;
        }
    }

    match req.body_format {
        BodyFormat::Json => out.push(Draft::new(
            rule,
            Some("content-type"),
            "token request body is JSON; the token endpoint reads only an application/x-www-form-urlencoded form body".to_owned(),
            "Encode the parameters as a form (application/x-www-form-urlencoded, e.g. URLSearchParams or FormUrlEncodedContent), not as JSON.",
            json!({ "content_type": req.content_type, "parameters": names(&req.json) }),
        )),
        BodyFormat::Other => out.push(Draft::new(
            rule,
            Some("content-type"),
            format!(
                "token request body is not form-encoded (Content-Type: {})",
                req.content_type.as_deref().unwrap_or("none")
            ),
            "Send the parameters as an application/x-www-form-urlencoded body.",
            json!({ "content_type": req.content_type }),
        )),
        BodyFormat::Form if req.content_type.is_none() => out.push(Draft::new(
            rule,
            Some("content-type"),
            "token request has a form body but no Content-Type header".to_owned(),
            "Set Content-Type: application/x-www-form-urlencoded on the token request.",
            json!({ "content_type": Value::Null, "parameters": names(&req.form) }),
        )),
        BodyFormat::NotRecorded => out.push(
            Draft::new(
                rule,
                Some("body"),
                "the token request body was not recorded, so its parameters cannot be checked".to_owned(),
                "Record the body too: export the HAR with content (DevTools: \"Save all as HAR with content\"), or capture through authlens.",
                json!({ "body": "not recorded", "content_type": req.content_type }),
            )
            .severity(Severity::Warning),
        ),
        BodyFormat::Form | BodyFormat::Empty => {}
    }

    let in_query: Vec<&str> = TOKEN_PARAMS
        .iter()
        .copied()
        .filter(|n| req.query.contains(n))
        .collect();
    if !in_query.is_empty() {
        out.push(Draft::new(
            rule,
            Some("query"),
            format!(
                "{} sent in the URL query string; the token endpoint reads only the form body",
                in_query.join(", ")
            ),
            "Move the parameters into the POST body (application/x-www-form-urlencoded); never put a code or secret in a URL.",
            json!({ "query_parameters": in_query }),
        ));
    }
    if req.body_format == BodyFormat::NotRecorded {
        // Whatever else is missing may be in the unrecorded body.
        return out;
    }

    match &req.grant {
        None => out.push(missing(
            req,
            "grant_type",
            "Send grant_type=authorization_code in the form body.",
        )),
        Some(Grant::AuthorizationCode(_)) => {}
        Some(other) => out.push(Draft::new(
            rule,
            Some("grant_type"),
            format!(
                "grant_type is `{}`, expected `authorization_code`",
                other.name()
            ),
            "Send grant_type=authorization_code when redeeming a code.",
            json!({ "grant_type": other.name() }),
        )),
    }
    if grant.code.is_none() {
        out.push(missing(
            req,
            "code",
            "Send the code received on the redirect URI in the `code` parameter.",
        ));
    }
    if req.client_id().is_none() && req.param("client_assertion").is_none() {
        out.push(missing(
            req,
            "client_id",
            "Send client_id in the form body (or authenticate with HTTP Basic).",
        ));
    }
    if let Some(authorize) = authorize
        && let Some(sent) = authorize.redirect_uri.as_deref()
        && grant.redirect_uri.is_none()
    {
        let mut d = missing(
            req,
            "redirect_uri",
            "Send the same redirect_uri as at /authorize: it is required at /token whenever it was sent there.",
        );
        d.evidence.insert("authorize".into(), json!(sent));
        out.push(d);
    }

    let mut repeated: Vec<&str> = req.form.duplicates();
    for n in req.query.duplicates() {
        if !repeated.contains(&n) {
            repeated.push(n);
        }
    }
    if !repeated.is_empty() {
        out.push(Draft::new(
            rule,
            Some("duplicate"),
            format!(
                "{} sent more than once; a parameter must appear only once",
                repeated.join(", ")
            ),
            "Send each parameter once (check that a library and your code do not both add it).",
            json!({ "repeated": repeated }),
        ));
    }

    let methods = req.client_auth_methods();
    if methods.len() > 1 {
        out.push(Draft::new(
            rule,
            Some("client-auth"),
            format!("client authenticates in {} ways at once ({}); only one is allowed", methods.len(), methods.join(" + ")),
            "Use exactly one client authentication method: HTTP Basic, or client_secret in the body, or client_assertion.",
            json!({ "methods": methods }),
        ));
    }

    for name in ["code", "client_id", "code_verifier", "redirect_uri"] {
        let Some(param) = req.form.first(name).or_else(|| req.query.first(name)) else {
            continue;
        };
        let double = if name == "redirect_uri" {
            let v = param.value.to_ascii_lowercase();
            v.starts_with("http%3a") || v.starts_with("https%3a")
        } else {
            has_percent_escape(&param.value)
        };
        let unencoded_plus = name != "redirect_uri" && param.raw_value.contains('+');
        if !(double || unencoded_plus) {
            continue;
        }
        let shown = secrets.show_param(name, &param.value);
        let (message, fix) = if double {
            (
                format!(
                    "{name} is percent-encoded twice (after decoding it still holds %XX escapes)"
                ),
                "Encode each value exactly once: pass the raw value to the form encoder, not an already URL-encoded one.",
            )
        } else {
            (
                format!(
                    "{name} holds a `+` that was not percent-encoded, so the server reads a space"
                ),
                "Percent-encode the value (a form encoder turns `+` into %2B); do not build the body by string concatenation.",
            )
        };
        out.push(Draft::new(
            rule,
            Some("encoding"),
            message,
            fix,
            json!({ "parameter": name, "value": shown }),
        ));
    }
    out
}

fn missing(req: &TokenRequest, name: &str, fix: &str) -> Draft {
    let empty = req.form.contains(name) || req.json.contains(name) || req.query.contains(name);
    Draft::new(
        Rule::MalformedTokenRequest,
        Some(name),
        format!(
            "token request {} {name}",
            if empty { "has an empty" } else { "has no" }
        ),
        fix,
        json!({ "parameter": name, "present_but_empty": empty }),
    )
}

// === endpoint-mismatch ===

/// `endpoint-mismatch`: cloud/host, tenant, protocol version, B2C policy.
pub fn endpoint_mismatch(
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

// === param-mismatch ===

/// `param-mismatch`: redirect_uri, client_id, scope, resource.
pub fn param_mismatch(
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
        let entra = matches!(
            authorize.endpoint.provider,
            Provider::Entra | Provider::EntraB2c | Provider::EntraExternalId
        );
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

// === PKCE ===

/// `pkce-*`: challenge at /authorize versus verifier at /token.
pub fn pkce(
    authorize: Option<&AuthorizeRequest>,
    grant: &CodeGrant,
    secrets: SecretPolicy,
) -> Vec<Draft> {
    let verifier = grant.code_verifier.as_deref();
    let challenge = authorize.and_then(|a| a.code_challenge.as_deref());
    let method = authorize.and_then(|a| a.code_challenge_method.as_deref());
    let shown = verifier.map(|v| secrets.show("code_verifier", v));
    // A HAR recorded with secrets redacted holds the verifier's fingerprint:
    // its syntax and its S256 hash cannot be checked (a plain challenge was
    // redacted alike, so equality still can).
    let redacted = verifier.is_some_and(|v| super::secret::is_fingerprint("code_verifier", v));
    let mut out = Vec::new();

    if let Some(v) = verifier
        && !redacted
        && let Err(problem) = check_verifier(v)
    {
        out.push(Draft::new(
            Rule::PkceInvalidVerifier,
            Some("code_verifier"),
            format!("code_verifier is not valid PKCE: {}", problem.describe()),
            "Generate the verifier as 43-128 characters of A-Z a-z 0-9 - . _ ~ (e.g. 32 random bytes, base64url without padding).",
            json!({ "code_verifier": shown, "length": v.len() }),
        ));
    }
    let Some(authorize) = authorize else {
        return out;
    };
    match (challenge, verifier) {
        (Some(c), None) => out.push(Draft::new(
            Rule::PkceMissingVerifier,
            Some("code_verifier"),
            "/authorize sent a code_challenge but the token request has no code_verifier".to_owned(),
            "Send the code_verifier that produced the challenge. It is usually lost when several instances don't share session storage, or a cookie holding it was dropped or rewritten.",
            json!({ "code_challenge": c, "code_challenge_method": method }),
        )),
        (None, Some(_)) => out.push(Draft::new(
            Rule::PkceUnexpectedVerifier,
            Some("code_verifier"),
            "token request sends a code_verifier but /authorize sent no code_challenge".to_owned(),
            "Send the code_challenge at /authorize too (or no verifier at /token): a verifier without a challenge is refused (RFC 9700 §2.1.1).",
            json!({ "code_verifier": shown, "authorize_client_id": authorize.client_id }),
        )),
        (Some(_), Some(_)) if redacted && method == Some("S256") => {}
        (Some(c), Some(v)) if out.is_empty() => match check_challenge(c, method, v) {
            ChallengeCheck::Matches => {}
            ChallengeCheck::Differs { computed } => out.push(Draft::new(
                Rule::PkceMismatch,
                Some("code_verifier"),
                format!(
                    "code_verifier does not match the code_challenge ({} of the verifier gives `{computed}`, /authorize sent `{c}`)",
                    method.unwrap_or("plain")
                ),
                "Send the verifier generated with this challenge: it was probably regenerated or taken from another sign-in (several instances, a restart, a rewritten cookie).",
                json!({ "code_challenge": c, "code_challenge_method": method, "computed_challenge": computed, "code_verifier": shown }),
            )),
            ChallengeCheck::UnknownMethod(m) => out.push(Draft::new(
                Rule::PkceMismatch,
                Some("code_challenge_method"),
                format!("code_challenge_method `{m}` is neither S256 nor plain, so the verifier cannot match"),
                "Use code_challenge_method=S256 (exactly that spelling).",
                json!({ "code_challenge": c, "code_challenge_method": m, "code_verifier": shown }),
            )),
        },
        _ => {}
    }
    out
}

// === code lifetime and single use ===

/// Where the lifetime came from, for evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifetimeSource {
    Override,
    Provider(Provider),
}

/// `code-expired` / `code-near-expiry`.
pub fn code_age(
    code_shown: &str,
    issued_at: OffsetDateTime,
    redeemed_at: OffsetDateTime,
    lifetime: Duration,
    source: LifetimeSource,
) -> Option<Draft> {
    let age: Duration = (redeemed_at - issued_at).try_into().unwrap_or_default();
    let source_text = match source {
        LifetimeSource::Override => "--code-lifetime".to_owned(),
        LifetimeSource::Provider(p) => format!("{p} default"),
    };
    let evidence = json!({
        "code": code_shown,
        "issued_at": super::event::rfc3339(issued_at),
        "redeemed_at": super::event::rfc3339(redeemed_at),
        "age_seconds": age.as_secs_f64(),
        "lifetime_seconds": lifetime.as_secs(),
        "lifetime_source": source_text,
    });
    let (age_h, life_h) = (human_duration(age), human_duration(lifetime));
    if age > lifetime {
        Some(
            Draft::new(
                Rule::CodeExpired,
                Some("code"),
                format!("{code_shown} redeemed {age_h} after it was issued; codes live about {life_h} ({source_text})"),
                "Redeem the code as soon as the callback receives it: don't queue it, keep it across restarts or wait for user input first.",
                evidence,
            )
            .gist(format!("code was {age_h} old, lifetime {life_h}")),
        )
    } else if age.as_secs_f64() > lifetime.as_secs_f64() * 0.8 {
        let pct = (age.as_secs_f64() / lifetime.as_secs_f64() * 100.0).round();
        Some(
            Draft::new(
                Rule::CodeNearExpiry,
                Some("code"),
                format!("{code_shown} redeemed {age_h} after it was issued, {pct}% of its {life_h} lifetime"),
                "Redeem the code immediately in the callback; something between the redirect and the token request is slow.",
                evidence,
            )
            .gist(format!("code was {age_h} old, close to its {life_h} lifetime")),
        )
    } else {
        None
    }
}

/// `code-reused`: evidence names the first redemption, its time and outcome.
pub fn code_reused(code_shown: &str, first: &Redemption, count: u32, now: OffsetDateTime) -> Draft {
    let since: Duration = (now - first.time).try_into().unwrap_or_default();
    Draft::new(
        Rule::CodeReused,
        Some("code"),
        format!(
            "{code_shown} was already redeemed at {} (exchange {}, {}), {} earlier; a code is single-use",
            clock(first.time),
            first.exchange,
            first.outcome.describe(),
            human_duration(since)
        ),
        "Redeem each code once: guard the callback against reloads, back button and double submits, don't retry a token request that timed out, and let only one handler (middleware or your code) redeem it.",
        json!({
            "code": code_shown,
            "first_redemption": {
                "exchange": first.exchange,
                "time": super::event::rfc3339(first.time),
                "outcome": first.outcome.describe(),
            },
            "redemption": count + 1,
        }),
    )
    .gist(format!("code first redeemed at {}", clock(first.time)))
}

/// `token-without-authorize`.
pub fn token_without_authorize(code_shown: &str) -> Draft {
    Draft::new(
        Rule::TokenWithoutAuthorize,
        Some("code"),
        format!("{code_shown} was never seen issued by an authorization response"),
        "If the sign-in started before authlens was running, start it again; otherwise make sure the browser uses the proxy too (and trusts its CA). A code must come from this client's own /authorize redirect, not from another app, an old URL or a test fixture.",
        json!({ "code": code_shown }),
    )
    .gist(format!("{code_shown} was never seen issued"))
}

// === tokens: nonce-mismatch, token-issuer-mismatch ===

/// `nonce-mismatch`: the id_token must carry the nonce sent at /authorize
/// (OpenID Connect Core §3.1.3.7); `sent` is that nonce.
pub fn nonce_mismatch(sent: Option<&str>, id_token: &Jwt) -> Option<Draft> {
    let sent = sent?;
    let (message, got) = match id_token.nonce.as_deref() {
        Some(got) if got == sent => return None,
        Some(got) => (
            format!("id_token nonce `{got}` differs from the nonce `{sent}` sent at /authorize"),
            Some(got),
        ),
        None => (
            format!("id_token has no nonce claim although /authorize sent nonce `{sent}`"),
            None,
        ),
    };
    Some(Draft::new(
        Rule::NonceMismatch,
        Some("nonce"),
        message,
        "Reject this id_token: compare its nonce with the one stored for this sign-in. A different nonce means the token belongs to another sign-in (two tabs, a stale session value overwritten by a parallel login, a replayed response) or the nonce storage (cookie, session) was lost between the legs.",
        json!({ "authorize": sent, "id_token": got }),
    ))
}

/// `token-issuer-mismatch`: an Entra id_token whose `tid` or `iss` names
/// another tenant than the authorize endpoint. Silent for the multi-tenant
/// segments (`common`, `organizations`, `consumers`), which accept users of
/// any tenant, and for a domain segment whose tenant id is unknown (learnt
/// only from a discovery document seen through the proxy).
pub fn token_issuer_mismatch(
    authorize: &Endpoint,
    known: &KnownEndpoints,
    id_token: &Jwt,
) -> Option<Draft> {
    if !matches!(
        authorize.provider,
        Provider::Entra | Provider::EntraB2c | Provider::EntraExternalId
    ) {
        return None;
    }
    let segment = authorize.tenant.as_deref()?;
    if ["common", "organizations", "consumers"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(segment))
    {
        return None;
    }
    let expected = if is_guid(segment) {
        segment.to_ascii_lowercase()
    } else {
        known
            .for_authorize(&authorize.url())
            .and_then(|d| d.issuer.as_deref())
            .and_then(issuer_tenant)?
    };
    let from_iss = id_token.iss.as_deref().and_then(issuer_tenant);
    let from_tid = id_token.tid.as_deref().map(str::to_ascii_lowercase);
    let (field, other) = [("tid", from_tid), ("iss", from_iss)]
        .into_iter()
        .find_map(|(field, t)| t.filter(|t| *t != expected).map(|t| (field, t)))?;
    Some(Draft::new(
        Rule::TokenIssuerMismatch,
        Some(field),
        format!(
            "id_token issued by tenant {other} ({field}), but /authorize went to tenant /{segment}/{}",
            if is_guid(segment) {
                String::new()
            } else {
                format!(" ({expected})")
            }
        ),
        "Check which tenant the app trusts: the authority (tenant) configured for sign-in and the issuer the app validates must be the same directory. A token from another tenant usually means a wrong tenant id in one configuration value, or a response meant for another app.",
        json!({
            "authorize_tenant": segment,
            "expected_tenant": expected,
            "iss": id_token.iss,
            "tid": id_token.tid,
        }),
    ))
}

/// The tenant GUID in an Entra issuer URL
/// (`https://login.microsoftonline.com/{tid}/v2.0`, `https://sts.windows.net/{tid}/`,
/// `https://{t}.b2clogin.com/{tid}/v2.0/`), lower-cased.
fn issuer_tenant(iss: &str) -> Option<String> {
    let uri: http::Uri = iss.parse().ok()?;
    let first = uri.path().split('/').find(|s| !s.is_empty())?;
    is_guid(first).then(|| first.to_ascii_lowercase())
}

// === idp-error ===

/// The catalogue entries that describe this error most specifically: the
/// numbered ones (AADSTS…, AADB2C…) when the IdP named a number, else the
/// description matchers, else the provider-scoped and generic `error` entries.
fn most_specific(entries: Vec<&'static Entry>) -> Vec<&'static Entry> {
    fn tier(e: &Entry) -> u8 {
        let upper = e.code.to_ascii_uppercase();
        if upper.starts_with("AADSTS") || upper.starts_with("AADB2C") {
            0
        } else if e.code.matches(':').count() >= 2 {
            1
        } else {
            2
        }
    }
    let Some(best) = entries.iter().map(|e| tier(e)).min() else {
        return entries;
    };
    entries.into_iter().filter(|e| tier(e) == best).collect()
}

/// The IdP's error, as given to [`idp_error`].
pub struct IdpErrorInput<'a> {
    /// `"token"` or `"authorize"`.
    pub leg: &'static str,
    pub status: Option<u16>,
    pub error: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Most specific first (`AADSTS54005`, …).
    pub codes: &'a [String],
    pub numbers: &'a [u64],
    pub trace_id: Option<&'a str>,
    pub correlation_id: Option<&'a str>,
}

impl<'a> IdpErrorInput<'a> {
    pub fn from_token(resp: &'a TokenResponse) -> Self {
        IdpErrorInput {
            leg: "token",
            status: Some(resp.status),
            error: resp.error.as_deref(),
            description: resp.error_description.as_deref(),
            codes: &resp.error_codes,
            numbers: &resp.error_numbers,
            trace_id: resp.trace_id.as_deref(),
            correlation_id: resp.correlation_id.as_deref(),
        }
    }

    pub fn from_authorize(resp: &'a AuthorizationResponse) -> Self {
        IdpErrorInput {
            leg: "authorize",
            status: None,
            error: resp.error.as_deref(),
            description: resp.error_description.as_deref(),
            codes: &resp.error_codes,
            numbers: &[],
            trace_id: resp.params.get("trace_id"),
            correlation_id: resp.params.get("correlation_id"),
        }
    }
}

/// `idp-error`: the catalogue meaning, and whether authlens's own findings
/// (`seen`, earlier on this redemption) agree.
pub fn idp_error(input: &IdpErrorInput<'_>, seen: &[Draft]) -> Draft {
    let entries = most_specific(lookup_error_response(
        input.error,
        input.numbers,
        input.description,
    ));
    let field = input
        .codes
        .first()
        .cloned()
        .or_else(|| input.error.map(str::to_owned))
        .or_else(|| input.status.map(|s| format!("HTTP {s}")));
    let label = match (input.codes.first(), input.error) {
        (Some(code), Some(error)) => format!("{code} {error}"),
        (Some(code), None) => code.clone(),
        (None, Some(error)) => error.to_owned(),
        (None, None) => format!("HTTP {}", input.status.unwrap_or_default()),
    };
    let meaning = entries
        .first()
        .map(|e| e.meaning.clone())
        .or_else(|| input.description.map(first_sentence))
        .unwrap_or_else(|| "no description given".to_owned());
    let meaning = meaning.trim_end_matches('.');
    // A finding of a rule the entry names; one about the field the entry
    // talks of first (500112 is about redirect_uri, not scope).
    let candidates = seen.iter().filter(|d| {
        d.rule != Rule::IdpError
            && entries
                .iter()
                .any(|e| e.rules.iter().any(|r| r == d.rule.id()))
    });
    let named = |d: &&Draft| {
        d.field.as_deref().is_some_and(|f| {
            entries.iter().any(|e| {
                e.meaning
                    .to_ascii_lowercase()
                    .contains(&f.to_ascii_lowercase())
            })
        })
    };
    let explained = candidates
        .clone()
        .find(named)
        .or_else(|| candidates.clone().next());
    let agreement = match (explained, input.leg) {
        (Some(d), _) => format!("confirmed: {}", d.gist),
        (None, "authorize") => "refused before any code was issued".to_owned(),
        (None, _) if seen.iter().any(|d| d.rule != Rule::IdpError) => {
            "not explained by authlens's other findings".to_owned()
        }
        (None, _) => "IdP error not explained by anything authlens saw: check the app registration"
            .to_owned(),
    };
    let leg = if input.leg == "authorize" {
        "/authorize"
    } else {
        "the token request"
    };
    let fix = explained
        .map(|d| d.fix.clone())
        .or_else(|| entries.first().and_then(|e| e.fix.first().cloned()))
        .unwrap_or_else(|| {
            format!(
                "Look up {} in the provider's documentation and compare the token request with its /authorize request.",
                field.as_deref().unwrap_or("the error")
            )
        });
    Draft::new(
        Rule::IdpError,
        field.as_deref(),
        format!("IdP refused {leg}: {label}: {meaning} — {agreement}"),
        &fix,
        json!({
            "leg": input.leg,
            "status": input.status,
            "error": input.error,
            "error_description": input.description,
            "error_codes": input.codes,
            "trace_id": input.trace_id,
            "correlation_id": input.correlation_id,
            "catalogue": entries.iter().map(|e| e.code.clone()).collect::<Vec<_>>(),
            "confirmed_by": explained.map(|d| d.rule.id()),
        }),
    )
}

/// The description up to its first line break or trace footer, capped.
fn first_sentence(text: &str) -> String {
    let line = text.split(['\r', '\n']).next().unwrap_or_default();
    let line = line.split(" Trace ID:").next().unwrap_or(line).trim();
    let mut out: String = line.chars().take(200).collect();
    if line.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests;
