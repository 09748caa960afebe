//! Sign-in analysis: recognises the legs of OAuth 2.0 / OIDC
//! authorization-code sign-ins in exchanges, pairs them into attempts and
//! flags every bad redemption.
//!
//! Pure: exchanges in, [`Event`]s out. No sockets, no clock, no printing, so
//! the same code runs on live traffic and on recorded files. Layout:
//!
//! - [`params`], [`form_post`]: lenient parsing of forms, queries and form_post pages;
//! - [`message`]: the four typed messages (authorize request, authorization
//!   response, token request, token response), parsed once; a token request
//!   carries the [`message::Grant`] it asks for (the code grant, refresh,
//!   client_credentials, device code, jwt-bearer and on-behalf-of, token
//!   exchange and password each with their fields; any other by name), and
//!   the device authorization request and its answer;
//! - [`provider`]: what an endpoint URL says (Entra cloud, tenant, version,
//!   B2C policy, other providers' shapes) and endpoints learnt from discovery;
//! - [`pkce`], [`redirect_uri`], [`secret`]: single facts, each in its file;
//! - [`jwt`]: the header and claims of a token, read without verifying it,
//!   and the redacted form recordings keep;
//! - [`attempt`]: the bounded store of attempts and codes; [`pushed`]: the
//!   bounded store of pushed authorization requests (PAR) by `request_uri`;
//! - [`lifecycle`]: the bounded memory of refresh tokens and device codes;
//! - [`rules`]: the rules, as pure functions, one file per family (token
//!   request shape, code, endpoint, parameters, PKCE, IdP error, id_token,
//!   redacted tokens), and what they checked on a redemption; its `mod.rs`
//!   holds the entry points the analyzer calls, which fix the order findings
//!   are reported in;
//! - [`catalogue`]: what an IdP error code means;
//! - [`event`]: what comes out; [`analyzer`]: ties it together;
//! - [`triage`]: which exchanges can be a sign-in leg at all, decided on
//!   the proxy's hot path so the analysis gets every leg and nothing else.

pub mod analyzer;
pub mod attempt;
pub mod catalogue;
pub mod event;
pub mod form_post;
pub mod jwt;
pub mod lifecycle;
pub mod message;
pub mod params;
pub mod pkce;
pub mod provider;
pub mod pushed;
pub mod redirect_uri;
pub mod rules;
pub mod secret;
pub mod triage;

#[cfg(test)]
pub(crate) mod testing;

pub use analyzer::{Analyzer, AnalyzerConfig};
pub use event::{
    AttemptId, AuthorizeEvent, CodeEvent, DecodedToken, DeviceAuthorizationEvent, Event, Finding,
    Injected, Outcome, Pairing, Rule, Severity, TokenEvent, TokenResponseEvent, Verdict,
};
pub use secret::fingerprint;
