//! Property tests over every parser that reads network or file input:
//! arbitrary bytes must never panic and must stay bounded. The analysis is
//! fed whole exchanges whose URLs, headers and bodies mix real OAuth shapes
//! with garbage, so every recogniser (query, form, Location, form_post HTML,
//! token JSON, JWT, discovery document) is exercised.

use std::sync::Arc;

use authlens::exchange::{
    CaptureState, CapturedBody, ConnectionInfo, Exchange, RequestRecord, ResponseRecord, Timings,
};
use authlens::oauth::{Analyzer, AnalyzerConfig};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, Version};
use proptest::prelude::*;

/// Fragments that steer the parsers into their interesting paths.
const PIECES: &[&str] = &[
    "response_type=code",
    "client_id=",
    "redirect_uri=",
    "https%3A%2F%2Fapp.test%2Fcb",
    "code=",
    "state=",
    "code_challenge=",
    "code_challenge_method=S256",
    "code_verifier=",
    "grant_type=authorization_code",
    "scope=openid%20profile",
    "&",
    "=",
    "%",
    "%zz",
    "%25",
    "+",
    "#",
    "?",
    "error=invalid_grant",
    "error_description=AADSTS54005:",
    "AADSTS",
    "9999999999999999999999",
    "\u{0}",
    "é",
    "\u{202e}",
    "<form method=\"POST\" action=\"",
    "<input type=\"hidden\" name=\"code\" value=\"",
    "\">",
    "</form>",
    "{\"access_token\":",
    "\"id_token\":\"",
    "eyJhbGciOiJub25lIn0.",
    "eyJub25jZSI6MX0.",
    "\"error_codes\":[",
    "]",
    "}",
    "{",
    "\"",
    "\\",
    "/oauth2/v2.0/token",
    "/oauth2/v2.0/authorize",
    "/common/",
    "/.well-known/openid-configuration",
    // PAR and JAR.
    "/oauth2/v2.0/par",
    "request_uri=",
    "urn:ietf:params:oauth:request_uri:",
    "request=",
    "{\"request_uri\":\"",
    "\"expires_in\":",
];

fn mixed(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(PIECES).prop_map(str::to_string),
            1 => "\\PC{0,12}",
            1 => prop::collection::vec(any::<u8>(), 0..8)
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_bytes(text.as_bytes()).unwrap_or_else(|_| HeaderValue::from_static("x"))
}

/// One generated leg: method, path, request content type and body, status,
/// response content type, Location and body.
type Leg = (
    &'static str,
    String,
    &'static str,
    String,
    u16,
    &'static str,
    String,
    String,
);

fn exchange(id: u64, leg: Leg) -> Exchange {
    let (method, path, req_ct, req_body, status, resp_ct, location, resp_body) = leg;
    let uri = format!("https://login.microsoftonline.com/{path}")
        .parse::<Uri>()
        .unwrap_or_else(|_| {
            Uri::from_static("https://login.microsoftonline.com/x/oauth2/v2.0/token")
        });
    let mut req_headers = HeaderMap::new();
    req_headers.insert("content-type", header_value(req_ct));
    let mut resp_headers = HeaderMap::new();
    resp_headers.insert("content-type", header_value(resp_ct));
    resp_headers.insert("location", header_value(&location));
    Exchange {
        id,
        connection: Arc::new(ConnectionInfo::default()),
        started_at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(id as i64),
        request: RequestRecord {
            method: Method::from_bytes(method.as_bytes()).unwrap_or(Method::POST),
            uri,
            version: Version::HTTP_11,
            headers: req_headers,
            body: CapturedBody::complete(Bytes::from(req_body)),
        },
        response: Some(ResponseRecord {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            version: Version::HTTP_11,
            headers: resp_headers,
            body: CapturedBody {
                state: if id.is_multiple_of(5) {
                    CaptureState::Truncated
                } else {
                    CaptureState::Complete
                },
                ..CapturedBody::complete(Bytes::from(resp_body))
            },
            synthetic: false,
        }),
        error: None,
        timings: Timings::default(),
        intervention: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn the_analysis_never_panics_on_arbitrary_exchanges(
        legs in prop::collection::vec(
            (
                prop::sample::select(&["GET", "POST", "PUT"][..]),
                mixed(12),
                prop::sample::select(&["application/x-www-form-urlencoded", "application/json", "text/html", "", "\u{1}"][..]),
                mixed(24),
                prop::sample::select(&[200u16, 302, 400, 401, 500][..]),
                prop::sample::select(&["application/json", "text/html; charset=utf-8", "application/x-www-form-urlencoded"][..]),
                mixed(10),
                mixed(24),
            ),
            1..12,
        )
    ) {
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        let mut live_log = authlens::output::live_log::LiveLog::new(Default::default());
        for (i, leg) in legs.into_iter().enumerate() {
            let ex = exchange(i as u64 + 1, leg);
            let events = analyzer.observe(&ex);
            // Every event renders in both outlets.
            for event in &events {
                let _ = authlens::output::json_lines::to_line(event);
                let _ = live_log.render(event);
            }
        }
    }

    #[test]
    fn jwt_decoding_never_panics(token in mixed(16), raw in "\\PC{0,200}") {
        let _ = authlens::oauth::jwt::decode(&token);
        let _ = authlens::oauth::jwt::decode(&raw);
    }

    #[test]
    fn har_reading_never_panics(doc in mixed(40), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let wrapped = format!("{{\"log\":{{\"version\":\"1.2\",\"entries\":[{{\"startedDateTime\":\"2026-01-01T00:00:00Z\",\"request\":{{\"method\":\"GET\",\"url\":\"{doc}\"}},\"response\":{{\"status\":200,\"content\":{{\"text\":\"{doc}\"}}}}}}]}}}}");
        for input in [wrapped.as_bytes(), doc.as_bytes(), &bytes[..]] {
            let _ = authlens::har::read::read_from(input, "fuzz", Default::default());
        }
    }

    #[test]
    fn explain_never_panics(text in mixed(30)) {
        let _ = authlens::explain::explain_response(&text);
        let _ = authlens::explain::parse_pasted(&text);
    }
}
