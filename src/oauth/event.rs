//! What the analysis tells its outlets: one event per leg of a sign-in,
//! findings right after the leg that triggered them, and a verdict when an
//! attempt completes.
//!
//! Events are plain values, already safe to show: every secret in them has
//! been fingerprinted by the analyzer (unless `--show-secrets`), so an outlet
//! can print any field. Formatting lives in `crate::output`.

use std::fmt;
use std::time::Duration;

use time::OffsetDateTime;

use super::jwt::{Jwt, JwtError};

/// Identifies one sign-in attempt (one authorization request) within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptId(pub u64);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// How bad a finding is. A clean sign-in produces nothing above `Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The rules. Their ids are a stable interface (tests outside this project
/// match on them): never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    TokenWithoutAuthorize,
    CodeExpired,
    CodeNearExpiry,
    CodeReused,
    EndpointMismatch,
    ParamMismatch,
    MalformedTokenRequest,
    PkceMismatch,
    PkceMissingVerifier,
    PkceUnexpectedVerifier,
    PkceInvalidVerifier,
    IdpError,
    NonceMismatch,
    TokenIssuerMismatch,
    TokenRedacted,
    BodyNotAnalysed,
    RefreshTokenReused,
    RefreshTokenExpired,
    DevicePollTooFast,
}

impl Rule {
    pub const ALL: [Rule; 19] = [
        Rule::TokenWithoutAuthorize,
        Rule::CodeExpired,
        Rule::CodeNearExpiry,
        Rule::CodeReused,
        Rule::EndpointMismatch,
        Rule::ParamMismatch,
        Rule::MalformedTokenRequest,
        Rule::PkceMismatch,
        Rule::PkceMissingVerifier,
        Rule::PkceUnexpectedVerifier,
        Rule::PkceInvalidVerifier,
        Rule::IdpError,
        Rule::NonceMismatch,
        Rule::TokenIssuerMismatch,
        Rule::TokenRedacted,
        Rule::BodyNotAnalysed,
        Rule::RefreshTokenReused,
        Rule::RefreshTokenExpired,
        Rule::DevicePollTooFast,
    ];

    /// The stable id, e.g. `code-reused`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::TokenWithoutAuthorize => "token-without-authorize",
            Rule::CodeExpired => "code-expired",
            Rule::CodeNearExpiry => "code-near-expiry",
            Rule::CodeReused => "code-reused",
            Rule::EndpointMismatch => "endpoint-mismatch",
            Rule::ParamMismatch => "param-mismatch",
            Rule::MalformedTokenRequest => "malformed-token-request",
            Rule::PkceMismatch => "pkce-mismatch",
            Rule::PkceMissingVerifier => "pkce-missing-verifier",
            Rule::PkceUnexpectedVerifier => "pkce-unexpected-verifier",
            Rule::PkceInvalidVerifier => "pkce-invalid-verifier",
            Rule::IdpError => "idp-error",
            Rule::NonceMismatch => "nonce-mismatch",
            Rule::TokenIssuerMismatch => "token-issuer-mismatch",
            Rule::TokenRedacted => "token-redacted",
            Rule::BodyNotAnalysed => "body-not-analysed",
            Rule::RefreshTokenReused => "refresh-token-reused",
            Rule::RefreshTokenExpired => "refresh-token-expired",
            Rule::DevicePollTooFast => "device-poll-too-fast",
        }
    }

    /// The rule with this id.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }

    /// The severity a finding of this rule has unless the rule says otherwise
    /// (a loopback port difference is only a warning). `token-redacted` is
    /// information about the recording, not a problem of the sign-in.
    pub fn default_severity(self) -> Severity {
        match self {
            Rule::TokenRedacted => Severity::Info,
            Rule::TokenWithoutAuthorize
            | Rule::CodeNearExpiry
            | Rule::TokenIssuerMismatch
            | Rule::BodyNotAnalysed => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Something wrong (or worth knowing) about one leg of a sign-in.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub rule: Rule,
    pub severity: Severity,
    pub attempt: Option<AttemptId>,
    /// The exchange that triggered it.
    pub exchange: u64,
    /// Which part is wrong (`redirect_uri`, `tenant`, `AADSTS54005`, …).
    pub field: Option<String>,
    /// One line a developer understands without reading the spec.
    pub message: String,
    pub fix: String,
    /// Both values side by side, timings; secrets fingerprinted.
    pub evidence: serde_json::Map<String, serde_json::Value>,
    pub time: OffsetDateTime,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// How a code or authorization error was tied to its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Same `state` as the authorization request.
    State,
    /// No usable `state`: the most recent open attempt for that redirect URI.
    Heuristic,
    /// No attempt seen (it started before authlens, or elsewhere).
    Unpaired,
}

impl Pairing {
    pub fn as_str(self) -> &'static str {
        match self {
            Pairing::State => "state",
            Pairing::Heuristic => "heuristic",
            Pairing::Unpaired => "none",
        }
    }
}

/// Leg 1: the authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeEvent {
    pub time: OffsetDateTime,
    pub exchange: u64,
    pub attempt: AttemptId,
    pub host: String,
    /// The endpoint URL without query.
    pub endpoint: String,
    pub provider: &'static str,
    pub tenant: Option<String>,
    pub version: Option<&'static str>,
    pub policy: Option<String>,
    pub client_id: String,
    pub redirect_uri: Option<String>,
    pub response_type: String,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// `S256` or `plain` when a code challenge was sent.
    pub pkce_method: Option<String>,
    /// `par` when the parameters were pushed ahead (RFC 9126) and named by a
    /// `request_uri`, `request_object` when they came in a request object
    /// (RFC 9101); `None` when they were on /authorize itself.
    pub via: Option<&'static str>,
    /// Why the parameters shown are only those /authorize itself carried
    /// (a push authlens did not see, a request object it cannot read).
    pub via_note: Option<String>,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// Leg 2: the authorization response (a code, or an error) on its way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeEvent {
    pub time: OffsetDateTime,
    pub exchange: u64,
    pub attempt: Option<AttemptId>,
    pub pairing: Pairing,
    /// Who sent it (the IdP, or the app for a callback request).
    pub host: String,
    pub client_id: Option<String>,
    /// `query`, `fragment`, `form_post` or `callback`.
    pub mode: &'static str,
    /// The redirect URI it is going to (without query).
    pub redirect_to: Option<String>,
    /// Fingerprinted unless `show_secrets`.
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_codes: Vec<String>,
    pub since_authorize: Option<Duration>,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// Leg 3: the token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenEvent {
    pub time: OffsetDateTime,
    pub exchange: u64,
    pub attempt: Option<AttemptId>,
    pub host: String,
    pub endpoint: String,
    pub method: String,
    pub content_type: Option<String>,
    pub client_id: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `client_assertion`.
    pub client_auth: Vec<&'static str>,
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub scope: Option<String>,
    /// Time since the code was seen issued.
    pub code_age: Option<Duration>,
    /// What a grant other than the code grant presents, fingerprinted with
    /// its kind (`refresh_token#…`, `device_code#…`, `assertion#…`,
    /// `subject_token#…`) unless `show_secrets`.
    pub grant_credential: Option<String>,
    /// `JWT` or `opaque`: what that credential looks like (a JWT is not
    /// read: only its fingerprint is shown).
    pub grant_credential_format: Option<&'static str>,
    /// A device-code poll answered `authorization_pending` (the user has not
    /// finished signing in; normal): its number among that code's pending
    /// polls, from 1.
    pub pending_poll: Option<u32>,
    /// Polls of this device code answered `authorization_pending` before
    /// this one.
    pub pending_before: u32,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// The device authorization request of a device-code sign-in (RFC 8628
/// §3.1) and its answer: the code the app will poll the token endpoint with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorizationEvent {
    pub time: OffsetDateTime,
    pub exchange: u64,
    pub host: String,
    pub endpoint: String,
    pub client_id: Option<String>,
    pub scope: Option<String>,
    /// `None` when no answer was seen.
    pub status: Option<u16>,
    pub failed: bool,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_codes: Vec<String>,
    /// Fingerprinted unless `show_secrets`.
    pub device_code: Option<String>,
    /// The code the user types (shown on the device's screen anyway).
    pub user_code: Option<String>,
    pub verification_uri: Option<String>,
    pub expires_in: Option<u64>,
    /// As answered; `None` when absent or not a number (then 5 s).
    pub interval: Option<u64>,
    /// What is odd about the answer, for a person (`no interval: polls must
    /// be 5 s apart`).
    pub note: Option<String>,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// Leg 4: the token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponseEvent {
    pub time: OffsetDateTime,
    pub exchange: u64,
    pub attempt: Option<AttemptId>,
    pub host: String,
    pub client_id: Option<String>,
    pub status: u16,
    /// The IdP refused the redemption (an error member or a 4xx/5xx status).
    pub failed: bool,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_codes: Vec<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Fingerprints of the tokens received (`access_token#…`, `id_token#…`, …).
    pub tokens: Vec<String>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub expires_in: Option<String>,
    /// The JWTs of a successful response (id_token, and access_token when it
    /// is a JWT), decoded without verifying their signatures.
    pub decoded: Vec<DecodedToken>,
    /// From the token request to the response head.
    pub elapsed: Option<Duration>,
    /// The `grant_type` of the request answered.
    pub grant_type: Option<String>,
    /// The answer `authorization_pending` to a device-code poll: its number
    /// among that code's pending polls, from 1 (see [`TokenEvent::pending_poll`]).
    pub pending_poll: Option<u32>,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// One token of a token response, read but not verified. Only claims and
/// its fingerprint are kept, never the token itself (unless `--show-secrets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedToken {
    /// `id_token` or `access_token`.
    pub kind: &'static str,
    /// The fingerprint (`id_token#e119ca`), or the token with `--show-secrets`.
    pub shown: String,
    pub jwt: Result<Jwt, JwtError>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    SignedIn,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::SignedIn => "signed-in",
            Outcome::Failed => "failed",
        }
    }
}

/// One line closing an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub time: OffsetDateTime,
    pub attempt: Option<AttemptId>,
    pub host: String,
    pub client_id: Option<String>,
    pub outcome: Outcome,
    pub summary: String,
    /// Findings of the attempt (including this last exchange) by severity.
    pub errors: usize,
    pub warnings: usize,
    /// From the authorization request to the end.
    pub duration: Option<Duration>,
    /// Set when a `--fault` changed the exchange behind this event: the
    /// event shows what really happened, caused on purpose.
    pub injected: Option<Injected>,
}

/// What authlens did on purpose to an exchange (`--fault`), as the
/// interceptor recorded it: the fault's stable name (`reuse-code`) and one
/// line for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injected {
    pub fault: String,
    pub note: String,
}

/// Everything the analyzer reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Authorize(AuthorizeEvent),
    Code(CodeEvent),
    Token(TokenEvent),
    TokenResponse(TokenResponseEvent),
    Finding(Finding),
    Verdict(Verdict),
    DeviceAuthorization(DeviceAuthorizationEvent),
}

impl Event {
    /// The JSON `"type"`: `authorize`, `code`, `token`, `token-response`,
    /// `finding`, `verdict`, `device-authorization`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Authorize(_) => "authorize",
            Event::Code(_) => "code",
            Event::Token(_) => "token",
            Event::TokenResponse(_) => "token-response",
            Event::Finding(_) => "finding",
            Event::Verdict(_) => "verdict",
            Event::DeviceAuthorization(_) => "device-authorization",
        }
    }

    pub fn time(&self) -> OffsetDateTime {
        match self {
            Event::Authorize(e) => e.time,
            Event::Code(e) => e.time,
            Event::Token(e) => e.time,
            Event::TokenResponse(e) => e.time,
            Event::Finding(e) => e.time,
            Event::Verdict(e) => e.time,
            Event::DeviceAuthorization(e) => e.time,
        }
    }

    pub fn attempt(&self) -> Option<AttemptId> {
        match self {
            Event::Authorize(e) => Some(e.attempt),
            Event::Code(e) => e.attempt,
            Event::Token(e) => e.attempt,
            Event::TokenResponse(e) => e.attempt,
            Event::Finding(e) => e.attempt,
            Event::Verdict(e) => e.attempt,
            Event::DeviceAuthorization(_) => None,
        }
    }

    /// The fault that caused this event, if one did.
    pub fn injected(&self) -> Option<&Injected> {
        match self {
            Event::Authorize(e) => e.injected.as_ref(),
            Event::Code(e) => e.injected.as_ref(),
            Event::Token(e) => e.injected.as_ref(),
            Event::TokenResponse(e) => e.injected.as_ref(),
            Event::Finding(e) => e.injected.as_ref(),
            Event::Verdict(e) => e.injected.as_ref(),
            Event::DeviceAuthorization(e) => e.injected.as_ref(),
        }
    }

    /// Marks this event as caused by `injected` (kept when already marked).
    pub fn set_injected(&mut self, injected: &Injected) {
        let slot = match self {
            Event::Authorize(e) => &mut e.injected,
            Event::Code(e) => &mut e.injected,
            Event::Token(e) => &mut e.injected,
            Event::TokenResponse(e) => &mut e.injected,
            Event::Finding(e) => &mut e.injected,
            Event::Verdict(e) => &mut e.injected,
            Event::DeviceAuthorization(e) => &mut e.injected,
        };
        slot.get_or_insert_with(|| injected.clone());
    }

    /// The finding, if this is one.
    pub fn as_finding(&self) -> Option<&Finding> {
        match self {
            Event::Finding(f) => Some(f),
            _ => None,
        }
    }
}

/// An RFC 3339 timestamp, as JSON lines, evidence and claims show times.
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// `10:02:11` in the timestamp's own offset.
pub fn clock(t: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// `450 ms`, `12.3 s`, `8 min 40 s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        let s = d.as_secs();
        if s.is_multiple_of(60) {
            format!("{} min", s / 60)
        } else {
            format!("{} min {} s", s / 60, s % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_the_stable_interface() {
        let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(
            ids,
            [
                "token-without-authorize",
                "code-expired",
                "code-near-expiry",
                "code-reused",
                "endpoint-mismatch",
                "param-mismatch",
                "malformed-token-request",
                "pkce-mismatch",
                "pkce-missing-verifier",
                "pkce-unexpected-verifier",
                "pkce-invalid-verifier",
                "idp-error",
                "nonce-mismatch",
                "token-issuer-mismatch",
                "token-redacted",
                "body-not-analysed",
                "refresh-token-reused",
                "refresh-token-expired",
                "device-poll-too-fast",
            ]
        );
        for r in Rule::ALL {
            assert_eq!(Rule::from_id(r.id()), Some(r));
        }
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(450)), "450 ms");
        assert_eq!(human_duration(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(human_duration(Duration::from_secs(520)), "8 min 40 s");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 min");
    }
}
