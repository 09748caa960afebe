//! What authlens verified on one code redemption, check by check: the code's
//! history, the endpoint and parameters against /authorize, the request's
//! shape and PKCE. When the IdP refuses a redemption that none of authlens's
//! findings explains, `idp-error` lists these instead of guessing, and drops
//! the catalogue causes they rule out.
//!
//! A check is "fine" only when its rule really ran on this redemption and
//! said nothing: without the /authorize request, the pairing checks were not
//! done, and they say so. Reads the rules' inputs and findings; never makes a
//! finding itself.

use super::{CodeRedemption, Draft, code};
use crate::oauth::event::{Rule, clock, human_duration};
use crate::oauth::message::BodyFormat;
use crate::oauth::secret::is_fingerprint;

/// One check authlens made (or could not make) on a redemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `code issued and seen`, `first use`, `age`, `endpoint`,
    /// `redirect_uri`, `client_id`, `scope`, `resource`, `request shape`, `PKCE`.
    pub name: &'static str,
    /// The rules whose silence the check stands for.
    pub rules: &'static [Rule],
    pub result: CheckResult,
}

/// What a check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Checked and found fine: what was seen (`identical to /authorize`).
    Fine(String),
    /// A finding of this redemption is about it.
    Flagged,
    /// Could not be checked, and why.
    NotChecked(String),
}

impl Check {
    fn new(name: &'static str, rules: &'static [Rule], result: CheckResult) -> Check {
        Check {
            name,
            rules,
            result,
        }
    }

    pub fn is_fine(&self) -> bool {
        matches!(self.result, CheckResult::Fine(_))
    }
}

const CODE_SEEN: &[Rule] = &[Rule::TokenWithoutAuthorize];
const FIRST_USE: &[Rule] = &[Rule::CodeReused];
const AGE: &[Rule] = &[Rule::CodeExpired, Rule::CodeNearExpiry];
const ENDPOINT: &[Rule] = &[Rule::EndpointMismatch];
const PARAM: &[Rule] = &[Rule::ParamMismatch];
const SHAPE: &[Rule] = &[Rule::MalformedTokenRequest];
const PKCE: &[Rule] = &[
    Rule::PkceMismatch,
    Rule::PkceMissingVerifier,
    Rule::PkceUnexpectedVerifier,
    Rule::PkceInvalidVerifier,
];

/// Every check of `r`, in report order; `found` are the redemption's findings.
pub(super) fn redemption_checks(r: &CodeRedemption<'_>, found: &[Draft]) -> Vec<Check> {
    use CheckResult::{Fine, NotChecked};
    // A finding of one of `rules` (about `field`, when given) flags the check.
    let flagged = |rules: &[Rule], field: Option<&str>| {
        found
            .iter()
            .any(|d| rules.contains(&d.rule) && field.is_none_or(|f| d.field.as_deref() == Some(f)))
    };
    let judge = |name, rules: &'static [Rule], field: Option<&str>, fine: String| {
        let result = if flagged(rules, field) {
            CheckResult::Flagged
        } else {
            Fine(fine)
        };
        Check::new(name, rules, result)
    };
    let mut out = Vec::new();
    // Why a parameter not found may still have been sent.
    let unread = match r.request.body_format {
        _ if r.request.params_known() => None,
        BodyFormat::NotRecorded => Some("the request body was not recorded"),
        _ => Some("authlens read only part of the request body"),
    };

    // The code's history.
    let record = r
        .record
        .filter(|rec| rec.issued_at.is_some() || rec.first_redemption.is_some());
    if r.grant.code.is_none() {
        let why = || NotChecked(unread.unwrap_or("the request carries no code").to_owned());
        out.push(Check::new("code issued and seen", CODE_SEEN, why()));
        out.push(Check::new("first use", FIRST_USE, why()));
        out.push(Check::new("age", AGE, why()));
    } else {
        let issued = record.and_then(|rec| rec.issued_at);
        out.push(match issued {
            Some(at) => judge(
                "code issued and seen",
                CODE_SEEN,
                None,
                format!(
                    "issued at {} by an authorization response authlens saw{}",
                    clock(at),
                    if r.authorize.is_some() {
                        ", paired with its /authorize request"
                    } else {
                        ""
                    }
                ),
            ),
            None if flagged(CODE_SEEN, None) => {
                Check::new("code issued and seen", CODE_SEEN, CheckResult::Flagged)
            }
            None => Check::new(
                "code issued and seen",
                CODE_SEEN,
                NotChecked("the code was first seen at /token, never issued".to_owned()),
            ),
        });
        let earlier = r.record.map_or(0, |rec| rec.refused_as_malformed);
        let first = match earlier {
            0 => "no earlier redemption of this code went through authlens".to_owned(),
            n => format!(
                "no earlier redemption used this code ({n} earlier request(s) refused as malformed did not)"
            ),
        };
        out.push(match issued {
            Some(_) => judge("first use", FIRST_USE, None, first),
            // authlens missed the issue, so it may have missed earlier
            // redemptions too.
            None => Check::new(
                "first use",
                FIRST_USE,
                NotChecked(
                    "the code was never seen issued, so earlier redemptions may have been missed"
                        .to_owned(),
                ),
            ),
        });
        out.push(match (issued, record) {
            (Some(at), Some(rec)) => {
                let (lifetime, source) = code::lifetime(rec, r.code_lifetime);
                let age: std::time::Duration = (r.time - at).try_into().unwrap_or_default();
                judge(
                    "age",
                    AGE,
                    None,
                    format!(
                        "redeemed {} after issue, within its {} lifetime ({source})",
                        human_duration(age),
                        human_duration(lifetime)
                    ),
                )
            }
            _ => Check::new(
                "age",
                AGE,
                NotChecked("the code was never seen issued, so its age is unknown".to_owned()),
            ),
        });
    }

    // Against /authorize.
    match r.authorize {
        None => {
            let why = "authlens saw no /authorize request for this code";
            for (name, rules) in [
                ("endpoint", ENDPOINT),
                ("redirect_uri", PARAM),
                ("client_id", PARAM),
                ("scope", PARAM),
            ] {
                out.push(Check::new(name, rules, NotChecked(why.to_owned())));
            }
        }
        Some(a) => {
            // Absent from a request whose parameters authlens could not
            // read (a push it did not see): unknown, not absent.
            let absent = if a.params_known {
                "not sent at /authorize"
            } else {
                "the /authorize parameters are unknown (see its note)"
            };
            let t = &r.request.endpoint;
            let mut same = vec![t.host.clone()];
            same.extend(t.tenant.as_ref().map(|x| format!("tenant {x}")));
            same.extend(t.version.map(|v| v.as_str().to_owned()));
            same.extend(t.policy.as_ref().map(|p| format!("policy {p}")));
            out.push(judge(
                "endpoint",
                ENDPOINT,
                None,
                format!("{} as at /authorize", same.join(", ")),
            ));

            out.push(
                match (a.redirect_uri.as_deref(), r.grant.redirect_uri.as_deref()) {
                    (Some(_), Some(_)) => judge(
                        "redirect_uri",
                        PARAM,
                        Some("redirect_uri"),
                        "identical to /authorize".to_owned(),
                    ),
                    (_, None) if unread.is_some() => Check::new(
                        "redirect_uri",
                        PARAM,
                        NotChecked(unread.unwrap_or_default().to_owned()),
                    ),
                    (None, None) if !a.params_known => {
                        Check::new("redirect_uri", PARAM, NotChecked(absent.to_owned()))
                    }
                    (None, None) => Check::new(
                        "redirect_uri",
                        PARAM,
                        Fine("sent at neither leg".to_owned()),
                    ),
                    (Some(_), None) => Check::new(
                        "redirect_uri",
                        PARAM,
                        NotChecked("not sent at /token".to_owned()),
                    ),
                    (None, Some(_)) => {
                        Check::new("redirect_uri", PARAM, NotChecked(absent.to_owned()))
                    }
                },
            );
            out.push(match r.request.client_id() {
                Some(id) => judge(
                    "client_id",
                    PARAM,
                    Some("client_id"),
                    format!("identical to /authorize ({id})"),
                ),
                None => Check::new(
                    "client_id",
                    PARAM,
                    NotChecked(unread.unwrap_or("not sent at /token").to_owned()),
                ),
            });
            out.push(match (a.scope.as_deref(), r.request.param("scope")) {
                (_, None) if unread.is_some() => Check::new(
                    "scope",
                    PARAM,
                    NotChecked(unread.unwrap_or_default().to_owned()),
                ),
                (_, None) => Check::new(
                    "scope",
                    PARAM,
                    Fine("not sent at /token (optional)".to_owned()),
                ),
                (Some(_), Some(_)) => judge(
                    "scope",
                    PARAM,
                    Some("scope"),
                    "within what /authorize asked for".to_owned(),
                ),
                (None, Some(_)) => Check::new("scope", PARAM, NotChecked(absent.to_owned())),
            });
            if let (Some(_), Some(_)) = (a.resource.as_deref(), r.request.param("resource")) {
                out.push(judge(
                    "resource",
                    PARAM,
                    Some("resource"),
                    "identical to /authorize".to_owned(),
                ));
            }
        }
    }

    // The request itself.
    out.push(if let Some(why) = unread {
        Check::new("request shape", SHAPE, NotChecked(why.to_owned()))
    } else {
        let mut shape = "POST with a form body, no parameter repeated or in the query string, the required parameters present".to_owned();
        let auth = r.request.client_auth_methods();
        if !auth.is_empty() {
            shape.push_str(&format!(", client authentication {}", auth.join(" + ")));
        }
        judge("request shape", SHAPE, None, shape)
    });

    let verifier = r.grant.code_verifier.as_deref();
    let challenge = r.authorize.and_then(|a| a.code_challenge.as_deref());
    let method = r
        .authorize
        .and_then(|a| a.code_challenge_method.as_deref())
        .unwrap_or("plain");
    out.push(match (r.authorize, challenge, verifier) {
        _ if flagged(PKCE, None) => Check::new("PKCE", PKCE, CheckResult::Flagged),
        (None, _, _) => Check::new(
            "PKCE",
            PKCE,
            NotChecked("authlens saw no /authorize request for this code".to_owned()),
        ),
        (Some(_), _, None) if unread.is_some() => Check::new(
            "PKCE",
            PKCE,
            NotChecked(unread.unwrap_or_default().to_owned()),
        ),
        (Some(a), None, _) if !a.params_known => Check::new(
            "PKCE",
            PKCE,
            NotChecked("the /authorize parameters are unknown (see its note)".to_owned()),
        ),
        (Some(_), None, None) => {
            Check::new("PKCE", PKCE, Fine("not used at either leg".to_owned()))
        }
        (Some(_), Some(_), Some(v)) if is_fingerprint("code_verifier", v) && method == "S256" => {
            Check::new(
                "PKCE",
                PKCE,
                NotChecked("the code_verifier was redacted in this recording".to_owned()),
            )
        }
        (Some(_), _, _) => Check::new(
            "PKCE",
            PKCE,
            Fine(format!("code_verifier matches the {method} code_challenge")),
        ),
    });
    out
}

/// True when `rule` ran on the redemption and found nothing: a check that
/// covers it is fine, and none that covers it was flagged or skipped.
pub(super) fn cleared(checks: &[Check], rule: &str) -> bool {
    let covering: Vec<&Check> = checks
        .iter()
        .filter(|c| c.rules.iter().any(|r| r.id() == rule))
        .collect();
    !covering.is_empty() && covering.iter().all(|c| c.is_fine())
}
