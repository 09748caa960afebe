//! The mock's grants beyond the code redemption, as OAUTH.md §7 says Entra
//! answers them:
//!
//! - `refresh_token`: rotation (every refresh answers a new refresh token;
//!   like Entra, an old one keeps working unless
//!   [`MockIdpConfig::refresh_reuse_detection`] asks for Auth0/Okta-like
//!   reuse detection: a rotated token presented again revokes its whole
//!   family, AADSTS70008), tokens bound to their client (70000), 65001 for
//!   a scope Entra would want consent for ([`beyond_consent`]: a scope of a
//!   granted resource that was not granted; OIDC scopes, `.default` and
//!   other resources pass), and SPA tokens (issued to a redemption
//!   with `Origin`) that live [`MockIdpConfig::spa_refresh_lifetime`] from
//!   the sign-in, not sliding (700084);
//! - the device authorization grant: `/{tenant}/oauth2/v2.0/devicecode`
//!   with `interval` and `expires_in`; polls answer `authorization_pending`
//!   (70016) until [`MockIdp::approve_device`], `slow_down` when closer than
//!   the interval (which then grows by 5 s), `expired_token` (70019) after
//!   `expires_in`, and `bad_verification_code` (70018) for an unknown code
//!   or one already redeemed;
//! - `client_credentials`: a confidential client only, and on v2 a scope of
//!   exactly one `{resource}/.default` (AADSTS1002012).
//!
//! Bounded like codes: everything is dropped after its lifetime and beyond
//! [`MAX_CODES`] entries.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use serde_json::{Value, json};

use super::{
    ACCESS_TOKEN_SECS, ClientKind, EntraError, Grant, MAX_CODES, MockIdp, MockIdpConfig,
    OIDC_SCOPES, Params, SLOW_DOWN, Version, fail, json_response, missing, random_token,
    text_response, unsigned_jwt,
};

/// `grant_type` of RFC 8628 polls.
pub(super) const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long a refresh token of a Web or native client is remembered (its
/// real inactivity lifetime is 90 days; a test run is shorter).
const REFRESH_RETENTION: Duration = Duration::from_secs(48 * 3600);

/// Refresh tokens and device codes.
#[derive(Default)]
pub(super) struct LifecycleState {
    refresh: HashMap<String, IssuedRefresh>,
    devices: HashMap<String, DeviceGrant>,
    /// Families revoked by reuse detection.
    revoked: Vec<u64>,
    next_family: u64,
}

struct IssuedRefresh {
    /// What the sign-in granted (client, tenant, version, scopes).
    grant: Grant,
    family: u64,
    /// The sign-in that started the family: a SPA token's lifetime runs from it.
    family_issued_at: Instant,
    issued_at: Instant,
    spa: bool,
    /// Redeemed once already (rotated): presenting it again is reuse.
    redeemed: bool,
}

struct DeviceGrant {
    client_id: String,
    tenant: String,
    version: Version,
    scope: Option<String>,
    user_code: String,
    issued_at: Instant,
    /// The interval polls must keep now (grows by 5 s after each slow_down).
    interval: Duration,
    last_poll: Option<Instant>,
    approved: bool,
    redeemed: bool,
}

impl LifecycleState {
    pub(super) fn prune(&mut self, now: Instant, config: &MockIdpConfig) {
        let keep = config.spa_refresh_lifetime.max(REFRESH_RETENTION);
        self.refresh
            .retain(|_, r| now.saturating_duration_since(r.issued_at) <= keep);
        let device_keep = config.device_expires_in + super::CODE_RETENTION;
        self.devices
            .retain(|_, d| now.saturating_duration_since(d.issued_at) <= device_keep);
        while self.refresh.len() > MAX_CODES {
            let oldest = self.refresh.iter().min_by_key(|(_, r)| r.issued_at);
            let oldest = oldest.map(|(k, _)| k.clone()).expect("non-empty");
            self.refresh.remove(&oldest);
        }
        while self.devices.len() > MAX_CODES {
            let oldest = self.devices.iter().min_by_key(|(_, d)| d.issued_at);
            let oldest = oldest.map(|(k, _)| k.clone()).expect("non-empty");
            self.devices.remove(&oldest);
        }
        let families: Vec<u64> = self.refresh.values().map(|r| r.family).collect();
        self.revoked.retain(|f| families.contains(f));
    }
}

/// The `grant_type` of a form body, if any.
pub(super) fn grant_type(body: &[u8]) -> Option<String> {
    Params::parse(body)?.get("grant_type").map(str::to_owned)
}

impl MockIdp {
    /// The user finishes the device sign-in of `user_code` (what typing the
    /// code at the verification URI does). False for an unknown code.
    pub fn approve_device(&self, user_code: &str) -> bool {
        let mut state = self.lock();
        match state
            .lifecycle
            .devices
            .values_mut()
            .find(|d| d.user_code == user_code)
        {
            Some(d) => {
                d.approved = true;
                true
            }
            None => false,
        }
    }

    /// Refresh tokens and device codes currently remembered (bounded).
    pub fn live_lifecycle(&self) -> (usize, usize) {
        let state = self.lock();
        (state.lifecycle.refresh.len(), state.lifecycle.devices.len())
    }

    /// Remembers the refresh token a successful answer carries. `spa`: the
    /// redemption carried `Origin`; `family`: the family and its start,
    /// for a token issued by a refresh.
    pub(super) fn remember_refresh(
        &self,
        body: &Value,
        grant: &Grant,
        spa: bool,
        family: Option<(u64, Instant)>,
    ) {
        let Some(token) = body["refresh_token"].as_str() else {
            return;
        };
        let (now, _) = self.now();
        let mut state = self.lock();
        let (family, family_issued_at) = family.unwrap_or_else(|| {
            state.lifecycle.next_family += 1;
            (state.lifecycle.next_family, now)
        });
        state.lifecycle.refresh.insert(
            token.to_owned(),
            IssuedRefresh {
                grant: grant.clone(),
                family,
                family_issued_at,
                issued_at: now,
                spa,
                redeemed: false,
            },
        );
    }

    /// A token request of a grant other than the code grant.
    pub(super) fn lifecycle_grant(
        &self,
        grant_type: &str,
        version: Version,
        req: &Request<Bytes>,
        params: &Params,
    ) -> Result<Value, EntraError> {
        let client = self.authenticate_client(req.headers(), params)?;
        let (client_id, kind, confidential) = (
            client.client_id.clone(),
            client.kind,
            client.secret.is_some(),
        );
        let body = match grant_type {
            "refresh_token" => self.refresh(&client_id, version, req, params)?,
            DEVICE_CODE => self.device_poll(&client_id, params)?,
            _ => self.client_credentials(&client_id, kind, confidential, version, params)?,
        };
        let mut state = self.lock();
        match grant_type {
            "refresh_token" => state.stats.tokens_refreshed += 1,
            DEVICE_CODE => state.stats.device_codes_redeemed += 1,
            _ => state.stats.client_credentials_issued += 1,
        }
        Ok(body)
    }

    // === refresh_token ===

    fn refresh(
        &self,
        client_id: &str,
        version: Version,
        req: &Request<Bytes>,
        params: &Params,
    ) -> Result<Value, EntraError> {
        let token = params
            .get("refresh_token")
            .ok_or_else(|| missing("refresh_token"))?;
        let (now, wall) = self.now();
        let mut state = self.lock();
        let spa_lifetime = self.config.spa_refresh_lifetime;
        let Some(issued) = state.lifecycle.refresh.get(token) else {
            return Err(fail(
                9002313,
                "Invalid request. The 'refresh_token' parameter is malformed or unknown.",
            ));
        };
        let family = issued.family;
        let reuse_detection = self.config.refresh_reuse_detection;
        if reuse_detection && (issued.redeemed || state.lifecycle.revoked.contains(&family)) {
            // Reuse detection: the whole family goes.
            if !state.lifecycle.revoked.contains(&family) {
                state.lifecycle.revoked.push(family);
            }
            return Err(fail(
                70008,
                "The refresh token has expired or been revoked: it was already redeemed and rotated, so the token family is revoked (reuse detected).",
            ));
        }
        if issued.grant.client_id != client_id {
            return Err(fail(
                70000,
                format!(
                    "The provided value for the 'refresh_token' is not valid: it was issued to client '{}', not '{client_id}'.",
                    issued.grant.client_id
                ),
            ));
        }
        if issued.grant.version != version {
            return Err(fail(
                70000,
                "The provided value for the 'refresh_token' is not valid for this endpoint version.",
            ));
        }
        let age = now.saturating_duration_since(issued.family_issued_at);
        if issued.spa && age > spa_lifetime {
            return Err(fail(
                700084,
                format!(
                    "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of {} s, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page.",
                    spa_lifetime.as_secs()
                ),
            ));
        }
        let granted = issued.grant.scope.clone().unwrap_or_default();
        if let Some(asked) = params.get("scope") {
            let beyond = beyond_consent(&granted, asked);
            if !beyond.is_empty() {
                return Err(fail(
                    65001,
                    format!(
                        "The user or administrator has not consented to use the application with ID '{client_id}' for '{}'.",
                        beyond.join(" ")
                    ),
                ));
            }
        }
        let spa = issued.spa || req.headers().contains_key(header::ORIGIN);
        let family_issued_at = issued.family_issued_at;
        let mut grant = issued.grant.clone();
        // No nonce on a refreshed id_token: there was no /authorize.
        grant.nonce = None;
        if let Some(issued) = state.lifecycle.refresh.get_mut(token) {
            issued.redeemed = true;
        }
        let faults = state.faults.clone();
        drop(state);
        let mut body = self.token_body(&grant, params.get("scope"), wall, &faults);
        // A refresh always answers a new refresh token (rotation).
        body["refresh_token"] = json!(format!("1.A{}", random_token(120)));
        self.remember_refresh(&body, &grant, spa, Some((family, family_issued_at)));
        Ok(body)
    }

    // === device authorization grant ===

    /// `POST /{tenant}/oauth2/v2.0/devicecode`.
    pub(super) fn device_authorization(
        &self,
        tenant: &str,
        version: Version,
        req: &Request<Bytes>,
    ) -> Response<Bytes> {
        let answer = (|| {
            if req.method() != Method::POST {
                return Err(fail(
                    900561,
                    "The endpoint only accepts POST requests. Received a GET request.",
                ));
            }
            if !self.tenant_known(tenant) {
                return Err(fail(90002, format!("Tenant '{tenant}' not found.")));
            }
            let params = Params::parse(req.body()).unwrap_or_default();
            let client_id = params
                .get("client_id")
                .ok_or_else(|| missing("client_id"))?;
            if self.client(client_id).is_none() {
                return Err(fail(
                    700016,
                    format!(
                        "Application with identifier '{client_id}' was not found in the directory '{tenant}'."
                    ),
                ));
            }
            Ok((client_id.to_owned(), params.get("scope").map(str::to_owned)))
        })();
        let (client_id, scope) = match answer {
            Ok(found) => found,
            Err(e) => return self.token_error(req.headers(), e),
        };
        let device_code = format!("DAQABAAEAAAD{}", random_token(96));
        let user_code: String = random_token(9)
            .chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    c.to_ascii_uppercase()
                } else {
                    'K'
                }
            })
            .collect();
        let (now, _) = self.now();
        let interval = self.config.device_interval;
        let expires_in = self.config.device_expires_in.as_secs();
        self.lock().lifecycle.devices.insert(
            device_code.clone(),
            DeviceGrant {
                client_id,
                tenant: tenant.to_owned(),
                version,
                scope,
                user_code: user_code.clone(),
                issued_at: now,
                interval: Duration::from_secs(interval.unwrap_or(5)),
                last_poll: None,
                approved: false,
                redeemed: false,
            },
        );
        let mut body = json!({
            "user_code": user_code,
            "device_code": device_code,
            "verification_uri": "https://microsoft.com/devicelogin",
            "expires_in": expires_in,
            "message": format!("To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code {user_code} to authenticate."),
        });
        if let Some(interval) = interval {
            body["interval"] = json!(interval);
        }
        json_response(StatusCode::OK, &body)
    }

    /// `POST /{tenant}/devicelogin` with `user_code=…`: the user signs in
    /// on another device (by hand, with the example).
    pub(super) fn device_login(&self, req: &Request<Bytes>) -> Response<Bytes> {
        let params = Params::parse(req.body()).unwrap_or_default();
        let approved = params
            .get("user_code")
            .is_some_and(|code| self.approve_device(code));
        let (status, text) = if approved {
            (
                StatusCode::OK,
                "You have signed in. You may close this window.",
            )
        } else {
            (StatusCode::BAD_REQUEST, "Unknown user code.")
        };
        text_response(status, "text/plain", text.into())
    }

    fn device_poll(&self, client_id: &str, params: &Params) -> Result<Value, EntraError> {
        let code = params
            .get("device_code")
            .ok_or_else(|| missing("device_code"))?;
        let (now, wall) = self.now();
        let expires_in = self.config.device_expires_in;
        let mut state = self.lock();
        let Some(device) = state.lifecycle.devices.get_mut(code) else {
            return Err(fail(70018, "Invalid verification code."));
        };
        if device.redeemed {
            return Err(fail(
                70018,
                "Invalid verification code: it was already redeemed.",
            ));
        }
        if now.saturating_duration_since(device.issued_at) > expires_in {
            return Err(fail(70019, "Verification code expired."));
        }
        if device.client_id != client_id {
            return Err(fail(
                70000,
                format!(
                    "The provided value for the 'device_code' is not valid: it was issued to client '{}'.",
                    device.client_id
                ),
            ));
        }
        let too_fast = device
            .last_poll
            .is_some_and(|last| now.saturating_duration_since(last) < device.interval);
        device.last_poll = Some(now);
        if too_fast {
            device.interval += Duration::from_secs(5);
            return Err(fail(SLOW_DOWN, "Polling too fast: slow down."));
        }
        if !device.approved {
            return Err(fail(
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            ));
        }
        device.redeemed = true;
        let grant = Grant {
            client_id: device.client_id.clone(),
            redirect_uri: String::new(),
            tenant: device.tenant.clone(),
            version: device.version,
            scope: device.scope.clone(),
            resource: None,
            code_challenge: None,
            code_challenge_method: None,
            nonce: None,
        };
        let faults = state.faults.clone();
        drop(state);
        let body = self.token_body(&grant, None, wall, &faults);
        self.remember_refresh(&body, &grant, false, None);
        Ok(body)
    }

    // === client_credentials ===

    fn client_credentials(
        &self,
        client_id: &str,
        kind: ClientKind,
        confidential: bool,
        version: Version,
        params: &Params,
    ) -> Result<Value, EntraError> {
        if !confidential || kind == ClientKind::Spa {
            return Err(fail(
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ));
        }
        let resource = match version {
            Version::V2 => {
                let scope = params.get("scope").ok_or_else(|| missing("scope"))?;
                let scopes: Vec<&str> = scope.split_whitespace().collect();
                match scopes.as_slice() {
                    [one] if one.len() > "/.default".len() && one.ends_with("/.default") => {
                        one.trim_end_matches("/.default").to_owned()
                    }
                    _ => {
                        return Err(fail(
                            1002012,
                            format!(
                                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
                            ),
                        ));
                    }
                }
            }
            Version::V1 => params
                .get("resource")
                .ok_or_else(|| missing("resource"))?
                .to_owned(),
        };
        let (_, wall) = self.now();
        let iat = wall.unix_timestamp();
        let audience = if resource == "https://graph.microsoft.com" {
            super::GRAPH_APP_ID.to_owned()
        } else {
            resource
        };
        let tid = self.config.tenant.clone();
        let access_token = unsigned_jwt(&json!({
            "aud": audience,
            "iss": format!("https://{}/{tid}/v2.0", self.config.host),
            "iat": iat, "nbf": iat, "exp": iat + ACCESS_TOKEN_SECS,
            "tid": tid,
            "appid": client_id,
            "roles": [],
            "ver": if version == Version::V2 { "2.0" } else { "1.0" },
        }));
        // No refresh token and no id_token: there is no user.
        Ok(json!({
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECS,
            "ext_expires_in": ACCESS_TOKEN_SECS,
            "access_token": access_token,
        }))
    }
}

/// The scopes of a refresh's `asked` that Entra would answer 65001 for,
/// given the sign-in's `granted`: the analyzer's normalisation (its
/// `scopes_beyond`), written again so that the mock does not lean on the
/// code it tests. OIDC scopes pass; names compare without case and without
/// the Graph prefix (`https://graph.microsoft.com/User.Read` is
/// `User.Read`); `{resource}/.default` asks for what is consented; a scope
/// of a resource the sign-in did not name passes (Entra checks it against
/// the user's consent, which the mock does not model). What is left is a
/// scope of a granted resource (bare names are Graph's) not granted.
pub(super) fn beyond_consent(granted: &str, asked: &str) -> Vec<String> {
    let normal = |s: &str| {
        s.strip_prefix("https://graph.microsoft.com/")
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    let resource = |s: &str| s.rsplit_once('/').map(|(r, _)| r.to_owned());
    let granted: Vec<String> = granted.split_whitespace().map(normal).collect();
    let resources: Vec<String> = granted.iter().filter_map(|s| resource(s)).collect();
    asked
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(&s.to_ascii_lowercase().as_str()))
        .filter(|s| !granted.contains(&normal(s)))
        .filter(|s| !s.ends_with(".default"))
        .filter(|s| match resource(&normal(s)) {
            Some(r) => resources.contains(&r),
            None => true,
        })
        .map(str::to_owned)
        .collect()
}
