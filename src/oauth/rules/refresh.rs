//! Refresh tokens (OAUTH.md §7): `refresh-token-reused` (a token presented
//! after the IdP rotated it), `refresh-token-expired` (older than a lifetime
//! authlens knows: Entra SPA tokens, 24 h from issue, not sliding) and the
//! refresh's `param-mismatch` (another client, or scopes beyond the grant).
//! It reads the store's record of the token and never changes it.

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

use super::Draft;
use crate::oauth::event::{Rule, Severity, clock, human_duration, rfc3339};
use crate::oauth::lifecycle::RefreshRecord;
use crate::oauth::provider::Provider;

/// Two redemptions of one token closer than this look like a race (two tabs,
/// two workers, a retry), not like a token kept and replayed later.
const RACE_WINDOW: Duration = Duration::from_secs(5);

/// Scopes that shape the id_token and the refresh token, granted with any resource.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// `refresh-token-reused`: presented again after an earlier redemption was
/// answered with another refresh token.
pub(super) fn reused(shown: &str, record: &RefreshRecord, now: OffsetDateTime) -> Option<Draft> {
    let rotated = record.rotated_by.as_ref()?;
    // Exchanges arrive in the order they complete: this request may have
    // been sent before the rotating one, or while it was still waiting.
    let signed = (now - rotated.time).as_seconds_f64();
    let apart = Duration::try_from((now - rotated.time).abs()).unwrap_or_default();
    let concurrent = now < rotated.answered.unwrap_or(rotated.time);
    let racing = concurrent || apart < RACE_WINDOW;
    let mut message = format!(
        "{shown} was already redeemed at {} (exchange {}, {}) and the IdP rotated it: that answer carried a new refresh token, so this one is dead",
        clock(rotated.time),
        rotated.exchange,
        rotated.outcome.describe(),
    );
    if concurrent {
        message.push_str(&format!(
            "; this refresh was sent concurrently with exchange {} ({} {} it, before its answer arrived): two refreshes racing (two tabs, two workers, or a retry)",
            rotated.exchange,
            human_duration(apart),
            if signed < 0.0 { "before" } else { "after" },
        ));
    } else if racing {
        message.push_str(&format!(
            "; the two refreshes are {} apart: it looks like two refreshes racing (two tabs, two workers, or a retry)",
            human_duration(apart)
        ));
    }
    let fix = if racing {
        "Refresh once and share the result: serialise refreshes behind one lock or promise (one tab or worker refreshes, the others wait for its tokens), and never retry a refresh that may have reached the IdP."
    } else {
        "Store the refresh token of every refresh answer and use only the newest: under rotation each refresh token works once, and presenting an old one may revoke the whole family."
    };
    Some(
        Draft::new(
            Rule::RefreshTokenReused,
            Some("refresh_token"),
            message,
            fix,
            json!({
                "refresh_token": shown,
                "earlier_redemption": {
                    "exchange": rotated.exchange,
                    "time": rfc3339(rotated.time),
                    "outcome": rotated.outcome.describe(),
                },
                // Negative: this request was sent before the rotating one.
                "seconds_apart": signed,
                "concurrent": concurrent,
                "looks_like_race": racing,
            }),
        )
        .gist(format!(
            "refresh token already rotated at {}{}",
            clock(rotated.time),
            match (concurrent, racing) {
                (true, _) => format!(" (sent concurrently with exchange {})", rotated.exchange),
                (false, true) => " (two refreshes racing)".to_owned(),
                (false, false) => String::new(),
            }
        )),
    )
}

/// `refresh-token-expired`: an Entra SPA refresh token (issued to a
/// redemption that carried `Origin`) older than its fixed `spa_lifetime`;
/// past 80% of it, a warning that it is near expiry.
pub(super) fn expired(
    shown: &str,
    record: &RefreshRecord,
    now: OffsetDateTime,
    spa_lifetime: Duration,
) -> Option<Draft> {
    if !record.spa || !record.provider.is_entra() {
        return None;
    }
    let issued = record.family_issued_at?;
    let age: Duration = (now - issued).try_into().unwrap_or_default();
    let (age_h, life_h) = (human_duration(age), human_duration(spa_lifetime));
    let evidence = json!({
        "refresh_token": shown,
        "family_issued_at": rfc3339(issued),
        "presented_at": rfc3339(now),
        "age_seconds": age.as_secs_f64(),
        "lifetime_seconds": spa_lifetime.as_secs(),
        "lifetime_source": "Entra SPA refresh tokens (issued to a redemption with Origin), fixed from the sign-in",
    });
    if age > spa_lifetime {
        Some(
            Draft::new(
                Rule::RefreshTokenExpired,
                Some("refresh_token"),
                format!(
                    "{shown} is a browser (SPA) refresh token {age_h} after its sign-in; Entra SPA refresh tokens live {life_h} from the sign-in and do not slide with refreshes"
                ),
                "A SPA must sign in again (interactively or with a hidden iframe / silent SSO) once a day: catch the error (AADSTS700084) and start a new sign-in instead of retrying the refresh.",
                evidence,
            )
            .gist(format!("SPA refresh token is {age_h} old, lifetime {life_h}")),
        )
    } else if age.as_secs_f64() > spa_lifetime.as_secs_f64() * 0.8 {
        let pct = (age.as_secs_f64() / spa_lifetime.as_secs_f64() * 100.0).round();
        Some(
            Draft::new(
                Rule::RefreshTokenExpired,
                Some("refresh_token"),
                format!(
                    "{shown} is near expiry: a browser (SPA) refresh token {age_h} after its sign-in, {pct}% of its fixed {life_h} lifetime"
                ),
                "Plan a new sign-in before the SPA's refresh tokens run out (24 h after the sign-in): refreshing does not extend them.",
                evidence,
            )
            .severity(Severity::Warning)
            .gist(format!("SPA refresh token near its {life_h} lifetime")),
        )
    } else {
        None
    }
}

/// `param-mismatch` on a refresh: another client than the one the token
/// was issued to (`client_id`), or scopes beyond those granted (`scope`).
/// The analyzer drops the `client_id` one when the IdP issued tokens (a
/// family of client IDs, Microsoft FOCI, shares refresh tokens).
pub(super) fn param_mismatch(
    shown: &str,
    record: &RefreshRecord,
    client_id: Option<&str>,
    scope: Option<&str>,
) -> Vec<Draft> {
    let mut out = Vec::new();
    if let (Some(issued_to), Some(sent)) = (record.client_id.as_deref(), client_id)
        && issued_to != sent
    {
        out.push(
            Draft::new(
                Rule::ParamMismatch,
                Some("client_id"),
                format!(
                    "{shown} was issued to client `{issued_to}`, but client `{sent}` presents it; a refresh token is bound to its client"
                ),
                "Refresh with the client that signed in: keep the refresh token with the client_id (and credentials) that obtained it.",
                json!({ "refresh_token": shown, "issued_to": issued_to, "token": sent }),
            )
            .gist(format!("refresh token issued to `{issued_to}`, presented by `{sent}`")),
        );
    }
    if let (Some(granted), Some(asked)) = (record.granted_scope.as_deref(), scope) {
        let beyond = scopes_beyond(granted, asked, record.provider);
        if !beyond.is_empty() {
            let list = beyond.join(" ");
            out.push(
                Draft::new(
                    Rule::ParamMismatch,
                    Some("scope"),
                    format!(
                        "the refresh asks for `{list}`, beyond what {shown} was granted (`{granted}`); a refresh may narrow scopes, never widen them"
                    ),
                    "Ask a refresh for the scopes of the sign-in or fewer; to get more, send the user through /authorize again (incremental consent).",
                    json!({ "refresh_token": shown, "granted": granted, "token": asked, "beyond": beyond }),
                )
                .gist(format!("refresh asks for `{list}` beyond the grant")),
            );
        }
    }
    out
}

/// The scopes of `asked` not in `granted`. OIDC scopes are always allowed;
/// on Entra a refresh token serves every resource the user consented to,
/// so a scope of another resource than those granted is not judged (only
/// one of a granted resource, or a bare Graph name, is).
fn scopes_beyond(granted: &str, asked: &str, provider: Provider) -> Vec<String> {
    let normal = |s: &str| {
        s.strip_prefix("https://graph.microsoft.com/")
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    let resource = |s: &str| s.rsplit_once('/').map(|(r, _)| r.to_ascii_lowercase());
    let granted_scopes: Vec<String> = granted.split_whitespace().map(normal).collect();
    let granted_resources: Vec<String> = granted
        .split_whitespace()
        .map(normal)
        .filter_map(|s| resource(&s))
        .collect();
    let entra = provider.is_entra();
    asked
        .split_whitespace()
        .filter(|s| !OIDC_SCOPES.contains(&s.to_ascii_lowercase().as_str()))
        .filter(|s| !granted_scopes.contains(&normal(s)))
        .filter(|s| {
            if !entra {
                return true;
            }
            // `{resource}/.default` asks for what is consented, whatever it is.
            if s.ends_with(".default") {
                return false;
            }
            match resource(&normal(s)) {
                // `.default` of a granted resource asks for nothing new.
                Some(r) if granted_resources.contains(&r) => !normal(s).ends_with("/.default"),
                Some(_) => false,
                None => true,
            }
        })
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_beyond_the_grant() {
        let granted = "openid profile offline_access User.Read";
        assert!(scopes_beyond(granted, "User.Read openid", Provider::Entra).is_empty());
        assert!(
            scopes_beyond(
                granted,
                "https://graph.microsoft.com/User.Read",
                Provider::Entra
            )
            .is_empty()
        );
        assert_eq!(
            scopes_beyond(granted, "User.Read Mail.Send", Provider::Entra),
            ["Mail.Send"]
        );
        // Another resource: an Entra refresh token may serve it.
        assert!(scopes_beyond(granted, "api://other/access", Provider::Entra).is_empty());
        assert!(
            scopes_beyond(
                granted,
                "https://graph.microsoft.com/.default openid offline_access",
                Provider::Entra
            )
            .is_empty()
        );
        assert_eq!(
            scopes_beyond("read", "read write", Provider::Generic),
            ["write"]
        );
    }
}
