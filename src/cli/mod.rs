//! The command line: the flags ([`args`], parsed once into validated
//! configurations), each subcommand's body ([`commands`]) and the start-up
//! [`banner`]. This is the only part of the library that prints to the
//! terminal; the binary turns each command's [`Outcome`] or [`Failure`] into
//! the exit status.

pub mod args;
pub mod banner;
pub mod commands;

/// How a command ended when it did its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report (exit 0).
    Clean,
    /// It worked and found something: errors in a recording, an unknown
    /// error code (exit 1).
    Flagged,
    /// The status of the command or browser run through authlens.
    Child(u8),
    /// Stopped at once on a second signal, outputs not drained (exit 130).
    Interrupted,
}

/// Why a command could not do its job.
#[derive(Debug)]
pub struct Failure {
    pub kind: FailureKind,
    /// One line for the user, without the `authlens:` prefix.
    pub message: String,
}

/// Which kind of failure, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An input or output the user named cannot be used, or a confirmation
    /// is missing (exit 2).
    Unusable,
    /// authlens itself could not do it (exit 1; 125 under `run`, so it is
    /// never mistaken for the command's own status).
    Failed,
    /// The child could not be started (126, or 127 when not found).
    Launch(u8),
}

impl Failure {
    pub fn unusable(error: impl std::fmt::Display) -> Failure {
        Failure {
            kind: FailureKind::Unusable,
            message: error.to_string(),
        }
    }

    pub fn failed(error: impl std::fmt::Display) -> Failure {
        Failure {
            kind: FailureKind::Failed,
            message: error.to_string(),
        }
    }

    pub fn launch(error: crate::clients::launch::LaunchError) -> Failure {
        Failure {
            kind: FailureKind::Launch(error.exit_code()),
            message: error.to_string(),
        }
    }
}
