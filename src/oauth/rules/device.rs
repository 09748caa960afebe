//! Device-code polls (RFC 8628, OAUTH.md §7): `device-poll-too-fast`
//! (closer than the `interval`, plus 5 s after every `slow_down`),
//! `code-expired` (after `expires_in`) and `code-reused` (polled again after
//! tokens), all on the field `device_code` or `interval`.
//! `authorization_pending` is the normal answer while the user signs in and
//! is never a finding. It reads the store's record and never changes it.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::Draft;
use crate::oauth::event::{Rule, clock, human_duration, rfc3339};
use crate::oauth::lifecycle::DeviceRecord;

/// Polls this much early are still on time: max(1 s, 10% of the interval).
///
/// The gap is measured at the proxy between the times two polls were sent,
/// not where the app's timer runs. A fixed-rate poller (`setInterval`, a
/// periodic timer) keeps the interval on average, but each tick can be late
/// by a busy event loop, a GC pause or a slow connection set-up, which makes
/// the next gap short by as much; recordings round times too. A second
/// covers that for the usual 5 s interval, 10% for long ones; a poller
/// faster than that is really too fast. When the IdP itself answers
/// `slow_down`, that is reported whatever the gap ([`super::device_slow_down`]).
fn tolerance(interval: Duration) -> Duration {
    Duration::from_secs(1).max(interval / 10)
}

/// The findings on one poll of a device code, given what was known before it.
pub(super) fn poll(shown: &str, record: &DeviceRecord, now: OffsetDateTime) -> Vec<Draft> {
    let mut out = Vec::new();
    if let Some(redeemed) = &record.redeemed {
        out.push(
            Draft::new(
                Rule::CodeReused,
                Some("device_code"),
                format!(
                    "{shown} was already answered with tokens at {} (exchange {}); a device code is single-use",
                    clock(redeemed.time),
                    redeemed.exchange
                ),
                "Stop polling once the token endpoint answers with tokens, and start a new device authorization for a new sign-in.",
                json!({
                    "device_code": shown,
                    "first_redemption": {
                        "exchange": redeemed.exchange,
                        "time": rfc3339(redeemed.time),
                        "outcome": redeemed.outcome.describe(),
                    },
                }),
            )
            .gist(format!("device code already redeemed at {}", clock(redeemed.time))),
        );
        return out;
    }
    if let (Some(issued), Some(lifetime)) = (record.issued_at, record.expires_in) {
        let age: Duration = (now - issued).try_into().unwrap_or_default();
        if age > lifetime {
            out.push(
                Draft::new(
                    Rule::CodeExpired,
                    Some("device_code"),
                    format!(
                        "{shown} polled {} after it was issued; the device authorization response gave it {} (expires_in)",
                        human_duration(age),
                        human_duration(lifetime)
                    ),
                    "Stop polling after expires_in and tell the user the code expired; start a new device authorization to show a new user code.",
                    json!({
                        "device_code": shown,
                        "issued_at": rfc3339(issued),
                        "polled_at": rfc3339(now),
                        "age_seconds": age.as_secs_f64(),
                        "expires_in": lifetime.as_secs(),
                    }),
                )
                .gist(format!("device code was {} old, expires_in {}", human_duration(age), human_duration(lifetime))),
            );
        }
    }
    // The interval is known only from a device authorization response seen.
    if let (Some(_), Some(last)) = (record.issued_at, record.last_poll) {
        let gap: Duration = (now - last).try_into().unwrap_or_default();
        let interval = record.current_interval();
        if gap.saturating_add(tolerance(interval)) < interval {
            out.push(too_fast(shown, record, Some(gap), false));
        }
    }
    out
}

/// `device-poll-too-fast`: this poll came `gap` after the previous one,
/// under the interval; `slow_down` when the IdP answered so (then `gap` may
/// be unknown: the previous poll was not seen).
pub(super) fn too_fast(
    shown: &str,
    record: &DeviceRecord,
    gap: Option<Duration>,
    slow_down: bool,
) -> Draft {
    let interval = record.current_interval();
    let source = match (record.interval_given, record.slow_downs) {
        (true, 0) => "the device authorization response's interval".to_owned(),
        (false, 0) => "the default interval (the response gave none)".to_owned(),
        (given, n) => format!(
            "{} plus 5 s for each of {n} slow_down answer{}",
            if given {
                "the response's interval"
            } else {
                "the default 5 s"
            },
            if n == 1 { "" } else { "s" }
        ),
    };
    let when = match gap {
        Some(gap) => format!("{} after the previous one", human_duration(gap)),
        None => "before the interval had passed".to_owned(),
    };
    let mut message = format!(
        "{shown} polled {when}; polls must be at least {} apart ({source})",
        human_duration(interval)
    );
    if slow_down {
        message.push_str("; the IdP answered slow_down, so every later poll must wait 5 s more");
    }
    Draft::new(
        Rule::DevicePollTooFast,
        Some("interval"),
        message,
        "Wait `interval` seconds between polls (5 s when the response gives none) and add 5 s for good after every slow_down answer.",
        json!({
            "device_code": shown,
            "gap_seconds": gap.map(|g| g.as_secs_f64()),
            "interval_seconds": interval.as_secs(),
            "interval_given": record.interval_given,
            "slow_downs": record.slow_downs,
            "slow_down_answered": slow_down,
        }),
    )
    .gist(format!("polled faster than every {}", human_duration(interval)))
}
