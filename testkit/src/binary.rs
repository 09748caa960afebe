//! The real `authlens` binary run as a child process, as a user runs it.
//!
//! The path of the binary is `env!("CARGO_BIN_EXE_authlens")`, which only the
//! test crate knows, so every helper here takes it (or a `Command` made from
//! it) as an argument.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::TestCa;
use crate::lab::IDP;

/// A `Command` for the binary at `program` listening on a port of its own
/// choosing on loopback, without colours, its CA in `certs`.
pub fn command(program: impl AsRef<OsStr>, certs: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .args(["--listen", "127.0.0.1:0", "--no-color", "--certs"])
        .arg(certs);
    command
}

/// [`command`] sending the sign-in host [`IDP`] to the mock IdP at `idp`,
/// whose certificate `ca` issued.
pub fn command_with_idp(
    program: impl AsRef<OsStr>,
    certs: &Path,
    ca: &TestCa,
    idp: SocketAddr,
) -> Command {
    let mut command = command(program, certs);
    command
        .arg("--upstream-ca")
        .arg(&ca.pem_path)
        .arg("--connect-to")
        .arg(format!("{IDP}:443:127.0.0.1:{}", idp.port()));
    command
}

/// A running proxy process: its stderr is read line by line on a thread, and
/// the start-up banner has said where it listens. Killed (and reaped) on drop,
/// so a failing test leaves no process behind.
pub struct Binary {
    /// `None` once [`Binary::wait`] has reaped it.
    child: Option<Child>,
    /// `host:port` from the banner's `authlens listening on http://…` line.
    pub addr: String,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far, in order.
    pub seen: Vec<String>,
}

impl Binary {
    /// Spawns `command` with its stderr on a pipe (stdin and stdout as the
    /// caller set them) and waits for the line that says where it listens.
    pub fn start(command: &mut Command) -> Binary {
        let mut child = command
            .stderr(Stdio::piped())
            .spawn()
            .expect("the authlens binary runs");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut binary = Binary {
            child: Some(child),
            addr: String::new(),
            lines,
            seen: Vec::new(),
        };
        let line = binary.wait_for("authlens listening on http://");
        binary.addr = line
            .split_once("http://")
            .map(|(_, rest)| rest.trim().to_string())
            .unwrap();
        binary
    }

    /// The proxy's URL, `http://host:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn id(&self) -> u32 {
        self.child().id()
    }

    /// The live log, when the command put stdout on a pipe.
    pub fn take_stdout(&mut self) -> ChildStdout {
        self.child_mut().stdout.take().expect("stdout on a pipe")
    }

    /// Waits (generously) for a stderr line containing `text` and returns it;
    /// panics with all of stderr so far if stderr ends first.
    pub fn wait_for(&mut self, text: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no stderr line with {text:?} ({e}); got:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Sends SIGTERM, as Ctrl-C or a service manager does.
    pub fn terminate(&self) {
        terminate(self.id());
    }

    /// Kills the process without warning (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("not reaped yet");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Waits for the process to exit, off the async runtime.
    pub async fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("not reaped yet");
        tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap()
    }

    /// The stderr lines not read yet, up to its end (call once the process
    /// has exited); they are added to [`Binary::seen`] too.
    pub fn rest_of_stderr(&mut self) -> Vec<String> {
        let rest: Vec<String> = self.lines.iter().collect();
        self.seen.extend(rest.iter().cloned());
        rest
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("not reaped yet")
    }

    fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("not reaped yet")
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends SIGTERM to the process `pid`; panics if `kill` fails.
pub fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

/// `authlens browser` at `program` opening `url` in headless Chromium at
/// `browser` through `proxy` (which must keep its certs directory), with
/// `extra` flags before the URL; the DOM Chromium dumps is on stdout. Two
/// minutes at most.
pub async fn browser(
    program: &str,
    proxy: &crate::TestProxy,
    browser: &Path,
    extra: &[&str],
    url: &str,
) -> std::process::Output {
    let mut command = tokio::process::Command::new(program);
    command
        .arg("browser")
        .arg("--proxy")
        .arg(proxy.addr.to_string())
        .arg("--certs")
        .arg(
            proxy
                .certs
                .as_ref()
                .expect("the proxy's certs directory")
                .path(),
        )
        .arg("--browser")
        .arg(browser)
        .args(extra)
        .arg(url)
        .arg("--")
        .args(crate::HEADLESS_CHROMIUM)
        // Let the page's scripts run before the DOM is dumped.
        .args(["--virtual-time-budget=10000", "--dump-dom"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the browser finishes within 2 minutes")
        .unwrap()
}

/// Builds the release `authlens` (`cargo build --release --bin authlens`)
/// and returns its path, for an example (a bench) that runs the binary: it
/// lies beside the example's own directory, wherever the target directory
/// is (`CARGO_TARGET_DIR` included).
pub fn release_build() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .args(["build", "--release", "--quiet", "--bin", "authlens"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building authlens failed");
    let exe = std::env::current_exe().expect("the example's path");
    exe.parent()
        .and_then(|examples| examples.parent())
        .map(|release| release.join("authlens"))
        .expect("the example runs from <target>/release/examples")
}

/// The number after `name` in an example's arguments, or `default`.
pub fn number_arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, not {v:?}"))
        })
        .unwrap_or(default)
}
