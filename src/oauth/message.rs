//! The four messages of the authorization-code flow, parsed once into typed
//! values that keep the raw text for evidence, and the device authorization
//! request of the device-code grant. A token request's [`Grant`] (any
//! grant: OAUTH.md §7) has its own file.
//!
//! Recognition is by content, on any host (OAUTH.md §1): nothing here knows
//! about attempts or rules, and no input (arbitrary bytes in a query, a form,
//! JSON, HTML or a `Location`) can make it panic.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, Method, Uri, header};

use super::catalogue::{self, scan_codes};
use super::form_post::parse_form;
use super::params::{Params, decode_component};
use super::provider::{Endpoint, EndpointKind, KnownEndpoints};
use crate::exchange::{CaptureState, CapturedBody, RequestRecord, ResponseRecord};

mod grant;
mod par;

pub use grant::{
    ClientCredentialsGrant, CodeGrant, DEVICE_CODE, DeviceCodeGrant, Grant, JWT_BEARER,
    JwtBearerGrant, PasswordGrant, RefreshGrant, TOKEN_EXCHANGE, TokenExchangeGrant,
};
pub use par::{
    IndirectAuthorize, ParAnswer, PushedRequest, Via, refusal_page, request_object_params,
};

/// Raw text kept for evidence is cut to this many bytes.
pub const RAW_CAP: usize = 4096;
/// Bodies larger than this are not parsed (an OAuth message is small).
const PARSE_CAP: usize = 256 * 1024;

// === AuthorizeRequest ===

/// `GET|POST …/authorize?response_type=code&client_id=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    pub endpoint: Endpoint,
    pub client_id: String,
    pub response_type: String,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub response_mode: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    /// Entra v1 `resource`.
    pub resource: Option<String>,
    pub params: Params,
    /// The query or form body as sent (capped).
    pub raw: String,
    /// Whether the parameters were on /authorize, pushed (PAR) or in a
    /// request object (JAR).
    pub via: Via,
    /// False when the parameters were elsewhere and authlens could not read
    /// them (a push it did not see, an unreadable request object): what is
    /// absent here is unknown, not absent, and judged by no rule.
    pub params_known: bool,
}

impl AuthorizeRequest {
    /// Recognises an authorization request: `response_type` containing `code`
    /// and a `client_id`, in the query or a form body.
    pub fn parse(req: &RequestRecord) -> Option<AuthorizeRequest> {
        let query = req.uri.query().unwrap_or_default();
        let mut candidates = vec![query.to_owned()];
        if req.method == Method::POST && is_form(&req.headers) {
            candidates.push(form_text(&req.body, &req.headers)?);
        }
        candidates.into_iter().find_map(|raw| {
            Self::from_params(
                Endpoint::from_uri(&req.uri),
                Params::parse(&raw),
                cap(&raw),
                Via::Direct,
            )
        })
    }

    /// An authorization request from its parameters, wherever they were
    /// read: `response_type` containing `code`, and a `client_id`.
    pub fn from_params(
        endpoint: Endpoint,
        params: Params,
        raw: String,
        via: Via,
    ) -> Option<AuthorizeRequest> {
        let response_type = params.get("response_type")?;
        if !response_type.split(' ').any(|t| t == "code") {
            return None;
        }
        let text = |k: &str| params.get(k).map(str::to_owned);
        Some(AuthorizeRequest {
            endpoint,
            client_id: text("client_id")?,
            response_type: response_type.to_owned(),
            redirect_uri: text("redirect_uri"),
            scope: text("scope"),
            state: text("state"),
            nonce: text("nonce"),
            response_mode: text("response_mode"),
            code_challenge: text("code_challenge"),
            code_challenge_method: text("code_challenge_method"),
            resource: text("resource"),
            raw,
            params,
            via,
            params_known: true,
        })
    }

    /// An authorization request whose parameters authlens could not read,
    /// from what it saw of them (`client_id` at least): `response_type` is
    /// taken to be `code` unless one is seen, and every parameter not seen
    /// is unknown ([`AuthorizeRequest::params_known`] is false).
    pub fn unknown(
        endpoint: Endpoint,
        params: Params,
        raw: String,
        via: Via,
    ) -> Option<AuthorizeRequest> {
        let response_type = params.get("response_type").unwrap_or("code").to_owned();
        let mut seen = params.clone();
        if !params.contains("response_type") {
            seen = Params::from_pairs(
                params
                    .iter()
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .chain([("response_type".to_owned(), response_type)])
                    .collect::<Vec<_>>(),
            );
        }
        let mut request = Self::from_params(endpoint, seen, raw, via)?;
        request.params = params;
        request.params_known = false;
        Some(request)
    }
}

// === AuthorizationResponse ===

/// Where an authorization response was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// The query of a `Location` header.
    Query,
    /// The fragment of a `Location` header (the browser never sends it on).
    Fragment,
    /// An auto-submitting HTML form.
    FormPost,
    /// A request to the redirect URI (the browser delivering the response).
    Callback,
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
            ResponseMode::FormPost => "form_post",
            ResponseMode::Callback => "callback",
        }
    }
}

/// `code` (or `error`) on its way back to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationResponse {
    pub mode: ResponseMode,
    /// Where it is going: the redirect URI without query or fragment.
    pub target: Option<String>,
    pub code: Option<String>,
    pub state: Option<String>,
    /// RFC 9207 issuer.
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Entra / B2C numbers (`AADSTS50011`, `AADB2C90006`) named in the error.
    pub error_codes: Vec<String>,
    pub params: Params,
    pub raw: String,
}

impl AuthorizationResponse {
    /// From an IdP response: a `Location` (query or fragment) or a form_post page.
    pub fn from_response(resp: &ResponseRecord) -> Option<AuthorizationResponse> {
        if let Some(location) = header_str(&resp.headers, header::LOCATION) {
            return Self::from_location(location);
        }
        let html = html_text(&resp.body, &resp.headers)?;
        if !html.contains('<') {
            return None;
        }
        let form = parse_form(&html)?;
        let target = form.action.as_deref().map(strip_query);
        Self::from_params(ResponseMode::FormPost, target, form.fields, cap(&html))
    }

    /// From a `Location` header value.
    pub fn from_location(location: &str) -> Option<AuthorizationResponse> {
        let (before, fragment) = location.split_once('#').unwrap_or((location, ""));
        let target = Some(strip_query(before));
        let fragment_params = Params::parse(fragment);
        if carries_response(&fragment_params) {
            return Self::from_params(
                ResponseMode::Fragment,
                target,
                fragment_params,
                cap(location),
            );
        }
        let query = before.split_once('?').map_or("", |(_, q)| q);
        Self::from_params(
            ResponseMode::Query,
            target,
            Params::parse(query),
            cap(location),
        )
    }

    /// From a request to the redirect URI (query, or a form_post body).
    pub fn from_callback(req: &RequestRecord) -> Option<AuthorizationResponse> {
        let target = Some(strip_query(&req.uri.to_string()));
        let query = req.uri.query().unwrap_or_default();
        let params = Params::parse(query);
        if carries_response(&params) {
            return Self::from_params(ResponseMode::Callback, target, params, cap(query));
        }
        if req.method == Method::POST && is_form(&req.headers) {
            let body = form_text(&req.body, &req.headers)?;
            return Self::from_params(
                ResponseMode::Callback,
                target,
                Params::parse(&body),
                cap(&body),
            );
        }
        None
    }

    fn from_params(
        mode: ResponseMode,
        target: Option<String>,
        params: Params,
        raw: String,
    ) -> Option<AuthorizationResponse> {
        if !carries_response(&params) {
            return None;
        }
        let text = |k: &str| params.get(k).map(str::to_owned);
        let error_description = text("error_description");
        Some(AuthorizationResponse {
            mode,
            target,
            code: text("code"),
            state: text("state"),
            iss: text("iss"),
            error: text("error"),
            error_codes: error_description
                .as_deref()
                .map(scan_codes)
                .unwrap_or_default(),
            error_description,
            params,
            raw,
        })
    }
}

fn carries_response(params: &Params) -> bool {
    params.get("code").is_some() || params.get("error").is_some()
}

// === TokenRequest ===

/// How the token request body was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    Empty,
    Form,
    Json,
    /// Anything else (multipart, text, binary, compressed).
    Other,
    /// The body was not recorded (a HAR export that dropped it): its
    /// parameters are unknown, not absent.
    NotRecorded,
}

/// How much of a body the analysis read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodySeen {
    /// All of it (or there was none).
    Whole,
    /// Only its first `read` bytes (content coding undone): the body, `size`
    /// bytes or more on the wire, is larger than what authlens captures
    /// (`--capture-limit`) or reads (256 KiB).
    TooLarge { read: usize, size: u64 },
    /// What arrived before the body broke off after `size` bytes (its sender
    /// went away mid-body): `read` bytes of it were read.
    BrokeOff { read: usize, size: u64 },
    /// None of it: its content coding (`Content-Encoding`) could not be
    /// undone (unknown, corrupt, or beyond what authlens decodes).
    NotDecoded { size: u64 },
}

impl BodySeen {
    pub fn is_whole(self) -> bool {
        self == BodySeen::Whole
    }
}

/// Client credentials sent with HTTP Basic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicAuth {
    pub client_id: String,
    pub secret: String,
}

/// `POST …/token`: what it asks for ([`Grant`]), how it was sent and how the
/// client authenticates, however broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub method: Method,
    pub endpoint: Endpoint,
    /// `None` when no `grant_type` was sent (or an empty one).
    pub grant: Option<Grant>,
    pub content_type: Option<String>,
    pub body_format: BodyFormat,
    /// Parameters of a form body.
    pub form: Params,
    /// Parameters of a JSON object body (wrong, but read for pairing).
    pub json: Params,
    /// Parameters of the query string (wrong, but read for pairing).
    pub query: Params,
    pub basic: Option<BasicAuth>,
    pub origin: Option<String>,
    /// How much of the body was read: parameters the rest may hold are
    /// unknown, not absent (see [`TokenRequest::params_known`]).
    pub body_seen: BodySeen,
    /// The body as sent (capped).
    pub raw_body: String,
}

impl TokenRequest {
    /// Recognises a token request by its content (a `grant_type` authlens
    /// knows, anywhere: OAUTH.md §1 and §7) or by its URL (a known or learnt
    /// token endpoint, where an unknown grant_type is read by its name, and a
    /// request without one too).
    pub fn parse(req: &RequestRecord, known: &KnownEndpoints) -> Option<TokenRequest> {
        if req.method == Method::OPTIONS || req.method == Method::HEAD {
            return None;
        }
        let endpoint = Endpoint::from_uri(&req.uri);
        let content_type = header_str(&req.headers, header::CONTENT_TYPE).map(str::to_owned);
        let (body, body_seen) = match seen_text(&req.body, &req.headers) {
            Some((text, seen)) => (Some(text), seen),
            None if req.body.size > 0 => (
                None,
                BodySeen::NotDecoded {
                    size: req.body.size,
                },
            ),
            None => (None, BodySeen::Whole),
        };
        let partial = !body_seen.is_whole();
        let body_format = match body.as_deref() {
            // A POST whose body the recording left out (a GET has none to lose).
            _ if req.method == Method::POST
                && req.body.state == CaptureState::NotCaptured
                && req.body.bytes.is_empty() =>
            {
                BodyFormat::NotRecorded
            }
            // None, or not decoded: then its format is unknown
            // (`body-not-analysed` says so).
            None => BodyFormat::Empty,
            // An empty start of a body is no empty body.
            Some("") if !partial => BodyFormat::Empty,
            Some(b) => {
                let ct = content_type
                    .as_deref()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if ct.contains("json") || b.trim_start().starts_with('{') {
                    BodyFormat::Json
                } else if ct.starts_with("application/x-www-form-urlencoded")
                    || (ct.is_empty() && b.contains('='))
                {
                    BodyFormat::Form
                } else if ct.is_empty() && partial {
                    // Too little of it was seen to tell.
                    BodyFormat::Empty
                } else {
                    BodyFormat::Other
                }
            }
        };
        let body = body.unwrap_or_default();
        let form = match body_format {
            BodyFormat::Form if partial => Params::parse(whole_pairs(&body)),
            BodyFormat::Form => Params::parse(&body),
            _ => Params::default(),
        };
        let json = match body_format {
            BodyFormat::Json if partial => json_prefix_params(&body),
            BodyFormat::Json => json_params(&body),
            _ => Params::default(),
        };
        let mut request = TokenRequest {
            method: req.method.clone(),
            grant: None,
            content_type,
            body_format,
            form,
            json,
            query: Params::parse(req.uri.query().unwrap_or_default()),
            basic: basic_auth(&req.headers),
            origin: header_str(&req.headers, header::ORIGIN).map(str::to_owned),
            body_seen,
            raw_body: cap(&body),
            endpoint,
        };
        request.grant = Grant::parse(|name| request.param(name));
        let at_token_url = request.endpoint.kind == EndpointKind::Token
            || known.is_token_endpoint(&request.endpoint.url());
        let recognised = match &request.grant {
            Some(Grant::Other(_)) | None => at_token_url,
            Some(_) => true,
        };
        recognised.then_some(request)
    }

    /// True when every parameter the request sent was read, so one not
    /// found was not sent: false when the body was not recorded, or only
    /// part of it was seen.
    pub fn params_known(&self) -> bool {
        self.body_format != BodyFormat::NotRecorded && self.body_seen.is_whole()
    }

    /// A parameter from the form body, else a JSON body, else the query.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .get(name)
            .or_else(|| self.json.get(name))
            .or_else(|| self.query.get(name))
    }

    /// `client_id` from the body, else from HTTP Basic.
    pub fn client_id(&self) -> Option<&str> {
        self.param("client_id").or_else(|| {
            self.basic
                .as_ref()
                .map(|b| b.client_id.as_str())
                .filter(|id| !id.is_empty())
        })
    }

    /// The client authentication methods used, in RFC 7591 names.
    pub fn client_auth_methods(&self) -> Vec<&'static str> {
        let mut methods = Vec::new();
        if self.basic.is_some() {
            methods.push("client_secret_basic");
        }
        if self.param("client_secret").is_some() {
            methods.push("client_secret_post");
        }
        if self.param("client_assertion").is_some() {
            methods.push("client_assertion");
        }
        methods
    }
}

fn json_params(body: &str) -> Params {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(body) else {
        return Params::default();
    };
    Params::from_pairs(map.into_iter().map(|(k, v)| (k, json_text(&v))))
}

/// The members of a JSON object that are whole in `text`, the start of the
/// object (the rest was not seen). A number that ends the text may have
/// been cut, so it is left out.
fn json_prefix_params(text: &str) -> Params {
    use serde::de::{DeserializeSeed, MapAccess, Visitor};

    /// Collects members as they are parsed, so those read before the text
    /// ends are kept when the object does not close.
    struct Members<'a>(&'a mut Vec<(String, serde_json::Value)>);

    impl<'de> DeserializeSeed<'de> for Members<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de> Visitor<'de> for Members<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                self.0.push(member);
            }
            Ok(())
        }
    }

    let mut members = Vec::new();
    let mut reader = serde_json::Deserializer::from_str(text);
    let closed = Members(&mut members).deserialize(&mut reader).is_ok();
    if !closed && matches!(members.last(), Some((_, serde_json::Value::Number(_)))) {
        members.pop();
    }
    Params::from_pairs(members.into_iter().map(|(k, v)| (k, json_text(&v))))
}

/// The pairs of a form body that are whole in `text`, the start of the
/// body: the last one may have been cut, unless an `&` ends it.
fn whole_pairs(text: &str) -> &str {
    text.rfind('&').map_or("", |at| &text[..at])
}

fn basic_auth(headers: &HeaderMap) -> Option<BasicAuth> {
    let value = header_str(headers, header::AUTHORIZATION)?;
    let (scheme, credentials) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8_lossy(&decoded);
    let (id, secret) = decoded.split_once(':').unwrap_or((&decoded, ""));
    Some(BasicAuth {
        client_id: decode_component(id),
        secret: decode_component(secret),
    })
}

// === TokenResponse ===

/// The IdP's answer at /token: tokens, or an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub status: u16,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Entra `error_codes` (plus numbers named in the description), as
    /// `AADSTS54005` / `AADB2C90088`, most specific first.
    pub error_codes: Vec<String>,
    /// The raw numbers of Entra's `error_codes` array.
    pub error_numbers: Vec<u64>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub expires_in: Option<String>,
    /// The body as received (capped).
    pub raw: String,
}

impl TokenResponse {
    /// Parses a JSON (or GitHub-style form-encoded) token response. Never fails:
    /// an unreadable body leaves every field empty.
    pub fn parse(resp: &ResponseRecord) -> TokenResponse {
        let body = body_text(&resp.body, &resp.headers).unwrap_or_default();
        let params = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(map)) => {
                Params::from_pairs(map.into_iter().map(|(k, v)| (k, json_text(&v))))
            }
            _ if !body.trim_start().starts_with(['{', '<']) => Params::parse(body.trim()),
            _ => Params::default(),
        };
        let text = |k: &str| params.get(k).map(str::to_owned);
        let error_numbers = params
            .get("error_codes")
            .map(catalogue::parse_error_numbers)
            .unwrap_or_default();
        let error_description = text("error_description");
        let error_codes = catalogue::named_codes(&error_numbers, error_description.as_deref());
        TokenResponse {
            status: resp.status.as_u16(),
            error: text("error"),
            error_description,
            error_codes,
            error_numbers,
            trace_id: text("trace_id"),
            correlation_id: text("correlation_id"),
            access_token: text("access_token"),
            refresh_token: text("refresh_token"),
            id_token: text("id_token"),
            token_type: text("token_type"),
            scope: text("scope"),
            expires_in: text("expires_in"),
            raw: cap(&body),
        }
    }

    /// True for an error body or an HTTP error status.
    pub fn is_error(&self) -> bool {
        self.error.is_some() || self.status >= 400
    }

    /// True when the IdP refused the request for its shape, before reading
    /// the code: an Entra / B2C number for a malformed request
    /// ([`MALFORMED_REQUEST_CODES`]) or, when the answer gives no number,
    /// OAuth `invalid_request` or `unsupported_grant_type`. A number decides
    /// alone: Entra also answers `invalid_request` for refusals that read the
    /// code (AADSTS9002327, a SPA code redeemed server-side).
    pub fn refuses_request_shape(&self) -> bool {
        if !self.is_error() {
            return false;
        }
        if !self.error_codes.is_empty() {
            return self
                .error_codes
                .iter()
                .any(|c| MALFORMED_REQUEST_CODES.contains(&c.as_str()));
        }
        self.error
            .as_deref()
            .is_some_and(|e| matches!(e, "invalid_request" | "unsupported_grant_type"))
    }
}

/// Numbers an IdP answers for a token request refused for its shape, before
/// it reads the code (OAUTH.md §5): a missing parameter (`AADSTS900144`, older
/// `90014`; B2C `90083`; no client credential, `7000218`), GET instead of POST
/// (`900561`, `90056`), a malformed request (`9002313`), an unsupported grant
/// type (`70003`, B2C `90086`).
const MALFORMED_REQUEST_CODES: &[&str] = &[
    "AADSTS900144",
    "AADSTS90014",
    "AADSTS7000218",
    "AADSTS900561",
    "AADSTS90056",
    "AADSTS9002313",
    "AADSTS70003",
    "AADB2C90083",
    "AADB2C90086",
];

// === DeviceAuthorization ===

/// `POST …/devicecode` (RFC 8628 §3.1) and the IdP's answer (§3.2):
/// `device_code`, `user_code`, `verification_uri`, `expires_in`, `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    pub endpoint: Endpoint,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// The answer as a token-endpoint style response (status, error, codes).
    pub answer: Option<TokenResponse>,
    pub device_code: Option<String>,
    pub user_code: Option<String>,
    pub verification_uri: Option<String>,
    /// `None` when absent or not a number.
    pub expires_in: Option<u64>,
    /// `None` when absent or not a number: then 5 s (RFC 8628 §3.2).
    pub interval: Option<u64>,
    /// The `interval` as sent, when it is not a number.
    pub bad_interval: Option<String>,
}

impl DeviceAuthorization {
    /// Path ends of device authorization endpoints: Entra `/devicecode`,
    /// Auth0 and Google `/device/code`, Okta `/device/authorize`, Keycloak
    /// `/auth/device`, and RFC 8628's usual `/device_authorization`.
    const PATHS: [&'static str; 5] = [
        "/devicecode",
        "/device/code",
        "/device/authorize",
        "/auth/device",
        "/device_authorization",
    ];

    /// Recognises a device authorization request: at a URL `learnt` from
    /// discovery; by its answer (a JSON object with `device_code` and
    /// `user_code`); or at a usual path when it is shaped like one (a form
    /// body, and a `client_id` in it or in HTTP Basic), so that an app's own
    /// `POST /api/device/authorize` is not taken for a sign-in.
    pub fn parse(
        req: &RequestRecord,
        resp: Option<&ResponseRecord>,
        learnt: bool,
    ) -> Option<DeviceAuthorization> {
        if req.method != Method::POST {
            return None;
        }
        let path = req.uri.path().trim_end_matches('/').to_ascii_lowercase();
        let json = resp
            .and_then(|r| body_text(&r.body, &r.headers))
            .map(|body| json_params(&body))
            .unwrap_or_default();
        let answered = json.get("device_code").is_some() && json.get("user_code").is_some();
        let form = match form_text(&req.body, &req.headers) {
            Some(text) => Params::parse(&text),
            None => Params::default(),
        };
        let text = |p: &Params, k: &str| p.get(k).map(str::to_owned);
        let client_id = text(&form, "client_id").or_else(|| {
            basic_auth(&req.headers)
                .map(|b| b.client_id)
                .filter(|id| !id.is_empty())
        });
        let shaped = is_form(&req.headers) && client_id.is_some();
        let at_device_path = Self::PATHS.iter().any(|p| path.ends_with(p));
        if !(learnt || answered || (at_device_path && shaped)) {
            return None;
        }
        let number = |k: &str| json.get(k).and_then(|v| v.trim().parse::<u64>().ok());
        Some(DeviceAuthorization {
            endpoint: Endpoint::from_uri(&req.uri),
            client_id,
            scope: text(&form, "scope"),
            answer: resp.map(TokenResponse::parse),
            device_code: text(&json, "device_code"),
            user_code: text(&json, "user_code"),
            verification_uri: text(&json, "verification_uri")
                .or_else(|| text(&json, "verification_url")),
            expires_in: number("expires_in"),
            interval: number("interval"),
            bad_interval: json
                .get("interval")
                .filter(|v| v.trim().parse::<u64>().is_err())
                .map(str::to_owned),
        })
    }
}

// === helpers ===

/// The error text an IdP shows on its own page when it refuses to redirect
/// (an invalid client_id or redirect_uri, OAUTH.md §1): the part of an HTML
/// error page that names `AADSTS…` / `AADB2C…` codes, if any.
pub fn error_page_text(resp: &ResponseRecord) -> Option<String> {
    if resp.headers.contains_key(header::LOCATION) {
        return None;
    }
    let body = body_text(&resp.body, &resp.headers)?;
    // Entra's sign-in page embeds its error in `$Config`; on a normal login
    // page codes may appear in templates (scripts), so only an error page
    // counts: the `$Config` error field, an error status, or a code written
    // as an error message (`AADSTS50011: …`) in the page's visible text.
    let visible;
    let rest = match body.find("strServiceExceptionMessage") {
        Some(at) => &body[at..],
        None if resp.status.as_u16() >= 400 => body.as_str(),
        None => {
            visible = without_scripts(&body);
            let codes = scan_codes(&visible);
            let upper = visible.to_ascii_uppercase();
            let stated = codes.iter().find_map(|c| upper.find(&format!("{c}:")))?;
            &visible[stated..]
        }
    };
    let codes = scan_codes(rest);
    let first = codes.first()?;
    let at = rest.to_ascii_uppercase().find(first.as_str()).unwrap_or(0);
    let excerpt: String = rest[at..]
        .chars()
        .take(300)
        .take_while(|c| *c != '"' && *c != '<')
        .collect();
    Some(excerpt)
}

/// The page without its `<script>` elements (ASCII case-insensitive tags).
fn without_scripts(html: &str) -> String {
    let lower = html.to_ascii_lowercase();
    let mut out = String::with_capacity(html.len());
    let mut at = 0;
    while let Some(open) = lower[at..].find("<script").map(|i| at + i) {
        out.push_str(&html[at..open]);
        at = match lower[open..].find("</script") {
            Some(close) => open + close + "</script".len(),
            None => html.len(),
        };
    }
    out.push_str(&html[at..]);
    out
}

/// A header value as text, when it is valid visible ASCII.
pub fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn is_form(headers: &HeaderMap) -> bool {
    header_str(headers, header::CONTENT_TYPE).is_some_and(|ct| {
        ct.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    })
}

/// The body as text (content coding undone), when it was captured and is
/// small enough to be an OAuth message, whole.
fn body_text(body: &CapturedBody, headers: &HeaderMap) -> Option<String> {
    match seen_text(body, headers)? {
        (text, BodySeen::Whole) => Some(text),
        _ => None,
    }
}

/// A form body as text: whole, or the pairs whole in the part seen.
fn form_text(body: &CapturedBody, headers: &HeaderMap) -> Option<String> {
    match seen_text(body, headers)? {
        (text, BodySeen::Whole) => Some(text),
        (text, _) => Some(whole_pairs(&text).to_owned()),
    }
}

/// An HTML body as text: whole, or up to the last tag whole in the part seen.
fn html_text(body: &CapturedBody, headers: &HeaderMap) -> Option<String> {
    match seen_text(body, headers)? {
        (text, BodySeen::Whole) => Some(text),
        (text, _) => Some(text.rfind('>').map_or("", |at| &text[..=at]).to_owned()),
    }
}

/// The body as text (content coding undone), at most [`PARSE_CAP`] bytes
/// of it, and how much of the body that is: a prefix when the capture cut
/// it, when it broke off, or when it is larger than [`PARSE_CAP`]. `None`
/// when its coding cannot be undone.
fn seen_text(body: &CapturedBody, headers: &HeaderMap) -> Option<(String, BodySeen)> {
    let decoded = crate::decode::decoded_body(body, headers, PARSE_CAP + 1).ok()?;
    let read = decoded.len().min(PARSE_CAP);
    // The size on the wire: what went through, or more when the length the
    // sender announced says so (a body given up on mid-way).
    let announced = header_str(headers, header::CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
    let size = body.size.max(announced.unwrap_or(0));
    let seen = match body.state {
        CaptureState::Aborted => BodySeen::BrokeOff { read, size },
        CaptureState::Truncated => BodySeen::TooLarge { read, size },
        CaptureState::Complete | CaptureState::NotCaptured if decoded.len() > PARSE_CAP => {
            BodySeen::TooLarge { read, size }
        }
        CaptureState::Complete | CaptureState::NotCaptured => BodySeen::Whole,
    };
    Some((String::from_utf8_lossy(&decoded[..read]).into_owned(), seen))
}

fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The URL without query or fragment.
pub fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or_default().to_owned()
}

/// The text cut to [`RAW_CAP`] bytes on a character boundary.
pub fn cap(text: &str) -> String {
    if text.len() <= RAW_CAP {
        return text.to_owned();
    }
    let mut end = RAW_CAP;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The host an exchange was addressed to.
pub fn request_host(uri: &Uri, headers: &HeaderMap) -> String {
    uri.host()
        .map(str::to_owned)
        .or_else(|| {
            header_str(headers, header::HOST).map(|h| h.split(':').next().unwrap_or(h).to_owned())
        })
        .unwrap_or_default()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests;
