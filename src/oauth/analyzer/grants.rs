//! The legs beyond the code redemption (OAUTH.md §7): the token requests
//! of every other grant (refresh, client_credentials, device code,
//! jwt-bearer and on-behalf-of, token exchange, password, and unknown ones
//! by name) and the device authorization leg. None of them belongs to an
//! authorization-code attempt, so none raises `token-without-authorize`.
//!
//! What they leave for later requests (refresh tokens issued, device codes
//! and their polls) goes to the bounded [`lifecycle`](crate::oauth::lifecycle)
//! memories.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Analyzer, elapsed, redacted_tokens, redemption_outcome};
use crate::exchange::Exchange;
use crate::oauth::event::{DeviceAuthorizationEvent, Event, Outcome, Rule, TokenEvent};
use crate::oauth::jwt;
use crate::oauth::lifecycle::{DeviceRecord, RefreshRecord, Use};
use crate::oauth::message::{
    DeviceAuthorization, Grant, TokenRequest, TokenResponse, request_host,
};
use crate::oauth::rules::{self, GrantRequest, IdpErrorInput};

/// RFC 8628 §3.2: the interval when the device authorization response gives none.
const DEFAULT_INTERVAL: u64 = 5;

/// What a token request was answered; the pending and slow_down answers
/// matter to device-code polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answered {
    /// `authorization_pending` (Entra AADSTS70016): the user has not
    /// finished; normal, never a failure.
    Pending,
    /// `slow_down`: polled faster than the interval.
    SlowDown,
    Tokens,
    Other,
}

impl Answered {
    fn of(answer: &TokenResponse) -> Answered {
        if !answer.is_error() {
            return Answered::Tokens;
        }
        match answer.error.as_deref() {
            Some("authorization_pending") => Answered::Pending,
            Some("slow_down") => Answered::SlowDown,
            _ if answer.error_codes.iter().any(|c| c == "AADSTS70016") => Answered::Pending,
            _ => Answered::Other,
        }
    }
}

impl Analyzer {
    // === the device authorization leg ===

    pub(super) fn device_leg(
        &mut self,
        exchange: &Exchange,
        device: DeviceAuthorization,
        out: &mut Vec<Event>,
    ) {
        let time = exchange.response_at().unwrap_or(exchange.started_at);
        let answer = device.answer.as_ref();
        let failed = answer.is_some_and(TokenResponse::is_error);
        let note = match (&device.bad_interval, device.interval) {
            _ if failed || device.device_code.is_none() => None,
            (Some(bad), _) => Some(format!(
                "interval `{bad}` is not a number: polls must be {DEFAULT_INTERVAL} s apart"
            )),
            (None, None) => Some(format!(
                "no interval: polls must be {DEFAULT_INTERVAL} s apart (RFC 8628 default)"
            )),
            (None, Some(_)) => None,
        };
        let host = request_host(&exchange.request.uri, &exchange.request.headers);
        out.push(Event::DeviceAuthorization(DeviceAuthorizationEvent {
            injected: None,
            time,
            exchange: exchange.id,
            host,
            endpoint: device.endpoint.url(),
            client_id: device.client_id.clone(),
            scope: device.scope.clone(),
            status: answer.map(|a| a.status),
            failed,
            error: answer.and_then(|a| a.error.clone()),
            error_description: answer.and_then(|a| a.error_description.clone()),
            error_codes: answer.map(|a| a.error_codes.clone()).unwrap_or_default(),
            device_code: self
                .secrets
                .show_opt("device_code", device.device_code.as_deref()),
            user_code: device.user_code.clone(),
            verification_uri: device.verification_uri.clone(),
            expires_in: device.expires_in,
            interval: device.interval,
            note,
        }));
        if let (Some(code), false) = (device.device_code.as_deref(), failed) {
            self.devices.insert(
                code,
                DeviceRecord {
                    issued_at: Some(time),
                    expires_in: device.expires_in.map(Duration::from_secs),
                    interval: Duration::from_secs(device.interval.unwrap_or(DEFAULT_INTERVAL)),
                    interval_given: device.interval.is_some(),
                    slow_downs: 0,
                    client_id: device.client_id.clone(),
                    last_poll: None,
                    polls: 0,
                    pending: 0,
                    redeemed: None,
                    last_seen: time,
                },
            );
        }
        if let Some(answer) = answer.filter(|a| a.is_error()) {
            let draft = rules::idp_error(&IdpErrorInput::from_token(answer), &[], &[]);
            let summary = format!(
                "device sign-in failed at the device authorization endpoint: {}",
                draft.field.as_deref().unwrap_or("error")
            );
            self.push_findings(vec![draft], None, exchange.id, time, out);
            self.finish(
                None,
                Outcome::Failed,
                summary,
                time,
                exchange,
                Some(&[]),
                out,
            );
        }
    }

    // === a token request of any grant but the code grant ===

    pub(super) fn grant_leg(
        &mut self,
        exchange: &Exchange,
        request: TokenRequest,
        grant: Grant,
        out: &mut Vec<Event>,
    ) {
        let time = exchange.sent_at();
        let credential = grant.credential();
        let shown = credential.map(|(kind, value)| self.secrets.show(kind, value));
        let answer = exchange.response.as_ref().map(TokenResponse::parse);
        let answered = answer.as_ref().map(Answered::of);

        // What was known before this request.
        let refresh = match &grant {
            Grant::RefreshToken(g) => g
                .refresh_token
                .as_deref()
                .and_then(|t| self.refresh.get(t))
                .cloned(),
            _ => None,
        };
        let device_code = match &grant {
            Grant::DeviceCode(g) => g.device_code.as_deref(),
            _ => None,
        };
        let device = device_code.and_then(|c| self.devices.get(c)).cloned();

        let mut drafts = rules::grant_request(&GrantRequest {
            request: &request,
            grant: &grant,
            shown: shown.as_deref(),
            refresh: refresh.as_ref(),
            device: device.as_ref(),
            time,
            spa_refresh_lifetime: self.config.spa_refresh_lifetime,
        });
        // Entra checks a refresh's scopes against the user's consent to the
        // app (any consented resource, `.default`), not against the
        // sign-in's grant: a scope beyond what authlens saw granted is a
        // cause only when Entra refused for scope or consent (65001,
        // invalid_scope), never beside a refusal for another reason.
        if request.endpoint.provider.is_entra() && !answer.as_ref().is_some_and(refused_for_scope) {
            drafts.retain(|d| {
                !(d.rule == Rule::ParamMismatch && d.field.as_deref() == Some("scope"))
            });
        }
        // Another client refreshing a token the IdP then honoured: Microsoft's
        // family of client IDs (FOCI) share refresh tokens on purpose, and
        // any IdP that issued tokens accepted the client; not a finding.
        if answered == Some(Answered::Tokens) {
            drafts.retain(|d| {
                !(d.rule == Rule::ParamMismatch && d.field.as_deref() == Some("client_id"))
            });
        }
        // A rotated token the IdP still accepted (Entra does not revoke
        // rotated refresh tokens): still the app's bug, said so.
        if answered == Some(Answered::Tokens) {
            for d in drafts
                .iter_mut()
                .filter(|d| d.rule == Rule::RefreshTokenReused)
            {
                d.message.push_str(
                    "; the IdP still accepted it this time (it does not enforce rotation), but an IdP with reuse detection revokes the whole token family",
                );
            }
        }
        if answered == Some(Answered::SlowDown)
            && let Some(shown) = shown.as_deref()
        {
            let known = device.clone().unwrap_or_else(|| unseen_device(time));
            let gap = known.last_poll.and_then(|last| elapsed(last, time));
            drafts.extend(rules::device_slow_down(shown, &known, gap, &drafts));
        }

        // Record this use.
        let outcome = redemption_outcome(answer.as_ref(), &drafts);
        if let Some(code) = device_code {
            let used = Use {
                exchange: exchange.id,
                time,
                answered: exchange.response_at(),
                outcome: outcome.clone(),
            };
            self.record_poll(code, used, &request, answered);
        }
        if let Grant::RefreshToken(g) = &grant
            && let Some(token) = g.refresh_token.as_deref()
        {
            let rotated = answer
                .as_ref()
                .and_then(|a| a.refresh_token.as_deref())
                .is_some_and(|new| new != token && !answer.as_ref().is_some_and(|a| a.is_error()));
            let used = Use {
                exchange: exchange.id,
                time,
                answered: exchange.response_at(),
                outcome,
            };
            self.record_refresh_use(token, used, &request, rotated);
        }
        // A pending poll is marked (shown compactly) only when there is
        // nothing to say about it: one with a finding is shown as a leg.
        let pending_poll = match answered {
            Some(Answered::Pending) if drafts.is_empty() => device_code
                .and_then(|c| self.devices.get(c))
                .map(|d| d.pending),
            _ => None,
        };
        let pending_before = device.as_ref().map_or(0, |d| d.pending);

        let host = request_host(&exchange.request.uri, &exchange.request.headers);
        let client_id = request.client_id().map(str::to_owned);
        out.push(Event::Token(TokenEvent {
            injected: None,
            time,
            exchange: exchange.id,
            attempt: None,
            host: host.clone(),
            endpoint: request.endpoint.url(),
            method: request.method.to_string(),
            content_type: request.content_type.clone(),
            client_id: client_id.clone(),
            client_auth: request.client_auth_methods(),
            grant_type: Some(grant.name().to_owned()),
            code: None,
            redirect_uri: None,
            code_verifier: None,
            scope: request.param("scope").map(str::to_owned),
            code_age: None,
            grant_credential: shown.clone(),
            grant_credential_format: credential.map(|(_, value)| {
                if jwt::looks_like_jwt(value) {
                    "JWT"
                } else {
                    "opaque"
                }
            }),
            pending_poll,
            pending_before,
        }));
        self.push_findings(drafts.clone(), None, exchange.id, time, out);

        let Some(answer) = answer else {
            return;
        };
        let mut response = self.token_response_event(
            exchange,
            &answer,
            time,
            host,
            client_id.clone(),
            None,
            Some(grant.name().to_owned()),
        );
        // Waiting for the user is no failure.
        response.failed &= answered != Some(Answered::Pending);
        response.pending_poll = pending_poll;
        let at = response.time;
        out.push(Event::TokenResponse(response));

        let label = grant.label().to_owned();
        match answered {
            // The user is still signing in, or the app must slow down (its
            // finding is out): the flow goes on, no verdict yet.
            Some(Answered::Pending | Answered::SlowDown) => {}
            _ if answer.is_error() => {
                let draft = rules::idp_error(&IdpErrorInput::from_token(&answer), &drafts, &[]);
                let field = draft
                    .field
                    .clone()
                    .unwrap_or_else(|| format!("HTTP {}", answer.status));
                let cause = drafts
                    .iter()
                    .find(|d| d.severity == crate::oauth::event::Severity::Error)
                    .map(|d| format!(" ({}: {})", d.rule.id(), d.gist))
                    .unwrap_or_default();
                self.push_findings(vec![draft], None, exchange.id, at, out);
                self.finish(
                    None,
                    Outcome::Failed,
                    format!("{label} failed at /token: {field}{cause}"),
                    at,
                    exchange,
                    Some(&drafts),
                    out,
                );
            }
            _ => {
                if let Some(note) = rules::tokens_redacted(&redacted_tokens(&answer)) {
                    self.push_findings(vec![note], None, exchange.id, at, out);
                }
                self.issued_refresh(at, &request, &answer, refresh.as_ref(), None);
                let summary = match &grant {
                    Grant::RefreshToken(_) => "tokens refreshed".to_owned(),
                    Grant::DeviceCode(_) => "device sign-in: tokens issued".to_owned(),
                    _ => format!("{label}: tokens issued"),
                };
                self.finish(
                    None,
                    Outcome::SignedIn,
                    summary,
                    at,
                    exchange,
                    Some(&drafts),
                    out,
                );
            }
        }
    }

    /// Remembers the refresh token a successful answer carries: who it was
    /// issued to, the scopes granted, and whether it is a browser (SPA)
    /// token. A token from a refresh keeps its family's first issue time
    /// (an Entra SPA token's lifetime does not slide); `scope` is the
    /// authorize request's, for a code redemption whose answer names none.
    pub(super) fn issued_refresh(
        &mut self,
        at: OffsetDateTime,
        request: &TokenRequest,
        answer: &TokenResponse,
        presented: Option<&RefreshRecord>,
        scope: Option<&str>,
    ) {
        let Some(token) = answer.refresh_token.as_deref() else {
            return;
        };
        if self.refresh.get(token).is_some() {
            return;
        }
        // A rotated token carries the grant of the one it replaces (RFC 6749
        // §6), not the access token's scope, which a refresh may narrow.
        let granted_scope = presented
            .and_then(|p| p.granted_scope.clone())
            .or_else(|| answer.scope.clone())
            .or_else(|| request.param("scope").map(str::to_owned))
            .or_else(|| scope.map(str::to_owned));
        self.refresh.insert(
            token,
            RefreshRecord {
                issued_at: Some(at),
                // A refresh of a token authlens never saw issued: its
                // family started at an unknown time, not now.
                family_issued_at: match presented {
                    Some(p) => p.family_issued_at,
                    None if matches!(request.grant, Some(Grant::RefreshToken(_))) => None,
                    None => Some(at),
                },
                client_id: request
                    .client_id()
                    .map(str::to_owned)
                    .or_else(|| presented.and_then(|p| p.client_id.clone())),
                granted_scope,
                spa: request.origin.is_some() || presented.is_some_and(|p| p.spa),
                provider: request.endpoint.provider,
                first_use: None,
                rotated_by: None,
                uses: 0,
                last_seen: at,
            },
        );
    }

    fn record_refresh_use(
        &mut self,
        token: &str,
        used: Use,
        request: &TokenRequest,
        rotated: bool,
    ) {
        let time = used.time;
        if self.refresh.get(token).is_none() {
            // First seen presented: nothing known of its issue.
            self.refresh.insert(
                token,
                RefreshRecord {
                    issued_at: None,
                    family_issued_at: None,
                    client_id: request.client_id().map(str::to_owned),
                    granted_scope: None,
                    spa: request.origin.is_some(),
                    provider: request.endpoint.provider,
                    first_use: None,
                    rotated_by: None,
                    uses: 0,
                    last_seen: time,
                },
            );
        }
        if let Some(r) = self.refresh.get_mut(token) {
            r.uses = r.uses.saturating_add(1);
            r.last_seen = time;
            if rotated {
                r.rotated_by.get_or_insert_with(|| used.clone());
            }
            r.first_use.get_or_insert(used);
        }
    }

    fn record_poll(
        &mut self,
        code: &str,
        used: Use,
        request: &TokenRequest,
        answered: Option<Answered>,
    ) {
        let time = used.time;
        if self.devices.get(code).is_none() {
            let mut unseen = unseen_device(time);
            unseen.client_id = request.client_id().map(str::to_owned);
            self.devices.insert(code, unseen);
        }
        let Some(d) = self.devices.get_mut(code) else {
            return;
        };
        d.polls = d.polls.saturating_add(1);
        d.last_poll = Some(time);
        d.last_seen = time;
        match answered {
            Some(Answered::Pending) => d.pending = d.pending.saturating_add(1),
            Some(Answered::SlowDown) => d.slow_downs = d.slow_downs.saturating_add(1),
            Some(Answered::Tokens) => {
                d.redeemed.get_or_insert(used);
            }
            Some(Answered::Other) | None => {}
        }
    }
}

/// A device code first seen polled: its answer was not seen, so neither its
/// issue time, lifetime nor interval are known (5 s assumed for `slow_down`).
fn unseen_device(time: OffsetDateTime) -> DeviceRecord {
    DeviceRecord {
        issued_at: None,
        expires_in: None,
        interval: Duration::from_secs(DEFAULT_INTERVAL),
        interval_given: false,
        slow_downs: 0,
        client_id: None,
        last_poll: None,
        polls: 0,
        pending: 0,
        redeemed: None,
        last_seen: time,
    }
}

/// A refusal for the scopes asked: `invalid_scope` (Entra AADSTS70011 and
/// kin) or consent required (AADSTS65001).
fn refused_for_scope(answer: &TokenResponse) -> bool {
    answer.is_error()
        && (matches!(
            answer.error.as_deref(),
            Some("invalid_scope" | "consent_required")
        ) || answer.error_codes.iter().any(|c| c == "AADSTS65001"))
}

#[cfg(test)]
mod tests;
