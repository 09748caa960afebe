//! The faults a tester can ask for (`--fault NAME[=VALUE][@SCOPE]`): their
//! stable names, one-line descriptions and examples, parsing, and the
//! conflicts between them. Pure: nothing here touches a request.
//!
//! Scope syntax, after `@`, comma-separated:
//! `client=ID` (one client_id), `host=HOST` (one IdP host), `times=N` (the
//! next N sign-ins only), and for `idp-error` only, `authorize` (answer the
//! authorize leg instead of the redemption). For example
//! `reuse-code@client=abc,times=1` or `idp-error=interaction_required@authorize`.

use std::fmt;
use std::time::Duration;

use crate::oauth::catalogue;

/// One fault as asked for on the command line: what, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub scope: Scope,
    /// The text it was given as, for the banner and messages.
    pub spec: String,
}

/// What a fault does (see [`CATALOGUE`] for the words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    ReuseCode,
    /// Hold for this long, or the code's lifetime when `None`.
    ExpireCode(Option<Duration>),
    RedirectMismatch,
    WrongVerifier,
    DropVerifier,
    UnknownCode,
    WrongTenant,
    WrongVersion,
    JsonBody,
    GetToken,
    DropParam(String),
    DuplicateParam(String),
    StripOrigin,
    AddOrigin,
    /// Answer for the IdP with this catalogue code.
    IdpError {
        code: String,
        at_authorize: bool,
    },
    SlowIdp(Duration),
    /// Answer 502, or reset the connection (`idp-down=reset`).
    IdpDown {
        reset: bool,
    },
}

/// Which sign-ins a fault applies to. Empty: every sign-in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub client: Option<String>,
    pub host: Option<String>,
    /// The next N sign-ins only.
    pub times: Option<u32>,
}

/// A fault's entry in `authlens faults`.
pub struct Described {
    pub name: &'static str,
    /// `""`, `=DURATION`, `=NAME`, `[=DURATION]`…
    pub value: &'static str,
    pub description: &'static str,
    pub example: &'static str,
}

/// Every fault, in the order `authlens faults` lists them. The names are a
/// stable interface (tests outside this project use them): never rename one.
pub const CATALOGUE: &[Described] = &[
    Described {
        name: "reuse-code",
        value: "",
        description: "redeem a copy of the app's code first (result discarded, tokens never shown), then forward the app's request: the IdP says the code was already redeemed (AADSTS54005)",
        example: "--fault reuse-code",
    },
    Described {
        name: "expire-code",
        value: "[=DURATION]",
        description: "hold the app's redemption until the code has expired (DURATION, else --code-lifetime, else the provider's lifetime), then forward it (AADSTS70008)",
        example: "--fault expire-code  or  --fault expire-code=90s",
    },
    Described {
        name: "redirect-mismatch",
        value: "",
        description: "add or remove a trailing slash on redirect_uri at /token (AADSTS500112)",
        example: "--fault redirect-mismatch",
    },
    Described {
        name: "wrong-verifier",
        value: "",
        description: "replace the PKCE code_verifier with another valid one (AADSTS501481)",
        example: "--fault wrong-verifier",
    },
    Described {
        name: "drop-verifier",
        value: "",
        description: "remove the PKCE code_verifier from the redemption (invalid_grant)",
        example: "--fault drop-verifier",
    },
    Described {
        name: "unknown-code",
        value: "",
        description: "replace the code with one the IdP never issued (AADSTS70000 / invalid_grant)",
        example: "--fault unknown-code",
    },
    Described {
        name: "wrong-tenant",
        value: "",
        description: "(Entra) redeem at another tenant segment: the tenant -> common, common/organizations -> consumers (AADSTS700005)",
        example: "--fault wrong-tenant",
    },
    Described {
        name: "wrong-version",
        value: "",
        description: "(Entra) redeem at the other protocol version: v2.0 <-> v1 token endpoint (AADSTS70000 family)",
        example: "--fault wrong-version",
    },
    Described {
        name: "json-body",
        value: "",
        description: "send the redemption as a JSON body instead of a form (AADSTS900144)",
        example: "--fault json-body",
    },
    Described {
        name: "get-token",
        value: "",
        description: "send the redemption as a GET with its parameters in the query string (AADSTS900561)",
        example: "--fault get-token",
    },
    Described {
        name: "drop-param",
        value: "=NAME",
        description: "remove a parameter from the redemption (AADSTS900144: body must contain NAME)",
        example: "--fault drop-param=grant_type",
    },
    Described {
        name: "duplicate-param",
        value: "=NAME",
        description: "send a parameter of the redemption twice (AADSTS9002313 / invalid_request)",
        example: "--fault duplicate-param=code",
    },
    Described {
        name: "strip-origin",
        value: "",
        description: "(SPA) remove the Origin header from the redemption (AADSTS9002327)",
        example: "--fault strip-origin@client=SPA_CLIENT_ID",
    },
    Described {
        name: "add-origin",
        value: "",
        description: "add an Origin header (the redirect URI's origin) to the redemption (AADSTS9002326)",
        example: "--fault add-origin",
    },
    Described {
        name: "idp-error",
        value: "=CODE[@authorize]",
        description: "answer the app's next redemption (or, with @authorize, its authorize leg) with the IdP's own error for CODE, without contacting the IdP",
        example: "--fault idp-error=AADSTS50076  or  --fault idp-error=interaction_required@authorize",
    },
    Described {
        name: "slow-idp",
        value: "=DURATION",
        description: "delay the IdP's answer to the redemption by DURATION (the app's timeout path)",
        example: "--fault slow-idp=30s",
    },
    Described {
        name: "idp-down",
        value: "[=reset]",
        description: "answer the redemption with 502 Bad Gateway, or reset the connection with =reset (the app's network-error path)",
        example: "--fault idp-down  or  --fault idp-down=reset",
    },
];

/// Why a `--fault` cannot be used. The message names the valid faults.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultError(String);

/// `reuse-code, expire-code, …`: every valid name.
pub fn names() -> String {
    CATALOGUE
        .iter()
        .map(|d| d.name)
        .collect::<Vec<_>>()
        .join(", ")
}

// === impl Fault ===

impl Fault {
    /// Parses `NAME[=VALUE][@SCOPE]` (see the module docs).
    pub fn parse(spec: &str) -> Result<Fault, FaultError> {
        let text = spec.trim();
        let (head, scope_text) = match text.split_once('@') {
            Some((head, scope)) => (head, Some(scope)),
            None => (text, None),
        };
        let (name, value) = match head.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (head.trim(), None),
        };
        let bad = |why: String| FaultError(format!("--fault {text:?}: {why}"));
        let Some(described) = CATALOGUE.iter().find(|d| d.name == name) else {
            return Err(FaultError(format!(
                "--fault {text:?}: unknown fault {name:?}; valid faults: {} (see `authlens faults`)",
                names()
            )));
        };
        let needs = |what: &str| bad(format!("{name} needs a value: {name}={what}"));
        let takes_none = |v: Option<&str>| match v {
            None => Ok(()),
            Some(v) => Err(bad(format!("{name} takes no value (got {v:?})"))),
        };
        let duration = |v: &str| {
            crate::config::parse_duration(v)
                .map_err(|e| bad(format!("{name}: bad duration: {e}")))
                .and_then(|d| {
                    if d.is_zero() {
                        Err(bad(format!("{name}: the duration must be above zero")))
                    } else {
                        Ok(d)
                    }
                })
        };
        let param_name = |v: Option<&str>| match v {
            None | Some("") => Err(needs("NAME")),
            Some(v) if v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                Ok(v.to_string())
            }
            Some(v) => Err(bad(format!(
                "{name}: {v:?} is not a parameter name (letters, digits, _)"
            ))),
        };
        let mut at_authorize = false;
        let scope = match scope_text {
            Some(s) => Scope::parse(s, name == "idp-error", &mut at_authorize).map_err(bad)?,
            None => Scope::default(),
        };
        let kind = match described.name {
            "reuse-code" => takes_none(value).map(|()| FaultKind::ReuseCode)?,
            "expire-code" => FaultKind::ExpireCode(value.map(duration).transpose()?),
            "redirect-mismatch" => takes_none(value).map(|()| FaultKind::RedirectMismatch)?,
            "wrong-verifier" => takes_none(value).map(|()| FaultKind::WrongVerifier)?,
            "drop-verifier" => takes_none(value).map(|()| FaultKind::DropVerifier)?,
            "unknown-code" => takes_none(value).map(|()| FaultKind::UnknownCode)?,
            "wrong-tenant" => takes_none(value).map(|()| FaultKind::WrongTenant)?,
            "wrong-version" => takes_none(value).map(|()| FaultKind::WrongVersion)?,
            "json-body" => takes_none(value).map(|()| FaultKind::JsonBody)?,
            "get-token" => takes_none(value).map(|()| FaultKind::GetToken)?,
            "drop-param" => FaultKind::DropParam(param_name(value)?),
            "duplicate-param" => FaultKind::DuplicateParam(param_name(value)?),
            "strip-origin" => takes_none(value).map(|()| FaultKind::StripOrigin)?,
            "add-origin" => takes_none(value).map(|()| FaultKind::AddOrigin)?,
            "idp-error" => {
                let code = value
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| needs("CODE"))?;
                let entry = catalogue::lookup(code).ok_or_else(|| {
                    bad(format!(
                        "idp-error: {code:?} is not in the error catalogue (`authlens explain {code}`); give a code such as AADSTS54005, AADSTS50076, invalid_grant or interaction_required"
                    ))
                })?;
                FaultKind::IdpError {
                    code: entry.code.clone(),
                    at_authorize,
                }
            }
            "slow-idp" => FaultKind::SlowIdp(duration(value.ok_or_else(|| needs("DURATION"))?)?),
            "idp-down" => match value {
                None => FaultKind::IdpDown { reset: false },
                Some("reset") => FaultKind::IdpDown { reset: true },
                Some(v) => {
                    return Err(bad(format!(
                        "idp-down takes no value or =reset (got {v:?})"
                    )));
                }
            },
            other => unreachable!("{other} is in the catalogue but not parsed"),
        };
        Ok(Fault {
            kind,
            scope,
            spec: text.to_string(),
        })
    }

    /// The stable name (`reuse-code`).
    pub fn name(&self) -> &'static str {
        match &self.kind {
            FaultKind::ReuseCode => "reuse-code",
            FaultKind::ExpireCode(_) => "expire-code",
            FaultKind::RedirectMismatch => "redirect-mismatch",
            FaultKind::WrongVerifier => "wrong-verifier",
            FaultKind::DropVerifier => "drop-verifier",
            FaultKind::UnknownCode => "unknown-code",
            FaultKind::WrongTenant => "wrong-tenant",
            FaultKind::WrongVersion => "wrong-version",
            FaultKind::JsonBody => "json-body",
            FaultKind::GetToken => "get-token",
            FaultKind::DropParam(_) => "drop-param",
            FaultKind::DuplicateParam(_) => "duplicate-param",
            FaultKind::StripOrigin => "strip-origin",
            FaultKind::AddOrigin => "add-origin",
            FaultKind::IdpError { .. } => "idp-error",
            FaultKind::SlowIdp(_) => "slow-idp",
            FaultKind::IdpDown { .. } => "idp-down",
        }
    }

    /// True for the one fault that acts on the authorize leg.
    pub fn at_authorize(&self) -> bool {
        matches!(
            self.kind,
            FaultKind::IdpError {
                at_authorize: true,
                ..
            }
        )
    }

    /// True when the fault answers for the IdP (it is never contacted).
    fn answers(&self) -> bool {
        matches!(
            self.kind,
            FaultKind::IdpError { .. } | FaultKind::IdpDown { .. }
        )
    }

    /// What part of the redemption the fault changes, for conflicts.
    fn touches(&self) -> Vec<String> {
        let params = |names: &[&str]| names.iter().map(|n| format!("the {n} parameter")).collect();
        match &self.kind {
            FaultKind::ReuseCode | FaultKind::ExpireCode(_) | FaultKind::UnknownCode => {
                params(&["code"])
            }
            FaultKind::RedirectMismatch => params(&["redirect_uri"]),
            FaultKind::WrongVerifier | FaultKind::DropVerifier => params(&["code_verifier"]),
            FaultKind::DropParam(n) | FaultKind::DuplicateParam(n) => params(&[n.as_str()]),
            FaultKind::JsonBody | FaultKind::GetToken => vec!["how the parameters are sent".into()],
            FaultKind::StripOrigin | FaultKind::AddOrigin => vec!["the Origin header".into()],
            FaultKind::WrongTenant => vec!["the tenant segment".into()],
            FaultKind::WrongVersion => vec!["the protocol version".into()],
            FaultKind::SlowIdp(_) => vec!["the timing".into()],
            FaultKind::IdpError { .. } | FaultKind::IdpDown { .. } => Vec::new(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

// === impl Scope ===

impl Scope {
    fn parse(text: &str, idp_error: bool, at_authorize: &mut bool) -> Result<Scope, String> {
        let mut scope = Scope::default();
        for item in text.split(',').map(str::trim) {
            match item.split_once('=') {
                None if item == "authorize" && idp_error => *at_authorize = true,
                None if item == "authorize" => {
                    return Err("@authorize applies to idp-error only".into());
                }
                Some(("client", v)) if !v.trim().is_empty() => {
                    scope.client = Some(v.trim().to_string());
                }
                Some(("host", v)) if !v.trim().is_empty() => {
                    scope.host = Some(v.trim().trim_end_matches('.').to_ascii_lowercase());
                }
                Some(("times", v)) => match v.trim().parse::<u32>() {
                    Ok(n) if n > 0 => scope.times = Some(n),
                    _ => return Err(format!("times={v}: give a whole number above zero")),
                },
                _ => {
                    return Err(format!(
                        "bad scope {item:?}: use client=ID, host=HOST, times=N{} separated by commas",
                        if idp_error { " or authorize" } else { "" }
                    ));
                }
            }
        }
        Ok(scope)
    }

    /// True when a request for `client` at `host` is in this scope.
    pub fn covers(&self, client: Option<&str>, host: &str) -> bool {
        self.client.as_deref().is_none_or(|c| client == Some(c))
            && self
                .host
                .as_deref()
                .is_none_or(|h| h.eq_ignore_ascii_case(host))
    }

    /// True when one request could be in both scopes.
    fn overlaps(&self, other: &Scope) -> bool {
        let same = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => true,
        };
        same(&self.client, &other.client) && same(&self.host, &other.host)
    }

    /// ` (client abc, host h, next 2 sign-ins)`, or nothing.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(c) = &self.client {
            parts.push(format!("client {c}"));
        }
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        match self.times {
            Some(1) => parts.push("next sign-in only".into()),
            Some(n) => parts.push(format!("next {n} sign-ins")),
            None => {}
        }
        if parts.is_empty() {
            "every sign-in".into()
        } else {
            parts.join(", ")
        }
    }
}

/// Refuses faults that would fight over the same request, with the reason.
pub fn check_conflicts(faults: &[Fault]) -> Result<(), FaultError> {
    for (i, a) in faults.iter().enumerate() {
        for b in &faults[i + 1..] {
            if a.at_authorize() != b.at_authorize() || !a.scope.overlaps(&b.scope) {
                continue;
            }
            let refuse = |why: String| {
                Err(FaultError(format!(
                    "--fault {a} and --fault {b} conflict: {why}; scope them to different clients or hosts (@client=ID, @host=HOST) or drop one"
                )))
            };
            if a.name() == b.name() {
                return refuse("the same fault is given twice for the same sign-ins".into());
            }
            if a.answers() || b.answers() {
                let answering = if a.answers() { a } else { b };
                return refuse(format!(
                    "{} answers for the IdP, so the other fault would never reach it",
                    answering.name()
                ));
            }
            let theirs = b.touches();
            if let Some(both) = a.touches().into_iter().find(|t| theirs.contains(t)) {
                return refuse(format!("both change {both}"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogued_fault_parses_from_its_example() {
        for d in CATALOGUE {
            let example = d.example.split("  or  ").next().unwrap();
            let spec = example
                .strip_prefix("--fault ")
                .unwrap()
                .split(' ')
                .next()
                .unwrap();
            let fault = Fault::parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(fault.name(), d.name);
        }
    }

    #[test]
    fn values_and_scopes_read_naturally() {
        let f = Fault::parse("reuse-code@client=abc,host=Login.Example.com,times=2").unwrap();
        assert_eq!(f.kind, FaultKind::ReuseCode);
        assert_eq!(f.scope.client.as_deref(), Some("abc"));
        assert_eq!(f.scope.host.as_deref(), Some("login.example.com"));
        assert_eq!(f.scope.times, Some(2));
        assert!(f.scope.covers(Some("abc"), "LOGIN.example.com"));
        assert!(!f.scope.covers(Some("xyz"), "login.example.com"));
        assert!(!f.scope.covers(None, "login.example.com"));

        let f = Fault::parse("idp-error=interaction_required@authorize,times=1").unwrap();
        assert!(f.at_authorize());
        assert_eq!(f.scope.times, Some(1));
        let f = Fault::parse("idp-error=54005").unwrap();
        assert_eq!(
            f.kind,
            FaultKind::IdpError {
                code: "AADSTS54005".into(),
                at_authorize: false
            }
        );
        assert_eq!(
            Fault::parse("expire-code=90s").unwrap().kind,
            FaultKind::ExpireCode(Some(Duration::from_secs(90)))
        );
        assert_eq!(
            Fault::parse("drop-param=grant_type").unwrap().kind,
            FaultKind::DropParam("grant_type".into())
        );
    }

    #[test]
    fn bad_input_says_what_is_valid() {
        let e = Fault::parse("reuse-cod").unwrap_err().to_string();
        assert!(
            e.contains("unknown fault") && e.contains("reuse-code, expire-code"),
            "{e}"
        );
        for bad in [
            "reuse-code=1",
            "slow-idp",
            "slow-idp=fast",
            "slow-idp=0s",
            "drop-param",
            "drop-param=a b",
            "idp-error",
            "idp-error=AADSTS1",
            "reuse-code@authorize",
            "reuse-code@times=0",
            "reuse-code@colour=red",
            "reuse-code@client=",
            "idp-down=maybe",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn conflicts_are_refused_with_a_reason() {
        let parse = |specs: &[&str]| -> Vec<Fault> {
            specs.iter().map(|s| Fault::parse(s).unwrap()).collect()
        };
        let e = check_conflicts(&parse(&["drop-verifier", "wrong-verifier"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("code_verifier"), "{e}");
        let e = check_conflicts(&parse(&["idp-down", "reuse-code"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("answers for the IdP"), "{e}");
        assert!(check_conflicts(&parse(&["reuse-code", "reuse-code"])).is_err());
        assert!(check_conflicts(&parse(&["json-body", "get-token"])).is_err());
        assert!(check_conflicts(&parse(&["drop-param=code", "unknown-code"])).is_err());
        // Compatible, or apart.
        for ok in [
            &["wrong-tenant", "wrong-version", "slow-idp=1s"][..],
            &["drop-verifier@client=a", "wrong-verifier@client=b"],
            &["idp-error=interaction_required@authorize", "reuse-code"],
            &["redirect-mismatch", "strip-origin", "json-body"],
        ] {
            assert_eq!(check_conflicts(&parse(ok)), Ok(()), "{ok:?}");
        }
    }
}
