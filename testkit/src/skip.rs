//! Skipping a test whose outside program (curl, Python, Node, a JDK,
//! Chromium) is not installed, so that the skip is seen.
//!
//! libtest captures what a test prints (`println!`, `eprintln!`) and shows
//! it only when the test fails, so a skip printed that way never reaches a
//! passing `cargo test` run. The line is written to a duplicate of the
//! process's stderr file descriptor instead: cargo hands that descriptor
//! straight to the terminal or the CI log, and libtest's capture, which only
//! redirects the print macros inside the process, never sees it.

use std::io::Write as _;

/// Whether CI must have the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InCi {
    /// `.ci/run` installs it: missing under CI (`CI` set) fails the test.
    Required,
    /// Skipped everywhere when missing.
    Optional,
}

/// Ends a test that cannot run because `what` is missing (`why` says how
/// to get it): a loud `SKIPPED` line where `cargo test` shows it, or, for a
/// program CI must have, a failure under CI. Call it and return.
pub fn skip(what: &str, why: &str, in_ci: InCi) {
    if in_ci == InCi::Required && std::env::var_os("CI").is_some() {
        panic!("{what} is missing in CI (.ci/run installs it): {why}");
    }
    let line = format!("\n!!!!!!!! SKIPPED: {what}: {why} !!!!!!!!\n");
    let _ = uncaptured_stderr().and_then(|mut err| err.write_all(line.as_bytes()));
}

/// The process's stderr, past libtest's capture.
#[cfg(unix)]
fn uncaptured_stderr() -> std::io::Result<std::fs::File> {
    let fd = rustix::io::dup(std::io::stderr())?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn uncaptured_stderr() -> std::io::Result<std::io::Stderr> {
    Ok(std::io::stderr())
}
