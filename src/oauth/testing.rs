//! Builders for exchanges in unit tests (test-only).

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use time::OffsetDateTime;
use time::macros::datetime;

use crate::exchange::{
    CapturedBody, ConnectionInfo, Exchange, RequestRecord, ResponseRecord, Timings,
};

/// 2024-05-01 10:00:00 UTC: every test clock starts here.
pub const T0: OffsetDateTime = datetime!(2024-05-01 10:00:00 UTC);

/// An exchange under construction.
pub struct Ex(pub Exchange);

/// A request `method url` at `T0`, without response yet.
pub fn ex(method: &str, url: &str) -> Ex {
    Ex(Exchange {
        id: 0,
        connection: Arc::new(ConnectionInfo::default()),
        started_at: T0,
        request: RequestRecord {
            method: Method::from_bytes(method.as_bytes()).unwrap(),
            uri: url.parse::<Uri>().unwrap(),
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            // Empty, as the proxy records a request without a body.
            body: CapturedBody::complete(Vec::new()),
        },
        response: None,
        error: None,
        timings: Timings::default(),
        intervention: None,
    })
}

impl Ex {
    pub fn id(mut self, id: u64) -> Self {
        self.0.id = id;
        self
    }

    /// Starts `secs` seconds after `T0`; the response head comes 100 ms later.
    pub fn at(mut self, secs: f64) -> Self {
        self.0.started_at = T0 + Duration::from_secs_f64(secs);
        self.0.timings.response_head = Some(Duration::from_millis(100));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.0.request.headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn body(mut self, body: &str) -> Self {
        self.0.request.body = CapturedBody::complete(body.to_owned());
        self
    }

    /// A form body with its content type.
    pub fn form(self, body: &str) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }

    pub fn status(mut self, status: u16) -> Self {
        self.response_mut().status = StatusCode::from_u16(status).unwrap();
        self
    }

    pub fn resp_header(mut self, name: &str, value: &str) -> Self {
        self.response_mut().headers.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    pub fn resp_body(mut self, body: &str) -> Self {
        self.response_mut().body = CapturedBody::complete(body.to_owned());
        self
    }

    /// A `302` with this `Location`.
    pub fn redirect(self, location: &str) -> Self {
        self.status(302).resp_header("location", location)
    }

    /// A JSON response with this status.
    pub fn json(self, status: u16, body: &str) -> Self {
        self.status(status)
            .resp_header("content-type", "application/json")
            .resp_body(body)
    }

    pub fn build(self) -> Exchange {
        self.0
    }

    fn response_mut(&mut self) -> &mut ResponseRecord {
        if self.0.timings.response_head.is_none() {
            self.0.timings.response_head = Some(Duration::from_millis(100));
        }
        self.0.response.get_or_insert_with(|| ResponseRecord {
            status: StatusCode::OK,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: CapturedBody::default(),
            synthetic: false,
        })
    }
}

/// An unsigned JWT (`alg` RS256, a fake signature) carrying `claims`.
pub fn jwt(claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({"alg": "RS256", "kid": "k-1", "typ": "JWT"});
    format!(
        "{}.{}.c2lnbmF0dXJl",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}
