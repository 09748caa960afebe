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

// === the lifecycle grants (issue 14) ===

/// Fragments of refresh, device-code, client_credentials, jwt-bearer and
/// token-exchange requests and answers.
const LIFECYCLE_PIECES: &[&str] = &[
    "grant_type=refresh_token",
    "grant_type=client_credentials",
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer",
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange",
    "grant_type=password",
    "grant_type=",
    "refresh_token=",
    "device_code=",
    "assertion=",
    "subject_token=",
    "requested_token_use=on_behalf_of",
    "scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
    "scope=User.Read",
    "code=",
    "&",
    "=",
    "%",
    "eyJhbGciOiJub25lIn0.eyJ4IjoxfQ.",
    "\u{0}",
    "\u{1b}[2J",
];

fn lifecycle_form(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(LIFECYCLE_PIECES).prop_map(str::to_string),
            1 => "\\PC{0,10}",
        ],
        0..max,
    )
    .prop_map(|parts| parts.concat())
}

/// A device authorization answer whose members are each present, absent,
/// a number or garbage.
fn device_answer() -> impl Strategy<Value = String> {
    let member = |name: &'static str| {
        prop_oneof![
            Just(String::new()),
            any::<u64>().prop_map(move |n| format!("\"{name}\":{n},")),
            "\\PC{0,6}".prop_map(move |s| format!("\"{name}\":{},", serde_json::json!(s))),
            Just(format!("\"{name}\":null,")),
        ]
    };
    (
        member("interval"),
        member("expires_in"),
        member("device_code"),
        member("user_code"),
    )
        .prop_map(|(a, b, c, d)| format!("{{{a}{b}{c}{d}\"verification_uri\":\"https://x/d\"}}"))
}

/// An exchange at `secs` seconds: a form POST to `path`, answered `status` with `body`.
fn lifecycle_exchange(
    id: u64,
    secs: u32,
    path: &str,
    form: String,
    status: u16,
    body: String,
) -> Exchange {
    exchange(
        id,
        (
            "POST",
            path.to_owned(),
            "application/x-www-form-urlencoded",
            form,
            status,
            "application/json",
            String::new(),
            body,
        ),
    )
    .tap_time(secs)
}

trait TapTime {
    fn tap_time(self, secs: u32) -> Self;
}

impl TapTime for Exchange {
    fn tap_time(mut self, secs: u32) -> Self {
        self.started_at =
            time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(i64::from(secs));
        self
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn grant_parsing_never_panics_and_names_what_was_sent(form in lifecycle_form(12)) {
        let params = authlens::oauth::params::Params::parse(&form);
        let grant = authlens::oauth::message::Grant::parse(|name| params.get(name));
        prop_assert_eq!(grant.as_ref().map(|g| g.name()), params.get("grant_type"));
        if let Some(grant) = grant {
            let _ = grant.label();
            if let Some((kind, value)) = grant.credential() {
                prop_assert_eq!(params.get(kind), Some(value));
            }
        }
    }

    #[test]
    fn device_answers_are_read_as_they_are(answer in device_answer(), interval in any::<u64>()) {
        let ex = lifecycle_exchange(1, 0, "t/oauth2/v2.0/devicecode", "client_id=c".into(), 200, answer.clone());
        let device = authlens::oauth::message::DeviceAuthorization::parse(&ex.request, ex.response.as_ref(), false);
        let device = device.expect("a device endpoint is recognised");
        let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
        // A number, or a string of one (Entra v1 writes numbers as strings).
        let number = |v: &serde_json::Value| {
            v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        };
        prop_assert_eq!(device.interval, number(&value["interval"]));
        prop_assert_eq!(device.expires_in, number(&value["expires_in"]));
        // A whole number is read exactly.
        let exact = format!("{{\"device_code\":\"d\",\"user_code\":\"u\",\"interval\":{interval}}}");
        let ex = lifecycle_exchange(2, 0, "t/anything", "client_id=c".into(), 200, exact);
        let device = authlens::oauth::message::DeviceAuthorization::parse(&ex.request, ex.response.as_ref(), false).unwrap();
        prop_assert_eq!(device.interval, Some(interval));
    }

    #[test]
    fn lifecycle_sequences_never_panic_and_read_back(
        steps in prop::collection::vec(
            (
                0u8..4,
                0u8..3,
                0u32..2000,
                prop::sample::select(&[200u16, 400, 401, 500][..]),
                prop::sample::select(&[
                    r#"{"error":"authorization_pending","error_codes":[70016]}"#,
                    r#"{"error":"slow_down"}"#,
                    r#"{"error":"expired_token","error_codes":[70019]}"#,
                    r#"{"error":"invalid_grant","error_codes":[70008]}"#,
                    r#"{"access_token":"a","refresh_token":"r0"}"#,
                    r#"{"access_token":"a","refresh_token":"r1"}"#,
                    r#"{"device_code":"d0","user_code":"u","expires_in":30}"#,
                    r#"{"device_code":"d1","user_code":"u","interval":"x"}"#,
                    "not json",
                ][..]),
                lifecycle_form(6),
            ),
            1..40,
        )
    ) {
        let mut analyzer = Analyzer::new(AnalyzerConfig { max_attempts: 2, ..AnalyzerConfig::default() });
        let mut live_log = authlens::output::live_log::LiveLog::new(Default::default());
        let mut clock = 0u32;
        for (i, (kind, which, after, status, body, extra)) in steps.into_iter().enumerate() {
            clock = clock.saturating_add(after);
            let (path, form) = match kind {
                0 => ("t/oauth2/v2.0/devicecode", format!("client_id=c&{extra}")),
                1 => ("t/oauth2/v2.0/token", format!("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=d{which}&{extra}")),
                2 => ("t/oauth2/v2.0/token", format!("grant_type=refresh_token&refresh_token=r{which}&client_id=c{which}&{extra}")),
                _ => ("t/oauth2/v2.0/token", extra),
            };
            let ex = lifecycle_exchange(i as u64 + 1, clock, path, form, status, body.to_owned());
            for event in analyzer.observe(&ex) {
                let line = authlens::output::json_lines::to_line(&event);
                let back = authlens::output::json_lines::from_line(&line).ok();
                prop_assert_eq!(back.as_ref(), Some(&event), "{}", line);
                let _ = live_log.render(&event);
            }
        }
    }
}
