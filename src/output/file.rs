//! Output files that survive a full disk: each record (a JSON line, an
//! event's lines, a HAR entry) is written whole or not at all.
//!
//! A [`DurableFile`] remembers where its last complete record ends. When a
//! write fails (no space left, a quota), it cuts the file back there, writes
//! the document's closing again (the HAR's `]}}`), counts the record as not
//! written, says so once on the notice board, and tries the next record as
//! if nothing happened: when space returns, writing resumes, and nothing is
//! ever left half-written. Nothing here knows what a record holds.

use std::fmt;
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::notice::Notices;

/// Where a durable file's bytes go: a file on disk, or, in tests, a stand-in
/// that fails as a full disk does.
pub trait Storage: Send {
    /// Writes all of `bytes` at `offset`, or fails (possibly after writing
    /// some of them, as a disk that fills up does).
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len` bytes.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    /// Makes what was written durable (once, at the end).
    fn sync(&mut self) -> io::Result<()>;
}

impl Storage for File {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.seek(SeekFrom::Start(offset))?;
        self.write_all(bytes)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

/// How output files are created: on the filesystem, unless a program
/// embedding authlens (a test standing in for a full disk) says otherwise.
#[derive(Clone, Default)]
pub struct Files {
    create: Option<Arc<CreateFn>>,
}

type CreateFn = dyn Fn(&Path) -> io::Result<Box<dyn Storage>> + Send + Sync;

impl Files {
    /// Files created by `create` instead of `File::create`.
    pub fn with(
        create: impl Fn(&Path) -> io::Result<Box<dyn Storage>> + Send + Sync + 'static,
    ) -> Files {
        Files {
            create: Some(Arc::new(create)),
        }
    }

    /// Creates (or truncates) the file at `path`.
    pub fn create(&self, path: &Path) -> io::Result<Box<dyn Storage>> {
        match &self.create {
            Some(create) => create(path),
            None => Ok(Box::new(File::create(path)?)),
        }
    }
}

impl fmt::Debug for Files {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.create {
            Some(_) => "Files(custom)",
            None => "Files(filesystem)",
        })
    }
}

/// What a record is called in messages (`3 events not written`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    pub one: &'static str,
    pub many: &'static str,
}

impl Unit {
    pub const EVENT: Unit = Unit {
        one: "event",
        many: "events",
    };
    pub const ENTRY: Unit = Unit {
        one: "entry",
        many: "entries",
    };

    /// `1 event`, `3 events`.
    pub fn count(self, n: usize) -> String {
        format!("{n} {}", if n == 1 { self.one } else { self.many })
    }
}

/// A file written record by record, complete after every record.
pub struct DurableFile {
    storage: Box<dyn Storage>,
    /// How the file is named in notices (`--json signins.jsonl`).
    name: String,
    unit: Unit,
    /// Where the last complete record ends (the tail starts here).
    end: u64,
    /// What closes the document after the records (`\n]}}\n` for a HAR,
    /// nothing for lines): on disk after every record.
    tail: Vec<u8>,
    /// False when the tail could not be written back after a failure: the
    /// next record or [`DurableFile::finish`] writes it.
    tail_on_disk: bool,
    /// Records not written since the run started.
    lost: usize,
    /// True while writes fail (said once, until writing works again).
    failing: bool,
    /// Where failures are told (none: the caller handles the error alone).
    notices: Option<Notices>,
}

impl DurableFile {
    /// Creates `path` through `files` and writes `head` and `tail` (an empty
    /// document); fails when that cannot be done, so a bad path is reported
    /// before the run starts.
    pub fn create(
        files: &Files,
        path: &Path,
        head: &[u8],
        tail: &[u8],
        name: String,
        unit: Unit,
        notices: Option<Notices>,
    ) -> io::Result<DurableFile> {
        let mut storage = files.create(path)?;
        if !head.is_empty() || !tail.is_empty() {
            storage.write_at(0, &[head, tail].concat())?;
        }
        Ok(DurableFile {
            storage,
            name,
            unit,
            end: head.len() as u64,
            tail: tail.to_vec(),
            tail_on_disk: true,
            lost: 0,
            failing: false,
            notices,
        })
    }

    /// Appends one record, whole, followed by the tail. On failure the file
    /// is cut back to its last complete record (with its tail), the record
    /// is counted as not written and the failure told (once, until writing
    /// works again); the error is returned for a caller that has nothing
    /// more to write. The next record is tried as usual.
    pub fn append(&mut self, record: &[u8]) -> io::Result<()> {
        match self
            .storage
            .write_at(self.end, &[record, &self.tail].concat())
        {
            Ok(()) => {
                self.end += record.len() as u64;
                // After a roll-back that could not cut the file, bytes of
                // the failed write may lie past the new tail: cut them now
                // (or on the next record, if this cut fails too).
                self.tail_on_disk = self.tail_on_disk
                    || self
                        .storage
                        .truncate(self.end + self.tail.len() as u64)
                        .is_ok();
                if std::mem::take(&mut self.failing)
                    && let Some(notices) = &self.notices
                {
                    notices.post(&format!(
                        "writing {} again; {} not written",
                        self.name,
                        self.unit.count(self.lost)
                    ));
                }
                Ok(())
            }
            Err(error) => {
                self.lost += 1;
                self.roll_back();
                if let Some(notices) = &self.notices {
                    notices.unwritten(&self.name, self.unit, self.lost, &error);
                    if !self.failing {
                        notices.post(&format!(
                            "could not write {}: {error}; {} not written, retrying",
                            self.name,
                            self.unit.count(self.lost)
                        ));
                    }
                }
                self.failing = true;
                Err(error)
            }
        }
    }

    /// Cuts what a failed write left after the last complete record and
    /// writes the tail back in place.
    fn roll_back(&mut self) {
        if let Err(e) = self.restore_tail() {
            tracing::warn!(
                "cannot cut {} back to its last complete record: {e}",
                crate::output::escape::escape_controls(&self.name)
            );
        }
    }

    /// The file cut to its complete records and the tail: both only shrink
    /// the file or rewrite bytes it already had, so they work on a full disk.
    fn restore_tail(&mut self) -> io::Result<()> {
        self.tail_on_disk = false;
        self.storage.truncate(self.end + self.tail.len() as u64)?;
        if !self.tail.is_empty() {
            self.storage.write_at(self.end, &self.tail)?;
        }
        self.tail_on_disk = true;
        Ok(())
    }

    /// Ends the document with `tail` instead of the one given at creation
    /// (written by [`DurableFile::finish`]).
    pub fn end_with(&mut self, tail: &[u8]) {
        self.tail = tail.to_vec();
        self.tail_on_disk = false;
    }

    /// Writes the tail if a failure left it off, and syncs the file.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.tail_on_disk {
            self.restore_tail()?;
        }
        self.storage.sync()
    }
}

/// Where a text outlet writes: a stream (stdout, stderr), where an error
/// ends the outlet, or a durable file, where it does not.
pub enum Target {
    Stream(Box<dyn Write + Send>),
    File(DurableFile),
}

impl Target {
    /// Writes one record (the lines of one event) and flushes it. A stream's
    /// error is returned. A file's failure is rolled back; when the file
    /// tells its failures (it has notices) it has counted and told this one
    /// and tries the next record, so `Ok` is returned; otherwise the error.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        match self {
            Target::Stream(out) => {
                out.write_all(record)?;
                out.flush()
            }
            Target::File(file) => match file.append(record) {
                Err(_) if file.notices.is_some() => Ok(()),
                written => written,
            },
        }
    }

    /// Flushes a stream, or completes and syncs a file.
    pub fn finish(&mut self) -> io::Result<()> {
        match self {
            Target::Stream(out) => out.flush(),
            Target::File(file) => file.finish(),
        }
    }
}

/// A shared target: the live log's, on which notices are written too.
pub type SharedTarget = Arc<Mutex<Target>>;

#[cfg(test)]
mod tests;
