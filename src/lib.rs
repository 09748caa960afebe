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
//!   nothing about OAuth.
//! - [`exchange`]: that plain value, the only thing the network half hands on.
//!
//! Outputs subscribe to the exchange stream; none of them reaches back into
//! the proxy.

#![forbid(unsafe_code)]

pub mod ca;
pub mod config;
pub mod exchange;
pub mod proxy;
pub mod tls;
