//! One run of authlens: the proxy, the analysis, the outlets and the HAR
//! recorder, wired in one place with one shutdown order.
//!
//! [`Session::start`] binds the proxy and starts everything that listens to
//! it; [`Session::stop`] stops accepting, lets in-flight exchanges finish,
//! drains the analysis, flushes and closes every outlet and the recording,
//! then says what the run found. [`Session::replay`] runs the same analysis
//! and the same outlets over a recording (`authlens analyze`, `report`). The
//! binary, the tests' lab, the demo, the examples and `run`/`browser` all
//! start authlens here. Nothing here formats an event or knows a rule.

mod drive;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use drive::{EventHub, EventSubscription, GrantCount, Tally};

use crate::ca::CertificateAuthority;
use crate::config::{OutputConfig, ProxyConfig, Sink};
use crate::exchange::Exchange;
use crate::har::{HarRecorder, Recording};
use crate::oauth::{Analyzer, Event};
use crate::output::file::{DurableFile, Files, Target, Unit};
use crate::output::notice::{Notices, Unwritten};
use crate::output::{Outlet, TextOutlet};
use crate::proxy::{
    Allowance, Delivery, ExchangeFeed, ExchangeStream, Glance, Glancer, Heads, Hooks, Lane, Proxy,
    ShutdownHandle, StartError, Triage,
};
use crate::report::ReportOutlet;
use drive::Drain;

/// Why a session could not start or a replay could not finish. Each message
/// includes its cause, which is therefore not also a `source()` (printing
/// the chain of sources would repeat it).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot start the proxy: {0}")]
    Proxy(StartError),
    #[error("cannot create {flag} {path}: {cause}")]
    Create {
        flag: &'static str,
        path: String,
        cause: io::Error,
    },
    #[error("cannot write {outlet}: {cause}")]
    Write { outlet: String, cause: io::Error },
}

impl From<StartError> for SessionError {
    fn from(error: StartError) -> Self {
        SessionError::Proxy(error)
    }
}

/// What may wait for the analysis and the recorder, in captured bytes.
/// Sign-in legs get room for minutes of a stalled output (only an output
/// stalled for good fills it, and then memory matters more); other traffic
/// waiting for the recorder gets little (it is left out, and said so, when
/// the recorder falls behind).
const VITAL_BYTES: usize = 512 << 20;
const HAR_BULK_BYTES: usize = 64 << 20;

/// What a stopped session did.
#[derive(Debug, Default)]
pub struct SessionSummary {
    pub tally: Tally,
    /// The HAR file and how many exchanges it holds.
    pub har: Option<(PathBuf, usize)>,
    /// Exchanges the HAR recorder could not keep up with and left out
    /// (other traffic first; each gap is marked in the next entry).
    pub har_missed: u64,
    /// The files the outlets wrote (`--json`, the report); a failure to
    /// write one is among the `problems`.
    pub files: Vec<PathBuf>,
    /// Outputs that failed along the way (each names the outlet).
    pub problems: Vec<String>,
    /// What each output file could not write (a full disk), by output.
    pub unwritten: Vec<Unwritten>,
}

/// A running session.
pub struct Session {
    addr: SocketAddr,
    ca: Arc<CertificateAuthority>,
    feed: ExchangeFeed,
    events: EventHub,
    proxy: ShutdownHandle,
    proxy_task: JoinHandle<()>,
    /// Cancelled once the proxy has stopped: the analysis and the recorder
    /// take what was already published, then end.
    exchanges_done: CancellationToken,
    /// Cancelled once the analysis has ended: the outlets take what was
    /// already published, flush, then end.
    events_done: CancellationToken,
    analysis: JoinHandle<Tally>,
    recorder: Option<(PathBuf, JoinHandle<Recorded>)>,
    outlets: Vec<(String, JoinHandle<io::Result<()>>)>,
    /// The files the outlets write (`--json`, the report).
    files: Vec<PathBuf>,
    /// Where the outputs tell what they could not write.
    notices: Notices,
}

impl Session {
    /// Binds the proxy (warning about settings that expose it or its
    /// clients), creates every output file, and starts serving.
    pub async fn start(proxy: ProxyConfig, output: OutputConfig) -> Result<Session, SessionError> {
        Session::start_with(proxy, output, Hooks::default()).await
    }

    /// [`Session::start`] with an interceptor and a local service plugged
    /// into the proxy (the fault injector and the web view plug in here).
    pub async fn start_with(
        proxy: ProxyConfig,
        output: OutputConfig,
        hooks: Hooks,
    ) -> Result<Session, SessionError> {
        if !proxy.listen.ip().is_loopback() {
            tracing::warn!(
                "listening on {}: the proxy is open to the network, and anyone who can reach it can use it and see decrypted traffic",
                proxy.listen
            );
        }
        if proxy.insecure {
            tracing::warn!(
                "--insecure: upstream certificates are NOT verified; anyone on the path can impersonate any server"
            );
        }
        // Files first, so a bad path fails before anything listens.
        let (outlets, notices) = open_outlets(&output)?;
        let recorder = open_recorder(&output, &notices)?;
        let proxy = Proxy::bind_with(proxy, hooks).await?;

        let feed = proxy.feed();
        let mut events = EventHub::new(output.history);
        let exchanges_done = CancellationToken::new();
        let events_done = CancellationToken::new();
        let outlets = outlets
            .into_iter()
            .map(|outlet| {
                let name = outlet.name();
                let task = spawn_outlet(events.outlet(), outlet, events_done.clone());
                (name, task)
            })
            .collect();
        let files = [&output.json, &output.report]
            .into_iter()
            .filter_map(|sink| match sink {
                Some(Sink::File(path)) => Some(path.clone()),
                _ => None,
            })
            .collect();
        // Every sign-in leg reaches the analysis and the recorder; other
        // traffic skips the analysis and may be left out of a recorder that
        // falls behind (and then says so).
        let analysis = spawn_analysis(
            feed.consume_glancing(
                glance(),
                triage(Lane::Skip),
                Allowance {
                    vital_bytes: VITAL_BYTES,
                    bulk_bytes: 0,
                },
            ),
            Analyzer::new(output.analyzer.clone()),
            events.clone(),
            notices.clone(),
            exchanges_done.clone(),
        );
        let recorder = recorder.map(|(path, recorder)| {
            let stream = feed.consume(
                triage(Lane::Bulk),
                Allowance {
                    vital_bytes: VITAL_BYTES,
                    bulk_bytes: HAR_BULK_BYTES,
                },
            );
            let task = spawn_recorder(stream, recorder, notices.clone(), exchanges_done.clone());
            (path, task)
        });
        let addr = proxy.local_addr();
        let ca = proxy.ca().clone();
        let shutdown = proxy.shutdown_handle();
        let proxy_task = tokio::spawn(proxy.run(std::future::pending()));
        Ok(Session {
            addr,
            ca,
            feed,
            events,
            proxy: shutdown,
            proxy_task,
            exchanges_done,
            events_done,
            analysis,
            recorder,
            outlets,
            files,
            notices,
        })
    }

    /// The address the proxy listens on (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The local CA clients must trust.
    pub fn ca(&self) -> &Arc<CertificateAuthority> {
        &self.ca
    }

    /// Finished exchanges from now on (subscribe before sending traffic).
    /// While any such receiver lives, the proxy builds every exchange.
    pub fn exchanges(&self) -> broadcast::Receiver<Arc<Exchange>> {
        self.feed.subscribe()
    }

    /// The exchange feed, for a watcher that subscribes only while someone
    /// looks (the web view's traffic list while a page is open).
    pub fn feed(&self) -> &ExchangeFeed {
        &self.feed
    }

    /// The exchanges the analysis reads (sign-in legs and whatever may be
    /// one), in a lossless stream of their own within `vital_bytes` of
    /// captured bodies: the proxy builds nothing for it that it does not
    /// build for the analysis, so a reader of sign-in legs costs other
    /// traffic nothing.
    pub fn sign_in_legs(&self, vital_bytes: usize) -> ExchangeStream {
        self.feed.consume_glancing(
            glance(),
            triage(Lane::Skip),
            Allowance {
                vital_bytes,
                bulk_bytes: 0,
            },
        )
    }

    /// The recent analysis events, then the live stream.
    pub fn events(&self) -> EventSubscription {
        self.events.subscribe()
    }

    /// Stops in the one order that loses nothing: stop accepting and let
    /// in-flight exchanges finish (within the proxy's grace period), let the
    /// analysis and the recorder take every published exchange, let every
    /// outlet take every event and flush, then report.
    pub async fn stop(self) -> SessionSummary {
        self.proxy.shutdown();
        if let Err(e) = self.proxy_task.await {
            tracing::warn!("the proxy task failed: {e}");
        }
        self.exchanges_done.cancel();
        let mut summary = SessionSummary {
            tally: self.analysis.await.unwrap_or_else(|e| {
                tracing::warn!("the analysis task failed: {e}");
                Tally::default()
            }),
            ..SessionSummary::default()
        };
        self.events_done.cancel();
        summary.files = self.files;
        for (name, task) in self.outlets {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => summary.problems.push(format!("writing {name} failed: {e}")),
                Err(e) => summary
                    .problems
                    .push(format!("the {name} output failed: {e}")),
            }
        }
        if let Some((path, task)) = self.recorder {
            match task.await {
                Ok(Recorded { written, missed }) => {
                    summary.har_missed = missed;
                    match written {
                        Ok(n) => summary.har = Some((path, n)),
                        Err(e) => summary
                            .problems
                            .push(format!("writing {} failed: {e}", path.display())),
                    }
                }
                Err(e) => summary
                    .problems
                    .push(format!("the HAR recorder failed: {e}")),
            }
        }
        summary.unwritten = self.notices.ledger();
        summary
    }

    /// Runs the analysis over a recording and feeds the same outlets (and,
    /// when asked, a HAR file) as a live run, in time order.
    /// A record an output file could not write (a full disk) fails the
    /// replay once every output is finished.
    pub fn replay(recording: &Recording, output: &OutputConfig) -> Result<Tally, SessionError> {
        let (mut outlets, notices) = open_outlets(output)?;
        let mut recorder = open_recorder(output, &notices)?;
        let mut analyzer = Analyzer::new(output.analyzer.clone());
        let mut tally = Tally::default();
        tally.exchanges = recording.exchanges.len();
        for exchange in &recording.exchanges {
            if let Some((_, recorder)) = recorder.as_mut() {
                recorder.record(exchange);
            }
            for event in analyzer.observe(exchange) {
                hand_over(&mut outlets, &mut tally, &event)?;
            }
        }
        finish(outlets)?;
        if let Some((path, recorder)) = recorder {
            recorder
                .finish()
                .map_err(write_error(path.display().to_string()))?;
        }
        all_written(&notices)?;
        Ok(tally)
    }

    /// Feeds events analysed earlier (read back from a `--json` file) to the
    /// outlets `output` names.
    pub fn replay_events(
        events: impl IntoIterator<Item = Event>,
        output: &OutputConfig,
    ) -> Result<Tally, SessionError> {
        let (mut outlets, notices) = open_outlets(output)?;
        let mut tally = Tally::default();
        for event in events {
            hand_over(&mut outlets, &mut tally, &event)?;
        }
        finish(outlets)?;
        all_written(&notices)?;
        Ok(tally)
    }
}

/// Counts `event` and hands it to every outlet of a replay.
fn hand_over(
    outlets: &mut [Box<dyn Outlet>],
    tally: &mut Tally,
    event: &Event,
) -> Result<(), SessionError> {
    tally.count(event);
    for outlet in outlets {
        outlet.event(event).map_err(write_error(outlet.name()))?;
    }
    Ok(())
}

/// Finishes every outlet of a replay (the report is written here).
fn finish(outlets: Vec<Box<dyn Outlet>>) -> Result<(), SessionError> {
    for mut outlet in outlets {
        outlet.finish().map_err(write_error(outlet.name()))?;
    }
    Ok(())
}

fn write_error(outlet: String) -> impl FnOnce(io::Error) -> SessionError {
    move |cause| SessionError::Write { outlet, cause }
}

/// A replay fails when an output could not write everything.
fn all_written(notices: &Notices) -> Result<(), SessionError> {
    match notices.ledger().into_iter().next() {
        None => Ok(()),
        Some(lost) => Err(SessionError::Write {
            outlet: lost.output,
            cause: io::Error::other(format!(
                "{} not written: {}",
                lost.unit.count(lost.count),
                lost.cause
            )),
        }),
    }
}

/// The outlets `output` asks for, their files created now, and the notice
/// board of the run (the live log, when there is one).
fn open_outlets(output: &OutputConfig) -> Result<(Vec<Box<dyn Outlet>>, Notices), SessionError> {
    let mut notices = Notices::default();
    let mut outlets: Vec<Box<dyn Outlet>> = Vec::new();
    if let Some(live) = &output.live_log {
        let name = format!("the live log on {}", live.sink.describe());
        // The board's own file cannot tell its failures on itself.
        let target = open_sink(
            "the live log on",
            &live.sink,
            &name,
            &output.files,
            Some(notices.off_board()),
        )?;
        let (outlet, board) = TextOutlet::live_log(target, name, live.options);
        notices.show_on(board);
        outlets.push(Box::new(outlet));
    }
    if let Some(sink) = &output.json {
        let name = format!("--json {}", sink.describe());
        let target = open_sink("--json", sink, &name, &output.files, Some(notices.clone()))?;
        outlets.push(Box::new(TextOutlet::json_lines(target, name)));
    }
    if let Some(sink) = &output.report {
        let name = format!("the report on {}", sink.describe());
        // Written once, at the end: its failure is the outlet's error.
        let target = open_sink("the report", sink, &name, &output.files, None)?;
        outlets.push(Box::new(ReportOutlet::new(
            target,
            name,
            output.source.clone(),
        )));
    }
    Ok((outlets, notices))
}

/// Where a sink's text goes: stdout, stderr, or a file created (truncated)
/// now, so a bad path fails before the run starts, and written record by
/// record, telling `notices` what it cannot write.
fn open_sink(
    flag: &'static str,
    sink: &Sink,
    name: &str,
    files: &Files,
    notices: Option<Notices>,
) -> Result<Target, SessionError> {
    Ok(match sink {
        Sink::Stdout => Target::Stream(Box::new(io::stdout())),
        Sink::Stderr => Target::Stream(Box::new(io::stderr())),
        Sink::File(path) => Target::File(
            DurableFile::create(files, path, b"", b"", name.to_owned(), Unit::EVENT, notices)
                .map_err(|cause| SessionError::Create {
                    flag,
                    path: sink.describe(),
                    cause,
                })?,
        ),
    })
}

fn open_recorder(
    output: &OutputConfig,
    notices: &Notices,
) -> Result<Option<(PathBuf, HarRecorder)>, SessionError> {
    let Some(path) = &output.har else {
        return Ok(None);
    };
    let recorder = HarRecorder::create(
        path,
        &output.files,
        notices.clone(),
        output.analyzer.show_secrets,
    )
    .map_err(|cause| SessionError::Create {
        flag: "--har",
        path: path.display().to_string(),
        cause,
    })?;
    Ok(Some((path.clone(), recorder)))
}

/// The analysis's glance at heads (see [`ExchangeFeed::consume_glancing`]):
/// the proxy builds only the exchanges whose heads may make a sign-in leg,
/// and of pages without a type those that start like markup. One glance for
/// every consumer that reads sign-in legs (the analysis, the web view), so
/// the feed asks it once per head however many there are.
fn glance() -> Glancer {
    static GLANCE: OnceLock<Glancer> = OnceLock::new();
    GLANCE
        .get_or_init(|| {
            Arc::new(|heads: &Heads<'_>| {
                match crate::oauth::triage::heads_may_matter(heads.uri, heads.response) {
                    Some(true) => Glance::Wanted,
                    Some(false) => Glance::Unwanted,
                    None => match heads.body_start {
                        Some(body) if crate::oauth::triage::looks_like_markup(body) => {
                            Glance::Wanted
                        }
                        Some(_) => Glance::Unwanted,
                        None => Glance::Undecided,
                    },
                }
            })
        })
        .clone()
}

/// Sorts exchanges for a consumer: sign-in legs (and whatever may be one)
/// are vital, the rest go to `others`.
fn triage(others: Lane) -> Triage {
    Arc::new(move |exchange: &Exchange| {
        if crate::oauth::triage::may_matter(exchange) {
            Lane::Vital
        } else {
            others
        }
    })
}

/// The analysis task: exchanges in, events out to the hub; returns the
/// tally once drained. It gets every exchange that may be a sign-in leg
/// (the others are only counted) and waits for the outlets when they fall
/// behind, so it never skips one.
fn spawn_analysis(
    mut exchanges: ExchangeStream,
    mut analyzer: Analyzer,
    events: EventHub,
    notices: Notices,
    done: CancellationToken,
) -> JoinHandle<Tally> {
    tokio::spawn(async move {
        let mut tally = Tally::default();
        let mut drained = Drain::new(&mut exchanges, &done);
        while let Some(delivery) = drained.next().await {
            match delivery {
                Delivery::Exchange(exchange) => {
                    tally.exchanges += 1;
                    for event in analyzer.observe(&exchange) {
                        tally.count(&event);
                        events.publish(event).await;
                    }
                }
                // Only when an output stalled for good and the legs waiting
                // for it outgrew their room.
                Delivery::Gap(n) => {
                    if tally.unanalysed == 0 {
                        notices.post(&format!(
                            "authlens: {n} exchange(s) that may be sign-in legs were NOT analysed: an output stopped taking events and {} MiB waited for it",
                            VITAL_BYTES >> 20
                        ));
                    }
                    tally.unanalysed += usize::try_from(n).unwrap_or(usize::MAX);
                }
            }
        }
        tally.exchanges += usize::try_from(exchanges.skipped()).unwrap_or(usize::MAX);
        tally
    })
}

/// What the recorder wrote, and how many exchanges it had to leave out.
struct Recorded {
    written: io::Result<usize>,
    missed: u64,
}

/// The recorder writes files: it runs on the blocking pool.
fn spawn_recorder(
    mut exchanges: ExchangeStream,
    mut recorder: HarRecorder,
    notices: Notices,
    done: CancellationToken,
) -> JoinHandle<Recorded> {
    tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        handle.block_on(async {
            let mut told = false;
            let mut drained = Drain::new(&mut exchanges, &done);
            while let Some(delivery) = drained.next().await {
                match delivery {
                    Delivery::Exchange(exchange) => recorder.record(&exchange),
                    Delivery::Gap(n) => {
                        if !told {
                            notices.post(&format!(
                                "authlens: the HAR recorder fell behind: {n} exchange(s) were left out (each gap is marked in the next entry's comment; sign-in legs are kept as long as there is room)"
                            ));
                            told = true;
                        }
                        recorder.gap(n);
                    }
                }
            }
        });
        Recorded {
            written: recorder.finish(),
            missed: exchanges.dropped(),
        }
    })
}

/// An outlet writes to a terminal or a file: it runs on the blocking pool.
fn spawn_outlet(
    mut events: mpsc::Receiver<Arc<Event>>,
    mut outlet: Box<dyn Outlet>,
    done: CancellationToken,
) -> JoinHandle<io::Result<()>> {
    tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        let what = outlet.name();
        handle
            .block_on(async {
                let mut drained = Drain::new(&mut events, &done);
                while let Some(event) = drained.next().await {
                    outlet.event(&event)?;
                }
                Ok::<_, io::Error>(())
            })
            .inspect_err(|e| {
                tracing::warn!(
                    "cannot write {}: {e}; it gets nothing more",
                    crate::output::escape::escape_controls(&what)
                );
            })?;
        outlet.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message, the way a printer of error chains (anyhow's `{:#}`)
    /// shows it.
    fn with_sources(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        text
    }

    #[test]
    fn a_cause_is_said_once_even_with_the_chain_of_sources() {
        let taken = SessionError::from(StartError::Listen {
            addr: "127.0.0.1:8080".parse().unwrap(),
            cause: io::ErrorKind::AddrInUse.into(),
        });
        let cause = io::Error::from(io::ErrorKind::AddrInUse).to_string();
        let text = with_sources(&taken);
        assert_eq!(text.matches(&cause).count(), 1, "{text}");
        assert!(text.contains("--listen"), "{text}");
        let create = SessionError::Create {
            flag: "--json",
            path: "/nope/x.jsonl".into(),
            cause: io::ErrorKind::NotFound.into(),
        };
        let cause = io::Error::from(io::ErrorKind::NotFound).to_string();
        assert_eq!(with_sources(&create).matches(&cause).count(), 1);
    }
}
