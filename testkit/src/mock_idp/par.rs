//! PAR (RFC 9126) and JAR (RFC 9101) for the mock: `POST …/oauth2/v2.0/par`
//! checks the authorization request as /authorize would and answers `201`
//! with a single-use `request_uri` valid [`MockIdpConfig::par_lifetime`];
//! /authorize then reads the pushed parameters, or a request object's
//! claims (decoded, NOT verified: test only). A request_uri used twice or
//! too late is refused with `invalid_request_uri`, sent back to the pushed
//! redirect_uri (which the push validated) as oidc-provider and Okta do.
//!
//! [`MockIdpConfig::par_lifetime`]: super::MockIdpConfig::par_lifetime

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::{
    EntraError, MockIdp, Params, ResponseMode, Version, check_authorize_request, html_escape,
    json_response, parse_basic, random_token, respond_to_client, text_response,
};

/// Parameters a pushed request keeps: never the client's credentials, nor
/// the request object once read.
const NOT_KEPT: [&str; 4] = [
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "request",
];

/// One pushed authorization request.
pub(super) struct PushedAuth {
    params: Vec<(String, String)>,
    tenant: String,
    version: Version,
    pub(super) created: Instant,
    used: bool,
}

impl MockIdp {
    /// `POST …/par`: the client authenticated as at /token (a confidential
    /// client needs its secret), the request checked as /authorize checks
    /// it, errors as JSON.
    pub(super) fn par(
        &self,
        tenant: &str,
        version: Version,
        req: &Request<Bytes>,
    ) -> Response<Bytes> {
        if req.method() != Method::POST {
            return par_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request",
                "The pushed authorization request endpoint only accepts POST.",
            );
        }
        let Some(body) = Params::parse(req.body()) else {
            return par_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "The body is not form-encoded.",
            );
        };
        let body = match body.get("request") {
            Some(object) => match request_object(object) {
                Some(claims) => merged(claims, &body),
                None => {
                    return par_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request_object",
                        "The request object is not a readable JWT.",
                    );
                }
            },
            None => body,
        };
        let basic = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(parse_basic);
        let client_id = body
            .get("client_id")
            .map(str::to_owned)
            .or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
        let Some(client) = client_id.as_deref().and_then(|id| self.client(id)) else {
            return par_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Unknown client.",
            );
        };
        if let Some(expected) = &client.secret {
            let sent = basic
                .map(|(_, s)| s)
                .or(body.get("client_secret").map(str::to_owned));
            if sent.as_deref() != Some(expected.as_str()) {
                return par_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "A confidential client must authenticate at the pushed authorization request endpoint.",
                );
            }
        }
        let checked = self
            .check_authorize_target(tenant, version, &body)
            .and_then(|_| check_authorize_request(version, &body));
        if let Err(e) = checked {
            return self.par_entra_error(e);
        }
        let request_uri = format!("urn:ietf:params:oauth:request_uri:{}", random_token(32));
        let (now, _) = self.now();
        let params = body
            .0
            .into_iter()
            .filter(|(k, _)| !NOT_KEPT.contains(&k.as_str()))
            .collect();
        self.lock().pushed.insert(
            request_uri.clone(),
            PushedAuth {
                params,
                tenant: tenant.to_owned(),
                version,
                created: now,
                used: false,
            },
        );
        json_response(
            StatusCode::CREATED,
            &json!({
                "request_uri": request_uri,
                "expires_in": self.config.par_lifetime.as_secs(),
            }),
        )
    }

    fn par_entra_error(&self, e: EntraError) -> Response<Bytes> {
        self.record_error(e.code);
        json_response(
            StatusCode::BAD_REQUEST,
            &json!({
                "error": e.error(),
                "error_description": format!("AADSTS{}: {}", e.code, e.message),
                "error_codes": [e.code],
            }),
        )
    }

    /// The parameters /authorize is to read: those pushed under its
    /// `request_uri` (which it uses up), those of its request object with
    /// its own beside them, or its own. `Err` is the answer to a
    /// request_uri or request object that cannot be used.
    pub(super) fn indirect_params(
        &self,
        tenant: &str,
        version: Version,
        params: Params,
    ) -> Result<Params, Box<Response<Bytes>>> {
        if let Some(uri) = params.get("request_uri") {
            let (now, _) = self.now();
            let lifetime = self.config.par_lifetime;
            let mut state = self.lock();
            let Some(pushed) = state.pushed.get_mut(uri) else {
                drop(state);
                return Err(Box::new(refusal_page(
                    "invalid_request_uri",
                    "The request_uri is unknown: it was never pushed here, or it was forgotten.",
                )));
            };
            let stored = Params(pushed.params.clone());
            let why = if pushed.used {
                Some("The request_uri was already used: a pushed authorization request is single-use.".to_owned())
            } else if now.saturating_duration_since(pushed.created) > lifetime {
                Some(format!(
                    "The request_uri has expired: pushed {} s ago, valid for {} s.",
                    now.saturating_duration_since(pushed.created).as_secs(),
                    lifetime.as_secs()
                ))
            } else if !pushed.tenant.eq_ignore_ascii_case(tenant)
                || pushed.version != version
                || params.get("client_id") != stored.get("client_id")
            {
                Some(
                    "The request_uri was pushed for another client, tenant or endpoint.".to_owned(),
                )
            } else {
                None
            };
            pushed.used = true;
            drop(state);
            return match why {
                None => Ok(stored),
                Some(why) => {
                    let redirect_uri = stored.get("redirect_uri").unwrap_or_default().to_owned();
                    let mode = match stored.get("response_mode") {
                        Some("fragment") => ResponseMode::Fragment,
                        Some("form_post") => ResponseMode::FormPost,
                        _ => ResponseMode::Query,
                    };
                    let mut fields = vec![
                        ("error", "invalid_request_uri".to_owned()),
                        ("error_description", why),
                    ];
                    fields.extend(stored.get("state").map(|s| ("state", s.to_owned())));
                    Err(Box::new(respond_to_client(&redirect_uri, mode, &fields)))
                }
            };
        }
        if let Some(object) = params.get("request") {
            return match request_object(object) {
                Some(claims) => Ok(merged(claims, &params)),
                None => Err(Box::new(refusal_page(
                    "invalid_request_object",
                    "The request object is not a readable JWT.",
                ))),
            };
        }
        Ok(params)
    }
}

/// The claims of a JWT request object as parameters; `None` unless it is a
/// three-part JWT with a JSON object payload. Not verified.
fn request_object(object: &str) -> Option<Vec<(String, String)>> {
    let mut parts = object.split('.');
    let (_, payload, _, None) = (parts.next()?, parts.next()?, parts.next()?, parts.next()) else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let Value::Object(map) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect(),
    )
}

/// The request object's claims, then the outer parameters they lack.
fn merged(claims: Vec<(String, String)>, outer: &Params) -> Params {
    let mut out = claims;
    for (k, v) in &outer.0 {
        if k != "request" && !out.iter().any(|(n, _)| n == k) {
            out.push((k.clone(), v.clone()));
        }
    }
    Params(out)
}

fn par_error(status: StatusCode, error: &str, description: &str) -> Response<Bytes> {
    json_response(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// The IdP's own page for a request it cannot send back (the redirect_uri
/// is unknown).
fn refusal_page(error: &str, description: &str) -> Response<Bytes> {
    let page = format!(
        "<!DOCTYPE html><html><body><h1>Sign-in failed</h1><p>{}: {}</p></body></html>",
        html_escape(error),
        html_escape(description)
    );
    text_response(StatusCode::BAD_REQUEST, "text/html; charset=utf-8", page)
}
