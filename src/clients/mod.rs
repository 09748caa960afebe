//! Getting clients in: what `authlens run`, `authlens browser` and
//! `authlens ca` need so that a program or a browser goes through the proxy
//! and trusts its CA, with one command per client.
//!
//! - [`probe`]: is an authlens proxy already listening at an address?
//! - [`env`]: the environment that points common runtimes at the proxy
//!   (a pure plan, table-tested).
//! - [`trust`]: the trust files handed to clients: PEM, DER, a bundle of the
//!   system CAs plus the authlens CA, and a PKCS#12 trust store for Java.
//! - [`browser`]: finding Chromium or Chrome and the flags that make it use
//!   the proxy, loopback included, without installing anything.
//! - [`launch`]: running the child process and passing its exit status on.
//! - [`program`]: finding a program on PATH.
//! - [`join`]: the proxy a command goes through: a running authlens, or a
//!   session started for the command's duration.
//! - [`install_help`]: the text of `authlens ca --install-help`.
//!
//! Nothing here proxies traffic or looks at it: the proxy is found, or
//! started through `crate::session`.

pub mod browser;
pub mod env;
pub mod install_help;
pub mod join;
pub mod launch;
pub mod probe;
pub mod program;
pub mod trust;
