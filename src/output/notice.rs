//! Notices: what an output says about itself while the run goes on (a file
//! that cannot be written, then written again), shown at once where the
//! user looks, and what it could not write, counted for the summary.
//!
//! The live log is the board: a notice is written between its lines, as one
//! line, escaped like the rest. Without a live log (or for the live log's own
//! file) a notice goes to stderr through `tracing`. Nothing here writes a
//! file of its own.

use std::fmt;
use std::io;
use std::sync::{Arc, Mutex};

use super::escape::escape_controls;
use super::file::Unit;

/// Shows one notice (already worded, not yet escaped) at once.
pub type Board = Arc<dyn Fn(&str) + Send + Sync>;

/// What one output could not write over a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unwritten {
    /// The output (`--json signins.jsonl`, `--har session.har`).
    pub output: String,
    /// How many records were not written, and what they are.
    pub count: usize,
    pub unit: Unit,
    /// The last write error.
    pub cause: String,
}

impl fmt::Display for Unwritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} not written ({})",
            escape_controls(&self.output),
            self.unit.count(self.count),
            escape_controls(&self.cause)
        )
    }
}

/// The notice board of a run, and its ledger of what was not written.
/// Cloned into every output that writes a file.
#[derive(Clone, Default)]
pub struct Notices {
    /// Where notices are shown (none: stderr).
    board: Option<Board>,
    ledger: Arc<Mutex<Vec<Unwritten>>>,
}

impl Notices {
    /// Notices shown on `board` from now on.
    pub fn show_on(&mut self, board: Board) {
        self.board = Some(board);
    }

    /// The same ledger, with notices on stderr: for the board's own file,
    /// which cannot tell its failures on itself.
    pub fn off_board(&self) -> Notices {
        Notices {
            board: None,
            ledger: self.ledger.clone(),
        }
    }

    /// Shows `text` at once.
    pub fn post(&self, text: &str) {
        match &self.board {
            Some(board) => board(text),
            None => tracing::warn!("{}", escape_controls(text)),
        }
    }

    /// Records that `output` has now failed to write `count` records in all,
    /// the last time because of `cause`.
    pub fn unwritten(&self, output: &str, unit: Unit, count: usize, cause: &io::Error) {
        let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
        let entry = Unwritten {
            output: output.to_owned(),
            count,
            unit,
            cause: cause.to_string(),
        };
        match ledger.iter_mut().find(|u| u.output == output) {
            Some(known) => *known = entry,
            None => ledger.push(entry),
        }
    }

    /// What each output could not write, in the order they first failed.
    pub fn ledger(&self) -> Vec<Unwritten> {
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl fmt::Debug for Notices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notices")
            .field("board", &self.board.is_some())
            .field("ledger", &self.ledger())
            .finish()
    }
}
