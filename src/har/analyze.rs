//! `authlens analyze`: recorded HAR files through the one analysis engine.
//!
//! The exchanges of every file, merged by start time, go through the same
//! [`Analyzer`] as live traffic, and each event is rendered by the same
//! outlets (live log, JSON lines). No rule lives here.

use std::io::Write;
use std::path::PathBuf;

use super::HarError;
use super::read::{ReadOptions, Recording, load};
use crate::oauth::{Analyzer, AnalyzerConfig, Event, Severity};
use crate::output::json_lines;
use crate::output::live_log::{self, LiveLogOptions};

/// How `analyze` runs.
#[derive(Debug, Clone, Default)]
pub struct AnalyzeOptions {
    pub analyzer: AnalyzerConfig,
    pub live: LiveLogOptions,
    pub read: ReadOptions,
}

/// What an analysis found, for the exit code and a closing line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnalyzeSummary {
    pub exchanges: usize,
    /// Entries left out because they are not HTTP.
    pub skipped: usize,
    /// Authorization requests seen (sign-in attempts).
    pub attempts: usize,
    pub errors: usize,
    pub warnings: usize,
}

/// Why `analyze` could not finish.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error(transparent)]
    Input(#[from] HarError),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Every event the analysis makes of a recording, in order.
pub fn events(recording: &Recording, config: AnalyzerConfig) -> Vec<Event> {
    let mut analyzer = Analyzer::new(config);
    recording
        .exchanges
        .iter()
        .flat_map(|exchange| analyzer.observe(exchange))
        .collect()
}

/// Reads `paths`, analyses their exchanges in time order, writes the live
/// log lines to `log` and, when given, the JSON lines to `json`.
pub fn analyze_files(
    paths: &[PathBuf],
    options: &AnalyzeOptions,
    log: &mut dyn Write,
    mut json: Option<&mut dyn Write>,
) -> Result<AnalyzeSummary, AnalyzeError> {
    let recording = load(paths, options.read)?;
    let mut summary = AnalyzeSummary {
        exchanges: recording.exchanges.len(),
        skipped: recording.skipped,
        ..AnalyzeSummary::default()
    };
    for event in events(&recording, options.analyzer.clone()) {
        match &event {
            Event::Authorize(_) => summary.attempts += 1,
            Event::Finding(f) if f.severity == Severity::Error => summary.errors += 1,
            Event::Finding(f) if f.severity == Severity::Warning => summary.warnings += 1,
            _ => {}
        }
        for line in live_log::render(&event, options.live) {
            writeln!(log, "{line}")?;
        }
        if let Some(out) = json.as_deref_mut() {
            writeln!(out, "{}", json_lines::to_line(&event))?;
        }
    }
    log.flush()?;
    if let Some(out) = json {
        out.flush()?;
    }
    Ok(summary)
}
