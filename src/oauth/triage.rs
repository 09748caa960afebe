//! Which exchanges can be a sign-in leg, decided cheaply on the proxy's hot
//! path so the analysis gets every one of them and little else.
//!
//! Conservative by design: a false "may matter" costs one analysis call, a
//! false "cannot matter" loses a leg. It reads the method, the URL, the
//! heads, and looks for sign-in parameter names in a captured request body
//! (one pass, no parsing).

use std::sync::OnceLock;

use aho_corasick::AhoCorasick;
use http::header;

use crate::exchange::{CaptureState, Exchange, RequestRecord};

/// Query parameters that only sign-in traffic carries: an authorization
/// request (`client_id`, `response_type`, `request_uri`), the answer to one
/// (`code`, `state`, `error`), or a token request sent in the query.
const SIGN_IN_PARAMS: [&str; 12] = [
    "code",
    "state",
    "error",
    "client_id",
    "response_type",
    "request_uri",
    "id_token",
    "redirect_uri",
    "grant_type",
    "code_verifier",
    "refresh_token",
    "client_assertion",
];

/// Path fragments of authorization servers' endpoints (token and authorize
/// endpoints, discovery documents), lower case.
const SIGN_IN_PATHS: [&str; 8] = [
    "token",
    "authoriz",
    "oauth",
    "openid",
    "/.well-known/",
    "connect",
    // Pushed authorization requests (`/par`, oidc-provider's `/request`
    // names a push only through its body) and device authorization
    // endpoints (`/devicecode`, `/device/code`, `/device_authorization`).
    "/par",
    "device",
];

/// What a request body of a sign-in leg contains (any case): a token
/// request's, a pushed authorization request's or a device authorization
/// request's parameters, or a
/// `form_post` callback's code or error, as a form or as JSON.
const SIGN_IN_BODY_WORDS: [&str; 19] = [
    "grant_type",
    // A push carrying only a request object, a device authorization with
    // Basic client authentication (only `scope` in its body), a poll.
    "request=",
    "\"request\"",
    "scope=",
    "\"scope\"",
    "device_code",
    "client_id",
    "response_type",
    "request_uri",
    "client_assertion",
    "code_verifier",
    "refresh_token",
    "id_token",
    "redirect_uri",
    "code=",
    "\"code\"",
    "error=",
    "\"error\"",
    "state=",
];

/// False only for exchanges that cannot be a sign-in leg: no sign-in
/// parameter in the query or the request body, a path that names no
/// authorization-server endpoint, and an answer with no `Location` and a
/// declared type other than HTML (a `form_post` page or an IdP's error
/// page). Page assets, plain API calls and uploads are the usual others.
pub fn may_matter(exchange: &Exchange) -> bool {
    let request = &exchange.request;
    if url_may_matter(&request.uri) || body_may_matter(request) {
        return true;
    }
    let Some(response) = &exchange.response else {
        return false;
    };
    // A page without a declared type is read as HTML by browsers (and by
    // the analysis) when it looks like markup.
    response_head_may_matter(response.status, &response.headers)
        .unwrap_or_else(|| looks_like_markup(&response.body.bytes))
}

/// [`may_matter`] from the heads alone, for a request without a body (the
/// proxy's glance before it copies anything): `Some(true)` when the
/// exchange may matter whatever follows, `Some(false)` when it cannot,
/// `None` when what is not given yet decides: the response head when
/// `response` is `None`, else the response body (a page without a type).
pub fn heads_may_matter(
    uri: &http::Uri,
    response: Option<(http::StatusCode, &http::HeaderMap)>,
) -> Option<bool> {
    if url_may_matter(uri) {
        return Some(true);
    }
    let (status, headers) = response?;
    response_head_may_matter(status, headers)
}

/// A sign-in parameter in the query, or an authorization server's path.
fn url_may_matter(uri: &http::Uri) -> bool {
    uri.query().is_some_and(has_sign_in_param) || has_sign_in_path(uri.path())
}

/// True when `path` contains one of [`SIGN_IN_PATHS`], in any case. One
/// pass that tries the fragments only where a byte can start one: the
/// glance asks this at every request head and response head (a search per
/// fragment was 450 instructions for `/hello`; paths are short, so a table
/// of first bytes does what an automaton would).
fn has_sign_in_path(path: &str) -> bool {
    let path = path.as_bytes();
    (0..path.len()).any(|i| {
        PATH_STARTS[usize::from(path[i].to_ascii_lowercase())]
            && SIGN_IN_PATHS.iter().any(|fragment| {
                path[i..]
                    .get(..fragment.len())
                    .is_some_and(|w| w.eq_ignore_ascii_case(fragment.as_bytes()))
            })
    })
}

/// The bytes a [`SIGN_IN_PATHS`] fragment starts with.
const PATH_STARTS: [bool; 256] = {
    let mut starts = [false; 256];
    let mut i = 0;
    while i < SIGN_IN_PATHS.len() {
        starts[SIGN_IN_PATHS[i].as_bytes()[0].to_ascii_lowercase() as usize] = true;
        i += 1;
    }
    starts
};

/// A redirect, a `Location`, or an HTML page; `None` for a page without a
/// declared type (its body decides).
fn response_head_may_matter(status: http::StatusCode, headers: &http::HeaderMap) -> Option<bool> {
    if status.is_redirection() || headers.contains_key(header::LOCATION) {
        return Some(true);
    }
    headers
        .get(header::CONTENT_TYPE)
        .map(|ct| ct.to_str().is_ok_and(|ct| contains_ignore_case(ct, "html")))
}

/// True when `body` starts (after white space) with `<`: for a response
/// without a declared type, whether it may be a page (the last question
/// [`heads_may_matter`] leaves open).
pub fn looks_like_markup(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|&b| b == b'<')
}

/// True when the request body may carry sign-in parameters: one of
/// [`SIGN_IN_BODY_WORDS`] is in what was captured, or only part of a
/// readable body was captured, or it is content-coded (not searched).
fn body_may_matter(request: &RequestRecord) -> bool {
    let body = &request.body;
    if body.size == 0 || body.state == CaptureState::NotCaptured {
        return false;
    }
    if request.headers.contains_key(header::CONTENT_ENCODING) {
        return true;
    }
    if matches!(body.state, CaptureState::Truncated | CaptureState::Aborted) {
        return true;
    }
    static WORDS: OnceLock<AhoCorasick> = OnceLock::new();
    WORDS
        .get_or_init(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(SIGN_IN_BODY_WORDS)
                .expect("fixed words build")
        })
        .is_match(&body.bytes[..])
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
    use crate::exchange::{CapturedBody, ResponseRecord};
    use http::{HeaderMap, HeaderValue, Method, StatusCode, Version};
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
                if !ct.is_empty() {
                    headers.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
                }
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

    fn with_body(mut e: Exchange, body: &str) -> Exchange {
        e.request.body = CapturedBody::complete(body.to_owned());
        e
    }

    #[test]
    fn every_leg_of_a_sign_in_may_matter() {
        let mut located = exchange(
            Method::GET,
            "https://idp.test/continue",
            Some((200, "text/plain")),
        );
        located.response.as_mut().unwrap().headers.insert(
            header::LOCATION,
            HeaderValue::from_static("https://app.test/cb?code=c"),
        );
        let mut untyped_page = exchange(Method::GET, "https://idp.test/continue", Some((200, "")));
        untyped_page.response.as_mut().unwrap().body =
            CapturedBody::complete("\n  <html><form method=post>".to_owned());
        let mut partial = exchange(Method::POST, "https://api.test/x", None);
        partial.request.body = CapturedBody {
            bytes: "padding=aaaa".into(),
            size: 1 << 20,
            state: CaptureState::Truncated,
        };
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
            with_body(
                exchange(Method::POST, "https://idp.test/as/exchange", None),
                "Grant_Type=authorization_code&code=c",
            ),
            with_body(
                exchange(Method::POST, "https://app.test/signin-oidc", None),
                "code=c&state=s",
            ),
            with_body(
                exchange(Method::PUT, "https://idp.test/x", None),
                r#"{"client_id":"a","code":"c"}"#,
            ),
            partial,
            located,
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
            untyped_page,
            exchange(
                Method::GET,
                "https://idp.test/t/v2.0/.well-known/openid-configuration",
                Some((200, "application/json")),
            ),
            exchange(Method::GET, "https://idp.test/oauth2/v2.0/TOKEN", None),
            exchange(Method::POST, "https://idp.test/oauth/token", None),
            // A push carrying only a request object (client authenticated
            // by Basic) at oidc-provider's `/request`, and a device
            // authorization with only a scope in its body.
            with_body(
                exchange(Method::POST, "https://idp.test/request", None),
                "request=eyJhbGciOiJub25lIn0.e30.",
            ),
            with_body(
                exchange(Method::POST, "https://idp.test/auth/x", None),
                "scope=openid%20offline_access",
            ),
            exchange(
                Method::POST,
                "https://idp.test/t/oauth2/v2.0/devicecode",
                None,
            ),
            exchange(Method::POST, "https://idp.test/as/par", None),
        ];
        for leg in &legs {
            assert!(
                may_matter(leg),
                "{} {}",
                leg.request.method,
                leg.request.uri
            );
            // The proxy's glance never lets go of one (it sees the heads of
            // requests without a body).
            if leg.request.body.size == 0 {
                let response = leg.response.as_ref().map(|r| (r.status, &r.headers));
                for heads in [None, response] {
                    assert_ne!(
                        heads_may_matter(&leg.request.uri, heads),
                        Some(false),
                        "{} {}",
                        leg.request.method,
                        leg.request.uri
                    );
                }
            }
        }
    }

    #[test]
    fn the_glance_lets_go_of_typed_assets_and_asks_the_body_of_untyped_ones() {
        let uri: http::Uri = "https://cdn.test/app.js?v=123".parse().unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(heads_may_matter(&uri, None), None);
        assert_eq!(
            heads_may_matter(&uri, Some((StatusCode::OK, &headers))),
            None
        );
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript"),
        );
        assert_eq!(
            heads_may_matter(&uri, Some((StatusCode::OK, &headers))),
            Some(false)
        );
        let authorize: http::Uri = "https://idp.test/x?client_id=a".parse().unwrap();
        assert_eq!(heads_may_matter(&authorize, None), Some(true));
    }

    #[test]
    fn the_one_pass_path_search_finds_what_a_search_per_fragment_finds() {
        let per_fragment = |path: &str| SIGN_IN_PATHS.iter().any(|p| contains_ignore_case(path, p));
        let mut paths = vec![
            String::new(),
            "/".to_string(),
            "/hello".to_string(),
            "/o".to_string(),
            "/oaut".to_string(),
            "/api/v2/items/42".to_string(),
            "/tok".to_string(),
            "/pa".to_string(),
            "/Partners".to_string(),
            // A Cyrillic "о": no fragment; then the real one after a
            // multi-byte character.
            "/é/оauth".to_string(),
            "/é/oauth".to_string(),
        ];
        for fragment in SIGN_IN_PATHS {
            let upper = fragment.to_ascii_uppercase();
            for (before, after) in [("", ""), ("/x", ""), ("", "/y"), ("/a/b", "?")] {
                paths.push(format!("{before}{fragment}{after}"));
                paths.push(format!("{before}{upper}{after}"));
                // Cut short by one byte: not there.
                let cut = &fragment[..fragment.len() - 1];
                paths.push(format!("{before}{cut}"));
            }
        }
        for path in &paths {
            assert_eq!(has_sign_in_path(path), per_fragment(path), "{path:?}");
        }
        assert!(has_sign_in_path("/common/OAuth2/v2.0/Token"));
        assert!(!has_sign_in_path("/hello"));
    }

    #[test]
    fn assets_and_plain_api_calls_do_not() {
        let mut upload = exchange(
            Method::PUT,
            "https://api.test/files/1",
            Some((201, "application/json")),
        );
        upload.request.body = CapturedBody {
            bytes: Default::default(),
            size: 5 << 20,
            state: CaptureState::NotCaptured,
        };
        let mut untyped_bytes = exchange(Method::GET, "https://cdn.test/blob", Some((200, "")));
        untyped_bytes.response.as_mut().unwrap().body =
            CapturedBody::complete(vec![0u8, 159, 146, 150]);
        let others = [
            untyped_bytes,
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
            with_body(
                exchange(
                    Method::POST,
                    "https://api.test/items",
                    Some((201, "application/json")),
                ),
                r#"{"name":"x","codes":[1,2]}"#,
            ),
            exchange(
                Method::POST,
                "https://api.test/ping",
                Some((204, "text/plain")),
            ),
            upload,
            exchange(Method::HEAD, "https://cdn.test/big.iso", None),
            exchange(
                Method::OPTIONS,
                "https://api.test/items",
                Some((204, "text/plain")),
            ),
        ];
        for other in &others {
            assert!(
                !may_matter(other),
                "{} {}",
                other.request.method,
                other.request.uri
            );
        }
    }
}
