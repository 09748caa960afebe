//! `--json`: one JSON object per event, one per line.
//!
//! Pure: builds the values, the caller writes and flushes each line. Every
//! object has `"type"` (`authorize`, `code`, `token`, `token-response`,
//! `finding`, `verdict`), an RFC 3339 `"time"` and `"attempt"` (a number, or
//! null when the leg could not be paired). Durations are in milliseconds.

use std::time::Duration;

use crate::oauth::event::rfc3339;
use serde_json::{Map, Value, json};

use crate::oauth::event::{
    AuthorizeEvent, CodeEvent, DecodedToken, Event, Finding, TokenEvent, TokenResponseEvent,
    Verdict,
};

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
    };
    if let Value::Object(fields) = fields {
        object.extend(fields);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::event::{AttemptId, Rule, Severity};
    use time::macros::datetime;

    fn sample_finding() -> Event {
        let mut evidence = Map::new();
        evidence.insert("authorize".into(), json!("https://app/cb"));
        evidence.insert("token".into(), json!("https://app/cb/"));
        Event::Finding(Finding {
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
}
