//! What is known of the code redeemed: `token-without-authorize` (never
//! seen issued), `code-reused` (single use) and `code-expired` /
//! `code-near-expiry` (OAUTH.md §3). It reads the store's record of the code
//! and never changes it: recording the redemption is the analyzer's job.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::Draft;
use crate::oauth::attempt::{CodeRecord, Redemption};
use crate::oauth::event::{Rule, clock, human_duration, rfc3339};

/// The code's findings: `shown` is the code as it may be displayed, `record`
/// what the store knew before this redemption, `lifetime` the
/// `--code-lifetime` override of the provider's default.
pub(super) fn history(
    shown: &str,
    record: Option<&CodeRecord>,
    now: OffsetDateTime,
    lifetime: Option<Duration>,
) -> Vec<Draft> {
    // A code first seen at /token whose earlier redemptions were all refused
    // as malformed is still one authlens never saw issued.
    let Some(record) = record.filter(|r| r.issued_at.is_some() || r.first_redemption.is_some())
    else {
        return vec![token_without_authorize(shown)];
    };
    let mut out = Vec::new();
    if let Some(first) = &record.first_redemption {
        out.push(code_reused(shown, first, record.redemptions, now));
    }
    if let Some(issued) = record.issued_at {
        let (lifetime, source) = self::lifetime(record, lifetime);
        out.extend(code_age(shown, issued, now, lifetime, &source));
    }
    out
}

/// The code's lifetime and where it comes from (`--code-lifetime`, or
/// `Microsoft Entra ID default`): the `--code-lifetime` override, else the
/// issuing provider's default.
pub(super) fn lifetime(record: &CodeRecord, lifetime: Option<Duration>) -> (Duration, String) {
    match lifetime {
        Some(l) => (l, "--code-lifetime".to_owned()),
        None => (
            record.provider.default_code_lifetime(),
            format!("{} default", record.provider),
        ),
    }
}

/// `code-expired` / `code-near-expiry`.
fn code_age(
    code_shown: &str,
    issued_at: OffsetDateTime,
    redeemed_at: OffsetDateTime,
    lifetime: Duration,
    source_text: &str,
) -> Option<Draft> {
    let age: Duration = (redeemed_at - issued_at).try_into().unwrap_or_default();
    let evidence = json!({
        "code": code_shown,
        "issued_at": rfc3339(issued_at),
        "redeemed_at": rfc3339(redeemed_at),
        "age_seconds": age.as_secs_f64(),
        "lifetime_seconds": lifetime.as_secs(),
        "lifetime_source": source_text,
    });
    let (age_h, life_h) = (human_duration(age), human_duration(lifetime));
    if age > lifetime {
        Some(
            Draft::new(
                Rule::CodeExpired,
                Some("code"),
                format!("{code_shown} redeemed {age_h} after it was issued; codes live about {life_h} ({source_text})"),
                "Redeem the code as soon as the callback receives it: don't queue it, keep it across restarts or wait for user input first.",
                evidence,
            )
            .gist(format!("code was {age_h} old, lifetime {life_h}")),
        )
    } else if age.as_secs_f64() > lifetime.as_secs_f64() * 0.8 {
        let pct = (age.as_secs_f64() / lifetime.as_secs_f64() * 100.0).round();
        Some(
            Draft::new(
                Rule::CodeNearExpiry,
                Some("code"),
                format!("{code_shown} redeemed {age_h} after it was issued, {pct}% of its {life_h} lifetime"),
                "Redeem the code immediately in the callback; something between the redirect and the token request is slow.",
                evidence,
            )
            .gist(format!("code was {age_h} old, close to its {life_h} lifetime")),
        )
    } else {
        None
    }
}

/// `code-reused`: evidence names the first redemption, its time and outcome.
fn code_reused(code_shown: &str, first: &Redemption, count: u32, now: OffsetDateTime) -> Draft {
    let since: Duration = (now - first.time).try_into().unwrap_or_default();
    Draft::new(
        Rule::CodeReused,
        Some("code"),
        format!(
            "{code_shown} was already redeemed at {} (exchange {}, {}), {} earlier; a code is single-use",
            clock(first.time),
            first.exchange,
            first.outcome.describe(),
            human_duration(since)
        ),
        "Redeem each code once: guard the callback against reloads, back button and double submits, don't retry a token request that timed out, and let only one handler (middleware or your code) redeem it.",
        json!({
            "code": code_shown,
            "first_redemption": {
                "exchange": first.exchange,
                "time": rfc3339(first.time),
                "outcome": first.outcome.describe(),
            },
            "redemption": count + 1,
        }),
    )
    .gist(format!("code first redeemed at {}", clock(first.time)))
}

/// `token-without-authorize`.
fn token_without_authorize(code_shown: &str) -> Draft {
    Draft::new(
        Rule::TokenWithoutAuthorize,
        Some("code"),
        format!("{code_shown} was never seen issued by an authorization response"),
        "If the sign-in started before authlens was running, start it again; otherwise make sure the browser uses the proxy too (and trusts its CA). A code must come from this client's own /authorize redirect, not from another app, an old URL or a test fixture.",
        json!({ "code": code_shown }),
    )
    .gist(format!("{code_shown} was never seen issued"))
}
