//! Running the command (or the browser) as a child process and handing its
//! exit status back. Ctrl-C reaches the child straight from the terminal
//! (same process group), so authlens ignores it and waits for the child; a
//! SIGTERM or SIGHUP sent to authlens alone is passed on to the child.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};

use super::env::{ClientEnv, EnvChange};

/// A child process to run.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: ClientEnv,
    /// Discard the child's stdout and stderr (Chromium is chatty).
    pub quiet: bool,
}

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
    pub async fn run(self) -> Result<ExitStatus, LaunchError> {
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        for change in &self.env.changes {
            match change {
                EnvChange::Set(name, value) => command.env(name, value),
                EnvChange::Remove(name) => command.env_remove(name),
            };
        }
        if self.quiet {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        command.stdin(if self.quiet {
            Stdio::null()
        } else {
            Stdio::inherit()
        });
        let fail = |source| LaunchError {
            program: self.program.clone(),
            source,
        };
        // Signal handlers go in before the child exists, so there is no
        // moment where Ctrl-C would kill authlens and orphan the child.
        let signals = Signals::install();
        let mut child = command.spawn().map_err(fail)?;
        signals.wait_for(&mut child).await.map_err(fail)
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
            quiet: true,
        };
        assert_eq!(exit_code(sh("exit 0").run().await.unwrap()), 0);
        assert_eq!(exit_code(sh("exit 42").run().await.unwrap()), 42);
        assert_eq!(exit_code(sh("kill -TERM $$").run().await.unwrap()), 143);

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
            quiet: true,
        };
        assert!(launch.run().await.unwrap().success());
        assert_eq!(std::fs::read_to_string(file).unwrap(), "yes|unset\n");
    }
}
