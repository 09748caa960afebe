//! The `authlens` command: parses the flags, dispatches to the library, and
//! decides the exit status, here and nowhere else.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use authlens::cli::args::{Cli, Command};
use authlens::cli::{Failure, FailureKind, Outcome, commands};
use authlens::config::{ColorChoice, Sink};
use authlens::proxy::FdLimit;
use clap::Parser as _;

/// jemalloc, whose background threads return freed memory to the system
/// after a load (see Cargo.toml and docs/performance.md).
#[cfg(all(unix, not(target_env = "musl")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One colour decision for every stream: the diagnostics set up here and
    // every output the command opens.
    let color = cli.color();
    init_diagnostics(color);
    if matches!(cli.command, None | Some(Command::Proxy(_))) {
        raise_open_files_limit();
    }
    let under_run = matches!(cli.command, Some(Command::Run(_)));
    // Flags of the plain proxy given before a subcommand would be ignored:
    // for these two, silently ignoring them would hide a failure on purpose
    // or let a CI gate pass, so they are refused.
    if cli.command.is_some() && (!cli.proxy.faults.is_empty() || cli.proxy.fail_on.is_some()) {
        return exit_status(
            Err(Failure::unusable(
                "--fault and --fail-on go after the subcommand (e.g. `authlens run --fail-on error -- CMD`)",
            )),
            under_run,
        );
    }
    let result = match cli.command {
        None => block_on(commands::proxy(cli.proxy, color)),
        Some(Command::Proxy(args)) => block_on(commands::proxy(args, color)),
        Some(Command::Explain(args)) => commands::explain(args),
        Some(Command::Analyze(args)) => commands::analyze(args, color),
        Some(Command::Report(args)) => commands::report(args),
        Some(Command::Run(args)) => block_on(commands::run(args, color)),
        Some(Command::Browser(args)) => block_on(commands::browser(args, color)),
        Some(Command::Ca(args)) => commands::ca(args),
        Some(Command::Faults) => commands::faults(),
    };
    exit_status(result, under_run)
}

/// Diagnostics (`tracing`: warnings, `RUST_LOG`) go to stderr, coloured
/// only when [`ColorChoice`] allows it there.
fn init_diagnostics(color: ColorChoice) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("authlens=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(color.on(&Sink::Stderr))
        .init();
}

/// A standing proxy serves many clients, and each exchange holds two
/// sockets: the soft open-files limit goes up to the hard one before any
/// socket opens. Not under `run` and `browser`: their child would inherit
/// the raised limit, and programs that still use `select()` break above 1024.
fn raise_open_files_limit() {
    match authlens::proxy::raise_open_files_limit() {
        FdLimit::Raised { from, to } => {
            tracing::debug!("open-files limit raised from {from} to {to}")
        }
        FdLimit::Unchanged(limit) => tracing::debug!("open-files limit: {limit}"),
        FdLimit::Unknown => {}
    }
}

/// Every exit status authlens gives:
///
/// | status | when |
/// |---|---|
/// | 0 | done, nothing to report |
/// | 1 | `analyze` found errors (not injected by `--fault`), `explain` met an unknown code; `--fail-on` saw the app's own findings (not injected) at that severity (the proxy at Ctrl-C/SIGTERM; `run`/`browser` when CMD itself exited 0); or authlens failed |
/// | 2 | an input or output cannot be used, a bad or conflicting `--fault`, or `ca --regenerate` lacks `--yes` |
/// | CMD's | `run` and `browser` pass the child's status on (126/127 when it cannot start) |
/// | 125 | `run`: authlens itself failed, never mistaken for CMD's status |
/// | 130 | a second Ctrl-C or SIGTERM stopped the proxy before its outputs were drained |
fn exit_status(result: Result<Outcome, Failure>, under_run: bool) -> ExitCode {
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Flagged) => ExitCode::from(1),
        Ok(Outcome::Child(status)) => ExitCode::from(status),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(failure) => {
            eprintln!("authlens: {}", failure.message);
            ExitCode::from(match failure.kind {
                FailureKind::Unusable => 2,
                FailureKind::Failed if under_run => 125,
                FailureKind::Failed => 1,
                FailureKind::Launch(status) => status,
            })
        }
    }
}

/// Without jemalloc (musl, non-unix targets) there are no thread caches to
/// manage.
#[cfg(not(all(unix, not(target_env = "musl"))))]
mod idle_memory {
    pub fn worker_parks() {}
    pub fn uncache_this_thread() {}
}

/// Runs an async command on a fresh multi-threaded runtime.
fn block_on(
    command: impl std::future::Future<Output = Result<Outcome, Failure>>,
) -> Result<Outcome, Failure> {
    // This thread runs the command's start-up (the trust store parsed, the
    // CA loaded, the outputs opened), then mostly waits for it to end.
    idle_memory::uncache_this_thread();
    let runtime =
        runtime().map_err(|e| Failure::failed(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(command);
    // An output thread still blocked on a stalled terminal (the user stopped
    // at once with a second Ctrl-C) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result
}

/// The runtime every async command runs on: its workers empty their
/// allocator caches when they go idle ([`idle_memory`]).
fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_park(idle_memory::worker_parks)
        .build()
}

/// Memory a burst leaves in the allocator's thread caches goes back when
/// the runtime's workers go idle.
///
/// jemalloc gives each thread a cache of freed blocks (for small sizes up
/// to 200 per size class, for larger ones up to 32 KiB 20 each) that only
/// shrinks as the thread allocates again. A worker idle after a burst keeps
/// its cache, and the cached blocks keep their pages, which the background
/// purger cannot return: after 1,000 tunnels closed, 3.5 MiB stayed
/// resident that way (bench `--only memory`: 14.2 MiB 10 s after, 10.7 MiB
/// with the caches off). Turning caches off costs every allocation the
/// arena's lock (+20% CPU per small request); instead a worker about to
/// park empties its cache, at most once per
/// [`FLUSH_EVERY`](idle_memory::FLUSH_EVERY): under steady load that is one
/// cache rebuilt (and a decay pass of the arena) per worker and second, and
/// a busy worker does not park.
///
/// The limits of the workers' emptying: a worker that emptied its cache
/// less than a second before its last park of a burst keeps what it cached
/// since, until it parks again; and the blocking-pool threads that run the
/// outlets and, with `--har`, the HAR recorder (which handles every
/// exchange) keep their caches as jemalloc leaves them (turning them off did
/// not lower the idle memory of a proxy without `--har`).
///
/// The thread that runs a command ([`block_on`]) has no cache at all: it
/// runs start-up, which frees a lot (the system trust store is read and
/// parsed there), and then waits, so a cache would only have kept
/// start-up's freed blocks resident for the whole run (0.2-0.3 MiB of the
/// idle proxy's 1.9-2.0 MiB of anonymous memory, bench `--peer hudsucker`).
#[cfg(all(unix, not(target_env = "musl")))]
mod idle_memory {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    use tikv_jemalloc_ctl::{Access as _, AsName as _};

    /// The least time between two emptyings of one worker's cache.
    pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

    thread_local! {
        static LAST_FLUSH: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    /// Called by the runtime on a worker thread just before it parks.
    pub fn worker_parks() {
        let now = Instant::now();
        if due(LAST_FLUSH.get(), now) {
            LAST_FLUSH.set(Some(now));
            // A failure only means the memory stays cached, as before.
            let _ = flush_thread_cache();
        }
    }

    /// Whether a worker whose cache was last emptied at `last` empties it
    /// again at `now`.
    fn due(last: Option<Instant>, now: Instant) -> bool {
        last.is_none_or(|last| now.duration_since(last) >= FLUSH_EVERY)
    }

    /// Turns the calling thread's cache off, which empties it; its
    /// allocations then go to the arena directly. For a thread that frees
    /// much once and is seldom busy after.
    pub fn uncache_this_thread() {
        // A failure only means the thread keeps its cache, as before.
        let _ = b"thread.tcache.enabled\0".name().write(false);
    }

    /// jemalloc flushes a thread's cache when it is disabled ("implicitly
    /// flushed as a side effect of becoming disabled", jemalloc(3),
    /// `thread.tcache.enabled`); enabling it again gives the thread an empty
    /// one. A thread that had no cache (`tcache:false` in `_RJEM_MALLOC_CONF`)
    /// is not given one.
    fn flush_thread_cache() -> tikv_jemalloc_ctl::Result<()> {
        let enabled = b"thread.tcache.enabled\0".name();
        if enabled.update(false)? {
            enabled.write(true)?;
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn cache_enabled() -> bool {
            b"thread.tcache.enabled\0".name().read().unwrap()
        }

        /// The switch exists under that name, and a thread with a cache
        /// keeps one afterwards (a thread left without one would pay the
        /// arena's lock on every allocation). jemalloc's cache contents
        /// cannot be read without its statistics, which this build leaves
        /// out: the bench's memory phase shows the emptying.
        #[test]
        fn emptying_the_cache_leaves_the_thread_with_one() {
            std::thread::spawn(|| {
                let blocks: Vec<Vec<u8>> = (0..64).map(|i| vec![1; 64 << (i % 9)]).collect();
                drop(blocks);
                if !cache_enabled() {
                    return; // run with caches off: the next test covers it
                }
                flush_thread_cache().expect("jemalloc takes thread.tcache.enabled");
                assert!(cache_enabled());
            })
            .join()
            .unwrap();
        }

        /// A thread without a cache is not given one by the emptying.
        #[test]
        fn a_thread_without_a_cache_stays_without() {
            std::thread::spawn(|| {
                let enabled = b"thread.tcache.enabled\0".name();
                enabled.write(false).unwrap();
                flush_thread_cache().unwrap();
                assert!(!cache_enabled());
            })
            .join()
            .unwrap();
        }

        /// A command runs without a cache on the thread that started it,
        /// and its workers keep theirs.
        #[test]
        fn a_command_runs_on_a_thread_without_a_cache() {
            if !std::thread::spawn(cache_enabled).join().unwrap() {
                return; // run with caches off (`tcache:false`): nothing to see
            }
            std::thread::spawn(|| {
                let mut seen = None;
                let _ = super::super::block_on(async {
                    let worker = tokio::spawn(async { cache_enabled() }).await.unwrap();
                    seen = Some((cache_enabled(), worker));
                    Ok(super::super::Outcome::Clean)
                });
                let (here, worker) = seen.unwrap();
                assert!(!here, "the command's thread kept its cache");
                assert!(worker, "a worker lost its cache");
            })
            .join()
            .unwrap();
        }

        /// At most one emptying per FLUSH_EVERY: a worker that parks
        /// between every request does not lose its cache each time, and one
        /// that parks again later does empty it again.
        #[test]
        fn a_worker_empties_its_cache_at_most_once_per_interval() {
            let t = Instant::now();
            assert!(due(None, t));
            assert!(!due(Some(t), t));
            assert!(!due(Some(t), t + FLUSH_EVERY - Duration::from_millis(1)));
            assert!(due(Some(t), t + FLUSH_EVERY));
            assert!(due(Some(t), t + 10 * FLUSH_EVERY));
        }

        /// The commands' runtime calls the hook: a worker that has parked
        /// once has emptied its cache.
        #[test]
        fn the_runtimes_workers_empty_their_caches_when_they_park() {
            let runtime = super::super::runtime().unwrap();
            let emptied = runtime.block_on(async {
                // Idle workers park at once; a spawned task runs on one.
                tokio::time::sleep(Duration::from_millis(100)).await;
                tokio::spawn(async { LAST_FLUSH.get().is_some() })
                    .await
                    .unwrap()
            });
            assert!(emptied);
        }
    }
}
