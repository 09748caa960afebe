//! Outlets: where analysis events end up (the live terminal log, JSON lines,
//! the Markdown report, next the web view).
//!
//! Each outlet implements [`Outlet`]: it is handed every event in order, then
//! asked to finish once. Outlets never reach back into the proxy or the
//! analysis, and one driver (in `crate::session`) feeds them all, live or
//! from a recording. The renderers ([`live_log`], [`json_lines`]) stay pure:
//! events in, text out; the outlets here own the writer and the flushing.
//! Files are written record by record through [`file`], which survives a
//! full disk; what an output says about itself goes through [`notice`].

pub mod escape;
pub mod file;
pub mod json_lines;
pub mod live_log;
pub mod notice;

use std::io;
use std::sync::{Arc, Mutex};

use crate::oauth::Event;
use file::{SharedTarget, Target};
use notice::Board;

/// Something that consumes the event stream of a run.
pub trait Outlet: Send {
    /// How the outlet is named in an error (`--json signins.jsonl`).
    fn name(&self) -> String;

    /// One event, in order. Written and flushed before returning, so an
    /// outlet read while the run goes on (a terminal, `tail -f`) is current
    /// and a crash loses nothing already handed over. A file that cannot be
    /// written is not an error here: the file counts and tells what it could
    /// not write and goes on (see [`file::DurableFile`]).
    fn event(&mut self, event: &Event) -> io::Result<()>;

    /// The run is over: write what is written at the end and flush.
    fn finish(&mut self) -> io::Result<()>;
}

/// Renders each event to lines and writes them in one go, so outlets
/// sharing a stream never split each other's lines.
pub struct TextOutlet {
    name: String,
    /// Shared with the notice board when this is the live log.
    out: SharedTarget,
    render: Render,
}

/// Turns one event into its lines (the live log remembers what it showed).
type Render = Box<dyn FnMut(&Event) -> Vec<String> + Send>;

impl TextOutlet {
    /// The live terminal log, and the board on which the other outputs'
    /// notices are shown between its lines.
    pub fn live_log(
        out: Target,
        name: String,
        options: live_log::LiveLogOptions,
    ) -> (TextOutlet, Board) {
        let out = Arc::new(Mutex::new(out));
        let board: Board = {
            let out = out.clone();
            let name = name.clone();
            Arc::new(move |text: &str| {
                let line = format!("{}\n", live_log::notice(text, options));
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = out.write_record(line.as_bytes()) {
                    tracing::warn!(
                        "cannot write {}: {e}; it said: {}",
                        escape::escape_controls(&name),
                        escape::escape_controls(text)
                    );
                }
            })
        };
        let mut log = live_log::LiveLog::new(options);
        let outlet = TextOutlet {
            name,
            out,
            render: Box::new(move |event| log.render(event)),
        };
        (outlet, board)
    }

    /// JSON lines: one object per event and line.
    pub fn json_lines(out: Target, name: String) -> TextOutlet {
        TextOutlet {
            name,
            out: Arc::new(Mutex::new(out)),
            render: Box::new(|event| vec![json_lines::to_line(event)]),
        }
    }

    fn target(&self) -> std::sync::MutexGuard<'_, Target> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Outlet for TextOutlet {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut text = String::new();
        for line in (self.render)(event) {
            text.push_str(&line);
            text.push('\n');
        }
        self.target().write_record(text.as_bytes())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.target().finish()
    }
}
