//! Running the command (or the browser) as a child process and handing its
//! exit status back. Ctrl-C reaches the child straight from the terminal
//! (same process group), so authlens ignores it and waits for the child; a
//! SIGTERM or SIGHUP sent to authlens alone is passed on to the child.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncRead};

use super::env::{ClientEnv, EnvChange};

/// A child process to run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: ClientEnv,
    pub output: ChildOutput,
}

/// Where the child's stdin, stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildOutput {
    /// authlens's own: the child shares the terminal.
    Inherit,
    /// Hidden (Chromium is chatty; no stdin), but the last this many lines
    /// of stdout and stderr together are kept, to explain a failure.
    Tail(usize),
}

/// How the child ended.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    /// From start to exit.
    pub elapsed: Duration,
    /// The last lines of its hidden output ([`ChildOutput::Tail`]), oldest
    /// first; empty when the output was shown.
    pub tail: Vec<String>,
}

/// Longest line kept in a tail, in bytes: the start of a line is what says
/// what went wrong.
const TAIL_LINE_LIMIT: usize = 500;
/// How long the tail readers may go on after the child has exited: a helper
/// process the child started can hold its pipes open for longer.
const TAIL_DRAIN: Duration = Duration::from_millis(500);

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot run {program}: {source}")]
pub struct LaunchError {
    pub program: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl LaunchError {
    /// The shell's convention: 127 when the program does not exist, 126
    /// when it exists but cannot be run.
    pub fn exit_code(&self) -> u8 {
        if self.source.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        }
    }
}

impl Launch {
    /// Runs the child to completion.
    pub async fn run(self) -> Result<Finished, LaunchError> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        for change in &self.env.changes {
            match change {
                EnvChange::Set(name, value) => command.env(name, value),
                EnvChange::Remove(name) => command.env_remove(name),
            };
        }
        if let ChildOutput::Tail(_) = self.output {
            command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
        }
        let fail = |source| LaunchError {
            program: self.program.clone(),
            source,
        };
        // Signal handlers go in before the child exists, so there is no
        // moment where Ctrl-C would kill authlens and orphan the child.
        let signals = Signals::install();
        let started = Instant::now();
        let mut child = command.spawn().map_err(fail)?;
        let tail = match self.output {
            ChildOutput::Inherit => None,
            ChildOutput::Tail(lines) => Some(Tail::follow(&mut child, lines)),
        };
        let status = signals.wait_for(&mut child).await.map_err(fail)?;
        let elapsed = started.elapsed();
        let tail = match tail {
            Some(tail) => tail.finish().await,
            None => Vec::new(),
        };
        Ok(Finished {
            status,
            elapsed,
            tail,
        })
    }
}

/// The last lines of a child's stdout and stderr, read as they come so the
/// child never blocks on a full pipe.
struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Tail {
    fn follow(child: &mut tokio::process::Child, keep: usize) -> Tail {
        let lines = Arc::new(Mutex::new(VecDeque::with_capacity(keep)));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(keep_last(out, lines.clone(), keep)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(keep_last(err, lines.clone(), keep)));
        }
        Tail { lines, readers }
    }

    /// What was kept, once the pipes are closed (or [`TAIL_DRAIN`] after the
    /// child's exit, whichever comes first).
    async fn finish(self) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + TAIL_DRAIN;
        for reader in self.readers {
            let abort = reader.abort_handle();
            if tokio::time::timeout_at(deadline, reader).await.is_err() {
                abort.abort();
            }
        }
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

async fn keep_last(
    stream: impl AsyncRead + Unpin,
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
) {
    let mut reader = tokio::io::BufReader::new(stream);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line[..line.len().min(TAIL_LINE_LIMIT)]);
        let text = text.trim_end();
        if text.is_empty() || keep == 0 {
            continue;
        }
        let mut lines = lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == keep {
            lines.pop_front();
        }
        lines.push_back(text.to_owned());
    }
}

/// The exit status to report for the child's: its code, or 128 + the signal
/// number when a signal ended it (what shells report).
pub fn exit_code(status: ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return (code & 0xff) as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return (128 + signal).clamp(0, 255) as u8;
        }
    }
    1
}

#[cfg(unix)]
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
    hangup: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Signals {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
            hangup: signal(SignalKind::hangup()).ok(),
        }
    }

    async fn wait_for(mut self, child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
        async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(s) => {
                    s.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        loop {
            tokio::select! {
                status = child.wait() => return status,
                // The terminal sent it to the child as well; wait for the
                // child to decide.
                _ = next(&mut self.interrupt) => {}
                _ = next(&mut self.terminate) => forward(child, rustix::process::Signal::TERM),
                _ = next(&mut self.hangup) => forward(child, rustix::process::Signal::HUP),
            }
        }
    }
}

#[cfg(unix)]
fn forward(child: &tokio::process::Child, signal: rustix::process::Signal) {
    if let Some(pid) = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32))
    {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Self {
        Signals
    }

    async fn wait_for(self, child: &mut tokio::process::Child) -> std::io::Result<ExitStatus> {
        loop {
            tokio::select! {
                status = child.wait() => return status,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn exit_codes_and_signals_pass_through() {
        let sh = |script: &str| Launch {
            program: "sh".into(),
            args: vec!["-c".into(), script.into()],
            env: ClientEnv::default(),
            output: ChildOutput::Tail(0),
        };
        let code = async |launch: Launch| exit_code(launch.run().await.unwrap().status);
        assert_eq!(code(sh("exit 0")).await, 0);
        assert_eq!(code(sh("exit 42")).await, 42);
        assert_eq!(code(sh("kill -TERM $$")).await, 143);

        let missing = Launch {
            program: "/nonexistent/authlens-test-program".into(),
            ..sh("")
        };
        assert_eq!(missing.run().await.unwrap_err().exit_code(), 127);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn the_planned_environment_reaches_the_child() {
        let out = tempfile::tempdir().unwrap();
        let file = out.path().join("env");
        let launch = Launch {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "echo \"$AUTHLENS_T_SET|${{AUTHLENS_T_GONE-unset}}\" > '{}'",
                    file.display()
                )
                .into(),
            ],
            env: ClientEnv {
                changes: vec![
                    EnvChange::Set("AUTHLENS_T_SET".into(), "yes".into()),
                    EnvChange::Set("AUTHLENS_T_GONE".into(), "set".into()),
                    EnvChange::Remove("AUTHLENS_T_GONE".into()),
                ],
            },
            output: ChildOutput::Inherit,
        };
        assert!(launch.run().await.unwrap().status.success());
        assert_eq!(std::fs::read_to_string(file).unwrap(), "yes|unset\n");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn hidden_output_keeps_the_last_lines_of_both_streams() {
        let launch = Launch {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                "for i in 1 2 3 4 5; do echo out $i; done; echo 'err: it broke' >&2; exit 3".into(),
            ],
            env: ClientEnv::default(),
            output: ChildOutput::Tail(3),
        };
        let finished = launch.run().await.unwrap();
        assert_eq!(exit_code(finished.status), 3);
        assert_eq!(finished.tail.len(), 3, "{:?}", finished.tail);
        assert!(
            finished.tail.contains(&"err: it broke".to_string()),
            "{:?}",
            finished.tail
        );
        assert!(
            !finished.tail.contains(&"out 1".to_string()),
            "{:?}",
            finished.tail
        );

        // A helper holding the pipe open does not keep authlens waiting.
        let lingering = Launch {
            program: "sh".into(),
            args: vec!["-c".into(), "echo started; sleep 20 & exit 1".into()],
            env: ClientEnv::default(),
            output: ChildOutput::Tail(10),
        };
        let started = Instant::now();
        let finished = lingering.run().await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(finished.tail, ["started"]);
    }
}
