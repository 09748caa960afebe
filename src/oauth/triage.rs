//! Which exchanges can be a sign-in leg, decided cheaply on the proxy's hot
//! path so the analysis gets every one of them and nothing else.
//!
//! Conservative by design: a false "may matter" costs one analysis call, a
//! false "cannot matter" loses a leg. Only the method, the URL and the
//! response head are read, never a body.

use http::{Method, header};

use crate::exchange::Exchange;

/// Query parameters that only sign-in traffic carries: an authorization
/// request (`client_id`, `response_type`, `request_uri`) or the answer to one
/// (`code`, `state`, `error`).
const SIGN_IN_PARAMS: [&str; 8] = [
    "code",
    "state",
    "error",
    "client_id",
    "response_type",
    "request_uri",
    "id_token",
    "redirect_uri",
];

/// Path fragments of authorization servers' endpoints (token and authorize
/// endpoints, discovery documents), lower case.
const SIGN_IN_PATHS: [&str; 6] = [
    "token",
    "authoriz",
    "oauth",
    "openid",
    "/.well-known/",
    "connect",
];

/// False only for exchanges that cannot be a sign-in leg: a `GET`, `HEAD` or
/// `OPTIONS` with no sign-in parameter in its query, to a path that names no
/// authorization-server endpoint, answered with no redirect and no HTML (a
/// `form_post` page or an IdP's error page). Everything else (any request
/// with a body, any redirect) may matter.
pub fn may_matter(exchange: &Exchange) -> bool {
    let request = &exchange.request;
    if !matches!(request.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if request.uri.query().is_some_and(has_sign_in_param) {
        return true;
    }
    let path = request.uri.path();
    if SIGN_IN_PATHS.iter().any(|p| contains_ignore_case(path, p)) {
        return true;
    }
    let Some(response) = &exchange.response else {
        return false;
    };
    if response.status.is_redirection() {
        return true;
    }
    response
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| contains_ignore_case(ct, "html"))
}

fn has_sign_in_param(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        SIGN_IN_PARAMS.iter().any(|p| name.eq_ignore_ascii_case(p))
    })
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::{RequestRecord, ResponseRecord};
    use http::{HeaderMap, HeaderValue, StatusCode, Version};
    use std::sync::Arc;

    fn exchange(method: Method, url: &str, response: Option<(u16, &str)>) -> Exchange {
        Exchange {
            id: 1,
            connection: Arc::default(),
            started_at: time::OffsetDateTime::UNIX_EPOCH,
            request: RequestRecord {
                method,
                uri: url.parse().unwrap(),
                version: Version::HTTP_11,
                headers: HeaderMap::new(),
                body: Default::default(),
            },
            response: response.map(|(status, ct)| {
                let mut headers = HeaderMap::new();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
                ResponseRecord {
                    status: StatusCode::from_u16(status).unwrap(),
                    version: Version::HTTP_11,
                    headers,
                    body: Default::default(),
                    synthetic: false,
                }
            }),
            error: None,
            timings: Default::default(),
            intervention: None,
        }
    }

    #[test]
    fn every_leg_of_a_sign_in_may_matter() {
        let legs = [
            exchange(
                Method::GET,
                "https://idp.test/o/authorize?client_id=a&response_type=code",
                Some((302, "text/plain")),
            ),
            exchange(
                Method::GET,
                "https://idp.test/par-style?CLIENT_ID=a&request_uri=urn:x",
                None,
            ),
            exchange(Method::GET, "https://app.test/cb?code=c&state=s", None),
            exchange(Method::GET, "https://app.test/cb?error=access_denied", None),
            exchange(Method::POST, "https://idp.test/anything", None),
            exchange(Method::PUT, "https://idp.test/anything", None),
            exchange(
                Method::GET,
                "https://idp.test/login",
                Some((302, "text/plain")),
            ),
            exchange(
                Method::GET,
                "https://idp.test/continue",
                Some((200, "text/HTML; charset=utf-8")),
            ),
            exchange(
                Method::GET,
                "https://idp.test/t/v2.0/.well-known/openid-configuration",
                Some((200, "application/json")),
            ),
            exchange(Method::GET, "https://idp.test/oauth2/v2.0/TOKEN", None),
        ];
        for leg in &legs {
            assert!(may_matter(leg), "{}", leg.request.uri);
        }
    }

    #[test]
    fn assets_and_plain_api_reads_do_not() {
        let others = [
            exchange(
                Method::GET,
                "https://cdn.test/app.js?v=123",
                Some((200, "text/javascript")),
            ),
            exchange(
                Method::GET,
                "https://cdn.test/logo.png",
                Some((200, "image/png")),
            ),
            exchange(
                Method::GET,
                "https://api.test/items?page=2&codes=1",
                Some((200, "application/json")),
            ),
            exchange(Method::HEAD, "https://cdn.test/big.iso", None),
            exchange(
                Method::OPTIONS,
                "https://api.test/items",
                Some((204, "text/plain")),
            ),
        ];
        for other in &others {
            assert!(!may_matter(other), "{}", other.request.uri);
        }
    }
}
