//! A mock Microsoft Entra ID for tests: pure request handling, no sockets.
//!
//! [`MockIdp::handle`] answers the authorize, token, discovery and login routes
//! of one tenant the way Entra does for the authorization-code flow. At /token
//! it enforces what Entra enforces (POST form body, client authentication,
//! single use, code lifetime, tenant, protocol version, client, redirect_uri,
//! scope and PKCE) and answers with Entra-shaped error JSON carrying real AADSTS
//! numbers (OAUTH.md section 5). It also takes pushed authorization requests
//! (RFC 9126, `par`) and request objects (RFC 9101) at /authorize, which real
//! Entra does not document. The TLS server that hosts it lives elsewhere:
//! this file opens no sockets and spawns nothing.
//!
//! Tokens are well-formed JWTs whose signature segment is random bytes: they
//! are NOT signed and must never be accepted by anything but a test.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use rand::Rng as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use time::OffsetDateTime;
use time::macros::format_description;

mod lifecycle;
mod par;

/// The number [`EntraError`] carries for RFC 8628's `slow_down`, which Entra
/// answers without an AADSTS number.
const SLOW_DOWN: u64 = 0;

/// Codes and pending logins held at most (oldest dropped first), so a long test
/// run cannot grow the mock without bound.
const MAX_CODES: usize = 10_000;
const MAX_PENDING: usize = 1_000;
/// How long an interactive login context (`ctx`) stays valid.
const PENDING_LIFETIME: Duration = Duration::from_secs(600);
/// Extra time a code is remembered after it expires, so a late or repeated
/// redemption still gets 70008 / 54005 rather than "unknown code" (70000).
pub const CODE_RETENTION: Duration = Duration::from_secs(600);
const ACCESS_TOKEN_SECS: i64 = 3599;
/// Scopes that only shape the id_token / refresh token, not the access token.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// Microsoft Graph's application id: the audience of a bare scope like `User.Read`.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// What the mock serves. Build one with [`MockIdp::default_config`] and adjust.
#[derive(Debug, Clone)]
pub struct MockIdpConfig {
    /// The host name the mock is served as (`login.microsoftonline.com`); used
    /// in issuers, discovery documents and absolute redirects.
    pub host: String,
    /// The tenant GUID.
    pub tenant: String,
    /// Other names of the tenant accepted in the path (`contoso.onmicrosoft.com`).
    pub tenant_aliases: Vec<String>,
    pub clients: Vec<ClientReg>,
    /// A code redeemed later than this after its issue gets AADSTS70008.
    pub code_lifetime: Duration,
    /// `true`: /authorize answers 302 to `/{tenant}/login?ctx=…` and the code
    /// is issued by `POST /{tenant}/login` (like a real interactive sign-in);
    /// `false`: /authorize issues the code directly.
    pub interactive: bool,
    /// How long a pushed authorization request's `request_uri` stays usable
    /// (the PAR answer's `expires_in`; oidc-provider's default, 60 s).
    pub par_lifetime: Duration,
    /// Refresh tokens issued to a browser redemption (with `Origin`) live
    /// this long from the sign-in, not sliding (Entra: 24 h, then AADSTS700084).
    pub spa_refresh_lifetime: Duration,
    /// The device authorization response's `interval` in seconds (Entra: 5);
    /// `None` leaves it out (clients must then wait 5 s).
    pub device_interval: Option<u64>,
    /// The device code's `expires_in` (Entra: 900 s).
    pub device_expires_in: Duration,
    /// Refresh-token reuse detection as Auth0 and Okta do it, **not as
    /// Entra does**: a rotated refresh token presented again revokes its
    /// whole family (answered AADSTS70008 here, for tests that need a
    /// refusal). Real Entra does not revoke rotated tokens: with `false`
    /// (the default) an old refresh token keeps working, as on Entra.
    pub refresh_reuse_detection: bool,
}

/// One app registration.
#[derive(Debug, Clone)]
pub struct ClientReg {
    pub client_id: String,
    /// Exact strings, except that a loopback `http` URI (127.0.0.1, [::1],
    /// localhost) matches any port (RFC 8252 §7.3).
    pub redirect_uris: Vec<String>,
    /// `Some` makes the client confidential: /token then requires this secret.
    pub secret: Option<String>,
    pub kind: ClientKind,
}

/// The platform the redirect URIs are registered under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Server-side app; redeems without an `Origin` header.
    Web,
    /// Browser app; must redeem cross-origin (with `Origin`) and without a secret.
    Spa,
    /// Native / desktop app; no secret.
    Public,
}

/// Counters for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MockStats {
    pub authorize_requests: u64,
    pub logins: u64,
    pub codes_issued: u64,
    pub token_requests: u64,
    /// Successful redemptions.
    pub codes_redeemed: u64,
    pub token_errors: u64,
    /// Every AADSTS number the mock answered with (HTML pages, error redirects
    /// and token errors), in order; the most recent 10 000.
    pub error_codes: Vec<u64>,
    /// Codes currently remembered (bounded by pruning).
    pub live_codes: usize,
    /// Successful refreshes, device-code redemptions and client_credentials calls.
    pub tokens_refreshed: u64,
    pub device_codes_redeemed: u64,
    pub client_credentials_issued: u64,
}

/// Deliberate faults: in successful token responses, to exercise the
/// token-checking rules (`nonce-mismatch`, `token-issuer-mismatch`), and a
/// refusal with no visible cause, to exercise `idp-error` when nothing on the
/// wire explains it.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub nonce: NonceFault,
    /// Issue id_tokens as if from this tenant (`tid` and `iss`).
    pub issuer_tenant: Option<String>,
    /// Refuse every redemption that passes all the checks with this AADSTS
    /// number (`90056`: Entra's "invalid token redemption request" that
    /// nothing in the request explains). The code stays unused.
    pub refuse_redemption: Option<u64>,
}

/// What the id_token's `nonce` claim carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NonceFault {
    /// The nonce sent at /authorize (correct behaviour).
    #[default]
    Echo,
    Replace(String),
    Omit,
}

/// The mock identity provider. Shareable across connections via `Arc`.
pub struct MockIdp {
    config: MockIdpConfig,
    /// The one signed-in user's object id, stable for this instance.
    user_oid: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    codes: HashMap<String, IssuedCode>,
    pending: HashMap<String, PendingLogin>,
    /// Pushed authorization requests by request_uri (see `par`).
    pushed: HashMap<String, par::PushedAuth>,
    stats: MockStats,
    /// Added to the real clock by [`MockIdp::advance_clock`].
    skew: Duration,
    faults: Faults,
    /// Refresh tokens and device codes (`mock_idp/lifecycle.rs`).
    lifecycle: lifecycle::LifecycleState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1.0",
            Version::V2 => "v2.0",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

/// What an authorization request asked for; a code is bound to all of it.
#[derive(Debug, Clone)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    /// The tenant path segment as sent (compared case-insensitively).
    tenant: String,
    version: Version,
    scope: Option<String>,
    resource: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    nonce: Option<String>,
}

struct IssuedCode {
    grant: Grant,
    issued_at: Instant,
    redeemed_at: Option<Instant>,
}

struct PendingLogin {
    grant: Grant,
    mode: ResponseMode,
    state: Option<String>,
    created: Instant,
}

/// An Entra error about to be rendered as a page, a redirect or JSON.
#[derive(Debug)]
struct EntraError {
    code: u64,
    message: String,
}

fn fail(code: u64, message: impl Into<String>) -> EntraError {
    EntraError {
        code,
        message: message.into(),
    }
}

/// The [`Faults::refuse_redemption`] answer: Entra's text for 90056, a
/// neutral one for any other number.
fn refusal_without_cause(code: u64) -> EntraError {
    let message = match code {
        90056 => {
            "BadResourceRequest: Invalid token redemption request. To redeem the code for an access token, the app should send a POST request to the /token endpoint with an authorization code."
        }
        _ => "The token request was refused.",
    };
    fail(code, message)
}

fn missing(param: &str) -> EntraError {
    fail(
        900144,
        format!("The request body must contain the following parameter: '{param}'."),
    )
}

impl EntraError {
    /// The OAuth `error` value Entra pairs with the number.
    fn error(&self) -> &'static str {
        match self.code {
            54005 | 70008 | 70000 | 700005 | 501481 | 500112 | 65001 | 700084 => "invalid_grant",
            70016 => "authorization_pending",
            70019 => "expired_token",
            70018 => "bad_verification_code",
            1002012 => "invalid_scope",
            SLOW_DOWN => "slow_down",
            7000218 | 7000215 | 700025 | 700027 => "invalid_client",
            700016 => "unauthorized_client",
            70003 => "unsupported_grant_type",
            70005 => "unsupported_response_type",
            50058 => "login_required",
            _ => "invalid_request",
        }
    }

    fn status(&self) -> StatusCode {
        if self.error() == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        }
    }
}

// === impl MockIdp ===

impl MockIdp {
    pub fn new(config: MockIdpConfig) -> Self {
        MockIdp {
            config,
            user_oid: random_guid(),
            state: Mutex::new(State::default()),
        }
    }

    /// One tenant; a confidential Web client (`web-client` / `web-secret`,
    /// `https://app.test/callback`), a public native client (`public-client`,
    /// `http://127.0.0.1/callback`, any port), and a SPA client (`spa-client`,
    /// `https://app.test/spa`); codes live 10 minutes; not interactive.
    pub fn default_config() -> MockIdpConfig {
        MockIdpConfig {
            host: "login.microsoftonline.com".into(),
            tenant: "72f988bf-0000-4000-8000-00000000c0de".into(),
            tenant_aliases: vec!["contoso.onmicrosoft.com".into()],
            clients: vec![
                ClientReg {
                    client_id: "11111111-1111-4111-8111-111111111111".into(),
                    redirect_uris: vec!["https://app.test/callback".into()],
                    secret: Some("web-secret".into()),
                    kind: ClientKind::Web,
                },
                ClientReg {
                    client_id: "22222222-2222-4222-8222-222222222222".into(),
                    redirect_uris: vec!["http://127.0.0.1/callback".into()],
                    secret: None,
                    kind: ClientKind::Public,
                },
                ClientReg {
                    client_id: "33333333-3333-4333-8333-333333333333".into(),
                    redirect_uris: vec!["https://app.test/spa".into()],
                    secret: None,
                    kind: ClientKind::Spa,
                },
            ],
            code_lifetime: Duration::from_secs(600),
            interactive: false,
            par_lifetime: Duration::from_secs(60),
            spa_refresh_lifetime: Duration::from_secs(24 * 3600),
            device_interval: Some(5),
            device_expires_in: Duration::from_secs(900),
            refresh_reuse_detection: false,
        }
    }

    pub fn config(&self) -> &MockIdpConfig {
        &self.config
    }

    pub fn stats(&self) -> MockStats {
        let state = self.lock();
        MockStats {
            live_codes: state.codes.len(),
            ..state.stats.clone()
        }
    }

    /// Moves the mock's clock forward (ages codes without sleeping). Also moves
    /// the times written into tokens and error timestamps.
    pub fn advance_clock(&self, by: Duration) {
        self.lock().skew += by;
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    pub fn handle(&self, req: Request<Bytes>) -> Response<Bytes> {
        self.prune();
        let path = req.uri().path().to_string();
        let Some((tenant, route)) = parse_route(&path) else {
            return text_response(StatusCode::NOT_FOUND, "text/plain", "not found".into());
        };
        match route {
            Route::Authorize(version) => self.authorize(tenant, version, &req),
            Route::Token(version) => self.token(tenant, version, &req),
            Route::Discovery(version) => self.discovery(tenant, version),
            Route::Login => self.login(tenant, &req),
            Route::Par(version) => self.par(tenant, version, &req),
            Route::DeviceCode(version) => self.device_authorization(tenant, version, &req),
            Route::DeviceLogin => self.device_login(&req),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide later failures.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> (Instant, OffsetDateTime) {
        let skew = self.lock().skew;
        (Instant::now() + skew, OffsetDateTime::now_utc() + skew)
    }

    fn prune(&self) {
        let (now, _) = self.now();
        let retention = self.config.code_lifetime + CODE_RETENTION;
        let mut state = self.lock();
        state
            .codes
            .retain(|_, c| now.saturating_duration_since(c.issued_at) <= retention);
        state
            .pending
            .retain(|_, p| now.saturating_duration_since(p.created) <= PENDING_LIFETIME);
        state.lifecycle.prune(now, &self.config);
        while state.codes.len() > MAX_CODES {
            let oldest = state.codes.iter().min_by_key(|(_, c)| c.issued_at);
            let oldest = oldest.map(|(k, _)| k.clone()).expect("non-empty");
            state.codes.remove(&oldest);
        }
        let par_retention = self.config.par_lifetime + CODE_RETENTION;
        state
            .pushed
            .retain(|_, p| now.saturating_duration_since(p.created) <= par_retention);
        while state.pushed.len() > MAX_PENDING {
            let oldest = state.pushed.iter().min_by_key(|(_, p)| p.created);
            let oldest = oldest.map(|(k, _)| k.clone()).expect("non-empty");
            state.pushed.remove(&oldest);
        }
        while state.pending.len() > MAX_PENDING {
            let oldest = state.pending.iter().min_by_key(|(_, p)| p.created);
            let oldest = oldest.map(|(k, _)| k.clone()).expect("non-empty");
            state.pending.remove(&oldest);
        }
    }

    fn tenant_known(&self, segment: &str) -> bool {
        [
            "common",
            "organizations",
            "consumers",
            self.config.tenant.as_str(),
        ]
        .into_iter()
        .chain(self.config.tenant_aliases.iter().map(String::as_str))
        .any(|t| t.eq_ignore_ascii_case(segment))
    }

    fn client(&self, client_id: &str) -> Option<&ClientReg> {
        self.config
            .clients
            .iter()
            .find(|c| c.client_id == client_id)
    }

    fn record_error(&self, code: u64) {
        let errors = &mut self.lock().stats.error_codes;
        if errors.len() >= MAX_CODES {
            errors.remove(0);
        }
        errors.push(code);
    }

    // === /authorize ===

    fn authorize(&self, tenant: &str, version: Version, req: &Request<Bytes>) -> Response<Bytes> {
        self.lock().stats.authorize_requests += 1;
        let params = match *req.method() {
            Method::GET => Params::parse(req.uri().query().unwrap_or("").as_bytes()),
            Method::POST => Params::parse(req.body()),
            _ => None,
        };
        let params = params.unwrap_or_default();
        // PAR (`request_uri`) and JAR (`request`): the parameters are elsewhere.
        let params = match self.indirect_params(tenant, version, params) {
            Ok(params) => params,
            Err(refusal) => return *refusal,
        };
        // Until client and redirect_uri are known good, errors stay on Entra's own page.
        let grant = match self.check_authorize_target(tenant, version, &params) {
            Ok(grant) => grant,
            Err(e) => return self.error_page(e),
        };
        let state = params.get("state").map(str::to_string);
        let mode = match params.get("response_mode") {
            None | Some("query") => ResponseMode::Query,
            Some("fragment") => ResponseMode::Fragment,
            Some("form_post") => ResponseMode::FormPost,
            Some(other) => {
                let e = fail(
                    70007,
                    format!("The response_mode '{other}' is not supported."),
                );
                return self.error_redirect(&grant.redirect_uri, ResponseMode::Query, state, e);
            }
        };
        if let Err(e) = check_authorize_request(version, &params) {
            return self.error_redirect(&grant.redirect_uri, mode, state, e);
        }
        if params.get("prompt") == Some("none") {
            // The mock never has a browser session, so silent sign-in always fails.
            let e = fail(
                50058,
                "Silent sign-in was requested (prompt=none) but no user is signed in.",
            );
            return self.error_redirect(&grant.redirect_uri, mode, state, e);
        }
        if self.config.interactive {
            let ctx = random_token(24);
            let (now, _) = self.now();
            let location = format!("https://{}/{}/login?ctx={ctx}", self.config.host, tenant);
            self.lock().pending.insert(
                ctx,
                PendingLogin {
                    grant,
                    mode,
                    state,
                    created: now,
                },
            );
            return redirect(&location);
        }
        self.issue_code(grant, mode, state)
    }

    fn check_authorize_target(
        &self,
        tenant: &str,
        version: Version,
        params: &Params,
    ) -> Result<Grant, EntraError> {
        if !self.tenant_known(tenant) {
            return Err(fail(90002, format!("Tenant '{tenant}' not found.")));
        }
        let client_id = params
            .get("client_id")
            .ok_or_else(|| missing("client_id"))?;
        let client = self.client(client_id).ok_or_else(|| {
            fail(
                700016,
                format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'."),
            )
        })?;
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| fail(900971, "No reply address provided."))?;
        if !client
            .redirect_uris
            .iter()
            .any(|registered| redirect_matches(registered, redirect_uri))
        {
            return Err(fail(
                50011,
                format!(
                    "The redirect URI '{redirect_uri}' specified in the request is not registered for application '{client_id}'."
                ),
            ));
        }
        Ok(Grant {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            tenant: tenant.to_string(),
            version,
            scope: params.get("scope").map(str::to_string),
            resource: params.get("resource").map(str::to_string),
            code_challenge: params.get("code_challenge").map(str::to_string),
            code_challenge_method: params.get("code_challenge_method").map(str::to_string),
            nonce: params.get("nonce").map(str::to_string),
        })
    }

    /// `GET` shows a login form; `POST` with the form's `ctx` signs the user in
    /// and answers the app like /authorize would.
    fn login(&self, tenant: &str, req: &Request<Bytes>) -> Response<Bytes> {
        let params = match *req.method() {
            Method::GET => Params::parse(req.uri().query().unwrap_or("").as_bytes()),
            Method::POST => Params::parse(req.body()),
            _ => None,
        }
        .unwrap_or_default();
        let ctx = params.get("ctx").unwrap_or("");
        if *req.method() == Method::GET {
            let page = format!(
                "<!DOCTYPE html><html><head><title>Sign in</title></head><body>\
                 <form method=\"POST\" action=\"/{}/login\">\
                 <input type=\"hidden\" name=\"ctx\" value=\"{}\" />\
                 <input type=\"text\" name=\"login\" value=\"alex@contoso.test\" />\
                 <input type=\"submit\" value=\"Sign in\" /></form></body></html>",
                html_escape(tenant),
                html_escape(ctx)
            );
            return text_response(StatusCode::OK, "text/html; charset=utf-8", page);
        }
        let pending = self.lock().pending.remove(ctx);
        let Some(pending) = pending else {
            let page = "<!DOCTYPE html><html><body><p>Your sign-in session was not found or \
                        has expired. Start the sign-in again.</p></body></html>";
            return text_response(
                StatusCode::BAD_REQUEST,
                "text/html; charset=utf-8",
                page.into(),
            );
        };
        self.lock().stats.logins += 1;
        self.issue_code(pending.grant, pending.mode, pending.state)
    }

    fn issue_code(
        &self,
        grant: Grant,
        mode: ResponseMode,
        state: Option<String>,
    ) -> Response<Bytes> {
        // Entra codes are long opaque strings of URL-safe characters.
        let code = format!("0.A{}", random_token(96));
        let (now, _) = self.now();
        let redirect_uri = grant.redirect_uri.clone();
        {
            let mut s = self.lock();
            s.codes.insert(
                code.clone(),
                IssuedCode {
                    grant,
                    issued_at: now,
                    redeemed_at: None,
                },
            );
            s.stats.codes_issued += 1;
        }
        let mut fields = vec![("code", code)];
        fields.extend(state.map(|s| ("state", s)));
        fields.push(("session_state", random_guid()));
        respond_to_client(&redirect_uri, mode, &fields)
    }

    /// Entra's own error page: used when the app cannot be trusted with a
    /// redirect (unknown client, unregistered redirect_uri, unknown tenant).
    fn error_page(&self, e: EntraError) -> Response<Bytes> {
        self.record_error(e.code);
        let (_, now) = self.now();
        let page = format!(
            "<!DOCTYPE html><html><head><title>Sign in to your account</title></head><body>\
             <div id=\"error\"><h1>Sorry, but we're having trouble signing you in.</h1>\
             <p>AADSTS{}: {}</p>\
             <table><tr><td>Request Id</td><td>{}</td></tr>\
             <tr><td>Correlation Id</td><td>{}</td></tr>\
             <tr><td>Timestamp</td><td>{}</td></tr></table></div></body></html>",
            e.code,
            html_escape(&e.message),
            random_guid(),
            random_guid(),
            entra_timestamp(now)
        );
        text_response(StatusCode::OK, "text/html; charset=utf-8", page)
    }

    /// An authorize-leg error sent back to the app's redirect_uri.
    fn error_redirect(
        &self,
        redirect_uri: &str,
        mode: ResponseMode,
        state: Option<String>,
        e: EntraError,
    ) -> Response<Bytes> {
        self.record_error(e.code);
        let (_, now) = self.now();
        let (trace_id, correlation_id) = (random_guid(), random_guid());
        let mut fields = vec![
            ("error", e.error().to_string()),
            (
                "error_description",
                entra_description(&e, &trace_id, &correlation_id, now),
            ),
            ("error_uri", self.error_uri(e.code)),
        ];
        fields.extend(state.map(|s| ("state", s)));
        fields.push(("trace_id", trace_id));
        fields.push(("correlation_id", correlation_id));
        respond_to_client(redirect_uri, mode, &fields)
    }

    fn error_uri(&self, code: u64) -> String {
        format!("https://{}/error?code={code}", self.config.host)
    }

    // === /token ===

    fn token(&self, tenant: &str, version: Version, req: &Request<Bytes>) -> Response<Bytes> {
        self.lock().stats.token_requests += 1;
        match self.redeem(tenant, version, req) {
            Ok(body) => {
                if lifecycle::grant_type(req.body()).as_deref() == Some("authorization_code") {
                    self.lock().stats.codes_redeemed += 1;
                }
                json_response(StatusCode::OK, &body)
            }
            Err(e) => {
                self.lock().stats.token_errors += 1;
                self.token_error(req.headers(), e)
            }
        }
    }

    fn token_error(&self, headers: &HeaderMap, e: EntraError) -> Response<Bytes> {
        self.record_error(e.code);
        let (_, now) = self.now();
        let trace_id = random_guid();
        // Entra echoes the client's `client-request-id` as the correlation id.
        let correlation_id = headers
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 64)
            .map_or_else(random_guid, str::to_string);
        let body = json!({
            "error": e.error(),
            "error_description": entra_description(&e, &trace_id, &correlation_id, now),
            "error_codes": if e.code == SLOW_DOWN { json!([]) } else { json!([e.code]) },
            "timestamp": entra_timestamp(now),
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": self.error_uri(e.code),
        });
        json_response(e.status(), &body)
    }

    /// Every check Entra makes on a code redemption, in roughly Entra's order:
    /// request shape, client authentication, then the code and what it is bound to.
    /// A failed redemption leaves the code usable; a successful one consumes it.
    fn redeem(
        &self,
        tenant: &str,
        version: Version,
        req: &Request<Bytes>,
    ) -> Result<Value, EntraError> {
        if req.method() != Method::POST {
            return Err(fail(
                900561,
                "The endpoint only accepts POST requests. Received a GET request.",
            ));
        }
        if !self.tenant_known(tenant) {
            return Err(fail(90002, format!("Tenant '{tenant}' not found.")));
        }
        // Entra reads only a form body: JSON bodies and query strings are invisible to it.
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let params = if is_form {
            Params::parse(req.body()).unwrap_or_default()
        } else {
            Params::default()
        };
        if let Some(name) = params.repeated() {
            return Err(fail(
                9002313,
                format!("Invalid request. The parameter '{name}' is given more than once."),
            ));
        }
        match params.get("grant_type") {
            None => return Err(missing("grant_type")),
            Some("authorization_code") => {}
            Some(grant @ ("refresh_token" | "client_credentials" | lifecycle::DEVICE_CODE)) => {
                return self.lifecycle_grant(grant, version, req, &params);
            }
            Some(other) => {
                return Err(fail(
                    70003,
                    format!("The app requested an unsupported grant type '{other}'."),
                ));
            }
        }

        let client = self.authenticate_client(req.headers(), &params)?;
        let code = params.get("code").ok_or_else(|| missing("code"))?;
        if code.len() < 16 || !code.bytes().all(is_unreserved) {
            return Err(fail(
                9002313,
                "Invalid request. The 'code' parameter is malformed (truncated or encoded twice?).",
            ));
        }

        let (now, wall) = self.now();
        let mut state = self.lock();
        let Some(issued) = state.codes.get(code) else {
            return Err(fail(
                70000,
                "The provided value for the 'code' parameter is not valid.",
            ));
        };
        if let Some(redeemed_at) = issued.redeemed_at {
            let ago = now.saturating_duration_since(redeemed_at).as_secs();
            return Err(fail(
                54005,
                format!(
                    "The authorization code was already redeemed ({ago} s ago). Start a new sign-in to get a new code, or use the refresh token."
                ),
            ));
        }
        let age = now.saturating_duration_since(issued.issued_at);
        if age > self.config.code_lifetime {
            return Err(fail(
                70008,
                format!(
                    "The provided authorization code has expired: issued {} s ago, valid for {} s.",
                    age.as_secs(),
                    self.config.code_lifetime.as_secs()
                ),
            ));
        }
        let grant = &issued.grant;
        if !grant.tenant.eq_ignore_ascii_case(tenant) {
            return Err(fail(
                700005,
                format!(
                    "The provided authorization code was issued for tenant '{}', not '{tenant}'.",
                    grant.tenant
                ),
            ));
        }
        // Entra has no dedicated number for a version mismatch (B2C uses AADB2C90087):
        // the mock answers with the generic invalid-grant code 70000 and says why.
        if grant.version != version {
            return Err(fail(
                70000,
                format!(
                    "The provided value for the 'code' parameter is not valid: it was issued by the {} endpoint and redeemed at the {} endpoint.",
                    grant.version.name(),
                    version.name()
                ),
            ));
        }
        if grant.client_id != client.client_id {
            return Err(fail(
                70000,
                format!(
                    "The provided value for the 'code' parameter is not valid: it was issued to client '{}', not '{}'.",
                    grant.client_id, client.client_id
                ),
            ));
        }
        let redirect_uri = params
            .get("redirect_uri")
            .ok_or_else(|| missing("redirect_uri"))?;
        if !same_redirect(&grant.redirect_uri, redirect_uri) {
            return Err(fail(
                500112,
                format!(
                    "The reply address '{redirect_uri}' does not match the reply address '{}' used to request the authorization code.",
                    grant.redirect_uri
                ),
            ));
        }
        check_resource_and_scope(grant, version, &params)?;
        check_pkce(grant, params.get("code_verifier"))?;
        if let Some(number) = state.faults.refuse_redemption {
            return Err(refusal_without_cause(number));
        }

        let grant = grant.clone();
        if let Some(issued) = state.codes.get_mut(code) {
            issued.redeemed_at = Some(now);
        }
        let faults = state.faults.clone();
        drop(state);
        let body = self.token_body(&grant, params.get("scope"), wall, &faults);
        let spa = req.headers().contains_key(header::ORIGIN);
        self.remember_refresh(&body, &grant, spa, None);
        Ok(body)
    }

    /// Reads and checks client authentication; returns the registration.
    fn authenticate_client(
        &self,
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<&ClientReg, EntraError> {
        let basic = match headers.get(header::AUTHORIZATION) {
            Some(value) => Some(parse_basic(value).ok_or_else(|| {
                fail(
                    9002313,
                    "Invalid request. The Authorization header is not valid HTTP Basic.",
                )
            })?),
            None => None,
        };
        let body_secret = params.get("client_secret");
        let assertion = params.get("client_assertion");
        let methods = usize::from(basic.is_some())
            + usize::from(body_secret.is_some())
            + usize::from(assertion.is_some());
        if methods > 1 {
            return Err(fail(
                9002313,
                "Invalid request. More than one client authentication method was used (HTTP Basic, client_secret, client_assertion).",
            ));
        }
        let client_id = match (params.get("client_id"), &basic) {
            (Some(body), Some((basic_id, _))) if body != basic_id => {
                return Err(fail(
                    9002313,
                    format!(
                        "Invalid request. client_id '{body}' differs from the HTTP Basic user '{basic_id}'."
                    ),
                ));
            }
            (Some(body), _) => body.to_string(),
            (None, Some((basic_id, _))) => basic_id.clone(),
            (None, None) => return Err(missing("client_id")),
        };
        let client = self.client(&client_id).ok_or_else(|| {
            fail(
                700016,
                format!(
                    "Application with identifier '{client_id}' was not found in the directory."
                ),
            )
        })?;

        let origin = headers.contains_key(header::ORIGIN);
        if origin && client.kind != ClientKind::Spa {
            return Err(fail(
                9002326,
                "Cross-origin token redemption is permitted only for the 'Single-Page Application' client type.",
            ));
        }
        if !origin && client.kind == ClientKind::Spa {
            return Err(fail(
                9002327,
                "Tokens issued for the 'Single-Page Application' client type may only be redeemed via cross-origin requests.",
            ));
        }

        let secret = basic.map(|(_, s)| s).or(body_secret.map(str::to_string));
        match (&client.secret, secret, assertion) {
            (None, Some(_), _) | (None, _, Some(_)) => Err(fail(
                700025,
                "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
            )),
            (None, None, None) => Ok(client),
            (Some(expected), Some(sent), _) if *expected == sent => Ok(client),
            (Some(_), Some(_), _) => Err(fail(
                7000215,
                format!(
                    "Invalid client secret provided for app '{client_id}'. Send the secret's value, not its ID."
                ),
            )),
            // The mock registers no certificates, so no assertion can verify.
            (Some(_), None, Some(_)) => Err(fail(
                700027,
                "Client assertion failed signature validation: no certificate is registered for this app.",
            )),
            (Some(_), None, None) => Err(fail(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )),
        }
    }

    fn token_body(
        &self,
        grant: &Grant,
        token_scope: Option<&str>,
        now: OffsetDateTime,
        faults: &Faults,
    ) -> Value {
        let scope = token_scope
            .or(grant.scope.as_deref())
            .unwrap_or("")
            .to_string();
        let scopes: Vec<&str> = scope.split_whitespace().collect();
        let tid = faults
            .issuer_tenant
            .clone()
            .unwrap_or_else(|| self.config.tenant.clone());
        let iat = now.unix_timestamp();
        let exp = iat + ACCESS_TOKEN_SECS;
        let issuer = match grant.version {
            Version::V2 => format!("https://{}/{tid}/v2.0", self.config.host),
            Version::V1 => format!("https://sts.windows.net/{tid}/"),
        };
        let resource_scopes: Vec<&str> = scopes
            .iter()
            .copied()
            .filter(|s| !OIDC_SCOPES.contains(s))
            .collect();
        let audience = match grant.version {
            Version::V1 => grant
                .resource
                .clone()
                .unwrap_or_else(|| GRAPH_APP_ID.into()),
            Version::V2 => resource_scopes
                .first()
                .and_then(|s| s.rsplit_once('/'))
                .map_or_else(
                    || GRAPH_APP_ID.to_string(),
                    |(resource, _)| resource.to_string(),
                ),
        };
        let short_scopes: Vec<&str> = resource_scopes
            .iter()
            .map(|s| s.rsplit('/').next().unwrap_or(s))
            .collect();
        let access_token = unsigned_jwt(&json!({
            "aud": audience,
            "iss": issuer,
            "iat": iat, "nbf": iat, "exp": exp,
            "tid": tid,
            "oid": self.user_oid,
            "sub": pairwise_sub(&self.user_oid, &audience),
            "appid": grant.client_id,
            "scp": short_scopes.join(" "),
            "ver": if grant.version == Version::V2 { "2.0" } else { "1.0" },
        }));
        let mut body = match grant.version {
            Version::V2 => json!({
                "token_type": "Bearer",
                "scope": scope,
                "expires_in": ACCESS_TOKEN_SECS,
                "ext_expires_in": ACCESS_TOKEN_SECS,
                "access_token": access_token,
            }),
            // v1 writes numbers as strings and adds expires_on / resource.
            Version::V1 => json!({
                "token_type": "Bearer",
                "scope": short_scopes.join(" "),
                "expires_in": ACCESS_TOKEN_SECS.to_string(),
                "ext_expires_in": ACCESS_TOKEN_SECS.to_string(),
                "expires_on": exp.to_string(),
                "not_before": iat.to_string(),
                "resource": audience,
                "access_token": access_token,
            }),
        };
        // Like Entra: a refresh token only with offline_access (v1 always), an
        // id_token only with openid (v1 always).
        let v1 = grant.version == Version::V1;
        if v1 || scopes.contains(&"offline_access") {
            body["refresh_token"] = json!(format!("1.A{}", random_token(120)));
        }
        if v1 || scopes.contains(&"openid") {
            let mut claims = json!({
                "aud": grant.client_id,
                "iss": issuer,
                "iat": iat, "nbf": iat, "exp": exp,
                "tid": tid,
                "oid": self.user_oid,
                "sub": pairwise_sub(&self.user_oid, &grant.client_id),
                "name": "Alex Mock",
                "preferred_username": "alex@contoso.test",
                "ver": if v1 { "1.0" } else { "2.0" },
            });
            let nonce = match &faults.nonce {
                NonceFault::Echo => grant.nonce.clone(),
                NonceFault::Replace(other) => Some(other.clone()),
                NonceFault::Omit => None,
            };
            if let Some(nonce) = nonce {
                claims["nonce"] = json!(nonce);
            }
            body["id_token"] = json!(unsigned_jwt(&claims));
        }
        body
    }

    // === discovery ===

    fn discovery(&self, tenant: &str, version: Version) -> Response<Bytes> {
        if !self.tenant_known(tenant) {
            let e = fail(90002, format!("Tenant '{tenant}' not found."));
            self.record_error(e.code);
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({"error": "invalid_tenant", "error_description": format!("AADSTS90002: {}", e.message), "error_codes": [90002]}),
            );
        }
        let host = &self.config.host;
        // The multi-tenant endpoints publish a placeholder issuer, as Entra does.
        let multi = ["common", "organizations", "consumers"]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(tenant));
        let issuer_tenant = if multi {
            "{tenantid}"
        } else {
            self.config.tenant.as_str()
        };
        let (issuer, base) = match version {
            Version::V2 => (
                format!("https://{host}/{issuer_tenant}/v2.0"),
                format!("https://{host}/{tenant}/oauth2/v2.0"),
            ),
            Version::V1 => (
                format!("https://sts.windows.net/{issuer_tenant}/"),
                format!("https://{host}/{tenant}/oauth2"),
            ),
        };
        let doc = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "jwks_uri": format!("https://{host}/{tenant}/discovery/v2.0/keys"),
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "pushed_authorization_request_endpoint": format!("{base}/par"),
            "request_parameter_supported": true,
            "tenant_region_scope": "WW",
        });
        json_response(StatusCode::OK, &doc)
    }
}

/// The parts of an authorization request checked after client and redirect_uri.
fn check_authorize_request(version: Version, params: &Params) -> Result<(), EntraError> {
    let response_type = params
        .get("response_type")
        .ok_or_else(|| missing("response_type"))?;
    if !response_type.split(' ').any(|t| t == "code") {
        return Err(fail(
            70005,
            format!(
                "The response_type '{response_type}' is not supported by this mock (use 'code')."
            ),
        ));
    }
    if version == Version::V2 && params.get("scope").is_none() {
        return Err(missing("scope"));
    }
    match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (_, Some(method)) if method != "S256" && method != "plain" => Err(fail(
            501491,
            format!("The code_challenge_method '{method}' is not supported (use S256)."),
        )),
        (Some(challenge), Some("S256")) if challenge.len() != 43 => Err(fail(
            50147,
            "The code_challenge is not the 43-character base64url encoding of a SHA-256 digest.",
        )),
        _ => Ok(()),
    }
}

/// v2 refuses `resource`; v1 wants the same resource on both legs; v2 may
/// narrow the scope at /token but not widen it.
fn check_resource_and_scope(
    grant: &Grant,
    version: Version,
    params: &Params,
) -> Result<(), EntraError> {
    match (version, params.get("resource"), &grant.resource) {
        (Version::V2, Some(_), _) => {
            return Err(fail(
                901002,
                "The 'resource' request parameter is not supported on the v2.0 endpoint.",
            ));
        }
        (Version::V1, Some(sent), Some(authorized)) if sent != authorized => {
            return Err(fail(
                70000,
                format!(
                    "The provided value for the 'code' parameter is not valid: it was issued for resource '{authorized}', not '{sent}'."
                ),
            ));
        }
        (Version::V1, _, _) => return Ok(()),
        (Version::V2, None, _) => {}
    }
    let Some(scope) = params.get("scope") else {
        return Ok(());
    };
    let authorized: Vec<&str> = grant
        .scope
        .as_deref()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let extra: Vec<&str> = scope
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(s) && !authorized.contains(s))
        .collect();
    if extra.is_empty() {
        Ok(())
    } else {
        Err(fail(
            65001,
            format!(
                "The user or administrator has not consented to use the application for '{}': the token request asks for more than the authorization request.",
                extra.join(" ")
            ),
        ))
    }
}

/// RFC 7636 §4.6, as Entra applies it.
fn check_pkce(grant: &Grant, verifier: Option<&str>) -> Result<(), EntraError> {
    const MISMATCH: &str = "The code_verifier does not match the code_challenge supplied in the authorization request.";
    match (&grant.code_challenge, verifier) {
        (None, None) => Ok(()),
        // RFC 9700 §2.1.1: a verifier must not be accepted for a code issued
        // without a challenge (PKCE downgrade). Entra's own answer here is
        // not documented; the mock rejects it with the PKCE number.
        (None, Some(_)) => Err(fail(
            501481,
            "A code_verifier was sent but the authorization request carried no code_challenge.",
        )),
        // Entra answers a missing verifier with the same "does not match" error
        // (501481) rather than a missing-parameter one.
        (Some(_), None) => Err(fail(501481, MISMATCH)),
        (Some(challenge), Some(verifier)) => {
            let valid = (43..=128).contains(&verifier.len()) && verifier.bytes().all(is_unreserved);
            let computed = match grant.code_challenge_method.as_deref() {
                Some("S256") => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
                _ => verifier.to_string(),
            };
            if valid && computed == *challenge {
                Ok(())
            } else {
                Err(fail(501481, MISMATCH))
            }
        }
    }
}

// === routing ===

enum Route {
    Authorize(Version),
    Token(Version),
    Discovery(Version),
    Login,
    /// The pushed authorization request endpoint (RFC 9126).
    Par(Version),
    DeviceCode(Version),
    DeviceLogin,
}

/// `/{tenant}/…` -> (tenant, route).
fn parse_route(path: &str) -> Option<(&str, Route)> {
    let (tenant, tail) = path.strip_prefix('/')?.split_once('/')?;
    let route = match tail.trim_end_matches('/') {
        "oauth2/v2.0/authorize" => Route::Authorize(Version::V2),
        "oauth2/authorize" => Route::Authorize(Version::V1),
        "oauth2/v2.0/token" => Route::Token(Version::V2),
        "oauth2/token" => Route::Token(Version::V1),
        "v2.0/.well-known/openid-configuration" => Route::Discovery(Version::V2),
        ".well-known/openid-configuration" => Route::Discovery(Version::V1),
        "login" => Route::Login,
        "oauth2/v2.0/par" => Route::Par(Version::V2),
        "oauth2/par" => Route::Par(Version::V1),
        "oauth2/v2.0/devicecode" => Route::DeviceCode(Version::V2),
        "oauth2/devicecode" => Route::DeviceCode(Version::V1),
        "devicelogin" => Route::DeviceLogin,
        _ => return None,
    };
    (!tenant.is_empty()).then_some((tenant, route))
}

// === parameters ===

/// Decoded form or query parameters, in order, repeats kept.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    /// `None` when the text is not valid form encoding.
    fn parse(raw: &[u8]) -> Option<Params> {
        serde_urlencoded::from_bytes(raw).ok().map(Params)
    }

    /// The first non-empty value: an empty value counts as absent.
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The first parameter name given more than once.
    fn repeated(&self) -> Option<&str> {
        self.0
            .iter()
            .enumerate()
            .find(|(i, (k, _))| self.0[..*i].iter().any(|(seen, _)| seen == k))
            .map(|(_, (k, _))| k.as_str())
    }
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
pub fn parse_basic(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

fn form_decode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

// === redirect URIs ===

/// Registration match: exact, or any port on a loopback `http` URI.
fn redirect_matches(registered: &str, sent: &str) -> bool {
    registered == sent || loopback_port_only_difference(registered, sent)
}

/// /token vs /authorize: byte-identical, except a loopback port (RFC 8252 §7.3).
pub fn same_redirect(authorized: &str, sent: &str) -> bool {
    authorized == sent || loopback_port_only_difference(authorized, sent)
}

fn loopback_port_only_difference(a: &str, b: &str) -> bool {
    fn without_port(s: &str) -> Option<(String, String)> {
        let uri: http::Uri = s.parse().ok()?;
        let host = uri.host()?;
        let loopback = ["127.0.0.1", "[::1]", "localhost"].contains(&host);
        (uri.scheme_str() == Some("http") && loopback).then(|| {
            let rest = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
            (host.to_string(), rest)
        })
    }
    matches!((without_port(a), without_port(b)), (Some(x), Some(y)) if x == y)
}

// === responses ===

/// Delivers `fields` to the app's redirect_uri as a query, a fragment or an
/// auto-submitting form_post page.
fn respond_to_client(
    redirect_uri: &str,
    mode: ResponseMode,
    fields: &[(&str, String)],
) -> Response<Bytes> {
    match mode {
        ResponseMode::Query | ResponseMode::Fragment => {
            let encoded = serde_urlencoded::to_string(fields).expect("string pairs always encode");
            let separator = match mode {
                ResponseMode::Fragment => '#',
                _ if redirect_uri.contains('?') => '&',
                _ => '?',
            };
            redirect(&format!("{redirect_uri}{separator}{encoded}"))
        }
        ResponseMode::FormPost => {
            let inputs: String = fields
                .iter()
                .map(|(name, value)| {
                    format!(
                        "<input type=\"hidden\" name=\"{}\" value=\"{}\" />",
                        html_escape(name),
                        html_escape(value)
                    )
                })
                .collect();
            let page = format!(
                "<html><head><title>Working...</title></head><body>\
                 <form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}\
                 <noscript><p>Script is disabled. Press Submit to continue.</p>\
                 <input type=\"submit\" value=\"Submit\" /></noscript></form>\
                 <script>document.forms[0].submit();</script></body></html>",
                html_escape(redirect_uri)
            );
            text_response(StatusCode::OK, "text/html; charset=utf-8", page)
        }
    }
}

fn redirect(location: &str) -> Response<Bytes> {
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response =
                text_response(StatusCode::FOUND, "text/html; charset=utf-8", String::new());
            response.headers_mut().insert(header::LOCATION, value);
            response
        }
        Err(_) => text_response(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "redirect_uri cannot be used in a Location header".into(),
        ),
    }
}

fn text_response(status: StatusCode, content_type: &'static str, body: String) -> Response<Bytes> {
    let mut response = Response::new(Bytes::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Bytes> {
    let mut response = text_response(status, "application/json; charset=utf-8", body.to_string());
    response
        .headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `AADSTSnnn: message` plus the trailer lines Entra appends.
fn entra_description(
    e: &EntraError,
    trace_id: &str,
    correlation_id: &str,
    now: OffsetDateTime,
) -> String {
    format!(
        "{}{}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {}",
        if e.code == SLOW_DOWN {
            String::new()
        } else {
            format!("AADSTS{}: ", e.code)
        },
        e.message,
        entra_timestamp(now)
    )
}

/// Entra's timestamp shape: `2024-01-01 10:02:11Z`.
fn entra_timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// The proxy's own escaping, so the mock IdP's pages and the answers
/// authlens makes up escape alike.
pub use authlens::inject::answer::html_escape;

// === tokens and randomness ===

/// A JWT with a real-looking header and claims and a RANDOM signature: it is
/// not signed and no verifier will accept it. Tests only decode it.
fn unsigned_jwt(claims: &Value) -> String {
    let header = json!({"alg": "RS256", "kid": "mock", "typ": "JWT"});
    let mut signature = [0u8; 256];
    rand::rng().fill_bytes(&mut signature);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// Entra's `sub` is pairwise: stable per user and app, different across apps.
fn pairwise_sub(oid: &str, app: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{oid}|{app}")))
}

/// `len` characters of base64url randomness.
pub fn random_token(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(4) * 3];
    rand::rng().fill_bytes(&mut bytes);
    let mut token = URL_SAFE_NO_PAD.encode(bytes);
    token.truncate(len);
    token
}

pub fn random_guid() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
