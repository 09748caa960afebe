//! authlens: a local HTTPS debugging proxy that makes OAuth 2.0 / OpenID
//! Connect sign-in failures obvious.
//!
//! A tour of the layout, following the data:
//!
//! - [`config`]: the validated configuration the binary builds from flags.
//! - [`ca`]: the local certificate authority and per-host leaf certificates.
//! - [`tls`]: rustls configurations for both sides, built once at start.
//! - [`proxy`]: the network half. Accepts clients, intercepts `CONNECT`
//!   tunnels, forwards upstream, and publishes every finished request/response
//!   pair as an [`exchange::Exchange`] on a broadcast channel. It knows
//!   nothing about OAuth. Two hooks let other code in: an interceptor in the
//!   forward path (forward, rewrite, hold, replay, answer locally or drop a
//!   request) and a local service for requests addressed to the proxy itself.
//! - [`exchange`]: that plain value, the only thing the network half hands on.
//! - [`decode`]: undoes content codings on captured bodies (for observers
//!   only; forwarded bytes are never touched).
//! - [`oauth`]: the pure sign-in analysis. Exchanges in, legs, findings and
//!   verdicts out; no sockets, no clock, no printing. The same code will run
//!   on recorded HAR files.
//! - [`output`]: pure renderers of analysis events (live terminal log, JSON
//!   lines).
//! - [`pipeline`]: runs the analysis on the exchange stream and feeds the
//!   outlets from one event stream.
//! - [`har`]: HAR files: reading recordings (browser DevTools, mitmproxy,
//!   authlens's own) into exchanges for `authlens analyze`, and the `--har`
//!   recorder that writes the session with secrets redacted.
//! - [`report`]: the Markdown report for a bug ticket (`authlens report`).
//! - [`explain`]: `authlens explain`, the error catalogue on the command line.
//! - [`clients`]: getting clients in: `authlens run -- CMD` (proxy and trust
//!   variables for common runtimes), `authlens browser` (Chromium through the
//!   proxy, localhost included) and `authlens ca` (export, install help).
//!
//! Outputs subscribe to the exchange stream; none of them reaches back into
//! the proxy.

#![forbid(unsafe_code)]

pub mod ca;
pub mod clients;
pub mod config;
pub mod decode;
pub mod exchange;
pub mod explain;
pub mod har;
pub mod oauth;
pub mod output;
pub mod pipeline;
pub mod proxy;
pub mod report;
pub mod tls;
