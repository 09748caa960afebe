//! The answers authlens gives in the IdP's place (`idp-error`, `idp-down`):
//! shaped like the provider's own, from the error catalogue. Pure: the time
//! and the ids come in.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use time::OffsetDateTime;

use crate::oauth::catalogue::{self, Entry};
use crate::oauth::params::encode_component;

/// Codes Entra shows on its own page instead of redirecting (OAUTH.md §1):
/// the client or the redirect URI cannot be trusted, or the tenant is unknown.
const PAGE_CODES: &[&str] = &["AADSTS50011", "AADSTS700016", "AADSTS90002"];

/// Ids and time for one synthesized answer.
pub struct Stamp {
    pub now: OffsetDateTime,
    pub trace_id: String,
    pub correlation_id: String,
}

impl Stamp {
    pub fn new(correlation_id: Option<&str>) -> Stamp {
        Stamp {
            now: OffsetDateTime::now_utc(),
            trace_id: random_guid(),
            correlation_id: correlation_id
                .filter(|c| !c.is_empty() && c.len() <= 64)
                .map_or_else(random_guid, str::to_string),
        }
    }

    fn timestamp(&self) -> String {
        let t = self.now;
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

/// What an IdP error for a catalogue code looks like.
struct Shape<'a> {
    entry: &'a Entry,
    /// `AADSTS50076` -> 50076, `AADB2C90080` -> `AADB2C90080`.
    number: Option<u64>,
    b2c: bool,
    error: String,
}

impl<'a> Shape<'a> {
    fn of(code: &str) -> Option<Shape<'a>> {
        let entry = catalogue::lookup(code)?;
        let upper = entry.code.to_ascii_uppercase();
        let number = upper.strip_prefix("AADSTS").and_then(|n| n.parse().ok());
        let b2c = upper.starts_with("AADB2C");
        let error = entry.error.clone().unwrap_or_else(|| {
            // A bare OAuth error value is its own `error`; a provider-scoped
            // one (`github:bad_verification_code`) its second part.
            match entry.code.split(':').nth(1) {
                Some(e) => e.to_string(),
                None if number.is_some() || b2c => "invalid_request".into(),
                None => entry.code.clone(),
            }
        });
        Some(Shape {
            entry,
            number,
            b2c,
            error,
        })
    }

    fn description(&self, stamp: &Stamp) -> String {
        match (self.number, self.b2c) {
            (Some(n), _) => format!(
                "AADSTS{n}: {}\r\nTrace ID: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
                self.entry.meaning,
                stamp.trace_id,
                stamp.correlation_id,
                stamp.timestamp()
            ),
            (None, true) => format!(
                "{}: {}\r\nCorrelation ID: {}\r\nTimestamp: {}",
                self.entry.code,
                self.entry.meaning,
                stamp.correlation_id,
                stamp.timestamp()
            ),
            (None, false) => self.entry.meaning.clone(),
        }
    }
}

/// The token endpoint's error for `code`: Entra's JSON (`error`,
/// `error_description` starting `AADSTSn:`, `error_codes`, `trace_id`,
/// `correlation_id`, `timestamp`) for AADSTS codes, RFC 6749 JSON otherwise.
pub fn token_error(code: &str, host: &str, stamp: &Stamp) -> Option<Response<Bytes>> {
    let shape = Shape::of(code)?;
    let status = if shape.error == "invalid_client" {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut body = serde_json::Map::new();
    body.insert("error".into(), shape.error.clone().into());
    body.insert("error_description".into(), shape.description(stamp).into());
    if let Some(n) = shape.number {
        body.insert("error_codes".into(), serde_json::json!([n]));
        body.insert("timestamp".into(), stamp.timestamp().into());
        body.insert("trace_id".into(), stamp.trace_id.clone().into());
        body.insert("correlation_id".into(), stamp.correlation_id.clone().into());
        body.insert(
            "error_uri".into(),
            format!("https://{host}/error?code={n}").into(),
        );
    }
    let text = serde_json::Value::Object(body).to_string();
    Some(respond(
        status,
        "application/json; charset=utf-8",
        text,
        &[
            ("cache-control", "no-store, no-cache"),
            ("pragma", "no-cache"),
        ],
    ))
}

/// How the authorize leg comes back to the app.
pub struct AuthorizeTarget<'a> {
    pub redirect_uri: Option<&'a str>,
    pub state: Option<&'a str>,
    /// `query` (default), `fragment` or `form_post`.
    pub response_mode: Option<&'a str>,
}

/// The authorize leg's error for `code`: the error redirect to the app
/// (`error`, `error_description`, `state`, and Entra's ids), in the asked
/// response mode; or, for codes Entra shows on its own page (50011, 700016,
/// 90002) or when there is nowhere to redirect, that page.
pub fn authorize_error(
    code: &str,
    target: &AuthorizeTarget<'_>,
    stamp: &Stamp,
) -> Option<Response<Bytes>> {
    let shape = Shape::of(code)?;
    let description = shape.description(stamp);
    let on_page = PAGE_CODES
        .iter()
        .any(|c| c.eq_ignore_ascii_case(&shape.entry.code));
    // Only a web address is redirected (or form-posted) to: anything else
    // (`javascript:`, `data:`) gets the IdP's page, as a real IdP would.
    let web = |uri: &&str| {
        let lower = uri.trim_start().to_ascii_lowercase();
        lower.starts_with("https://") || lower.starts_with("http://")
    };
    let Some(redirect_uri) = target.redirect_uri.filter(web).filter(|_| !on_page) else {
        let first_line = description.lines().next().unwrap_or_default();
        let page = format!(
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>\
             <h1>Sorry, but we're having trouble signing you in.</h1>\
             <p>{}</p><p>Trace ID: {}</p><p>Correlation ID: {}</p><p>Timestamp: {}</p></body></html>",
            html_escape(first_line),
            stamp.trace_id,
            html_escape(&stamp.correlation_id),
            stamp.timestamp()
        );
        return Some(respond(
            StatusCode::BAD_REQUEST,
            "text/html; charset=utf-8",
            page,
            &[],
        ));
    };
    let mut fields: Vec<(&str, String)> = vec![
        ("error", shape.error.clone()),
        ("error_description", description),
    ];
    if let Some(n) = shape.number {
        fields.push(("error_codes", n.to_string()));
        fields.push((
            "error_uri",
            format!("https://login.microsoftonline.com/error?code={n}"),
        ));
        fields.push(("trace_id", stamp.trace_id.clone()));
        fields.push(("correlation_id", stamp.correlation_id.clone()));
    }
    if let Some(state) = target.state {
        fields.push(("state", state.to_string()));
    }
    Some(match target.response_mode.unwrap_or("query") {
        "form_post" => {
            let inputs: String = fields
                .iter()
                .map(|(n, v)| {
                    format!(
                        "<input type=\"hidden\" name=\"{n}\" value=\"{}\" />",
                        html_escape(v)
                    )
                })
                .collect();
            let page = format!(
                "<html><head><title>Working...</title></head><body>\
                 <form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}\
                 <noscript><p>Script is disabled. Click Submit to continue.</p><input type=\"submit\" value=\"Submit\" /></noscript></form>\
                 <script language=\"javascript\">document.forms[0].submit();</script></body></html>",
                html_escape(redirect_uri)
            );
            respond(StatusCode::OK, "text/html; charset=utf-8", page, &[])
        }
        mode => {
            let encoded: Vec<String> = fields
                .iter()
                .map(|(n, v)| format!("{n}={}", encode_component(v)))
                .collect();
            let joint = if mode == "fragment" {
                '#'
            } else if redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            let location = format!("{redirect_uri}{joint}{}", encoded.join("&"));
            let mut response = respond(
                StatusCode::FOUND,
                "text/html; charset=utf-8",
                String::new(),
                &[],
            );
            match http::HeaderValue::from_str(&location) {
                Ok(value) => {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                Err(_) => return None,
            }
            response
        }
    })
}

/// `idp-down`: what a gateway in front of an unreachable IdP answers.
pub fn bad_gateway() -> Response<Bytes> {
    respond(
        StatusCode::BAD_GATEWAY,
        "text/html; charset=utf-8",
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>".into(),
        &[],
    )
}

/// authlens stopped while holding a request (`expire-code`).
pub fn stopping() -> Response<Bytes> {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        "authlens stopped while holding this request (--fault expire-code); it was not sent to the identity provider\n".into(),
        &[("connection", "close")],
    )
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    extra: &[(&'static str, &'static str)],
) -> Response<Bytes> {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len());
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder
        .body(Bytes::from(body))
        .unwrap_or_else(|_| Response::new(Bytes::new()))
}

pub use crate::output::escape::html_escape;

fn random_guid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-8{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0],
        b[1],
        b[2],
        b[3],
        b[4],
        b[5],
        b[6] & 0xf,
        b[7],
        b[8] & 0xf,
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            now: time::macros::datetime!(2026-01-02 03:04:05 UTC),
            trace_id: "t-1".into(),
            correlation_id: "c-1".into(),
        }
    }

    #[test]
    fn entra_token_errors_have_entras_shape() {
        let r = token_error("AADSTS50076", "login.microsoftonline.com", &stamp()).unwrap();
        assert_eq!(r.status(), 400);
        let json: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(json["error"], "invalid_grant");
        assert!(
            json["error_description"]
                .as_str()
                .unwrap()
                .starts_with("AADSTS50076: ")
        );
        assert_eq!(json["error_codes"], serde_json::json!([50076]));
        assert_eq!(json["timestamp"], "2026-01-02 03:04:05Z");
        assert_eq!(json["trace_id"], "t-1");
        assert_eq!(json["correlation_id"], "c-1");
        let r = token_error("invalid_client", "idp.example", &stamp()).unwrap();
        assert_eq!(r.status(), 401);
        let json: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(json["error"], "invalid_client");
        assert!(json.get("error_codes").is_none(), "RFC 6749 shape: {json}");
        assert!(token_error("nonsense", "h", &stamp()).is_none());
    }

    #[test]
    fn a_redirect_uri_that_is_no_web_address_gets_the_page_not_a_redirect() {
        for uri in ["javascript:alert(1)", " JavaScript:x", "data:text/html,x"] {
            let target = AuthorizeTarget {
                redirect_uri: Some(uri),
                state: Some("s"),
                response_mode: Some("form_post"),
            };
            let answer = authorize_error("interaction_required", &target, &stamp()).unwrap();
            assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{uri}");
            assert!(answer.headers().get(header::LOCATION).is_none(), "{uri}");
            let body = String::from_utf8_lossy(answer.body());
            assert!(
                !body.to_ascii_lowercase().contains("javascript"),
                "{uri}: {body}"
            );
        }
    }

    #[test]
    fn authorize_errors_go_back_to_the_app_or_onto_the_page() {
        let target = AuthorizeTarget {
            redirect_uri: Some("https://app.test/callback"),
            state: Some("s 1"),
            response_mode: None,
        };
        let r = authorize_error("interaction_required", &target, &stamp()).unwrap();
        assert_eq!(r.status(), 302);
        let location = r.headers()[header::LOCATION].to_str().unwrap();
        assert!(location.starts_with(
            "https://app.test/callback?error=interaction_required&error_description="
        ));
        assert!(location.ends_with("&state=s%201"), "{location}");

        let fragment = AuthorizeTarget {
            response_mode: Some("fragment"),
            ..target
        };
        let r = authorize_error("AADSTS65001", &fragment, &stamp()).unwrap();
        let location = r.headers()[header::LOCATION].to_str().unwrap();
        assert!(
            location.starts_with("https://app.test/callback#error=invalid_grant"),
            "{location}"
        );
        assert!(location.contains("error_codes=65001"));

        let post = AuthorizeTarget {
            response_mode: Some("form_post"),
            ..fragment
        };
        let r = authorize_error("AADSTS65001", &post, &stamp()).unwrap();
        let page = std::str::from_utf8(r.body()).unwrap();
        assert!(page.contains("action=\"https://app.test/callback\""));
        assert!(page.contains("name=\"error\" value=\"invalid_grant\""));

        let r = authorize_error("AADSTS50011", &post, &stamp()).unwrap();
        assert_eq!(r.status(), 400);
        assert!(!r.headers().contains_key(header::LOCATION));
        assert!(
            std::str::from_utf8(r.body())
                .unwrap()
                .contains("AADSTS50011: ")
        );
    }
}
