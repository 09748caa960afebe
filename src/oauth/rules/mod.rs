//! The rules: each one looks at one redemption (and the attempt it belongs
//! to) and says what is wrong, why, and how to fix it.
//!
//! Every rule is a pure function returning [`Draft`]s; the analyzer stamps
//! them with attempt, exchange and time. Facts come from OAUTH.md; a clean
//! sign-in must produce nothing (replayed from a redacted recording, only
//! the `token-redacted` note). One file per family:
//!
//! - `shape`: `malformed-token-request`;
//! - `code`: `token-without-authorize`, `code-reused`, `code-expired`,
//!   `code-near-expiry`;
//! - `endpoint`: `endpoint-mismatch`; `param`: `param-mismatch`;
//! - `pkce`: `pkce-mismatch`, `pkce-missing-verifier`,
//!   `pkce-unexpected-verifier`, `pkce-invalid-verifier`;
//! - `idp_error`: `idp-error`; `par` and `origin` sharpen it with what the
//!   wire shows (a request_uri's history; Entra's SPA Origin rules);
//! - `id_token`: `nonce-mismatch`, `token-issuer-mismatch`;
//! - `redacted`: `token-redacted` (information about a redacted recording);
//! - `partial_body`: `body-not-analysed` (a request body read only in part:
//!   the other rules then call no parameter missing);
//! - `refresh`: `refresh-token-reused`, `refresh-token-expired` and a
//!   refresh's `param-mismatch` (client, scope);
//! - `device`: `device-poll-too-fast`, and `code-expired` / `code-reused`
//!   on a device code;
//! - `client_credentials`: `malformed-token-request` on the scope of an
//!   Entra v2 client_credentials call.
//!
//! Beside them, `checks` lists what the rules verified on a redemption, for
//! an `idp-error` none of their findings explains.
//!
//! This file holds what they share and the entry points the analyzer calls:
//! [`code_redemption`], [`redemption_checks`], [`idp_error()`],
//! [`tokens_redacted`], [`tokens_issued`], [`grant_request`] (every other
//! grant) and [`device_slow_down`]. The entry points fix the order
//! findings are reported in; a family never calls another.

use std::time::Duration;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::attempt::CodeRecord;
use super::event::{Rule, Severity};
use super::jwt::Jwt;
use super::lifecycle::{DeviceRecord, RefreshRecord};
use super::message::{AuthorizeRequest, CodeGrant, Grant, TokenRequest};
use super::provider::KnownEndpoints;
use super::secret::SecretPolicy;

mod checks;
mod client_credentials;
mod code;
mod device;
mod endpoint;
mod id_token;
mod idp_error;
mod origin;
mod par;
mod param;
mod partial_body;
mod pkce;
mod redacted;
mod refresh;
mod shape;

pub use checks::{Check, CheckResult};
pub use idp_error::{IdpErrorInput, idp_error};
pub use origin::spa_origin;
pub use par::{pushed_refused, request_uri_refused};
pub use redacted::RedactedToken;

/// A finding before the analyzer gives it an attempt, an exchange and a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub rule: Rule,
    pub severity: Severity,
    pub field: Option<String>,
    pub message: String,
    pub fix: String,
    pub evidence: Map<String, Value>,
    /// A few words for an `idp-error` that this finding explains
    /// ("code first redeemed at 10:02:11").
    pub gist: String,
}

impl Draft {
    fn new(rule: Rule, field: Option<&str>, message: String, fix: &str, evidence: Value) -> Draft {
        Draft {
            rule,
            severity: rule.default_severity(),
            field: field.map(str::to_owned),
            gist: message.clone(),
            message,
            fix: fix.to_owned(),
            evidence: match evidence {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    fn severity(mut self, severity: Severity) -> Draft {
        self.severity = severity;
        self
    }

    fn gist(mut self, gist: String) -> Draft {
        self.gist = gist;
        self
    }
}

/// One code redemption, as the rules see it.
#[derive(Debug)]
pub struct CodeRedemption<'a> {
    pub request: &'a TokenRequest,
    /// The request's code-flow parameters (also for a request that named
    /// another grant_type, or none).
    pub grant: &'a CodeGrant,
    /// The authorization request of the attempt the code belongs to.
    pub authorize: Option<&'a AuthorizeRequest>,
    /// The code as it may be shown (a fingerprint unless `--show-secrets`).
    pub code_shown: Option<&'a str>,
    /// What the store knew of the code before this redemption.
    pub record: Option<&'a CodeRecord>,
    pub time: OffsetDateTime,
    /// `--code-lifetime`, overriding the provider's default.
    pub code_lifetime: Option<Duration>,
    pub known: &'a KnownEndpoints,
    pub secrets: SecretPolicy,
}

/// Every rule on a code redemption, in report order: how much of the
/// request was read, the request's shape, the code's history, then the endpoint, the parameters and PKCE against
/// /authorize.
pub fn code_redemption(r: &CodeRedemption<'_>) -> Vec<Draft> {
    let mut out: Vec<Draft> = partial_body::body_not_analysed(r.request)
        .into_iter()
        .collect();
    out.extend(shape::malformed(r.request, r.grant, r.authorize, r.secrets));
    if let Some(shown) = r.code_shown {
        out.extend(code::history(shown, r.record, r.time, r.code_lifetime));
    }
    if let Some(a) = r.authorize {
        out.extend(endpoint::endpoint_mismatch(
            &a.endpoint,
            &r.request.endpoint,
            r.known,
        ));
        out.extend(param::param_mismatch(a, r.request, r.grant));
    }
    out.extend(pkce::pkce(r.authorize, r.request, r.grant, r.secrets));
    out
}

/// What the rules checked on a code redemption and how each check came out,
/// given the redemption's findings (`found`, from [`code_redemption`]).
pub fn redemption_checks(r: &CodeRedemption<'_>, found: &[Draft]) -> Vec<Check> {
    checks::redemption_checks(r, found)
}

/// The id_token a redemption returned, against its /authorize request.
pub fn tokens_issued(
    authorize: &AuthorizeRequest,
    known: &KnownEndpoints,
    id_token: &Jwt,
) -> Vec<Draft> {
    [
        id_token::nonce_mismatch(authorize.nonce.as_deref(), id_token),
        id_token::token_issuer_mismatch(&authorize.endpoint, known, id_token),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The tokens of a response that a redacted recording altered, if any.
pub fn tokens_redacted(tokens: &[RedactedToken]) -> Option<Draft> {
    redacted::token_redacted(tokens)
}

/// A token request of a grant other than the code grant, as the rules see it.
#[derive(Debug)]
pub struct GrantRequest<'a> {
    pub request: &'a TokenRequest,
    pub grant: &'a Grant,
    /// The grant's credential as it may be shown (a fingerprint unless
    /// `--show-secrets`).
    pub shown: Option<&'a str>,
    /// What the store knew of the refresh token before this request.
    pub refresh: Option<&'a RefreshRecord>,
    /// What the store knew of the device code before this poll.
    pub device: Option<&'a DeviceRecord>,
    pub time: OffsetDateTime,
    /// How long an Entra SPA refresh token lives from its sign-in.
    pub spa_refresh_lifetime: Duration,
}

/// Every rule on a token request of another grant, in report order: how
/// much of the request was read, then the grant's own rules.
pub fn grant_request(r: &GrantRequest<'_>) -> Vec<Draft> {
    let mut out: Vec<Draft> = partial_body::body_not_analysed(r.request)
        .into_iter()
        .collect();
    match r.grant {
        Grant::RefreshToken(g) => {
            if let (Some(shown), Some(record)) = (r.shown, r.refresh) {
                out.extend(refresh::reused(shown, record, r.time));
                out.extend(refresh::expired(
                    shown,
                    record,
                    r.time,
                    r.spa_refresh_lifetime,
                ));
                out.extend(refresh::param_mismatch(
                    shown,
                    record,
                    r.request.client_id(),
                    g.scope.as_deref(),
                ));
            }
        }
        Grant::DeviceCode(_) => {
            if let (Some(shown), Some(record)) = (r.shown, r.device) {
                out.extend(device::poll(shown, record, r.time));
            }
        }
        Grant::ClientCredentials(g) if r.request.params_known() => {
            out.extend(client_credentials::scope_not_default(
                &r.request.endpoint,
                g.scope.as_deref(),
            ));
        }
        _ => {}
    }
    out
}

/// `device-poll-too-fast` for a poll the IdP answered `slow_down`, unless
/// the poll's own findings (`found`) already say it was too fast. `gap` is
/// the time since the previous poll, when it was seen.
pub fn device_slow_down(
    shown: &str,
    record: &DeviceRecord,
    gap: Option<Duration>,
    found: &[Draft],
) -> Option<Draft> {
    if found.iter().any(|d| d.rule == Rule::DevicePollTooFast) {
        return None;
    }
    Some(device::too_fast(shown, record, gap, true))
}
