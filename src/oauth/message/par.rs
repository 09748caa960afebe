//! Authorization requests whose parameters are not on /authorize itself:
//! pushed ahead to the PAR endpoint (RFC 9126) and named by a `request_uri`,
//! or carried in a JAR request object (RFC 9101, `request=<JWT>`).
//!
//! Parsing only: which pushed request a `request_uri` names is the
//! analyzer's business. Nothing here verifies a signature, and no input
//! (HTML where JSON was expected, a JWE, random bytes) makes it panic.

use http::{HeaderMap, Method, header};

use super::{
    AuthorizeRequest, RequestRecord, ResponseRecord, TokenResponse, basic_auth, body_text, cap,
    form_text, header_str, is_form, json_text,
};
use crate::oauth::jwt::{self, JwtError};
use crate::oauth::params::Params;
use crate::oauth::provider::{Endpoint, EndpointKind, KnownEndpoints};

/// Client credentials a pushed request may carry: never copied into the
/// authorization request built from it.
const CREDENTIALS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// How the parameters of an authorization request reached the IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// On /authorize itself.
    Direct,
    /// Pushed to the PAR endpoint; /authorize named them by `request_uri`.
    Par { request_uri: String },
    /// In a request object (`request=<JWT>`) on /authorize.
    RequestObject,
}

impl Via {
    /// `par` / `request_object`, as the JSON lines write it; `None` when direct.
    pub fn name(&self) -> Option<&'static str> {
        match self {
            Via::Direct => None,
            Via::Par { .. } => Some("par"),
            Via::RequestObject => Some("request_object"),
        }
    }
}

// === PushedRequest ===

/// `POST` to a PAR endpoint: the whole authorization request, pushed ahead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRequest {
    pub endpoint: Endpoint,
    /// The parameters pushed (a request object's claims read in, client
    /// credentials left out), `client_id` from HTTP Basic when the body has none.
    pub params: Params,
    /// Why a request object in the push could not be read, if one could not.
    pub note: Option<String>,
}

impl PushedRequest {
    /// Recognises a pushed authorization request: a form POST naming a
    /// `response_type` or a `request` object, without `grant_type`, to a PAR
    /// endpoint learnt from discovery or at a usual PAR path (OAUTH.md §7).
    pub fn parse(req: &RequestRecord, known: &KnownEndpoints) -> Option<PushedRequest> {
        if req.method != Method::POST || !is_form(&req.headers) {
            return None;
        }
        let endpoint = Endpoint::from_uri(&req.uri);
        if !known.is_par_endpoint(&endpoint.url()) && !is_par_path(&endpoint.path) {
            return None;
        }
        let body = Params::parse(&form_text(&req.body, &req.headers)?);
        if body.contains("grant_type")
            || !(body.contains("response_type") || body.contains("request"))
        {
            return None;
        }
        let basic_id = basic_auth(&req.headers)
            .map(|b| b.client_id)
            .filter(|id| !id.is_empty());
        let (params, note) = match body.get("request") {
            Some(object) => match request_object_params(object) {
                Ok(claims) => (merged(&claims, &body), None),
                Err(e) => (without(&body, &["request"]), Some(not_read(&e))),
            },
            None => (without(&body, &[]), None),
        };
        let params = match (params.get("client_id"), basic_id) {
            (None, Some(id)) => Params::from_pairs(
                params
                    .iter()
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .chain([("client_id".to_owned(), id)]),
            ),
            _ => params,
        };
        Some(PushedRequest {
            endpoint,
            params,
            note,
        })
    }
}

/// oidc-provider `/request`, Okta `/oauth2/v1/par`, Keycloak
/// `…/protocol/openid-connect/ext/par/request`, and `…/par` elsewhere.
fn is_par_path(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    let path = path.trim_end_matches('/');
    path.ends_with("/par") || path.ends_with("/ext/par/request") || path == "/request"
}

// === ParAnswer ===

/// The PAR endpoint's answer (RFC 9126 §2.2, §2.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParAnswer {
    /// `201` with `request_uri` and `expires_in`.
    Issued {
        request_uri: String,
        /// Seconds; `None` when absent or not a number.
        expires_in: Option<u64>,
    },
    /// An OAuth error (read like a token endpoint's).
    Refused(Box<TokenResponse>),
    /// Something authlens cannot read a `request_uri` from, and why.
    Unreadable { status: u16, note: String },
}

impl ParAnswer {
    /// Never fails: an answer that is not JSON is [`ParAnswer::Unreadable`]
    /// with a note saying what it is.
    pub fn parse(resp: &ResponseRecord) -> ParAnswer {
        let status = resp.status.as_u16();
        let Some(body) = body_text(&resp.body, &resp.headers) else {
            return ParAnswer::Unreadable {
                status,
                note: format!(
                    "the PAR answer (HTTP {status}) was not recorded whole, so its request_uri is unknown"
                ),
            };
        };
        let json = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => {
                return ParAnswer::Unreadable {
                    status,
                    note: format!(
                        "the PAR answer (HTTP {status}, {}) is not a JSON object, so it names no request_uri: {}",
                        what_it_is(&resp.headers, body.len()),
                        excerpt(&body)
                    ),
                };
            }
        };
        let answer = TokenResponse::parse(resp);
        if answer.is_error() {
            return ParAnswer::Refused(Box::new(answer));
        }
        let request_uri = json.get("request_uri").map(json_text).unwrap_or_default();
        if request_uri.is_empty() {
            return ParAnswer::Unreadable {
                status,
                note: format!(
                    "the PAR answer (HTTP {status}) names no request_uri: {}",
                    excerpt(&body)
                ),
            };
        }
        let expires_in = json
            .get("expires_in")
            .map(json_text)
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v as u64);
        ParAnswer::Issued {
            request_uri,
            expires_in,
        }
    }
}

/// `text/html, 1234 bytes`.
fn what_it_is(headers: &HeaderMap, len: usize) -> String {
    let content_type = header_str(headers, header::CONTENT_TYPE)
        .map(|ct| ct.split(';').next().unwrap_or(ct).trim().to_owned())
        .filter(|ct| !ct.is_empty())
        .unwrap_or_else(|| "no content type".to_owned());
    format!("{content_type}, {len} bytes")
}

/// The start of a body, on one line, for a note.
fn excerpt(body: &str) -> String {
    let flat: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect();
    let flat = flat.trim();
    if flat.is_empty() {
        "(empty)".to_owned()
    } else if body.chars().count() > 120 {
        format!("“{flat}…”")
    } else {
        format!("“{flat}”")
    }
}

// === IndirectAuthorize ===

/// An /authorize request that names its parameters elsewhere: a
/// `request_uri` from a push, or a `request` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndirectAuthorize {
    pub endpoint: Endpoint,
    /// The parameters sent on /authorize itself.
    pub params: Params,
    /// The query or form body as sent (capped).
    pub raw: String,
}

impl IndirectAuthorize {
    /// Recognises `client_id` with `request_uri`, or with a `request` object
    /// at an authorization endpoint (by URL, from discovery, or by a
    /// `response_type` beside it).
    pub fn parse(req: &RequestRecord, known: &KnownEndpoints) -> Option<IndirectAuthorize> {
        let endpoint = Endpoint::from_uri(&req.uri);
        let mut candidates = vec![req.uri.query().unwrap_or_default().to_owned()];
        if req.method == Method::POST && is_form(&req.headers) {
            candidates.push(form_text(&req.body, &req.headers)?);
        }
        let at_authorize = endpoint.kind == EndpointKind::Authorize
            || known.for_authorize(&endpoint.url()).is_some();
        candidates.into_iter().find_map(|raw| {
            let params = Params::parse(&raw);
            params.get("client_id")?;
            if params.contains("grant_type") {
                return None;
            }
            let indirect = params.get("request_uri").is_some()
                || (params.get("request").is_some()
                    && (at_authorize || params.contains("response_type")));
            indirect.then(|| IndirectAuthorize {
                endpoint: endpoint.clone(),
                raw: cap(&raw),
                params,
            })
        })
    }

    /// The `request_uri` of a push (RFC 9126). One that is a web address
    /// names a request object the IdP fetches itself (RFC 9101 §5.2), not a push.
    pub fn request_uri(&self) -> Option<&str> {
        self.params
            .get("request_uri")
            .filter(|uri| !is_web_address(uri))
    }

    /// How the parameters reached the IdP, as far as /authorize itself says.
    pub fn via(&self) -> Via {
        match self.request_uri() {
            Some(uri) => Via::Par {
                request_uri: uri.to_owned(),
            },
            None => Via::RequestObject,
        }
    }

    /// The authorization request as the IdP reads it: the pushed parameters
    /// (`pushed`, for a `request_uri`) or the request object's claims, then
    /// what /authorize itself carries beside them; with a note when they
    /// cannot all be read. A push not seen (or one whose request object was
    /// unreadable: `pushed_note`), a request object that is not a JWT or one
    /// the IdP fetches itself give a request whose parameters are unknown
    /// ([`AuthorizeRequest::unknown`]), so the sign-in is still followed;
    /// no `response_type` containing `code` gives none.
    pub fn resolve(
        &self,
        pushed: Option<&Params>,
        pushed_note: Option<&str>,
    ) -> (Option<AuthorizeRequest>, Option<String>) {
        let unknown = |params: Params, via: Via, note: String| {
            let request =
                AuthorizeRequest::unknown(self.endpoint.clone(), params, self.raw.clone(), via);
            (request, Some(note))
        };
        let (inner, via) = match (self.request_uri(), pushed) {
            (Some(uri), Some(pushed)) => {
                let via = Via::Par {
                    request_uri: uri.to_owned(),
                };
                if let Some(note) = pushed_note {
                    return unknown(merged(pushed, &self.params), via, note.to_owned());
                }
                (pushed.clone(), via)
            }
            (Some(uri), None) => {
                return unknown(
                    without(&self.params, &["request", "request_uri"]),
                    self.via(),
                    format!(
                        "authlens did not see the pushed request behind request_uri {uri} (pushed before capture started, not through the proxy, or forgotten), so its parameters are unknown"
                    ),
                );
            }
            (None, _) if self.params.get("request").is_none() => {
                let uri = self.params.get("request_uri").unwrap_or_default();
                return unknown(
                    without(&self.params, &["request", "request_uri"]),
                    self.via(),
                    format!(
                        "the IdP fetches the request object from {uri} itself, so authlens does not see its parameters"
                    ),
                );
            }
            (None, _) => {
                let object = self.params.get("request").unwrap_or_default();
                match request_object_params(object) {
                    Ok(claims) => (claims, Via::RequestObject),
                    Err(e) => {
                        return unknown(
                            without(&self.params, &["request", "request_uri"]),
                            Via::RequestObject,
                            not_read(&e),
                        );
                    }
                }
            }
        };
        let params = merged(&inner, &self.params);
        match AuthorizeRequest::from_params(self.endpoint.clone(), params, self.raw.clone(), via) {
            Some(request) => (Some(request), None),
            None => (
                AuthorizeRequest::from_params(
                    self.endpoint.clone(),
                    self.params.clone(),
                    self.raw.clone(),
                    self.via(),
                ),
                Some("the request names no response_type containing `code` and a client_id, so it is not read as a code-flow sign-in".to_owned()),
            ),
        }
    }
}

fn is_web_address(uri: &str) -> bool {
    let lower = uri.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The OAuth error an IdP's own page names when it refuses a request_uri
/// or a request object at /authorize without redirecting (its status 400 or
/// more, no `Location`), and the text around it.
pub fn refusal_page(resp: &ResponseRecord) -> Option<(&'static str, String)> {
    if resp.status.as_u16() < 400 || resp.headers.contains_key(header::LOCATION) {
        return None;
    }
    let body = body_text(&resp.body, &resp.headers)?;
    let lower = body.to_ascii_lowercase();
    ["invalid_request_uri", "invalid_request_object"]
        .into_iter()
        .find_map(|error| {
            let at = lower.find(error)?;
            let text: String = body[at..]
                .chars()
                .take(300)
                .take_while(|c| *c != '<' && *c != '"')
                .collect();
            Some((error, text.trim().to_owned()))
        })
}

// === request objects ===

/// The claims of a request object (RFC 9101), as parameters: strings as
/// they are, other JSON values as JSON text. Decoded, not verified.
pub fn request_object_params(object: &str) -> Result<Params, JwtError> {
    let claims = jwt::claims(object)?;
    Ok(Params::from_pairs(
        claims.into_iter().map(|(k, v)| (k, json_text(&v))),
    ))
}

/// The note for a request object that cannot be read.
fn not_read(e: &JwtError) -> String {
    format!("the request object is not a readable JWT ({e}), so its parameters are unknown")
}

/// `first`, then every parameter of `then` whose name `first` lacks; the
/// indirection (`request`, `request_uri`) and client credentials left out.
fn merged(first: &Params, then: &Params) -> Params {
    let skip =
        |name: &str| matches!(name, "request" | "request_uri") || CREDENTIALS.contains(&name);
    let pairs = first
        .iter()
        .filter(|p| !skip(&p.name))
        .chain(
            then.iter()
                .filter(|p| !skip(&p.name) && !first.contains(&p.name)),
        )
        .map(|p| (p.name.clone(), p.value.clone()));
    Params::from_pairs(pairs.collect::<Vec<_>>())
}

/// `params` without `names` and without client credentials.
fn without(params: &Params, names: &[&str]) -> Params {
    Params::from_pairs(
        params
            .iter()
            .filter(|p| {
                !names.contains(&p.name.as_str()) && !CREDENTIALS.contains(&p.name.as_str())
            })
            .map(|p| (p.name.clone(), p.value.clone()))
            .collect::<Vec<_>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::testing::{ex, jwt};
    use serde_json::json;

    #[test]
    fn a_push_is_read_at_usual_paths_and_learnt_endpoints_only() {
        let known = KnownEndpoints::default();
        let body =
            "client_id=c&response_type=code&redirect_uri=https%3A%2F%2Fapp%2Fcb&client_secret=s";
        for url in [
            "https://op.example/request",
            "https://x.okta.com/oauth2/v1/par",
            "https://kc.example/realms/r/protocol/openid-connect/ext/par/request",
            "https://login.microsoftonline.com/t/oauth2/v2.0/par",
        ] {
            let req = ex("POST", url).form(body).build().request;
            let pushed = PushedRequest::parse(&req, &known).unwrap_or_else(|| panic!("{url}"));
            assert_eq!(pushed.params.get("redirect_uri"), Some("https://app/cb"));
            assert_eq!(
                pushed.params.get("client_secret"),
                None,
                "credentials dropped"
            );
        }
        let elsewhere = ex("POST", "https://op.example/push")
            .form(body)
            .build()
            .request;
        assert_eq!(PushedRequest::parse(&elsewhere, &known), None);
        let token = ex("POST", "https://op.example/par")
            .form("grant_type=authorization_code&code=x&response_type=code")
            .build()
            .request;
        assert_eq!(PushedRequest::parse(&token, &known), None);
    }

    #[test]
    fn a_pushed_request_object_is_read_and_a_broken_one_noted() {
        let object = jwt(
            &json!({"client_id": "c", "response_type": "code", "redirect_uri": "https://app/cb", "max_age": 300}),
        );
        let req = ex("POST", "https://op.example/par")
            .form(&format!("client_id=c&request={object}"))
            .build()
            .request;
        let pushed = PushedRequest::parse(&req, &KnownEndpoints::default()).unwrap();
        assert_eq!(pushed.params.get("redirect_uri"), Some("https://app/cb"));
        assert_eq!(pushed.params.get("max_age"), Some("300"));
        assert_eq!(pushed.params.get("request"), None);
        assert_eq!(pushed.note, None);

        let req = ex("POST", "https://op.example/par")
            .form("client_id=c&request=a.b.c.d.e&response_type=code")
            .build()
            .request;
        let pushed = PushedRequest::parse(&req, &KnownEndpoints::default()).unwrap();
        assert!(pushed.note.unwrap().contains("encrypted"));
    }

    #[test]
    fn par_answers_issued_refused_and_unreadable() {
        let answer = |status: u16, ct: &str, body: &str| {
            ParAnswer::parse(
                &ex("POST", "https://op/par")
                    .status(status)
                    .resp_header("content-type", ct)
                    .resp_body(body)
                    .build()
                    .response
                    .unwrap(),
            )
        };
        assert_eq!(
            answer(
                201,
                "application/json",
                r#"{"request_uri":"urn:ietf:params:oauth:request_uri:abc","expires_in":60}"#
            ),
            ParAnswer::Issued {
                request_uri: "urn:ietf:params:oauth:request_uri:abc".into(),
                expires_in: Some(60)
            }
        );
        let ParAnswer::Refused(r) =
            answer(400, "application/json", r#"{"error":"invalid_request"}"#)
        else {
            panic!()
        };
        assert_eq!(r.error.as_deref(), Some("invalid_request"));
        let ParAnswer::Unreadable { note, .. } = answer(
            200,
            "text/html; charset=utf-8",
            "<html><body>Sign in</body></html>",
        ) else {
            panic!()
        };
        assert!(
            note.contains("not a JSON object") && note.contains("text/html"),
            "{note}"
        );
        assert!(matches!(
            answer(201, "application/json", r#"{"expires_in":60}"#),
            ParAnswer::Unreadable { .. }
        ));
    }

    #[test]
    fn an_indirect_authorize_resolves_through_the_push_or_the_object() {
        let known = KnownEndpoints::default();
        let req = ex(
            "GET",
            "https://op.example/authorize?client_id=c&request_uri=urn%3Ax",
        )
        .build()
        .request;
        let indirect = IndirectAuthorize::parse(&req, &known).unwrap();
        // A push not seen: a request whose parameters are unknown, and why.
        let (a, note) = indirect.resolve(None, None);
        let a = a.unwrap();
        assert!(note.unwrap().contains("urn:x"));
        assert!(!a.params_known && a.client_id == "c" && a.redirect_uri.is_none());
        assert!(!a.params.contains("request_uri"));
        let pushed =
            Params::parse("client_id=c&response_type=code&state=s1&redirect_uri=https://app/cb");
        let (a, note) = indirect.resolve(Some(&pushed), None);
        assert_eq!(note, None);
        let a = a.unwrap();
        assert!(a.params_known);
        assert_eq!(a.state.as_deref(), Some("s1"));
        assert_eq!(
            a.via,
            Via::Par {
                request_uri: "urn:x".into()
            }
        );
        assert!(!a.params.contains("request_uri"));

        let object = jwt(&json!({"response_type": "code", "client_id": "c", "nonce": "n1"}));
        let req = ex(
            "GET",
            &format!("https://op.example/authorize?client_id=c&request={object}"),
        )
        .build()
        .request;
        let a = IndirectAuthorize::parse(&req, &known)
            .unwrap()
            .resolve(None, None)
            .0
            .unwrap();
        assert_eq!(
            (a.nonce.as_deref(), a.via.name()),
            (Some("n1"), Some("request_object"))
        );

        let req = ex(
            "GET",
            "https://op.example/authorize?client_id=c&request=not-a-jwt",
        )
        .build()
        .request;
        let (a, note) = IndirectAuthorize::parse(&req, &known)
            .unwrap()
            .resolve(None, None);
        let note = note.unwrap();
        assert!(note.contains("not a readable JWT"), "{note}");
        assert!(!a.unwrap().params_known);
        // A request_uri that is a web address names an object the IdP fetches.
        let req = ex(
            "GET",
            "https://op.example/authorize?client_id=c&request_uri=https%3A%2F%2Fapp%2Freq.jwt",
        )
        .build()
        .request;
        let indirect = IndirectAuthorize::parse(&req, &known).unwrap();
        assert_eq!(
            (indirect.request_uri(), indirect.via()),
            (None, Via::RequestObject)
        );
        let note = indirect.resolve(None, None).1.unwrap();
        assert!(
            note.contains("fetches the request object from https://app/req.jwt"),
            "{note}"
        );
        // `request` on an unknown URL with no response_type is not an authorization request.
        let req = ex("GET", "https://app.example/api?client_id=c&request=x")
            .build()
            .request;
        assert_eq!(IndirectAuthorize::parse(&req, &known), None);
    }
}
