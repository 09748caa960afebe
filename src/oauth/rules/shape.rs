//! `malformed-token-request`: the shape of a code redemption. Its method and
//! encoding, where its parameters sit, which it lacks or repeats, how the
//! client authenticates. Values are compared with /authorize elsewhere; only
//! the presence of a redirect_uri sent there is checked here.

use serde_json::{Value, json};

use super::Draft;
use crate::oauth::event::{Rule, Severity};
use crate::oauth::message::{AuthorizeRequest, BodyFormat, CodeGrant, Grant, TokenRequest};
use crate::oauth::params::{Params, has_percent_escape};
use crate::oauth::secret::SecretPolicy;

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
pub(super) fn malformed(
    req: &TokenRequest,
    grant: &CodeGrant,
    authorize: Option<&AuthorizeRequest>,
    secrets: SecretPolicy,
) -> Vec<Draft> {
    let rule = Rule::MalformedTokenRequest;
    let mut out = Vec::new();
    let names = |p: &Params| p.iter().map(|p| p.name.clone()).collect::<Vec<_>>();

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
    // Only a body read whole can lack a parameter: the rest of a body read
    // in part may hold it (`body-not-analysed` says so).
    let known = req.params_known();

    match &req.grant {
        None if !known => {}
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
    if known && grant.code.is_none() {
        out.push(missing(
            req,
            "code",
            "Send the code received on the redirect URI in the `code` parameter.",
        ));
    }
    if known && req.client_id().is_none() && req.param("client_assertion").is_none() {
        out.push(missing(
            req,
            "client_id",
            "Send client_id in the form body (or authenticate with HTTP Basic).",
        ));
    }
    if let Some(authorize) = authorize
        && let Some(sent) = authorize.redirect_uri.as_deref()
        && known
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
