//! Outlets: where analysis events end up (the live terminal log, JSON lines,
//! the Markdown report, next the web view).
//!
//! Each outlet implements [`Outlet`]: it is handed every event in order, then
//! asked to finish once. Outlets never reach back into the proxy or the
//! analysis, and one driver (in `crate::session`) feeds them all, live or
//! from a recording. The renderers ([`live_log`], [`json_lines`]) stay pure:
//! events in, text out; the outlets here own the writer and the flushing.

pub mod escape;
pub mod json_lines;
pub mod live_log;

use std::io::{self, Write};

use crate::oauth::Event;

/// Something that consumes the event stream of a run.
pub trait Outlet: Send {
    /// How the outlet is named in an error (`--json signins.jsonl`).
    fn name(&self) -> String;

    /// One event, in order. Written and flushed before returning, so an
    /// outlet read while the run goes on (a terminal, `tail -f`) is current
    /// and a crash loses nothing already handed over.
    fn event(&mut self, event: &Event) -> io::Result<()>;

    /// The run is over: write what is written at the end and flush.
    fn finish(&mut self) -> io::Result<()>;
}

/// Renders each event to lines and writes them in one go, so outlets
/// sharing a stream never split each other's lines.
pub struct TextOutlet {
    name: String,
    out: Box<dyn Write + Send>,
    render: Render,
}

/// Turns one event into its lines (the live log remembers what it showed).
type Render = Box<dyn FnMut(&Event) -> Vec<String> + Send>;

impl TextOutlet {
    /// The live terminal log.
    pub fn live_log(
        out: Box<dyn Write + Send>,
        name: String,
        options: live_log::LiveLogOptions,
    ) -> TextOutlet {
        let mut log = live_log::LiveLog::new(options);
        TextOutlet {
            name,
            out,
            render: Box::new(move |event| log.render(event)),
        }
    }

    /// JSON lines: one object per event and line.
    pub fn json_lines(out: Box<dyn Write + Send>, name: String) -> TextOutlet {
        TextOutlet {
            name,
            out,
            render: Box::new(|event| vec![json_lines::to_line(event)]),
        }
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
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
