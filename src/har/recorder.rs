//! `--har PATH`: the outlet that records the proxy's exchange stream as a
//! HAR file, complete on disk after every exchange.
//!
//! It subscribes to the exchange stream like the analysis does and never
//! reaches back into the proxy. On shutdown the caller cancels `stop`: the
//! recorder writes what the proxy already published, then syncs the file.

use std::path::Path;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::redact::Redactor;
use super::write::{HarWriter, entry};
use crate::exchange::Exchange;

/// Creates `path` now (so a bad path fails at start), then records every
/// exchange into it until the stream ends or `stop` is cancelled. Secrets are
/// redacted unless `show_secrets`. The task returns how many entries it wrote.
pub fn spawn_recorder(
    mut exchanges: broadcast::Receiver<Arc<Exchange>>,
    path: &Path,
    show_secrets: bool,
    stop: CancellationToken,
) -> std::io::Result<JoinHandle<std::io::Result<usize>>> {
    let mut writer = HarWriter::create(path)?;
    let mut redactor = (!show_secrets).then(Redactor::new);
    Ok(tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        let mut write = |exchange: &Exchange| writer.append(&entry(exchange, redactor.as_mut()));
        loop {
            let next = handle.block_on(async {
                tokio::select! {
                    biased;
                    received = exchanges.recv() => Some(received),
                    _ = stop.cancelled() => None,
                }
            });
            match next {
                Some(Ok(exchange)) => write(&exchange)?,
                Some(Err(RecvError::Lagged(n))) => {
                    tracing::warn!("the HAR recorder fell behind and skipped {n} exchange(s)");
                }
                Some(Err(RecvError::Closed)) => break,
                None => {
                    // Drain what was already published, then finish.
                    loop {
                        match exchanges.try_recv() {
                            Ok(exchange) => write(&exchange)?,
                            Err(TryRecvError::Lagged(_)) => continue,
                            Err(_) => break,
                        }
                    }
                    break;
                }
            }
        }
        writer.finish()
    }))
}
