//! Wiring between the exchange stream, the analysis and the outlets.
//!
//! One analysis task turns exchanges into [`Event`]s and broadcasts them;
//! each outlet (terminal log, JSON lines file, and later the web view)
//! subscribes to that one event stream. Nothing here reaches back into the
//! proxy. On shutdown the caller cancels `stop`: the analysis drains what the
//! proxy already published, then the outlets drain and flush, so nothing
//! captured before Ctrl-C is lost.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::exchange::Exchange;
use crate::oauth::{Analyzer, AnalyzerConfig, Event};
use crate::output::{json_lines, live_log};

/// How many events an outlet may fall behind before it misses some.
const EVENT_BUFFER: usize = 4096;

/// The running analysis and its event stream.
pub struct Analysis {
    events: broadcast::Sender<Arc<Event>>,
    task: JoinHandle<()>,
}

impl Analysis {
    /// Starts analysing `exchanges`. Subscribe outlets with
    /// [`Analysis::subscribe`] before traffic flows.
    pub fn spawn(
        mut exchanges: broadcast::Receiver<Arc<Exchange>>,
        config: AnalyzerConfig,
        stop: CancellationToken,
    ) -> Analysis {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let sender = events.clone();
        let task = tokio::spawn(async move {
            let mut analyzer = Analyzer::new(config);
            let publish = |analyzer: &mut Analyzer, exchange: &Exchange| {
                for event in analyzer.observe(exchange) {
                    let _ = sender.send(Arc::new(event));
                }
            };
            loop {
                tokio::select! {
                    biased;
                    received = exchanges.recv() => match received {
                        Ok(exchange) => publish(&mut analyzer, &exchange),
                        Err(RecvError::Lagged(n)) => tracing::warn!(
                            "the analysis fell behind and skipped {n} exchange(s)"
                        ),
                        Err(RecvError::Closed) => break,
                    },
                    _ = stop.cancelled() => {
                        // Drain what was already published, then finish.
                        loop {
                            match exchanges.try_recv() {
                                Ok(exchange) => publish(&mut analyzer, &exchange),
                                Err(TryRecvError::Lagged(_)) => continue,
                                Err(_) => break,
                            }
                        }
                        break;
                    }
                }
            }
        });
        Analysis { events, task }
    }

    /// A new receiver of analysis events.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Waits for the analysis to drain after `stop`; subscribers then see the
    /// end of the stream once they have read everything.
    pub async fn finish(self) {
        drop(self.events);
        let _ = self.task.await;
    }
}

/// Writes every event with `render` to `out`, flushing after each event,
/// until the event stream ends.
pub fn spawn_outlet<W, F>(
    mut events: broadcast::Receiver<Arc<Event>>,
    mut out: W,
    render: F,
) -> JoinHandle<std::io::Result<()>>
where
    W: Write + Send + 'static,
    F: Fn(&Event) -> Vec<String> + Send + 'static,
{
    tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        loop {
            match handle.block_on(events.recv()) {
                Ok(event) => {
                    // One write per event, so outlets sharing a stream never
                    // split each other's lines.
                    let mut text = String::new();
                    for line in render(&event) {
                        text.push_str(&line);
                        text.push('\n');
                    }
                    out.write_all(text.as_bytes())?;
                    out.flush()?;
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!("an output fell behind and skipped {n} event(s)");
                }
                Err(RecvError::Closed) => return out.flush(),
            }
        }
    })
}

/// The live terminal log outlet.
pub fn live_log_outlet<W: Write + Send + 'static>(
    events: broadcast::Receiver<Arc<Event>>,
    out: W,
    options: live_log::LiveLogOptions,
) -> JoinHandle<std::io::Result<()>> {
    spawn_outlet(events, out, move |event| live_log::render(event, options))
}

/// The JSON lines outlet: one object per line.
pub fn json_lines_outlet<W: Write + Send + 'static>(
    events: broadcast::Receiver<Arc<Event>>,
    out: W,
) -> JoinHandle<std::io::Result<()>> {
    spawn_outlet(events, out, |event| vec![json_lines::to_line(event)])
}
