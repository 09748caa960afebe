//! Accepting connections when the process runs short of file descriptors:
//! raising the soft `RLIMIT_NOFILE` at start, and backing off (saying so
//! once, then how long it lasted) when `accept` fails anyway.
//!
//! Must not serve connections: the accept loop in `mod.rs` asks what to do
//! after an error and hands accepted streams on.

use std::io;
use std::time::{Duration, Instant};

/// The first pause after a failed accept; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// What happened to the soft limit on open files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdLimit {
    /// Raised from `from` to `to` (the hard limit).
    Raised { from: u64, to: u64 },
    /// Already at the hard limit (or unlimited).
    Unchanged(u64),
    /// Not known on this platform, or the call failed.
    Unknown,
}

/// Raises the soft limit on open files (`RLIMIT_NOFILE`) to the hard limit,
/// as servers do: each proxied exchange holds two sockets, and the usual
/// soft limit (1024) runs out at a few hundred clients. Process-wide, so the
/// binary calls it once at start (the library never does it behind a
/// caller's back).
pub fn raise_open_files_limit() -> FdLimit {
    raise()
}

#[cfg(unix)]
fn raise() -> FdLimit {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (Some(current), maximum) = (limit.current, limit.maximum) else {
        // No soft limit: nothing to raise.
        return FdLimit::Unknown;
    };
    // An unlimited hard limit cannot be the soft one on Linux (the kernel's
    // nr_open caps it) nor on macOS (OPEN_MAX): a generous finite value then.
    let target = maximum.unwrap_or(1 << 20);
    if target <= current {
        return FdLimit::Unchanged(current);
    }
    let raise_to = |to: u64| {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(to),
                maximum,
            },
        )
    };
    match raise_to(target).or_else(|_| raise_to(target.min(10_240))) {
        Ok(()) => FdLimit::Raised {
            from: current,
            to: getrlimit(Resource::Nofile).current.unwrap_or(target),
        },
        Err(e) => {
            tracing::debug!("cannot raise the open-files limit from {current}: {e}");
            FdLimit::Unchanged(current)
        }
    }
}

#[cfg(not(unix))]
fn raise() -> FdLimit {
    FdLimit::Unknown
}

/// The soft limit on open files, for messages.
fn current_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Failed `accept` calls of one listener: a run of them is reported once
/// when it starts and once when it ends, not once per call (a proxy out of
/// descriptors fails hundreds of times a second).
#[derive(Debug, Default)]
pub(crate) struct AcceptFailures {
    /// The current run of failures: when it started and how many so far.
    run: Option<(Instant, u64)>,
    pause: Duration,
}

impl AcceptFailures {
    /// `accept` failed with `error`: how long to wait before the next call.
    /// `None` means at once (the failure concerned one connection only).
    pub(crate) fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        if is_per_connection(error) {
            tracing::debug!("accept failed for one connection: {error}");
            return None;
        }
        match &mut self.run {
            Some((_, count)) => {
                *count += 1;
                self.pause = (self.pause * 2).min(MAX_PAUSE);
            }
            None => {
                self.run = Some((Instant::now(), 1));
                self.pause = FIRST_PAUSE;
                let why = if is_out_of_descriptors(error) {
                    match current_limit() {
                        Some(limit) => format!(
                            "out of file descriptors (limit {limit}; raise it with `ulimit -n`)"
                        ),
                        None => "out of file descriptors".to_string(),
                    }
                } else {
                    error.to_string()
                };
                tracing::warn!(
                    "cannot accept new connections: {why}; new clients wait until open \
                     connections close (retrying every {} s at most)",
                    MAX_PAUSE.as_secs_f64()
                );
            }
        }
        Some(self.pause)
    }

    /// `accept` succeeded: ends a run of failures, saying how it went.
    pub(crate) fn accepted(&mut self) {
        if let Some((since, count)) = self.run.take() {
            tracing::warn!(
                "accepting connections again after {count} failed attempt(s) over {:.1} s",
                since.elapsed().as_secs_f64()
            );
        }
    }
}

/// An error about one incoming connection (it was reset before it was
/// accepted, say): the listener itself is fine.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        matches!(
            Errno::from_io_error(error),
            Some(Errno::MFILE | Errno::NFILE)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = error;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error())
    }

    #[cfg(unix)]
    #[test]
    fn a_run_of_failures_backs_off_doubling_to_a_second_and_ends_on_success() {
        let mut failures = AcceptFailures::default();
        let pauses: Vec<_> = (0..6).map(|_| failures.failed(&emfile())).collect();
        let ms: Vec<_> = pauses.iter().map(|p| p.unwrap().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(failures.run.map(|(_, n)| n), Some(6));
        failures.accepted();
        assert!(failures.run.is_none());
        // A new run starts from the first pause again.
        assert_eq!(failures.failed(&emfile()), Some(FIRST_PAUSE));
        assert!(is_out_of_descriptors(&emfile()));
    }

    #[test]
    fn a_connection_reset_before_accept_does_not_pause_the_listener() {
        let mut failures = AcceptFailures::default();
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(failures.failed(&reset), None);
        assert!(failures.run.is_none());
    }
}
