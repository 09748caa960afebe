//! OAuth-aware fault injection (`--fault`): makes a sign-in fail on purpose
//! (a reused or expired code, a wrong verifier, an IdP error…) so a tester
//! can see how the app copes. The IdP gives its real answer and the
//! analysis reports it as usual, marked as injected.
//!
//! The injector plugs into the proxy's interceptor hook: it reads requests
//! with the pure `oauth` parsers and marks every exchange it changed; the
//! proxy knows nothing of it. It never touches a request that is not a code
//! redemption (or, for `idp-error=…@authorize`, an authorization request),
//! and never a `--passthrough` host (those are never intercepted).

pub mod answer;
pub mod fault;
pub mod rewrite;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, header};

use crate::config::Timeouts;
use crate::exchange::{CapturedBody, InterventionKind, RequestRecord};
use crate::oauth::message::{AuthorizeRequest, Grant, TokenRequest};
use crate::oauth::provider::KnownEndpoints;
use crate::oauth::secret::SecretPolicy;
use crate::proxy::{Body, BoxFuture, Buffered, InterceptContext, Interceptor, Verdict};
pub use fault::{CATALOGUE, Fault, FaultError, FaultKind, Scope, check_conflicts};
use rewrite::Redemption;

/// The largest request body read to look for a redemption; larger ones
/// are not redemptions and go through untouched.
const FORM_LIMIT: usize = 64 * 1024;

/// How much longer than the code's lifetime `expire-code` holds, so the
/// code is past it when the IdP checks.
const EXPIRY_MARGIN: Duration = Duration::from_secs(1);

/// The longest code lifetime among the providers authlens knows (Entra,
/// GitHub and the RFC's 10 minutes).
const LONGEST_PROVIDER_LIFETIME: Duration = Duration::from_secs(600);

/// Room left after a hold before the idle timeout could close the
/// connection.
const HOLD_SLACK: Duration = Duration::from_secs(30);

/// The fault injector: the faults asked for, each with its remaining turns.
pub struct FaultInjector {
    faults: Vec<Active>,
    /// `--code-lifetime`, for `expire-code` without a duration.
    code_lifetime: Option<Duration>,
    secrets: SecretPolicy,
}

struct Active {
    fault: Fault,
    /// Sign-ins left (`times=N`); `None`: every sign-in.
    turns: Option<AtomicU32>,
    /// Set once the fault has said that it could not apply, or that it is
    /// used up, so the log says it once.
    told_cannot: AtomicBool,
    told_used_up: AtomicBool,
    /// Switched off live (the web view's faults panel): skipped until on.
    off: AtomicBool,
}

impl Active {
    /// Takes one turn; false when none is left.
    fn take_turn(&self) -> bool {
        let Some(turns) = &self.turns else {
            return true;
        };
        let taken = turns
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if !taken && !self.told_used_up.swap(true, Ordering::Relaxed) {
            tracing::info!(
                "fault {} has had its {} sign-in(s); requests go through unchanged from now on",
                self.fault,
                self.fault.scope.times.unwrap_or(0)
            );
        }
        taken
    }

    /// Gives back a turn taken for a request it could not apply to.
    fn give_back(&self) {
        if let Some(turns) = &self.turns {
            turns.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn cannot_apply(&self, why: &str) {
        self.give_back();
        if !self.told_cannot.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "fault {} cannot apply: {why}; the request goes through unchanged (said once)",
                self.fault.name()
            );
        }
    }
}

/// What the injector did to one request, for its mark.
#[derive(Default)]
struct Applied {
    labels: Vec<&'static str>,
    notes: Vec<String>,
    rewritten: bool,
    /// The request was held back (or sent after a copy): marked held, so
    /// the analysis judges it at the time it went on.
    held: bool,
}

impl Applied {
    fn add(&mut self, fault: &Fault, note: String) {
        self.labels.push(fault.name());
        self.notes
            .push(format!("injected {}: {note}", fault.name()));
    }

    fn mark(&self, ctx: &InterceptContext) {
        if self.labels.is_empty() {
            return;
        }
        let kind = if self.held || !self.rewritten {
            InterventionKind::Held
        } else {
            InterventionKind::Rewritten
        };
        ctx.mark(kind, self.labels.join("+"), self.notes.join("; "));
    }
}

// === impl FaultInjector ===

impl FaultInjector {
    /// The injector for `faults`, refused when two of them conflict.
    pub fn new(
        faults: Vec<Fault>,
        code_lifetime: Option<Duration>,
        show_secrets: bool,
    ) -> Result<FaultInjector, FaultError> {
        check_conflicts(&faults)?;
        Ok(FaultInjector {
            faults: faults
                .into_iter()
                .map(|fault| Active {
                    turns: fault.scope.times.map(AtomicU32::new),
                    fault,
                    told_cannot: AtomicBool::new(false),
                    told_used_up: AtomicBool::new(false),
                    off: AtomicBool::new(false),
                })
                .collect(),
            code_lifetime,
            secrets: SecretPolicy { show_secrets },
        })
    }

    /// The longest a request may be held (`expire-code`, `slow-idp`), when
    /// a fault holds: `expire-code` without a duration holds the provider's
    /// code lifetime, at most 10 minutes, unless `--code-lifetime` says more.
    pub fn longest_hold(&self) -> Option<Duration> {
        self.faults
            .iter()
            .filter_map(|a| match &a.fault.kind {
                FaultKind::ExpireCode(Some(d)) | FaultKind::SlowIdp(d) => Some(*d),
                FaultKind::ExpireCode(None) => Some(
                    self.code_lifetime
                        .unwrap_or(Duration::ZERO)
                        .max(LONGEST_PROVIDER_LIFETIME),
                ),
                _ => None,
            })
            .max()
            .map(|d| d + EXPIRY_MARGIN)
    }

    /// Raises the proxy's idle timeout above the longest hold: during a
    /// hold no byte moves on the client's connection, and the proxy closes
    /// a connection idle that long (the response-head timeout does not
    /// count the hold; the idle one would). Call before starting the proxy.
    pub fn fit_timeouts(&self, timeouts: &mut Timeouts) {
        if let Some(hold) = self.longest_hold() {
            timeouts.idle = timeouts.idle.max(hold + HOLD_SLACK);
        }
    }

    /// One line per active fault, for the start-up banner.
    pub fn describe(&self) -> Vec<String> {
        self.faults
            .iter()
            .map(|a| format!("{} ({})", a.fault, a.fault.scope.describe()))
            .collect()
    }

    /// Each fault as the banner describes it, and whether it is on.
    pub fn switches(&self) -> Vec<(String, bool)> {
        self.describe()
            .into_iter()
            .zip(&self.faults)
            .map(|(text, a)| (text, !a.off.load(Ordering::Relaxed)))
            .collect()
    }

    /// Switches the `index`th fault on or off for the requests that come
    /// from now on; false when there is no such fault.
    pub fn switch(&self, index: usize, on: bool) -> bool {
        match self.faults.get(index) {
            Some(a) => {
                a.off.store(!on, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }

    fn token_faults(&self) -> impl Iterator<Item = &Active> {
        self.faults
            .iter()
            .filter(|a| !a.fault.at_authorize() && !a.off.load(Ordering::Relaxed))
    }

    fn authorize_faults(&self) -> impl Iterator<Item = &Active> {
        self.faults
            .iter()
            .filter(|a| a.fault.at_authorize() && !a.off.load(Ordering::Relaxed))
    }

    /// The faults for a request of `client` to `host`, each with a turn taken.
    fn choose<'a>(
        &self,
        candidates: impl Iterator<Item = &'a Active>,
        client: Option<&str>,
        host: &str,
    ) -> Vec<&'a Active> {
        candidates
            .filter(|a| a.fault.scope.covers(client, host))
            .filter(|a| a.take_turn())
            .collect()
    }

    // === the redemption ===

    async fn redemption(
        &self,
        head: http::request::Parts,
        body: Body,
        ctx: &InterceptContext,
    ) -> Verdict {
        let bytes = match body.into_bytes(FORM_LIMIT).await {
            Ok(Buffered::Bytes(bytes)) => bytes,
            Ok(Buffered::TooLarge(body)) => {
                return Verdict::Forward(Request::from_parts(head, body));
            }
            // The client's upload broke: nothing could be sent anyway.
            Err(e) => {
                ctx.mark(
                    InterventionKind::Dropped,
                    "client-upload",
                    format!("the client's upload broke while authlens read it ({e}); nothing was sent, no fault applied"),
                );
                return Verdict::Drop;
            }
        };
        let record = RequestRecord {
            method: head.method.clone(),
            uri: head.uri.clone(),
            version: head.version,
            headers: head.headers.clone(),
            body: CapturedBody::complete(bytes.clone()),
        };
        let untouched =
            |head, bytes| Verdict::Forward(Request::from_parts(head, Body::full(bytes)));
        let Some(token) = TokenRequest::parse(&record, &KnownEndpoints::default()) else {
            return untouched(head, bytes);
        };
        let Some(Grant::AuthorizationCode(grant)) = &token.grant else {
            return untouched(head, bytes);
        };
        let host = head.uri.host().unwrap_or_default().to_ascii_lowercase();
        let chosen = self.choose(self.token_faults(), token.client_id(), &host);
        if chosen.is_empty() {
            return untouched(head, bytes);
        }
        let code = grant.code.clone().unwrap_or_default();
        let code_shown = self.secrets.show("code", &code);

        // Faults that answer for the IdP (conflicts keep them alone).
        if let Some(active) = chosen.iter().find(|a| {
            matches!(
                a.fault.kind,
                FaultKind::IdpError { .. } | FaultKind::IdpDown { .. }
            )
        }) {
            return self.answer_redemption(active, head, bytes, &host, &code_shown, ctx);
        }

        let Ok(text) = std::str::from_utf8(&bytes) else {
            for active in &chosen {
                active.cannot_apply("the body is not text");
            }
            return untouched(head, bytes);
        };
        let mut r = Redemption::new(
            head.method.clone(),
            head.uri.clone(),
            head.headers.clone(),
            text,
        );
        let mut applied = Applied::default();
        let mut holds = Vec::new();
        // Parameter edits first, then the way they travel.
        let mut ordered = chosen.clone();
        ordered.sort_by_key(|a| matches!(a.fault.kind, FaultKind::JsonBody | FaultKind::GetToken));
        for active in ordered {
            let edit = match &active.fault.kind {
                FaultKind::RedirectMismatch => r.redirect_mismatch(),
                FaultKind::WrongVerifier => r.wrong_verifier(&self.secrets),
                FaultKind::DropVerifier => r.drop_param("code_verifier"),
                FaultKind::UnknownCode => r.unknown_code(&self.secrets),
                FaultKind::WrongTenant => r.wrong_tenant(),
                FaultKind::WrongVersion => r.wrong_version(),
                FaultKind::JsonBody => r.json_body(),
                FaultKind::GetToken => r.get_token(),
                FaultKind::DropParam(name) => r.drop_param(name),
                FaultKind::DuplicateParam(name) => r.duplicate_param(name),
                FaultKind::StripOrigin => r.strip_origin(),
                FaultKind::AddOrigin => r.add_origin(),
                FaultKind::ReuseCode | FaultKind::ExpireCode(_) | FaultKind::SlowIdp(_) => {
                    if code.is_empty() && !matches!(active.fault.kind, FaultKind::SlowIdp(_)) {
                        active.cannot_apply("the redemption sends no code");
                    } else {
                        holds.push(active);
                    }
                    continue;
                }
                FaultKind::IdpError { .. } | FaultKind::IdpDown { .. } => continue,
            };
            match edit {
                Ok(note) => {
                    applied.rewritten = true;
                    applied.add(&active.fault, note);
                }
                Err(why) => active.cannot_apply(&why),
            }
        }

        let mut head = head;
        head.method = r.method.clone();
        head.uri = r.uri.clone();
        head.headers = r.headers.clone();
        let body = if applied.rewritten {
            Bytes::from(r.body())
        } else {
            bytes
        };

        applied.held = !holds.is_empty();
        for active in holds {
            match &active.fault.kind {
                FaultKind::ReuseCode => {
                    let note = self.redeem_first(&head, &body, &code_shown, ctx).await;
                    applied.add(&active.fault, note);
                }
                FaultKind::ExpireCode(hold) => {
                    let lifetime = hold
                        .or(self.code_lifetime)
                        .unwrap_or_else(|| token.endpoint.provider.default_code_lifetime());
                    let wait = lifetime + EXPIRY_MARGIN;
                    let note = format!(
                        "held the redemption of {code_shown} for {} so the code is past its lifetime ({}), then forwarded it",
                        crate::oauth::event::human_duration(wait),
                        crate::oauth::event::human_duration(lifetime)
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => applied.add(&active.fault, note),
                        _ = ctx.shutdown().cancelled() => {
                            applied.add(&active.fault, format!("authlens stopped while holding the redemption of {code_shown}; it was not sent"));
                            applied.mark(ctx);
                            return Verdict::Answer(answer::stopping().map(Body::full));
                        }
                    }
                }
                FaultKind::SlowIdp(delay) => {
                    tokio::select! {
                        _ = tokio::time::sleep(*delay) => {}
                        _ = ctx.shutdown().cancelled() => {}
                    }
                    applied.add(
                        &active.fault,
                        format!(
                            "held the redemption for {} before sending it to the IdP",
                            crate::oauth::event::human_duration(*delay)
                        ),
                    );
                }
                _ => {}
            }
        }
        applied.mark(ctx);
        Verdict::Forward(Request::from_parts(head, Body::full(body)))
    }

    /// `reuse-code`: redeems a copy first; its answer (tokens included) is
    /// read and dropped here, never shown. Returns the note.
    async fn redeem_first(
        &self,
        head: &http::request::Parts,
        body: &Bytes,
        code_shown: &str,
        ctx: &InterceptContext,
    ) -> String {
        let mut copy = Request::new(Body::full(body.clone()));
        *copy.method_mut() = head.method.clone();
        *copy.uri_mut() = head.uri.clone();
        *copy.headers_mut() = head.headers.clone();
        let note = format!(
            "a copy of the app's redemption of {code_shown}, sent by authlens first (--fault reuse-code); its answer was discarded"
        );
        match ctx.send_upstream(copy, "reuse-code", &note).await {
            Ok(response) => format!(
                "redeemed {code_shown} first (the IdP answered {}; tokens discarded), then forwarded the app's request",
                response.status().as_u16()
            ),
            Err(e) => format!(
                "tried to redeem {code_shown} first but could not ({e}), then forwarded the app's request"
            ),
        }
    }

    fn answer_redemption(
        &self,
        active: &Active,
        head: http::request::Parts,
        bytes: Bytes,
        host: &str,
        code_shown: &str,
        ctx: &InterceptContext,
    ) -> Verdict {
        let mut applied = Applied::default();
        let verdict = match &active.fault.kind {
            FaultKind::IdpError { code, .. } => {
                let stamp = answer::Stamp::new(correlation_id(&head.headers));
                let Some(response) = answer::token_error(code, host, &stamp) else {
                    active.cannot_apply(&format!("{code} has no catalogue entry"));
                    return Verdict::Forward(Request::from_parts(head, Body::full(bytes)));
                };
                applied.add(
                    &active.fault,
                    format!(
                        "answered the redemption of {code_shown} with {code} in the IdP's place (the IdP was not contacted)"
                    ),
                );
                Verdict::Answer(response.map(Body::full))
            }
            FaultKind::IdpDown { reset: false } => {
                applied.add(
                    &active.fault,
                    format!("answered the redemption of {code_shown} with 502 Bad Gateway (the IdP was not contacted)"),
                );
                Verdict::Answer(answer::bad_gateway().map(Body::full))
            }
            FaultKind::IdpDown { reset: true } => {
                applied.add(
                    &active.fault,
                    format!("reset the connection of the redemption of {code_shown} (the IdP was not contacted)"),
                );
                Verdict::Drop
            }
            _ => unreachable!("only answering faults come here"),
        };
        applied.mark(ctx);
        verdict
    }

    // === the authorize leg ===

    fn authorize(&self, head: http::request::Parts, ctx: &InterceptContext) -> Verdict {
        let record = RequestRecord {
            method: head.method.clone(),
            uri: head.uri.clone(),
            version: head.version,
            headers: head.headers.clone(),
            body: CapturedBody::complete(Bytes::new()),
        };
        let forward = |head| Verdict::Forward(Request::from_parts(head, Body::empty()));
        let Some(request) = AuthorizeRequest::parse(&record) else {
            return forward(head);
        };
        let host = head.uri.host().unwrap_or_default().to_ascii_lowercase();
        let chosen = self.choose(self.authorize_faults(), Some(&request.client_id), &host);
        let Some(active) = chosen.first() else {
            return forward(head);
        };
        let FaultKind::IdpError { code, .. } = &active.fault.kind else {
            return forward(head);
        };
        let stamp = answer::Stamp::new(None);
        let target = answer::AuthorizeTarget {
            redirect_uri: request.redirect_uri.as_deref(),
            state: request.state.as_deref(),
            response_mode: request.response_mode.as_deref(),
        };
        let Some(response) = answer::authorize_error(code, &target, &stamp) else {
            active.cannot_apply("the redirect URI cannot be written into a Location header");
            return forward(head);
        };
        let how = if response.status().is_redirection() {
            "redirected back to the app with"
        } else if response.status() == http::StatusCode::OK {
            "posted back to the app (form_post)"
        } else {
            "showed the IdP's error page for"
        };
        let mut applied = Applied::default();
        applied.add(
            &active.fault,
            format!(
                "{how} {code} for client {} in the IdP's place (the IdP was not contacted)",
                request.client_id
            ),
        );
        applied.mark(ctx);
        Verdict::Answer(response.map(Body::full))
    }
}

fn correlation_id(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
}

fn is_form(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn host_of(head: &http::request::Parts) -> &str {
    head.uri.host().unwrap_or_default()
}

fn host_covered<'a>(mut faults: impl Iterator<Item = &'a Active>, host: &str) -> bool {
    faults.any(|a| {
        a.fault
            .scope
            .host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(host))
    })
}

// === impl Interceptor ===

impl Interceptor for FaultInjector {
    /// Only code redemptions (a form POST) and, when `idp-error=…@authorize`
    /// is set, authorization requests (a GET with `response_type`) are read;
    /// everything else goes through at no cost.
    fn wants(&self, head: &http::request::Parts, _: &InterceptContext) -> bool {
        let host = host_of(head);
        if head.method == Method::POST && is_form(&head.headers) {
            return host_covered(self.token_faults(), host);
        }
        if head.method == Method::GET
            && head
                .uri
                .query()
                .is_some_and(|q| q.contains("response_type=") && q.contains("client_id="))
        {
            return host_covered(self.authorize_faults(), host);
        }
        false
    }

    fn intercept<'a>(
        &'a self,
        req: Request<Body>,
        ctx: &'a InterceptContext,
    ) -> BoxFuture<'a, Verdict> {
        Box::pin(async move {
            let (head, body) = req.into_parts();
            if head.method == Method::GET {
                return self.authorize(head, ctx);
            }
            Box::pin(self.redemption(head, body, ctx)).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn injector(specs: &[&str], code_lifetime: Option<Duration>) -> FaultInjector {
        let faults = specs.iter().map(|s| Fault::parse(s).unwrap()).collect();
        FaultInjector::new(faults, code_lifetime, false).unwrap()
    }

    #[test]
    fn the_idle_timeout_outlasts_the_longest_hold() {
        let mut timeouts = Timeouts::default();
        injector(&["reuse-code"], None).fit_timeouts(&mut timeouts);
        assert_eq!(timeouts.idle, Timeouts::default().idle, "nothing held");

        // expire-code without a duration: the longest provider lifetime.
        let i = injector(&["expire-code", "slow-idp=30s"], None);
        assert_eq!(i.longest_hold(), Some(Duration::from_secs(601)));
        i.fit_timeouts(&mut timeouts);
        assert_eq!(timeouts.idle, Duration::from_secs(631));

        let i = injector(&["expire-code"], Some(Duration::from_secs(3600)));
        assert_eq!(i.longest_hold(), Some(Duration::from_secs(3601)));
        let i = injector(&["slow-idp=2s"], None);
        let mut timeouts = Timeouts::default();
        i.fit_timeouts(&mut timeouts);
        assert_eq!(timeouts.idle, Timeouts::default().idle, "never lowered");
    }

    #[test]
    fn a_limited_fault_runs_out_and_gives_back_turns_it_could_not_use() {
        let i = injector(&["unknown-code@times=2"], None);
        let active = &i.faults[0];
        assert!(active.take_turn());
        active.cannot_apply("test");
        assert!(active.take_turn());
        assert!(active.take_turn());
        assert!(!active.take_turn(), "two turns, one given back");
    }
}
