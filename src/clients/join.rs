//! Which authlens a `run` or `browser` command goes through: one already
//! running (found by [`super::probe`]), or a session started in this process
//! for the command's duration.

use std::net::SocketAddr;
use std::sync::Arc;

use super::probe::{self, ChoiceError, ProxyChoice};
use crate::ca::{CaError, CertificateAuthority};
use crate::config::{OutputConfig, ProxyConfig};
use crate::proxy::Hooks;
use crate::session::{Session, SessionError, SessionSummary};

/// Why no proxy could be joined or started.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error(transparent)]
    Choice(#[from] ChoiceError),
    #[error(transparent)]
    Ca(#[from] CaError),
    #[error(transparent)]
    Session(#[from] SessionError),
}

/// The proxy a command goes through.
pub enum Joined {
    /// An authlens already listening: its live log and outputs are its own.
    Running {
        addr: SocketAddr,
        ca: Arc<CertificateAuthority>,
    },
    /// A session started here, stopped when the command ends.
    Started(Session),
}

impl Joined {
    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Joined::Running { addr, .. } => *addr,
            Joined::Started(session) => crate::config::connectable(session.local_addr()),
        }
    }

    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        match self {
            Joined::Running { ca, .. } => ca,
            Joined::Started(session) => session.ca(),
        }
    }

    /// Stops the session started here (flushing its outputs); nothing for a
    /// joined proxy.
    pub async fn finish(self) -> Option<SessionSummary> {
        match self {
            Joined::Running { .. } => None,
            Joined::Started(session) => Some(session.stop().await),
        }
    }
}

/// Joins the authlens at `explicit` (which must be one), or the one at the
/// configured listen address when there is one, or starts a session there
/// (with `hooks`: a joined proxy keeps its own).
pub async fn join_or_start(
    explicit: Option<SocketAddr>,
    proxy: ProxyConfig,
    output: OutputConfig,
    hooks: Hooks,
) -> Result<Joined, JoinError> {
    match probe::choose(explicit, proxy.listen).await? {
        ProxyChoice::Running(addr) => {
            let ca = CertificateAuthority::load(
                &proxy.certs_dir,
                &crate::tls::provider(),
                proxy.open_key,
            )?;
            Ok(Joined::Running {
                addr,
                ca: Arc::new(ca),
            })
        }
        ProxyChoice::Start(_) => Ok(Joined::Started(
            Session::start_with(proxy, output, hooks).await?,
        )),
    }
}
