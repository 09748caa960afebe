//! authlens: a local HTTPS debugging proxy that makes OAuth 2.0 / OpenID
//! Connect sign-in failures obvious.
//!
//! A tour of the layout, following the data:
//!
//! - [`cli`]: the command line: flags parsed once into configurations, and
//!   the body of each subcommand (the only part that prints).
//! - [`config`]: the validated configuration of a run: the proxy's, and the
//!   outputs' (every output decision made once).
//! - [`session`]: one run of authlens, live or replayed from a recording:
//!   wires the proxy, the analysis, the outlets and the HAR recorder, keeps
//!   a bounded history of recent events for late subscribers, and owns the
//!   one shutdown order.
//! - [`ca`]: the local certificate authority and per-host leaf certificates.
//! - [`tls`]: rustls configurations for both sides, built once at start.
//! - [`proxy`]: the network half. Accepts clients, intercepts `CONNECT`
//!   tunnels, forwards upstream, and publishes every finished request/response
//!   pair as an [`exchange::Exchange`] on its feed (lossless queues for
//!   consumers, sorted by a triage they supply; a lagging broadcast for
//!   watchers). It knows
//!   nothing about OAuth. Two hooks let other code in: an interceptor in the
//!   forward path (forward, rewrite, hold, replay, answer locally or drop a
//!   request) and a local service for requests addressed to the proxy itself.
//! - [`exchange`]: that plain value, the only thing the network half hands on.
//! - [`decode`]: undoes content codings on captured bodies (for observers
//!   only; forwarded bytes are never touched).
//! - [`oauth`]: the pure sign-in analysis. Exchanges in, legs, findings and
//!   verdicts out; no sockets, no clock, no printing. The same code runs on
//!   recorded HAR files.
//! - [`output`]: the outlets of the event stream (one `Outlet` trait), their
//!   pure renderers (live terminal log, JSON lines), the durable file writer
//!   every output file goes through (whole records only, survives a full
//!   disk) and the notices that say at once what could not be written.
//! - [`har`]: HAR files as a pure input and output format: reading
//!   recordings (browser DevTools, mitmproxy, authlens's own) into
//!   exchanges, and writing a session with secrets redacted.
//! - [`inject`]: fault injection for QA (`--fault reuse-code`, …): an
//!   interceptor that makes a sign-in fail on purpose and marks what it did.
//! - [`report`]: the Markdown report for a bug ticket (`authlens report`).
//! - [`explain`]: `authlens explain`, the error catalogue on the command line.
//! - [`web`]: the live web view, served by the proxy itself (`GET /` on
//!   its port, behind a per-run token): one more consumer of the event
//!   stream and a watcher of the exchanges, with bounded state.
//! - [`clients`]: getting clients in: `authlens run -- CMD` (proxy and trust
//!   variables for common runtimes), `authlens browser` (Chromium through the
//!   proxy, localhost included) and `authlens ca` (export, install help).
//!
//! The analysis subscribes to the exchange stream and the outlets to the
//! event stream; none of them reaches back into the proxy. The test harness
//! (a test CA, HTTPS upstreams, a mock Entra ID) is the `authlens-testkit`
//! crate in `testkit/`, shared by the integration tests and the examples.

#![forbid(unsafe_code)]
// A future over clippy.toml's 4 KiB is boxed where it is awaited: awaited
// inline, it is copied at every level that awaits it and enlarges every
// future around it (a request's future was 36 KiB that way, copied per
// request; see `proxy::conn`).
#![warn(clippy::large_futures)]

pub mod ca;
pub mod cli;
pub mod clients;
pub mod config;
pub mod decode;
pub mod exchange;
pub mod explain;
pub mod har;
pub mod inject;
pub mod oauth;
pub mod output;
pub mod proxy;
pub mod report;
pub mod session;
pub mod tls;
pub mod web;
