//! `--har PATH`: records a run's exchanges as a HAR file, complete on disk
//! after every exchange.
//!
//! A plain writer of exchanges: the session feeds it from the proxy's
//! exchange stream (and drains it on shutdown); it never reaches back into
//! the proxy.

use std::path::Path;

use super::redact::Redactor;
use super::write::{HarWriter, entry};
use crate::exchange::Exchange;

/// Writes each exchange as an entry, secrets redacted unless shown.
pub struct HarRecorder {
    writer: HarWriter,
    redactor: Option<Redactor>,
    /// Exchanges left out since the last entry (the recorder fell behind),
    /// said in the next entry's `comment`.
    gap: u64,
}

impl HarRecorder {
    /// Creates `path` now, so a bad path fails before the run starts.
    pub fn create(path: &Path, show_secrets: bool) -> std::io::Result<HarRecorder> {
        Ok(HarRecorder {
            writer: HarWriter::create(path)?,
            redactor: (!show_secrets).then(Redactor::new),
            gap: 0,
        })
    }

    /// Appends one entry; the file is a complete HAR document afterwards.
    pub fn record(&mut self, exchange: &Exchange) -> std::io::Result<()> {
        let mut entry = entry(exchange, self.redactor.as_mut());
        if self.gap > 0 {
            entry["comment"] = format!(
                "authlens fell behind and did not record {} exchange(s) before this one",
                self.gap
            )
            .into();
        }
        self.writer.append(&entry)?;
        self.gap = 0;
        Ok(())
    }

    /// `n` exchanges were left out here: the next entry says so.
    pub fn gap(&mut self, n: u64) {
        self.gap += n;
    }

    /// Syncs the file and returns how many entries it holds.
    pub fn finish(self) -> std::io::Result<usize> {
        self.writer.finish()
    }
}
