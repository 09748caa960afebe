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
use crate::output::file::Files;
use crate::output::notice::Notices;

/// Writes each exchange as an entry, secrets redacted unless shown.
pub struct HarRecorder {
    writer: HarWriter,
    entries: Entries,
    /// Exchanges left out since the last entry (the recorder fell behind),
    /// said in the next entry's `comment`.
    gap: u64,
}

impl HarRecorder {
    /// Creates `path` (through `files`) now, so a bad path fails before the
    /// run starts. Entries that cannot be written are told to `notices`.
    pub fn create(
        path: &Path,
        files: &Files,
        notices: Notices,
        show_secrets: bool,
    ) -> std::io::Result<HarRecorder> {
        Ok(HarRecorder {
            writer: HarWriter::create(path, files, Some(notices))?,
            entries: Entries::new(show_secrets),
            gap: 0,
        })
    }

    /// Appends one entry; the file is a complete HAR document afterwards.
    /// An entry the disk refuses is left out, counted and told (see
    /// [`HarWriter::append`]); the next one is tried as usual. After a gap
    /// (the recorder fell behind), the next entry written says so.
    pub fn record(&mut self, exchange: &Exchange) {
        let mut entry = self.entries.entry(exchange);
        if self.gap > 0 {
            entry["comment"] = format!(
                "authlens fell behind and did not record {} exchange(s) before this one",
                self.gap
            )
            .into();
        }
        // Left out, counted and told by the writer; the gap is then said by
        // the next entry that lands.
        if self.writer.append(&entry).is_ok() {
            self.gap = 0;
        }
    }

    /// `n` exchanges were left out here: the next entry says so.
    pub fn gap(&mut self, n: u64) {
        self.gap += n;
    }

    /// Syncs the file and returns how many entries it holds.
    pub fn finish(self) -> std::io::Result<usize> {
        let comment = (self.gap > 0).then(|| {
            format!(
                "authlens fell behind and did not record the last {} exchange(s)",
                self.gap
            )
        });
        self.writer.finish_with(comment.as_deref())
    }
}

/// Turns a run's exchanges into HAR entries redacted as `--har` does (the
/// recorder's, and the web view's for its legs and downloads): secrets
/// fingerprinted unless shown, remembered across exchanges.
pub struct Entries {
    redactor: Option<Redactor>,
    /// For requests authlens made itself (a `reuse-code` copy), whose
    /// tokens the app never got: redacted even with `--show-secrets`.
    made: Redactor,
}

impl Entries {
    pub fn new(show_secrets: bool) -> Entries {
        Entries {
            redactor: (!show_secrets).then(Redactor::new),
            made: Redactor::new(),
        }
    }

    /// The entry for `exchange`.
    pub fn entry(&mut self, exchange: &Exchange) -> serde_json::Value {
        let made = exchange
            .intervention
            .as_ref()
            .is_some_and(|i| i.kind == crate::exchange::InterventionKind::Made);
        let redactor = match self.redactor.as_mut() {
            None if made => Some(&mut self.made),
            other => other,
        };
        entry(exchange, redactor)
    }

    /// `url` as an entry would show it (secret parameters fingerprinted).
    pub fn url(&mut self, url: &str) -> String {
        match self.redactor.as_mut() {
            Some(redactor) => redactor.url(url),
            None => url.to_owned(),
        }
    }
}
