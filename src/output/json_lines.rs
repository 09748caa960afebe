//! `--json`: one JSON object per event, one per line, and the way back
//! from such a line to the event (for `authlens report --from-json`).
//!
//! Pure: builds and reads values, the caller writes, reads and flushes the
//! lines. Every object has `"type"` (`authorize`, `code`, `token`,
//! `token-response`, `finding`, `verdict`, `device-authorization`), an RFC 3339 `"time"` and
//! `"attempt"` (a number, or null when the leg could not be paired).
//! Durations are in milliseconds. An event a `--fault` caused also has
//! `"injected"` (the fault's name) and `"injected_note"`; others have
//! neither. Reading is strict: a member missing or of
//! the wrong type, or a name authlens never writes, is an [`EventError`]
//! naming the member, never a guess.

use std::time::Duration;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::oauth::event::{
    AttemptId, AuthorizeEvent, CodeEvent, DecodedToken, DeviceAuthorizationEvent, Event, Finding,
    Injected, Outcome, Pairing, Rule, Severity, TokenEvent, TokenResponseEvent, Verdict, rfc3339,
};
use crate::oauth::jwt::{Jwt, JwtError};
use crate::oauth::message::ResponseMode;
use crate::oauth::provider::{ProtocolVersion, Provider};

/// The JSON object for one event.
pub fn to_value(event: &Event) -> Value {
    let mut object = Map::new();
    object.insert("type".into(), json!(event.kind()));
    object.insert("time".into(), json!(rfc3339(event.time())));
    object.insert("attempt".into(), json!(event.attempt().map(|a| a.0)));
    let fields = match event {
        Event::Authorize(e) => authorize(e),
        Event::Code(e) => code(e),
        Event::Token(e) => token(e),
        Event::TokenResponse(e) => token_response(e),
        Event::Finding(f) => finding(f),
        Event::Verdict(v) => verdict(v),
        Event::DeviceAuthorization(e) => device_authorization(e),
    };
    if let Value::Object(fields) = fields {
        object.extend(fields);
    }
    // Only on events a `--fault` caused: lines without faults are unchanged.
    if let Some(injected) = event.injected() {
        object.insert("injected".into(), json!(injected.fault));
        object.insert("injected_note".into(), json!(injected.note));
    }
    Value::Object(object)
}

/// Keys written first, in this order, so a line reads like
/// `{"type":"finding","time":…,"attempt":…,"rule":…,"severity":…,…}`.
const LEADING_KEYS: [&str; 5] = ["type", "time", "attempt", "rule", "severity"];

/// The event as one line of JSON, without the trailing newline.
pub fn to_line(event: &Event) -> String {
    let Value::Object(mut object) = to_value(event) else {
        return String::new();
    };
    let leading: Vec<(String, Value)> = LEADING_KEYS
        .iter()
        .filter_map(|k| object.remove(*k).map(|v| ((*k).to_owned(), v)))
        .collect();
    let mut line = String::from("{");
    for (key, value) in leading.into_iter().chain(object) {
        if line.len() > 1 {
            line.push(',');
        }
        line.push_str(&Value::String(key).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push('}');
    line
}

fn authorize(e: &AuthorizeEvent) -> Value {
    json!({
        "exchange": e.exchange,
        "host": e.host,
        "endpoint": e.endpoint,
        "provider": e.provider,
        "tenant": e.tenant,
        "version": e.version,
        "policy": e.policy,
        "client_id": e.client_id,
        "redirect_uri": e.redirect_uri,
        "response_type": e.response_type,
        "response_mode": e.response_mode,
        "scope": e.scope,
        "state": e.state,
        "nonce": e.nonce,
        "pkce": e.pkce_method,
        "via": e.via,
        "via_note": e.via_note,
    })
}

fn code(e: &CodeEvent) -> Value {
    json!({
        "exchange": e.exchange,
        "pairing": e.pairing.as_str(),
        "host": e.host,
        "client_id": e.client_id,
        "mode": e.mode,
        "redirect_to": e.redirect_to,
        "code": e.code,
        "state": e.state,
        "iss": e.iss,
        "error": e.error,
        "error_description": e.error_description,
        "error_codes": e.error_codes,
        "since_authorize_ms": e.since_authorize.map(millis),
    })
}

fn token(e: &TokenEvent) -> Value {
    json!({
        "exchange": e.exchange,
        "host": e.host,
        "endpoint": e.endpoint,
        "method": e.method,
        "content_type": e.content_type,
        "client_id": e.client_id,
        "client_auth": e.client_auth,
        "grant_type": e.grant_type,
        "code": e.code,
        "redirect_uri": e.redirect_uri,
        "code_verifier": e.code_verifier,
        "scope": e.scope,
        "code_age_ms": e.code_age.map(millis),
        "grant_credential": e.grant_credential,
        "grant_credential_format": e.grant_credential_format,
        "pending_poll": e.pending_poll,
        "pending_before": e.pending_before,
    })
}

fn device_authorization(e: &DeviceAuthorizationEvent) -> Value {
    json!({
        "exchange": e.exchange,
        "host": e.host,
        "endpoint": e.endpoint,
        "client_id": e.client_id,
        "scope": e.scope,
        "status": e.status,
        "failed": e.failed,
        "error": e.error,
        "error_description": e.error_description,
        "error_codes": e.error_codes,
        "device_code": e.device_code,
        "user_code": e.user_code,
        "verification_uri": e.verification_uri,
        "expires_in": e.expires_in,
        "interval": e.interval,
        "note": e.note,
    })
}

fn token_response(e: &TokenResponseEvent) -> Value {
    json!({
        "exchange": e.exchange,
        "host": e.host,
        "client_id": e.client_id,
        "status": e.status,
        "failed": e.failed,
        "error": e.error,
        "error_description": e.error_description,
        "error_codes": e.error_codes,
        "trace_id": e.trace_id,
        "correlation_id": e.correlation_id,
        "tokens": e.tokens,
        "token_type": e.token_type,
        "scope": e.scope,
        "expires_in": e.expires_in,
        "decoded_tokens": e.decoded.iter().map(decoded_token).collect::<Vec<_>>(),
        "elapsed_ms": e.elapsed.map(millis),
        "grant_type": e.grant_type,
        "pending_poll": e.pending_poll,
    })
}

/// A token's header and claims (times in RFC 3339); never the token itself.
fn decoded_token(d: &DecodedToken) -> Value {
    let mut object = json!({
        "token": d.kind,
        "fingerprint": d.shown,
        "signature_verified": false,
    });
    match &d.jwt {
        Ok(jwt) => {
            object["header"] = json!({ "alg": jwt.alg, "kid": jwt.kid, "typ": jwt.typ });
            object["claims"] = json!({
                "iss": jwt.iss,
                "aud": jwt.aud,
                "tid": jwt.tid,
                "oid": jwt.oid,
                "sub": jwt.sub,
                "scp": jwt.scp,
                "roles": jwt.roles,
                "exp": jwt.exp.map(rfc3339),
                "iat": jwt.iat.map(rfc3339),
                "nbf": jwt.nbf.map(rfc3339),
                "nonce": jwt.nonce,
            });
        }
        Err(err) => object["error"] = json!(err.to_string()),
    }
    object
}

fn finding(f: &Finding) -> Value {
    json!({
        "rule": f.rule.id(),
        "severity": f.severity.as_str(),
        "exchange": f.exchange,
        "field": f.field,
        "message": f.message,
        "fix": f.fix,
        "evidence": f.evidence,
    })
}

fn verdict(v: &Verdict) -> Value {
    json!({
        "host": v.host,
        "client_id": v.client_id,
        "outcome": v.outcome.as_str(),
        "summary": v.summary,
        "errors": v.errors,
        "warnings": v.warnings,
        "duration_ms": v.duration.map(millis),
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

// === reading a line back ===

/// Why a JSON line is not an authlens event. `field` is the path of the
/// member at fault (`attempt`, `decoded_tokens[0].claims.exp`).
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not JSON: {0}")]
    NotJson(#[from] serde_json::Error),
    #[error("not a JSON object")]
    NotObject,
    #[error("\"{field}\" is missing")]
    Missing { field: String },
    #[error("\"{field}\" is not {expected}")]
    Invalid {
        field: String,
        expected: &'static str,
    },
    #[error("\"{field}\" is {value:?}, a value authlens does not write")]
    Unknown { field: String, value: String },
}

/// The event a line written by [`to_line`] stands for.
pub fn from_line(line: &str) -> Result<Event, EventError> {
    from_value(&serde_json::from_str(line)?)
}

/// The inverse of [`to_value`]: `from_value(&to_value(e))` gives `e` back,
/// durations rounded down to the millisecond (all the JSON carries). A member
/// that may be null may also be left out.
fn from_value(value: &Value) -> Result<Event, EventError> {
    let o = Object::new(value, String::new())?;
    let kind = o.string("type")?;
    let time = o.time("time")?;
    let attempt = o
        .opt("attempt", "a whole number", Value::as_u64)?
        .map(AttemptId);
    let mut event = match kind.as_str() {
        "authorize" => Event::Authorize(read_authorize(&o, time)?),
        "code" => Event::Code(read_code(&o, time, attempt)?),
        "token" => Event::Token(read_token(&o, time, attempt)?),
        "token-response" => Event::TokenResponse(read_token_response(&o, time, attempt)?),
        "finding" => Event::Finding(read_finding(&o, time, attempt)?),
        "verdict" => Event::Verdict(read_verdict(&o, time, attempt)?),
        "device-authorization" => Event::DeviceAuthorization(read_device_authorization(&o, time)?),
        _ => {
            return Err(EventError::Unknown {
                field: o.field("type"),
                value: kind,
            });
        }
    };
    if let Some(fault) = o.opt_string("injected")? {
        let note = o.opt_string("injected_note")?.unwrap_or_default();
        event.set_injected(&Injected { fault, note });
    }
    Ok(event)
}

// The `&'static str` fields hold names from these closed sets (each list is
// every value its type can take), so a name read back maps to the same
// constant, and a name authlens never writes is an error, not a new value.
pub(crate) const PROVIDERS: [Provider; 12] = [
    Provider::Entra,
    Provider::EntraB2c,
    Provider::EntraExternalId,
    Provider::Adfs,
    Provider::Okta,
    Provider::Auth0,
    Provider::Google,
    Provider::Keycloak,
    Provider::Cognito,
    Provider::Ping,
    Provider::GitHub,
    Provider::Generic,
];
const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V1, ProtocolVersion::V2];
const MODES: [ResponseMode; 4] = [
    ResponseMode::Query,
    ResponseMode::Fragment,
    ResponseMode::FormPost,
    ResponseMode::Callback,
];
/// As `TokenRequest::client_auth_methods` names them.
const CLIENT_AUTH: [&str; 3] = [
    "client_secret_basic",
    "client_secret_post",
    "client_assertion",
];
/// What a grant's credential looks like (`TokenEvent::grant_credential_format`).
const CREDENTIAL_FORMATS: [&str; 2] = ["JWT", "opaque"];
/// The tokens the analyzer decodes.
const TOKEN_KINDS: [&str; 2] = ["id_token", "access_token"];
const SEVERITIES: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Error];
const PAIRINGS: [Pairing; 3] = [Pairing::State, Pairing::Heuristic, Pairing::Unpaired];
const OUTCOMES: [Outcome; 2] = [Outcome::SignedIn, Outcome::Failed];
/// How an authorization request's parameters can arrive (see `AuthorizeEvent::via`).
const VIAS: [&str; 2] = ["par", "request_object"];

fn read_authorize(o: &Object, time: OffsetDateTime) -> Result<AuthorizeEvent, EventError> {
    Ok(AuthorizeEvent {
        injected: None,
        time,
        exchange: o.u64("exchange")?,
        // An authorization request always starts an attempt.
        attempt: AttemptId(o.u64("attempt")?),
        host: o.string("host")?,
        endpoint: o.string("endpoint")?,
        provider: o.known("provider", &PROVIDERS, Provider::name)?.name(),
        tenant: o.opt_string("tenant")?,
        version: o
            .opt_known("version", &VERSIONS, ProtocolVersion::as_str)?
            .map(ProtocolVersion::as_str),
        policy: o.opt_string("policy")?,
        client_id: o.string("client_id")?,
        redirect_uri: o.opt_string("redirect_uri")?,
        response_type: o.string("response_type")?,
        response_mode: o.opt_string("response_mode")?,
        scope: o.opt_string("scope")?,
        state: o.opt_string("state")?,
        nonce: o.opt_string("nonce")?,
        pkce_method: o.opt_string("pkce")?,
        via: o.opt_known("via", &VIAS, |v| v)?,
        via_note: o.opt_string("via_note")?,
    })
}

fn read_code(
    o: &Object,
    time: OffsetDateTime,
    attempt: Option<AttemptId>,
) -> Result<CodeEvent, EventError> {
    Ok(CodeEvent {
        injected: None,
        time,
        exchange: o.u64("exchange")?,
        attempt,
        pairing: o.known("pairing", &PAIRINGS, Pairing::as_str)?,
        host: o.string("host")?,
        client_id: o.opt_string("client_id")?,
        mode: o.known("mode", &MODES, ResponseMode::as_str)?.as_str(),
        redirect_to: o.opt_string("redirect_to")?,
        code: o.opt_string("code")?,
        state: o.opt_string("state")?,
        iss: o.opt_string("iss")?,
        error: o.opt_string("error")?,
        error_description: o.opt_string("error_description")?,
        error_codes: o.strings("error_codes")?,
        since_authorize: o.millis("since_authorize_ms")?,
    })
}

fn read_token(
    o: &Object,
    time: OffsetDateTime,
    attempt: Option<AttemptId>,
) -> Result<TokenEvent, EventError> {
    let client_auth = o
        .strings("client_auth")?
        .into_iter()
        .enumerate()
        .map(|(i, name)| {
            one_of(&name, &CLIENT_AUTH, |n| n).ok_or_else(|| EventError::Unknown {
                field: o.field(&format!("client_auth[{i}]")),
                value: name,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TokenEvent {
        injected: None,
        time,
        exchange: o.u64("exchange")?,
        attempt,
        host: o.string("host")?,
        endpoint: o.string("endpoint")?,
        method: o.string("method")?,
        content_type: o.opt_string("content_type")?,
        client_id: o.opt_string("client_id")?,
        client_auth,
        grant_type: o.opt_string("grant_type")?,
        code: o.opt_string("code")?,
        redirect_uri: o.opt_string("redirect_uri")?,
        code_verifier: o.opt_string("code_verifier")?,
        scope: o.opt_string("scope")?,
        code_age: o.millis("code_age_ms")?,
        grant_credential: o.opt_string("grant_credential")?,
        grant_credential_format: o.opt_known(
            "grant_credential_format",
            &CREDENTIAL_FORMATS,
            |k| k,
        )?,
        pending_poll: o.opt_u32("pending_poll")?,
        pending_before: o.opt_u32("pending_before")?.unwrap_or(0),
    })
}

fn read_device_authorization(
    o: &Object,
    time: OffsetDateTime,
) -> Result<DeviceAuthorizationEvent, EventError> {
    Ok(DeviceAuthorizationEvent {
        injected: None,
        time,
        exchange: o.u64("exchange")?,
        host: o.string("host")?,
        endpoint: o.string("endpoint")?,
        client_id: o.opt_string("client_id")?,
        scope: o.opt_string("scope")?,
        status: o.opt("status", "an HTTP status", |v| {
            v.as_u64().and_then(|n| u16::try_from(n).ok())
        })?,
        failed: o.req("failed", "true or false", Value::as_bool)?,
        error: o.opt_string("error")?,
        error_description: o.opt_string("error_description")?,
        error_codes: o.strings("error_codes")?,
        device_code: o.opt_string("device_code")?,
        user_code: o.opt_string("user_code")?,
        verification_uri: o.opt_string("verification_uri")?,
        expires_in: o.opt("expires_in", "a whole number", Value::as_u64)?,
        interval: o.opt("interval", "a whole number", Value::as_u64)?,
        note: o.opt_string("note")?,
    })
}

fn read_token_response(
    o: &Object,
    time: OffsetDateTime,
    attempt: Option<AttemptId>,
) -> Result<TokenResponseEvent, EventError> {
    let decoded = o
        .required("decoded_tokens")?
        .as_array()
        .ok_or_else(|| o.invalid("decoded_tokens", "an array"))?
        .iter()
        .enumerate()
        .map(|(i, d)| {
            read_decoded_token(&Object::new(d, o.field(&format!("decoded_tokens[{i}]")))?)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TokenResponseEvent {
        injected: None,
        time,
        exchange: o.u64("exchange")?,
        attempt,
        host: o.string("host")?,
        client_id: o.opt_string("client_id")?,
        status: o.req("status", "an HTTP status", |v| {
            v.as_u64().and_then(|n| u16::try_from(n).ok())
        })?,
        failed: o.req("failed", "true or false", Value::as_bool)?,
        error: o.opt_string("error")?,
        error_description: o.opt_string("error_description")?,
        error_codes: o.strings("error_codes")?,
        trace_id: o.opt_string("trace_id")?,
        correlation_id: o.opt_string("correlation_id")?,
        tokens: o.strings("tokens")?,
        token_type: o.opt_string("token_type")?,
        scope: o.opt_string("scope")?,
        expires_in: o.opt_string("expires_in")?,
        decoded,
        elapsed: o.millis("elapsed_ms")?,
        grant_type: o.opt_string("grant_type")?,
        pending_poll: o.opt_u32("pending_poll")?,
    })
}

/// `signature_verified` is not read: authlens never verifies a signature, so
/// it is always false.
fn read_decoded_token(o: &Object) -> Result<DecodedToken, EventError> {
    let jwt = match o.opt_string("error")? {
        Some(text) => Err(jwt_error(&text).ok_or_else(|| EventError::Unknown {
            field: o.field("error"),
            value: text,
        })?),
        None => {
            let header = o.object("header")?;
            let claims = o.object("claims")?;
            Ok(Jwt {
                alg: header.opt_string("alg")?,
                kid: header.opt_string("kid")?,
                typ: header.opt_string("typ")?,
                iss: claims.opt_string("iss")?,
                aud: claims.strings("aud")?,
                tid: claims.opt_string("tid")?,
                oid: claims.opt_string("oid")?,
                sub: claims.opt_string("sub")?,
                scp: claims.opt_string("scp")?,
                roles: claims.strings("roles")?,
                exp: claims.opt_time("exp")?,
                iat: claims.opt_time("iat")?,
                nbf: claims.opt_time("nbf")?,
                nonce: claims.opt_string("nonce")?,
            })
        }
    };
    Ok(DecodedToken {
        kind: o.known("token", &TOKEN_KINDS, |k| k)?,
        shown: o.string("fingerprint")?,
        jwt,
    })
}

/// The JWT error whose text this is. Only the text is written, but each
/// error has its own text: trying every error (with the number the text
/// holds, for those that carry one) finds it again.
fn jwt_error(text: &str) -> Option<JwtError> {
    let number = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|digits| !digits.is_empty())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_default();
    [
        JwtError::TooLarge(number),
        JwtError::Encrypted,
        JwtError::PartCount(number),
        JwtError::Base64("header"),
        JwtError::Base64("payload"),
        JwtError::NotJson("header"),
        JwtError::NotJson("payload"),
    ]
    .into_iter()
    .find(|e| e.to_string() == text)
}

fn read_finding(
    o: &Object,
    time: OffsetDateTime,
    attempt: Option<AttemptId>,
) -> Result<Finding, EventError> {
    Ok(Finding {
        injected: None,
        rule: o.known("rule", &Rule::ALL, Rule::id)?,
        severity: o.known("severity", &SEVERITIES, Severity::as_str)?,
        attempt,
        exchange: o.u64("exchange")?,
        field: o.opt_string("field")?,
        message: o.string("message")?,
        fix: o.string("fix")?,
        evidence: o.req("evidence", "an object", |v| v.as_object().cloned())?,
        time,
    })
}

fn read_verdict(
    o: &Object,
    time: OffsetDateTime,
    attempt: Option<AttemptId>,
) -> Result<Verdict, EventError> {
    let count = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
    Ok(Verdict {
        injected: None,
        time,
        attempt,
        host: o.string("host")?,
        client_id: o.opt_string("client_id")?,
        outcome: o.known("outcome", &OUTCOMES, Outcome::as_str)?,
        summary: o.string("summary")?,
        errors: o.req("errors", "a count", count)?,
        warnings: o.req("warnings", "a count", count)?,
        duration: o.millis("duration_ms")?,
    })
}

/// The member of `all` named `name`.
fn one_of<T: Copy>(name: &str, all: &[T], name_of: fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|t| name_of(*t) == name)
}

/// A JSON object being read, with the path of its members for errors.
struct Object<'a> {
    members: &'a Map<String, Value>,
    /// `""` at the top, `decoded_tokens[0].` inside, ….
    prefix: String,
}

impl<'a> Object<'a> {
    fn new(value: &'a Value, path: String) -> Result<Object<'a>, EventError> {
        let members = value.as_object().ok_or_else(|| match path.as_str() {
            "" => EventError::NotObject,
            _ => EventError::Invalid {
                field: path.clone(),
                expected: "an object",
            },
        })?;
        let prefix = if path.is_empty() { path } else { path + "." };
        Ok(Object { members, prefix })
    }

    fn field(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn invalid(&self, key: &str, expected: &'static str) -> EventError {
        EventError::Invalid {
            field: self.field(key),
            expected,
        }
    }

    /// The member; null counts as left out.
    fn member(&self, key: &str) -> Option<&'a Value> {
        self.members.get(key).filter(|v| !v.is_null())
    }

    fn required(&self, key: &str) -> Result<&'a Value, EventError> {
        self.member(key).ok_or_else(|| EventError::Missing {
            field: self.field(key),
        })
    }

    /// The member read by `read`, `None` when it is null or left out.
    fn opt<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, EventError> {
        self.member(key)
            .map(|value| read(value).ok_or_else(|| self.invalid(key, expected)))
            .transpose()
    }

    fn req<T>(
        &self,
        key: &str,
        expected: &'static str,
        read: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<T, EventError> {
        read(self.required(key)?).ok_or_else(|| self.invalid(key, expected))
    }

    fn string(&self, key: &str) -> Result<String, EventError> {
        self.req(key, "a string", |v| v.as_str().map(str::to_owned))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, EventError> {
        self.opt(key, "a string", |v| v.as_str().map(str::to_owned))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>, EventError> {
        self.req(key, "an array of strings", |v| {
            v.as_array()?
                .iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
    }

    fn opt_u32(&self, key: &str) -> Result<Option<u32>, EventError> {
        self.opt(key, "a whole number", |v| {
            v.as_u64().and_then(|n| u32::try_from(n).ok())
        })
    }

    fn u64(&self, key: &str) -> Result<u64, EventError> {
        self.req(key, "a whole number", Value::as_u64)
    }

    fn time(&self, key: &str) -> Result<OffsetDateTime, EventError> {
        self.req(key, "an RFC 3339 time", parse_time)
    }

    fn opt_time(&self, key: &str) -> Result<Option<OffsetDateTime>, EventError> {
        self.opt(key, "an RFC 3339 time", parse_time)
    }

    /// Milliseconds, as [`millis`] writes them.
    fn millis(&self, key: &str) -> Result<Option<Duration>, EventError> {
        Ok(self
            .opt(key, "a number of milliseconds", Value::as_u64)?
            .map(Duration::from_millis))
    }

    fn known<T: Copy>(
        &self,
        key: &str,
        all: &[T],
        name_of: fn(T) -> &'static str,
    ) -> Result<T, EventError> {
        let name = self.string(key)?;
        one_of(&name, all, name_of).ok_or_else(|| EventError::Unknown {
            field: self.field(key),
            value: name,
        })
    }

    fn opt_known<T: Copy>(
        &self,
        key: &str,
        all: &[T],
        name_of: fn(T) -> &'static str,
    ) -> Result<Option<T>, EventError> {
        match self.opt_string(key)? {
            Some(_) => self.known(key, all, name_of).map(Some),
            None => Ok(None),
        }
    }

    fn object(&self, key: &str) -> Result<Object<'a>, EventError> {
        Object::new(self.required(key)?, self.field(key))
    }
}

fn parse_time(value: &Value) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(value.as_str()?, &Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample_finding() -> Event {
        let mut evidence = Map::new();
        evidence.insert("authorize".into(), json!("https://app/cb"));
        evidence.insert("token".into(), json!("https://app/cb/"));
        Event::Finding(Finding {
            injected: None,
            rule: Rule::ParamMismatch,
            severity: Severity::Error,
            attempt: Some(AttemptId(3)),
            exchange: 17,
            field: Some("redirect_uri".into()),
            message: "redirect_uri differs".into(),
            fix: "send the same".into(),
            evidence,
            time: datetime!(2024-05-01 10:02:11.250 UTC),
        })
    }

    #[test]
    fn finding_has_the_documented_shape() {
        let line = to_line(&sample_finding());
        assert!(!line.contains('\n'));
        assert!(
            line.starts_with(r#"{"type":"finding","time":"2024-05-01T10:02:11.25Z","attempt":3,"rule":"param-mismatch","severity":"error","#),
            "{line}"
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "finding");
        assert_eq!(v["time"], "2024-05-01T10:02:11.25Z");
        assert_eq!(v["rule"], "param-mismatch");
        assert_eq!(v["severity"], "error");
        assert_eq!(v["attempt"], 3);
        assert_eq!(v["field"], "redirect_uri");
        assert_eq!(v["message"], "redirect_uri differs");
        assert_eq!(v["fix"], "send the same");
        assert_eq!(v["evidence"]["token"], "https://app/cb/");
    }

    #[test]
    fn every_leg_of_a_sign_in_is_one_parseable_line() {
        use crate::oauth::analyzer::{Analyzer, AnalyzerConfig};
        use crate::oauth::testing::ex;
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        let mut events = analyzer.observe(
            &ex("GET", "https://login.microsoftonline.com/common/oauth2/v2.0/authorize?response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fapp%2Fcb&state=s")
                .build(),
        );
        events.extend(
            analyzer.observe(
                &ex("POST", "https://login.microsoftonline.com/common/login")
                    .at(1.0)
                    .redirect("https://app/cb?code=abc&state=s")
                    .build(),
            ),
        );
        events.extend(analyzer.observe(
            &ex("POST", "https://login.microsoftonline.com/common/oauth2/v2.0/token")
                .at(2.0)
                .form("grant_type=authorization_code&code=abc&client_id=c&redirect_uri=https%3A%2F%2Fapp%2Fcb%2F")
                .json(200, r#"{"access_token":"at","token_type":"Bearer"}"#)
                .build(),
        ));
        let types: Vec<String> = events
            .iter()
            .map(|e| {
                let v: Value = serde_json::from_str(&to_line(e)).unwrap();
                assert!(
                    v["time"]
                        .as_str()
                        .unwrap()
                        .starts_with("2024-05-01T10:00:0")
                );
                assert_eq!(v["attempt"], 1);
                v["type"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(
            types,
            [
                "authorize",
                "code",
                "token",
                "finding",
                "token-response",
                "verdict"
            ]
        );
        let code: Value = to_value(&events[1]);
        assert_eq!(code["code"], "code#ba7816");
        assert_eq!(code["pairing"], "state");
        let token = to_value(&events[2]);
        assert_eq!(token["code_age_ms"], 900);
        assert_eq!(to_value(&events[5])["outcome"], "signed-in");
    }

    #[test]
    fn token_response_carries_decoded_claims_never_the_token() {
        use crate::oauth::analyzer::{Analyzer, AnalyzerConfig};
        use crate::oauth::testing::{ex, jwt};
        let id_token = jwt(&json!({"aud": "app-1", "sub": "s-1", "nonce": "n", "exp": 1714561200}));
        let body = json!({"access_token": "opaque", "id_token": id_token}).to_string();
        let mut analyzer = Analyzer::new(AnalyzerConfig::default());
        let events = analyzer.observe(
            &ex(
                "POST",
                "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            )
            .form("grant_type=authorization_code&code=c&client_id=app-1")
            .json(200, &body)
            .build(),
        );
        let response = events
            .iter()
            .find(|e| e.kind() == "token-response")
            .unwrap();
        let line = to_line(response);
        assert!(!line.contains(&id_token), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        let decoded = &v["decoded_tokens"];
        assert_eq!(decoded.as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(decoded[0]["token"], "id_token");
        assert!(
            decoded[0]["fingerprint"]
                .as_str()
                .unwrap()
                .starts_with("id_token#")
        );
        assert_eq!(decoded[0]["signature_verified"], false);
        assert_eq!(decoded[0]["header"]["alg"], "RS256");
        assert_eq!(decoded[0]["claims"]["aud"], json!(["app-1"]));
        assert_eq!(decoded[0]["claims"]["sub"], "s-1");
        assert_eq!(decoded[0]["claims"]["exp"], "2024-05-01T11:00:00Z");
        assert_eq!(decoded[0]["claims"]["iat"], Value::Null);
    }

    // === reading back ===

    /// One event of each kind with every optional field set.
    fn full_events() -> Vec<Event> {
        let t = datetime!(2024-05-01 10:02:11.250 UTC);
        let s = |text: &str| Some(text.to_owned());
        let claims = Jwt {
            alg: s("RS256"),
            kid: s("k-1"),
            typ: s("JWT"),
            iss: s("https://login.microsoftonline.com/t-1/v2.0"),
            aud: vec!["app-1".into(), "api://x".into()],
            tid: s("t-1"),
            oid: s("o-1"),
            sub: s("s-1"),
            scp: s("User.Read"),
            roles: vec!["Admin".into()],
            exp: Some(datetime!(2024-05-01 11:00:00 UTC)),
            iat: Some(datetime!(2024-05-01 10:00:00 UTC)),
            nbf: Some(datetime!(2024-05-01 09:59:00 +02:00)),
            nonce: s("n-1"),
        };
        let mut evidence = Map::new();
        evidence.insert("code".into(), json!("code#ba7816"));
        evidence.insert(
            "first_redemption".into(),
            json!({"exchange": 4, "time": "2024-05-01T10:02:10Z", "outcome": "tokens issued"}),
        );
        evidence.insert("difference".into(), json!(["trailing slash"]));
        evidence.insert("age_seconds".into(), json!(1.5));
        vec![
            Event::Authorize(AuthorizeEvent {
                injected: None,
                time: t,
                exchange: 1,
                attempt: AttemptId(3),
                host: "contoso.b2clogin.com".into(),
                endpoint: "https://contoso.b2clogin.com/contoso.onmicrosoft.com/b2c_1_signin/oauth2/v2.0/authorize".into(),
                provider: "entra-b2c",
                tenant: s("contoso.onmicrosoft.com"),
                version: Some("v2.0"),
                policy: s("b2c_1_signin"),
                client_id: "c-1".into(),
                redirect_uri: s("https://app.test/callback"),
                response_type: "code id_token".into(),
                response_mode: s("form_post"),
                scope: s("openid profile"),
                state: s("st-1"),
                nonce: s("n-1"),
                pkce_method: s("S256"),
                via: Some("par"),
                via_note: None,
            }),
            Event::Code(CodeEvent {
                injected: None,
                time: t,
                exchange: 2,
                attempt: Some(AttemptId(3)),
                pairing: Pairing::Heuristic,
                host: "contoso.b2clogin.com".into(),
                client_id: s("c-1"),
                mode: "form_post",
                redirect_to: s("https://app.test/callback"),
                code: s("code#ba7816"),
                state: s("st-1"),
                iss: s("https://contoso.b2clogin.com/t-1/v2.0/"),
                error: s("access_denied"),
                error_description: s("AADB2C90118: The user has forgotten their password."),
                error_codes: vec!["AADB2C90118".into()],
                since_authorize: Some(Duration::from_millis(1500)),
            }),
            Event::Token(TokenEvent {
                injected: None,
                time: t,
                exchange: 3,
                attempt: Some(AttemptId(3)),
                host: "contoso.b2clogin.com".into(),
                endpoint: "https://contoso.b2clogin.com/contoso.onmicrosoft.com/b2c_1_signin/oauth2/v2.0/token".into(),
                method: "POST".into(),
                content_type: s("application/x-www-form-urlencoded"),
                client_id: s("c-1"),
                client_auth: vec!["client_secret_basic", "client_secret_post", "client_assertion"],
                grant_type: s("authorization_code"),
                code: s("code#ba7816"),
                redirect_uri: s("https://app.test/callback/"),
                code_verifier: s("code_verifier#13d31e"),
                scope: s("openid"),
                code_age: Some(Duration::from_millis(900)),
                grant_credential: s("refresh_token#4be5ae"),
                grant_credential_format: Some("opaque"),
                pending_poll: Some(2),
                pending_before: 1,
            }),
            Event::TokenResponse(TokenResponseEvent {
                injected: None,
                time: t,
                exchange: 3,
                attempt: Some(AttemptId(3)),
                host: "contoso.b2clogin.com".into(),
                client_id: s("c-1"),
                status: 400,
                failed: true,
                error: s("invalid_grant"),
                error_description: s("AADSTS54005: OAuth2 Authorization code was already redeemed."),
                error_codes: vec!["AADSTS54005".into(), "AADSTS70000".into()],
                trace_id: s("tr-1"),
                correlation_id: s("co-1"),
                tokens: vec!["access_token#7edf2f".into(), "id_token#4be5ae".into()],
                token_type: s("Bearer"),
                scope: s("openid"),
                expires_in: s("3599"),
                decoded: vec![
                    DecodedToken {
                        kind: "id_token",
                        shown: "id_token#4be5ae".into(),
                        jwt: Ok(claims),
                    },
                    DecodedToken {
                        kind: "access_token",
                        shown: "access_token#7edf2f".into(),
                        jwt: Err(JwtError::Encrypted),
                    },
                ],
                elapsed: Some(Duration::from_millis(120)),
                grant_type: s("refresh_token"),
                pending_poll: Some(2),
            }),
            Event::Finding(Finding {
                injected: None,
                rule: Rule::CodeReused,
                severity: Severity::Warning,
                attempt: Some(AttemptId(3)),
                exchange: 3,
                field: s("code"),
                message: "code#ba7816 was already redeemed".into(),
                fix: "Redeem each code once".into(),
                evidence,
                time: t,
            }),
            Event::Verdict(Verdict {
                injected: None,
                time: t,
                attempt: Some(AttemptId(3)),
                host: "contoso.b2clogin.com".into(),
                client_id: s("c-1"),
                outcome: Outcome::Failed,
                summary: "sign-in failed at /token: AADSTS54005".into(),
                errors: 2,
                warnings: 1,
                duration: Some(Duration::from_millis(5100)),
            }),
            Event::DeviceAuthorization(DeviceAuthorizationEvent {
                injected: None,
                time: t,
                exchange: 4,
                host: "login.microsoftonline.com".into(),
                endpoint: "https://login.microsoftonline.com/t-1/oauth2/v2.0/devicecode".into(),
                client_id: s("c-1"),
                scope: s("openid offline_access"),
                status: Some(400),
                failed: true,
                error: s("invalid_client"),
                error_description: s("AADSTS700016: not found"),
                error_codes: vec!["AADSTS700016".into()],
                device_code: s("device_code#0a1b2c"),
                user_code: s("ABCD-EFGH"),
                verification_uri: s("https://microsoft.com/devicelogin"),
                expires_in: Some(900),
                interval: Some(5),
                note: s("no interval"),
            }),
        ]
    }

    /// The same events with every optional field left empty.
    fn sparse_events() -> Vec<Event> {
        full_events()
            .into_iter()
            .map(|e| match e {
                Event::Authorize(e) => Event::Authorize(AuthorizeEvent {
                    tenant: None,
                    version: None,
                    policy: None,
                    redirect_uri: None,
                    response_mode: None,
                    scope: None,
                    state: None,
                    nonce: None,
                    pkce_method: None,
                    ..e
                }),
                Event::Code(e) => Event::Code(CodeEvent {
                    attempt: None,
                    pairing: Pairing::Unpaired,
                    client_id: None,
                    redirect_to: None,
                    code: None,
                    state: None,
                    iss: None,
                    error: None,
                    error_description: None,
                    error_codes: Vec::new(),
                    since_authorize: None,
                    ..e
                }),
                Event::Token(e) => Event::Token(TokenEvent {
                    attempt: None,
                    content_type: None,
                    client_id: None,
                    client_auth: Vec::new(),
                    grant_type: None,
                    code: None,
                    redirect_uri: None,
                    code_verifier: None,
                    scope: None,
                    code_age: None,
                    grant_credential: None,
                    grant_credential_format: None,
                    pending_poll: None,
                    pending_before: 0,
                    ..e
                }),
                Event::DeviceAuthorization(e) => {
                    Event::DeviceAuthorization(DeviceAuthorizationEvent {
                        client_id: None,
                        scope: None,
                        status: None,
                        error: None,
                        error_description: None,
                        error_codes: Vec::new(),
                        device_code: None,
                        user_code: None,
                        verification_uri: None,
                        expires_in: None,
                        interval: None,
                        note: None,
                        ..e
                    })
                }
                Event::TokenResponse(e) => Event::TokenResponse(TokenResponseEvent {
                    attempt: None,
                    client_id: None,
                    error: None,
                    error_description: None,
                    error_codes: Vec::new(),
                    trace_id: None,
                    correlation_id: None,
                    tokens: Vec::new(),
                    token_type: None,
                    scope: None,
                    expires_in: None,
                    decoded: vec![DecodedToken {
                        kind: "id_token",
                        shown: "id_token#4be5ae".into(),
                        jwt: Ok(Jwt::default()),
                    }],
                    elapsed: None,
                    grant_type: None,
                    pending_poll: None,
                    ..e
                }),
                Event::Finding(f) => Event::Finding(Finding {
                    attempt: None,
                    field: None,
                    evidence: Map::new(),
                    ..f
                }),
                Event::Verdict(v) => Event::Verdict(Verdict {
                    attempt: None,
                    client_id: None,
                    duration: None,
                    ..v
                }),
            })
            .collect()
    }

    #[test]
    fn every_event_reads_back_as_it_was_written() {
        for event in full_events().into_iter().chain(sparse_events()) {
            let value = to_value(&event);
            assert_eq!(from_value(&value).unwrap(), event, "{value}");
            assert_eq!(from_line(&to_line(&event)).unwrap(), event);
        }
    }

    #[test]
    fn the_injected_marker_reads_back_and_is_absent_without_a_fault() {
        let injected = Injected {
            fault: "reuse-code".into(),
            note: "injected reuse-code: redeemed code#912f80 first".into(),
        };
        for mut event in full_events() {
            assert!(
                to_value(&event).get("injected").is_none(),
                "no fault, no member"
            );
            event.set_injected(&injected);
            let value = to_value(&event);
            assert_eq!(value["injected"], "reuse-code");
            assert_eq!(from_line(&to_line(&event)).unwrap(), event);
        }
    }

    #[test]
    fn durations_read_back_to_the_millisecond() {
        let Event::Verdict(mut verdict) = full_events().remove(5) else {
            unreachable!()
        };
        verdict.duration = Some(Duration::from_micros(5_100_999));
        let Event::Verdict(read) = from_value(&to_value(&Event::Verdict(verdict))).unwrap() else {
            panic!("not a verdict");
        };
        assert_eq!(read.duration, Some(Duration::from_millis(5100)));
    }

    #[test]
    fn every_jwt_error_reads_back_from_its_text() {
        // Only the text is written; it is enough to tell each error apart.
        for error in [
            JwtError::TooLarge(70_000),
            JwtError::Encrypted,
            JwtError::PartCount(1),
            JwtError::PartCount(4),
            JwtError::Base64("header"),
            JwtError::Base64("payload"),
            JwtError::NotJson("header"),
            JwtError::NotJson("payload"),
        ] {
            assert_eq!(jwt_error(&error.to_string()), Some(error));
        }
        assert_eq!(jwt_error("the token is haunted"), None);
    }

    #[test]
    fn every_leg_of_an_analysed_sign_in_reads_back() {
        use crate::oauth::analyzer::{Analyzer, AnalyzerConfig};
        use crate::oauth::testing::{ex, jwt};
        let id_token = jwt(&json!({"aud": "c", "sub": "s-1", "nonce": "n", "exp": 1714561200}));
        for show_secrets in [false, true] {
            let mut analyzer = Analyzer::new(AnalyzerConfig {
                show_secrets,
                ..AnalyzerConfig::default()
            });
            let mut events = analyzer.observe(
                &ex("GET", "https://login.microsoftonline.com/t1/oauth2/v2.0/authorize?response_type=code&client_id=c&redirect_uri=https%3A%2F%2Fapp%2Fcb&state=s&nonce=n&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256")
                    .build(),
            );
            events.extend(
                analyzer.observe(
                    &ex("POST", "https://login.microsoftonline.com/t1/login")
                        .at(1.0)
                        .redirect("https://app/cb?code=abc&state=s")
                        .build(),
                ),
            );
            for at in [2.0, 3.0] {
                events.extend(analyzer.observe(
                    &ex("POST", "https://login.microsoftonline.com/common/oauth2/token")
                        .at(at)
                        .form("grant_type=authorization_code&code=abc&client_id=c&client_secret=s3cret&redirect_uri=https%3A%2F%2Fapp%2Fcb%2F&code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
                        .json(200, &json!({"access_token": "opaque", "id_token": id_token, "refresh_token": "rt"}).to_string())
                        .build(),
                ));
            }
            assert!(events.iter().filter_map(Event::as_finding).count() >= 3);
            for event in &events {
                assert_eq!(&from_line(&to_line(event)).unwrap(), event);
            }
        }
    }

    #[test]
    fn a_line_that_is_not_an_event_says_which_member_is_wrong() {
        let error = |line: &str| from_line(line).unwrap_err().to_string();
        assert!(error("not json").starts_with("not JSON: "));
        assert_eq!(error("[1]"), "not a JSON object");
        assert_eq!(
            error(r#"{"time":"2024-05-01T10:00:00Z"}"#),
            r#""type" is missing"#
        );
        // Edits of a token response.
        let line = |edit: &dyn Fn(&mut Value)| {
            let mut value = to_value(&full_events()[3]);
            edit(&mut value);
            error(&value.to_string())
        };
        assert_eq!(
            line(&|v| v["type"] = json!("login")),
            r#""type" is "login", a value authlens does not write"#
        );
        assert_eq!(
            line(&|v| v["time"] = json!("yesterday")),
            r#""time" is not an RFC 3339 time"#
        );
        assert_eq!(
            line(&|v| v["attempt"] = json!("3")),
            r#""attempt" is not a whole number"#
        );
        assert_eq!(
            line(&|v| {
                v.as_object_mut().unwrap().remove("exchange");
            }),
            r#""exchange" is missing"#
        );
        assert_eq!(
            line(&|v| v["status"] = json!(70_000)),
            r#""status" is not an HTTP status"#
        );
        assert_eq!(
            line(&|v| v["decoded_tokens"][0]["claims"]["exp"] = json!(1714561200)),
            r#""decoded_tokens[0].claims.exp" is not an RFC 3339 time"#
        );
        assert_eq!(
            line(&|v| v["decoded_tokens"][1]["token"] = json!("refresh_token")),
            r#""decoded_tokens[1].token" is "refresh_token", a value authlens does not write"#
        );
        let mut authorize = to_value(&full_events()[0]);
        authorize["provider"] = json!("okta2");
        assert_eq!(
            from_value(&authorize).unwrap_err().to_string(),
            r#""provider" is "okta2", a value authlens does not write"#
        );
        authorize["attempt"] = Value::Null;
        authorize["provider"] = json!("okta");
        assert_eq!(
            from_value(&authorize).unwrap_err().to_string(),
            r#""attempt" is missing"#
        );
        let mut token = to_value(&full_events()[2]);
        token["client_auth"] = json!(["client_secret_post", "private_key_jwt"]);
        assert_eq!(
            from_value(&token).unwrap_err().to_string(),
            r#""client_auth[1]" is "private_key_jwt", a value authlens does not write"#
        );
    }
}
