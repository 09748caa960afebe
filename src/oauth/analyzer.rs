//! The analyzer: feeds exchanges in time order, pairs the legs of each
//! sign-in attempt and runs the rules on every redemption.
//!
//! Pure by design: no sockets, no clock (time comes from the exchange), no
//! printing, no global state. The same analyzer runs on live traffic and on
//! a recorded file, and is table-tested in `analyzer/tests.rs`.

use std::time::Duration;

use time::OffsetDateTime;

use super::attempt::{AttemptStore, CodeRecord, Redemption, RedemptionOutcome};
use super::event::{
    AttemptId, AuthorizeEvent, CodeEvent, DecodedToken, Event, Finding, Injected, Outcome, Pairing,
    Rule, Severity, TokenEvent, TokenResponseEvent, Verdict,
};
use super::jwt;
use super::lifecycle::{DeviceRecord, Memory, RefreshRecord};
use super::message::{
    AuthorizationResponse, AuthorizeRequest, CodeGrant, DeviceAuthorization, Grant,
    IndirectAuthorize, ParAnswer, PushedRequest, ResponseMode, TokenRequest, TokenResponse, Via,
    error_page_text, refusal_page, request_host,
};
use super::provider::{Discovery, Endpoint, KnownEndpoints};
use super::pushed::{Pushed, PushedStore, RequestUriUse};
use super::rules::{self, CodeRedemption, Draft, IdpErrorInput, RedactedToken};
use super::secret::{SecretPolicy, is_fingerprint};
use crate::exchange::Exchange;

/// How the analyzer behaves; built once from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyzerConfig {
    /// `--code-lifetime`: overrides the provider's code lifetime (Entra
    /// 10 min, Okta 300 s, Keycloak 60 s, Ping 60 s, GitHub and others 10 min).
    pub code_lifetime: Option<Duration>,
    /// `--show-secrets`: show codes, secrets and tokens in clear instead of
    /// fingerprints.
    pub show_secrets: bool,
    /// At most this many attempts are remembered (the oldest is dropped).
    pub max_attempts: usize,
    /// An attempt (and its code) untouched for this long is forgotten; so
    /// is a device code. A refresh token is kept this long past the SPA
    /// refresh lifetime.
    pub attempt_ttl: Duration,
    /// How long an Entra SPA refresh token lives from its sign-in (24 h,
    /// not sliding): `refresh-token-expired`. Tests shorten it.
    pub spa_refresh_lifetime: Duration,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            code_lifetime: None,
            show_secrets: false,
            max_attempts: 256,
            attempt_ttl: Duration::from_secs(30 * 60),
            spa_refresh_lifetime: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// Pairs /authorize, code and /token, and judges each redemption.
#[derive(Debug)]
pub struct Analyzer {
    config: AnalyzerConfig,
    secrets: SecretPolicy,
    store: AttemptStore,
    known: KnownEndpoints,
    /// Pushed authorization requests (PAR) by request_uri.
    pushed: PushedStore,
    /// What was known of the request_uri the exchange being observed named,
    /// for explaining an `invalid_request_uri` answer to it; cleared after
    /// each exchange.
    request_uri_use: Option<RequestUriUse>,
    /// Refresh tokens seen issued or presented (bounded like attempts).
    refresh: Memory<RefreshRecord>,
    /// Device codes seen issued or polled (bounded like attempts).
    devices: Memory<DeviceRecord>,
}

impl Analyzer {
    pub fn new(config: AnalyzerConfig) -> Self {
        Analyzer {
            secrets: SecretPolicy {
                show_secrets: config.show_secrets,
            },
            store: AttemptStore::new(config.max_attempts, config.attempt_ttl),
            known: KnownEndpoints::default(),
            pushed: PushedStore::new(config.max_attempts, config.attempt_ttl),
            request_uri_use: None,
            refresh: Memory::new(
                config.max_attempts.saturating_mul(2).saturating_add(16),
                config
                    .spa_refresh_lifetime
                    .saturating_add(config.attempt_ttl),
            ),
            devices: Memory::new(
                config.max_attempts.saturating_mul(2).saturating_add(16),
                config.attempt_ttl,
            ),
            config,
        }
    }

    /// Feeds one exchange (live or from a file), in time order. Returns the
    /// events in order: leg events, each followed by the findings it
    /// triggered, and a verdict when an attempt completes.
    pub fn observe(&mut self, exchange: &Exchange) -> Vec<Event> {
        // A request authlens made itself (a `reuse-code` copy) got tokens
        // the app never asked to see: they are fingerprinted even with
        // `--show-secrets`.
        let made = exchange
            .intervention
            .as_ref()
            .is_some_and(|i| i.kind == crate::exchange::InterventionKind::Made);
        let shown = self.secrets.show_secrets;
        self.secrets.show_secrets = shown && !made;
        let mut out = self.observe_unmarked(exchange);
        self.secrets.show_secrets = shown;
        // What authlens did on purpose (a `--fault`) marks every event of
        // the exchange: the rules judged what was really sent, and the
        // outlets must not present the result as the app's own bug.
        // A finding is marked only when a fault of the label could have
        // caused it, so the app's own bugs on a changed request still count
        // (`--fail-on`). A request authlens made itself is wholly injected.
        if let Some(intervention) = &exchange.intervention {
            let injected = Injected {
                fault: intervention.label.clone(),
                note: intervention.note.clone(),
            };
            let made = intervention.kind == crate::exchange::InterventionKind::Made;
            for event in &mut out {
                let caused = match event.as_finding() {
                    Some(f) => made || fault_may_cause(&intervention.label, f.rule.id()),
                    None => true,
                };
                if caused {
                    event.set_injected(&injected);
                }
            }
        }
        out
    }

    fn observe_unmarked(&mut self, exchange: &Exchange) -> Vec<Event> {
        let out = self.observe_legs(exchange);
        self.request_uri_use = None;
        out
    }

    fn observe_legs(&mut self, exchange: &Exchange) -> Vec<Event> {
        let mut out = Vec::new();
        self.store.evict(exchange.started_at);
        self.pushed.evict(exchange.started_at);
        self.refresh.evict(exchange.started_at);
        self.devices.evict(exchange.started_at);

        if Discovery::is_discovery_url(&exchange.request.uri) {
            if let Some(resp) = &exchange.response
                && resp.status.is_success()
                && let Ok(body) = crate::decode::decoded_body(&resp.body, &resp.headers, 1 << 20)
                && let Some(doc) = Discovery::parse(&body)
            {
                self.known.learn(doc);
            }
            return out;
        }
        if let Some(device) = DeviceAuthorization::parse(
            &exchange.request,
            exchange.response.as_ref(),
            self.known
                .is_device_endpoint(&Endpoint::from_uri(&exchange.request.uri).url()),
        ) {
            self.device_leg(exchange, device, &mut out);
            return out;
        }
        if let Some(request) = TokenRequest::parse(&exchange.request, &self.known) {
            match request.grant.clone() {
                // Every grant but the code grant, unless it carries a code
                // instead of its own credential (a code redemption under the
                // wrong grant_type).
                Some(grant) if grant.is_lifecycle(request.param("code").is_some()) => {
                    self.grant_leg(exchange, request, grant, &mut out);
                }
                _ => self.token_leg(exchange, request, &mut out),
            }
            return out;
        }

        if let Some(pushed) = PushedRequest::parse(&exchange.request, &self.known) {
            self.par_leg(exchange, pushed, &mut out);
            return out;
        }

        let mut authorize_attempt = None;
        let indirect = IndirectAuthorize::parse(&exchange.request, &self.known);
        let (authorize, note) = match &indirect {
            Some(indirect) => self.indirect_authorize(exchange, indirect),
            None => (AuthorizeRequest::parse(&exchange.request), None),
        };
        if let Some(request) = authorize {
            authorize_attempt = self.authorize_leg(exchange, request, note, &mut out);
        } else if let Some(callback) = AuthorizationResponse::from_callback(&exchange.request) {
            let to_known_client = callback
                .target
                .as_deref()
                .is_some_and(|t| self.store.is_redirect_uri(t))
                || callback
                    .state
                    .as_deref()
                    .is_some_and(|s| self.store.by_state(s).is_some());
            if to_known_client {
                self.code_leg(exchange, callback, exchange.started_at, &mut out);
            }
        }

        if let Some(resp) = &exchange.response {
            let at = exchange.response_at().unwrap_or(exchange.started_at);
            if let Some(answer) = AuthorizationResponse::from_response(resp) {
                self.code_leg(exchange, answer, at, &mut out);
            } else if let Some(id) = authorize_attempt
                && let Some(text) = error_page_text(resp)
            {
                let status = resp.status.as_u16();
                self.authorize_page_error(exchange, Some(id), status, None, &text, at, &mut out);
            } else if indirect.is_some()
                && let Some((error, text)) = refusal_page(resp)
            {
                // The IdP's own page refusing a request_uri or a request
                // object (it cannot trust a redirect_uri it could not read).
                let status = resp.status.as_u16();
                let id = authorize_attempt;
                self.authorize_page_error(exchange, id, status, Some(error), &text, at, &mut out);
            }
        }
        out
    }

    // === leg 1: authorize ===

    /// An /authorize naming its parameters elsewhere, read as if they had
    /// been on it: through the push its request_uri names (recording the
    /// use), or from its request object. When they cannot be read, a
    /// request whose parameters are unknown (what /authorize itself
    /// carries), with a note saying why, so the sign-in is still followed.
    fn indirect_authorize(
        &mut self,
        exchange: &Exchange,
        indirect: &IndirectAuthorize,
    ) -> (Option<AuthorizeRequest>, Option<String>) {
        let pushed = indirect.request_uri().and_then(|uri| {
            let (pushed, facts) = self.pushed.use_uri(uri, exchange.id, exchange.started_at);
            self.request_uri_use = Some(facts);
            pushed
        });
        indirect.resolve(
            pushed.as_ref().map(|p| &p.params),
            pushed.as_ref().and_then(|p| p.note.as_deref()),
        )
    }

    fn authorize_leg(
        &mut self,
        exchange: &Exchange,
        request: AuthorizeRequest,
        note: Option<String>,
        out: &mut Vec<Event>,
    ) -> Option<AttemptId> {
        let time = exchange.started_at;
        if let Some(id) = self.store.reentry(&request) {
            // The browser came back to /authorize during login: same attempt.
            if let Some(a) = self.store.get_mut(id) {
                a.last_seen = time;
            }
            return Some(id);
        }
        let event = AuthorizeEvent {
            injected: None,
            time,
            exchange: exchange.id,
            attempt: AttemptId(0),
            host: request_host(&exchange.request.uri, &exchange.request.headers),
            endpoint: request.endpoint.url(),
            provider: request.endpoint.provider.name(),
            tenant: request.endpoint.tenant.clone(),
            version: request.endpoint.version.map(|v| v.as_str()),
            policy: request.endpoint.policy.clone(),
            client_id: request.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            response_type: request.response_type.clone(),
            response_mode: request.response_mode.clone(),
            scope: request.scope.clone(),
            state: request.state.clone(),
            nonce: request.nonce.clone(),
            pkce_method: request.code_challenge.as_ref().map(|_| {
                request
                    .code_challenge_method
                    .clone()
                    .unwrap_or_else(|| "plain".to_owned())
            }),
            via: request.via.name(),
            via_note: note,
        };
        let id = self.store.start(request, time);
        out.push(Event::Authorize(AuthorizeEvent {
            attempt: id,
            ..event
        }));
        Some(id)
    }

    /// The IdP refused to redirect and showed its own error page (naming
    /// `error`, when the page gives an OAuth error rather than a number).
    #[allow(clippy::too_many_arguments)]
    fn authorize_page_error(
        &mut self,
        exchange: &Exchange,
        id: Option<AttemptId>,
        status: u16,
        error: Option<&str>,
        text: &str,
        time: OffsetDateTime,
        out: &mut Vec<Event>,
    ) {
        let codes = super::catalogue::scan_codes(text);
        let input = IdpErrorInput {
            leg: "authorize",
            status: Some(status),
            error,
            description: Some(text),
            codes: &codes,
            numbers: &[],
            trace_id: None,
            correlation_id: None,
        };
        let draft = rules::idp_error(&input, &[], &[]);
        let draft = match &self.request_uri_use {
            Some(facts) => rules::request_uri_refused(draft, facts),
            None => draft,
        };
        let summary = format!(
            "sign-in failed at /authorize: {}",
            draft.field.as_deref().unwrap_or("error page")
        );
        self.push_findings(vec![draft], id, exchange.id, time, out);
        self.finish(id, Outcome::Failed, summary, time, exchange, None, out);
    }

    // === PAR: the authorization request pushed ahead ===

    /// A push answered with a request_uri is remembered for the /authorize
    /// that names it. A push refused, or answered with something that names
    /// no request_uri, ends the sign-in there: an attempt starts from the
    /// pushed parameters and fails with what the IdP said.
    fn par_leg(&mut self, exchange: &Exchange, pushed: PushedRequest, out: &mut Vec<Event>) {
        let Some(resp) = &exchange.response else {
            return;
        };
        let at = exchange.response_at().unwrap_or(exchange.started_at);
        let (status, refusal, note) = match ParAnswer::parse(resp) {
            ParAnswer::Issued {
                request_uri,
                expires_in,
            } => {
                self.pushed.insert(
                    &request_uri,
                    Pushed {
                        params: pushed.params,
                        note: pushed.note,
                        exchange: exchange.id,
                        pushed_at: exchange.started_at,
                        expires_in,
                        uses: Vec::new(),
                        last_seen: at,
                    },
                );
                return;
            }
            ParAnswer::Refused(answer) => (answer.status, Some(answer), None),
            ParAnswer::Unreadable { status, note } => (status, None, Some(note)),
        };
        // No /authorize was sent: the push's own exchange stands for it (its
        // body, which may hold a client secret, is not kept).
        let build = if pushed.note.is_some() {
            AuthorizeRequest::unknown
        } else {
            AuthorizeRequest::from_params
        };
        let Some(request) = build(
            pushed.endpoint,
            pushed.params,
            format!("pushed in exchange {}", exchange.id),
            Via::Par {
                request_uri: String::new(),
            },
        ) else {
            return;
        };
        let Some(id) = self.authorize_leg(exchange, request, pushed.note, out) else {
            return;
        };
        let no_codes = Vec::new();
        let input = match &refusal {
            Some(answer) => IdpErrorInput {
                leg: "authorize",
                ..IdpErrorInput::from_token(answer)
            },
            None => IdpErrorInput {
                leg: "authorize",
                status: Some(status),
                error: None,
                description: None,
                codes: &no_codes,
                numbers: &[],
                trace_id: None,
                correlation_id: None,
            },
        };
        let label;
        if refusal.is_some() || status >= 400 {
            let draft = rules::pushed_refused(rules::idp_error(&input, &[], &[]), note.as_deref());
            label = draft
                .field
                .clone()
                .unwrap_or_else(|| format!("HTTP {status}"));
            self.push_findings(vec![draft], Some(id), exchange.id, at, out);
        } else {
            label = note.unwrap_or_default();
        }
        self.finish(
            Some(id),
            Outcome::Failed,
            format!("sign-in failed at the pushed authorization request: {label}"),
            at,
            exchange,
            None,
            out,
        );
    }

    // === leg 2: code (or error) on its way back ===

    fn code_leg(
        &mut self,
        exchange: &Exchange,
        answer: AuthorizationResponse,
        time: OffsetDateTime,
        out: &mut Vec<Event>,
    ) {
        let paired = self
            .store
            .pair(answer.state.as_deref(), answer.target.as_deref());
        if let Some(code) = answer.code.as_deref()
            && let Some(record) = self.store.code_mut(code)
        {
            // Already seen (the IdP's Location, then the browser's callback).
            // An exchange is published when its response ends, so the
            // callback may come first, before the authorize that starts the
            // attempt (and whose Location carries the same code): the code
            // is then paired now, and said so once. Only the IdP's own
            // answer pairs late, and only by state: a callback delivered
            // again (a reload) must not take an attempt waiting for its own
            // code.
            let late = record.attempt.is_none()
                && answer.mode != ResponseMode::Callback
                && matches!(paired, Some((_, Pairing::State)));
            record.last_seen = record.last_seen.max(time);
            if !late {
                return;
            }
        }
        if answer.code.is_none() && paired.is_none() {
            // An unpaired error: report it only when it looks like an OAuth
            // response, and never twice (the browser delivering it again).
            let callback = answer.mode == ResponseMode::Callback;
            let plausible = answer.state.is_some() || answer.error_description.is_some();
            if callback || !plausible {
                return;
            }
        }
        let attempt = paired.and_then(|(id, _)| self.store.get(id)).cloned();
        let (attempt_id, pairing) = match paired {
            Some((id, how)) => (Some(id), how),
            None => (None, Pairing::Unpaired),
        };
        let host = request_host(&exchange.request.uri, &exchange.request.headers);
        out.push(Event::Code(CodeEvent {
            injected: None,
            time,
            exchange: exchange.id,
            attempt: attempt_id,
            pairing,
            host: host.clone(),
            client_id: attempt.as_ref().map(|a| a.authorize.client_id.clone()),
            mode: answer.mode.as_str(),
            redirect_to: answer.target.clone(),
            code: self.secrets.show_opt("code", answer.code.as_deref()),
            state: answer.state.clone(),
            iss: answer.iss.clone(),
            error: answer.error.clone(),
            error_description: answer.error_description.clone(),
            error_codes: answer.error_codes.clone(),
            since_authorize: attempt.as_ref().and_then(|a| elapsed(a.started_at, time)),
        }));

        if let Some(code) = answer.code.as_deref() {
            let provider = attempt.as_ref().map_or_else(
                || Endpoint::from_uri(&exchange.request.uri).provider,
                |a| a.authorize.endpoint.provider,
            );
            match self.store.code_mut(code) {
                // Paired late: the redemptions seen so far stay.
                Some(record) => {
                    record.attempt = attempt_id;
                    record.issued_at = record.issued_at.map(|at| at.min(time)).or(Some(time));
                    record.provider = provider;
                }
                None => self.store.insert_code(
                    code,
                    CodeRecord {
                        attempt: attempt_id,
                        issued_at: Some(time),
                        provider,
                        first_redemption: None,
                        redemptions: 0,
                        refused_as_malformed: 0,
                        last_seen: time,
                    },
                ),
            }
            if let Some(a) = attempt_id.and_then(|id| self.store.get_mut(id)) {
                a.awaiting_code = false;
                a.last_seen = time;
            }
            return;
        }

        // An error instead of a code.
        let draft = rules::idp_error(&IdpErrorInput::from_authorize(&answer), &[], &[]);
        let draft = match &self.request_uri_use {
            Some(facts) => rules::request_uri_refused(draft, facts),
            None => draft,
        };
        let summary = format!(
            "sign-in failed at /authorize: {}",
            draft.field.as_deref().unwrap_or("error")
        );
        self.push_findings(vec![draft], attempt_id, exchange.id, time, out);
        self.finish(
            attempt_id,
            Outcome::Failed,
            summary,
            time,
            exchange,
            None,
            out,
        );
    }

    // === legs 3 and 4: token request and response ===

    fn token_leg(&mut self, exchange: &Exchange, request: TokenRequest, out: &mut Vec<Event>) {
        let time = exchange.sent_at();
        // A code redemption. A request naming another grant_type but
        // carrying a code instead of that grant's own credential, or naming
        // none, is judged as a code redemption under the wrong grant_type,
        // which malformed-token-request names.
        let read;
        let grant = match &request.grant {
            Some(Grant::AuthorizationCode(grant)) => grant,
            Some(_) | None => {
                read = CodeGrant::read(|name| request.param(name));
                &read
            }
        };
        let code = grant.code.as_deref();
        let code_shown = code.map(|c| self.secrets.show("code", c));
        let record = code.and_then(|c| self.store.code(c)).cloned();
        let attempt_id = record.as_ref().and_then(|r| r.attempt);
        let attempt = attempt_id.and_then(|id| self.store.get(id)).cloned();
        let authorize = attempt.as_ref().map(|a| &a.authorize);

        let redemption = CodeRedemption {
            request: &request,
            grant,
            authorize,
            code_shown: code_shown.as_deref(),
            record: record.as_ref(),
            time,
            code_lifetime: self.config.code_lifetime,
            known: &self.known,
            secrets: self.secrets,
        };
        let mut drafts = rules::code_redemption(&redemption);
        let checked = rules::redemption_checks(&redemption, &drafts);

        let answer = exchange.response.as_ref().map(TokenResponse::parse);
        if let Some(c) = code {
            let outcome = redemption_outcome(answer.as_ref(), &drafts);
            self.record_redemption(c, exchange.id, time, &request, outcome);
        }
        let client_id = request
            .client_id()
            .map(str::to_owned)
            .or_else(|| authorize.map(|a| a.client_id.clone()));
        let host = request_host(&exchange.request.uri, &exchange.request.headers);
        out.push(Event::Token(TokenEvent {
            injected: None,
            time,
            exchange: exchange.id,
            attempt: attempt_id,
            host: host.clone(),
            endpoint: request.endpoint.url(),
            method: request.method.to_string(),
            content_type: request.content_type.clone(),
            client_id: client_id.clone(),
            client_auth: request.client_auth_methods(),
            grant_type: request.grant.as_ref().map(|g| g.name().to_owned()),
            code: code_shown.clone(),
            redirect_uri: grant.redirect_uri.clone(),
            code_verifier: self
                .secrets
                .show_opt("code_verifier", grant.code_verifier.as_deref()),
            scope: request.param("scope").map(str::to_owned),
            code_age: record
                .as_ref()
                .and_then(|r| r.issued_at)
                .and_then(|issued| elapsed(issued, time)),
            grant_credential: None,
            grant_credential_format: None,
            pending_poll: None,
            pending_before: 0,
        }));
        self.push_findings(drafts.clone(), attempt_id, exchange.id, time, out);

        let Some(answer) = answer else {
            return;
        };
        let response = self.token_response_event(
            exchange,
            &answer,
            time,
            host,
            client_id,
            attempt_id,
            request.grant.as_ref().map(|g| g.name().to_owned()),
        );
        let (at, decoded) = (response.time, response.decoded.clone());
        out.push(Event::TokenResponse(response));

        let (outcome, summary) = if answer.is_error() {
            let draft = rules::idp_error(&IdpErrorInput::from_token(&answer), &drafts, &checked);
            let redirect_uri = grant
                .redirect_uri
                .as_deref()
                .or_else(|| authorize.and_then(|a| a.redirect_uri.as_deref()));
            let draft = rules::spa_origin(draft, &request, &answer, redirect_uri);
            let label = draft
                .field
                .clone()
                .unwrap_or_else(|| format!("HTTP {}", answer.status));
            let cause = drafts
                .iter()
                .find(|d| d.severity == Severity::Error)
                .map(|d| format!(" ({}: {})", d.rule.id(), d.gist))
                .unwrap_or_default();
            self.push_findings(vec![draft], attempt_id, exchange.id, at, out);
            (
                Outcome::Failed,
                format!("sign-in failed at /token: {label}{cause}"),
            )
        } else {
            if let Some(note) = rules::tokens_redacted(&redacted_tokens(&answer)) {
                self.push_findings(vec![note], attempt_id, exchange.id, at, out);
            }
            // The refresh token it issued, for the refreshes that follow.
            let scope = authorize.and_then(|a| a.scope.clone());
            self.issued_refresh(at, &request, &answer, None, scope.as_deref());
            let id_token = decoded
                .iter()
                .find(|d| d.kind == "id_token")
                .and_then(|d| d.jwt.as_ref().ok());
            if let (Some(a), Some(jwt)) = (authorize, id_token) {
                let checks = rules::tokens_issued(a, &self.known, jwt);
                drafts.extend(checks.iter().cloned());
                self.push_findings(checks, attempt_id, exchange.id, at, out);
            }
            (Outcome::SignedIn, "signed in: tokens issued".to_owned())
        };
        self.finish(
            attempt_id,
            outcome,
            summary,
            at,
            exchange,
            Some(&drafts),
            out,
        );
    }

    /// The event of a token response to any grant: its error, its tokens
    /// fingerprinted (unless shown), its JWTs decoded when it succeeded.
    #[allow(clippy::too_many_arguments)]
    fn token_response_event(
        &self,
        exchange: &Exchange,
        answer: &TokenResponse,
        time: OffsetDateTime,
        host: String,
        client_id: Option<String>,
        attempt: Option<AttemptId>,
        grant_type: Option<String>,
    ) -> TokenResponseEvent {
        let token =
            |kind: &str, v: &Option<String>| v.as_deref().map(|v| self.secrets.show(kind, v));
        TokenResponseEvent {
            injected: None,
            time: exchange.response_at().unwrap_or(time),
            exchange: exchange.id,
            attempt,
            host,
            client_id,
            status: answer.status,
            failed: answer.is_error(),
            error: answer.error.clone(),
            error_description: answer.error_description.clone(),
            error_codes: answer.error_codes.clone(),
            trace_id: answer.trace_id.clone(),
            correlation_id: answer.correlation_id.clone(),
            tokens: [
                token("access_token", &answer.access_token),
                token("id_token", &answer.id_token),
                token("refresh_token", &answer.refresh_token),
            ]
            .into_iter()
            .flatten()
            .collect(),
            token_type: answer.token_type.clone(),
            scope: answer.scope.clone(),
            expires_in: answer.expires_in.clone(),
            decoded: if answer.is_error() {
                Vec::new()
            } else {
                self.decode_tokens(answer)
            },
            elapsed: exchange.timings.response_head,
            grant_type,
            pending_poll: None,
        }
    }

    /// The id_token, and the access token when it is a JWT (an opaque one is
    /// not an error), read without verifying signatures. An id_token a
    /// recording holds only as its fingerprint has nothing to read.
    fn decode_tokens(&self, answer: &TokenResponse) -> Vec<DecodedToken> {
        let mut out = Vec::new();
        if let Some(t) = answer
            .id_token
            .as_deref()
            .filter(|t| !is_fingerprint("id_token", t))
        {
            out.push(DecodedToken {
                kind: "id_token",
                shown: self.secrets.show("id_token", t),
                jwt: jwt::decode(t),
            });
        }
        if let Some(t) = answer
            .access_token
            .as_deref()
            .filter(|t| jwt::looks_like_jwt(t))
        {
            out.push(DecodedToken {
                kind: "access_token",
                shown: self.secrets.show("access_token", t),
                jwt: jwt::decode(t),
            });
        }
        out
    }

    /// Records a redemption in the code's history. One refused as malformed
    /// is counted apart: the IdP never read the code, so it is still unused.
    fn record_redemption(
        &mut self,
        code: &str,
        exchange: u64,
        time: OffsetDateTime,
        request: &TokenRequest,
        outcome: RedemptionOutcome,
    ) {
        let consumes = outcome.consumes_code();
        let redemption = Redemption {
            exchange,
            time,
            outcome,
        };
        match self.store.code_mut(code) {
            Some(r) => {
                r.last_seen = time;
                if consumes {
                    r.redemptions += 1;
                    r.first_redemption.get_or_insert(redemption);
                } else {
                    r.refused_as_malformed += 1;
                }
            }
            None => self.store.insert_code(
                code,
                CodeRecord {
                    attempt: None,
                    issued_at: None,
                    provider: request.endpoint.provider,
                    redemptions: u32::from(consumes),
                    refused_as_malformed: u32::from(!consumes),
                    first_redemption: consumes.then_some(redemption),
                    last_seen: time,
                },
            ),
        }
    }

    // === shared ===

    fn push_findings(
        &mut self,
        drafts: Vec<Draft>,
        attempt: Option<AttemptId>,
        exchange: u64,
        time: OffsetDateTime,
        out: &mut Vec<Event>,
    ) {
        for d in drafts {
            if let Some(a) = attempt.and_then(|id| self.store.get_mut(id)) {
                match d.severity {
                    Severity::Error => a.errors += 1,
                    Severity::Warning => a.warnings += 1,
                    Severity::Info => {}
                }
                a.last_seen = time;
            }
            out.push(Event::Finding(Finding {
                injected: None,
                rule: d.rule,
                severity: d.severity,
                attempt,
                exchange,
                field: d.field,
                message: d.message,
                fix: d.fix,
                evidence: d.evidence,
                time,
            }));
        }
    }

    /// Closes an attempt with a verdict. `drafts` are this redemption's own
    /// findings, counted when there is no attempt to hold them.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &mut self,
        attempt: Option<AttemptId>,
        outcome: Outcome,
        summary: String,
        time: OffsetDateTime,
        exchange: &Exchange,
        drafts: Option<&[Draft]>,
        out: &mut Vec<Event>,
    ) {
        let stored = attempt.and_then(|id| self.store.get_mut(id));
        let (errors, warnings, started, client_id) = match stored {
            Some(a) => {
                a.awaiting_code = false;
                a.last_seen = time;
                (
                    a.errors,
                    a.warnings,
                    Some(a.started_at),
                    Some(a.authorize.client_id.clone()),
                )
            }
            None => {
                let count = |s: Severity| {
                    drafts
                        .unwrap_or_default()
                        .iter()
                        .filter(|d| d.severity == s)
                        .count()
                };
                let idp = usize::from(outcome == Outcome::Failed);
                (
                    count(Severity::Error) + idp,
                    count(Severity::Warning),
                    None,
                    None,
                )
            }
        };
        let summary = match (outcome, errors, warnings) {
            (Outcome::SignedIn, 0, 0) => summary,
            (Outcome::SignedIn, e, w) => format!("{summary}, but authlens found {}", counts(e, w)),
            (Outcome::Failed, _, _) => summary,
        };
        out.push(Event::Verdict(Verdict {
            injected: None,
            time,
            attempt,
            host: request_host(&exchange.request.uri, &exchange.request.headers),
            client_id,
            outcome,
            summary,
            errors,
            warnings,
            duration: started.and_then(|s| elapsed(s, time)),
        }));
    }
}

/// How a redemption ended, for the code's history, and how another grant's
/// use of its credential (refresh token, device code) ended, for later
/// evidence. A refusal for the request's shape leaves the credential unused:
/// the IdP said so (`invalid_request`, `AADSTS900144`, …), or authlens found
/// the request malformed and the IdP refused it without blaming the grant
/// (`invalid_grant` means it read the credential).
fn redemption_outcome(answer: Option<&TokenResponse>, drafts: &[Draft]) -> RedemptionOutcome {
    let Some(answer) = answer else {
        return RedemptionOutcome::Pending;
    };
    if !answer.is_error() {
        return RedemptionOutcome::TokensIssued;
    }
    let label = answer
        .error_codes
        .first()
        .cloned()
        .or_else(|| answer.error.clone())
        .unwrap_or_else(|| format!("HTTP {}", answer.status));
    let malformed = drafts
        .iter()
        .any(|d| d.rule == Rule::MalformedTokenRequest && d.severity == Severity::Error);
    let blames_grant = answer.error.as_deref() == Some("invalid_grant");
    // A server error or a gateway's answer says nothing about the code: it
    // may well have been used.
    let shape_refusal = malformed && !blames_grant && answer.status < 500;
    if answer.refuses_request_shape() || shape_refusal {
        RedemptionOutcome::RefusedMalformed(label)
    } else {
        RedemptionOutcome::Refused(label)
    }
}

/// The tokens of a response read from a redacted recording: redacted JWTs,
/// and an id_token recorded as its fingerprint only.
fn redacted_tokens(answer: &TokenResponse) -> Vec<RedactedToken> {
    [
        ("id_token", answer.id_token.as_deref()),
        ("access_token", answer.access_token.as_deref()),
    ]
    .into_iter()
    .filter_map(|(kind, token)| {
        let token = token?;
        match jwt::redacted_fingerprint(token) {
            Some(shown) => Some(RedactedToken {
                kind,
                shown,
                claims_kept: true,
            }),
            None if kind == "id_token" && is_fingerprint(kind, token) => Some(RedactedToken {
                kind,
                shown: token.to_owned(),
                claims_kept: false,
            }),
            None => None,
        }
    })
    .collect()
}

fn counts(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, w) => plural(w, "warning"),
        (e, 0) => plural(e, "error"),
        (e, w) => format!("{} and {}", plural(e, "error"), plural(w, "warning")),
    }
}

fn elapsed(from: OffsetDateTime, to: OffsetDateTime) -> Option<Duration> {
    (to - from).try_into().ok()
}

/// True when a change named `label` (one fault, or several joined by `+`)
/// can cause a finding of `rule`: the rules each `--fault` is meant to
/// trigger, and the IdP's answer to it (`idp-error`). Changes of other
/// names (other interceptors) may cause anything.
fn fault_may_cause(label: &str, rule: &str) -> bool {
    label.split('+').any(|fault| {
        let expected: &[&str] = match fault.split('=').next().unwrap_or(fault) {
            "reuse-code" => &["code-reused"],
            "expire-code" => &["code-expired"],
            "redirect-mismatch" => &["param-mismatch"],
            "wrong-verifier" => &["pkce-mismatch"],
            "drop-verifier" => &["pkce-missing-verifier"],
            "wrong-tenant" | "wrong-version" => &["endpoint-mismatch"],
            "unknown-code" => &["token-without-authorize"],
            "json-body" | "get-token" | "drop-param" | "duplicate-param" => {
                &["malformed-token-request"]
            }
            "strip-origin" | "add-origin" | "idp-error" | "slow-idp" | "idp-down" => &[],
            _ => return true,
        };
        rule == "idp-error" || expected.contains(&rule)
    })
}

mod grants;

#[cfg(test)]
mod tests;
