//! A durable file on a disk that fills up and frees again.

use std::sync::{Arc, Mutex};

use super::*;

/// An in-memory file on a disk of `room` bytes (None: unlimited): a write
/// that does not fit writes what fits, then fails, as a full disk does.
#[derive(Clone, Default)]
struct Disk {
    state: Arc<Mutex<(Vec<u8>, Option<usize>)>>,
}

impl Disk {
    fn bytes(&self) -> Vec<u8> {
        self.state.lock().unwrap().0.clone()
    }
    fn text(&self) -> String {
        String::from_utf8(self.bytes()).unwrap()
    }
    /// Room for `extra` more bytes than the file holds now.
    fn fill(&self, extra: usize) {
        let mut state = self.state.lock().unwrap();
        state.1 = Some(state.0.len() + extra);
    }
    fn free(&self) {
        self.state.lock().unwrap().1 = None;
    }
}

impl Storage for Disk {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.state.lock().unwrap();
        let (data, room) = &mut *state;
        let offset = offset as usize;
        let fits = room.map_or(bytes.len(), |room| {
            room.saturating_sub(offset).min(bytes.len())
        });
        if data.len() < offset + fits {
            data.resize(offset + fits, 0);
        }
        data[offset..offset + fits].copy_from_slice(&bytes[..fits]);
        if fits < bytes.len() {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.state.lock().unwrap().0.resize(len as usize, 0);
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn on(disk: &Disk) -> Files {
    let disk = disk.clone();
    Files::with(move |_| Ok(Box::new(disk.clone())))
}

/// Notices shown into a list.
fn board() -> (Notices, Arc<Mutex<Vec<String>>>) {
    let shown = Arc::new(Mutex::new(Vec::new()));
    let mut notices = Notices::default();
    let sink = shown.clone();
    notices.show_on(Arc::new(move |text: &str| {
        sink.lock().unwrap().push(text.to_owned())
    }));
    (notices, shown)
}

fn document(disk: &Disk, notices: &Notices) -> DurableFile {
    DurableFile::create(
        &on(disk),
        Path::new("t.json"),
        b"[0",
        b"]\n",
        "--har t.json".into(),
        Unit::ENTRY,
        Some(notices.clone()),
    )
    .unwrap()
}

#[test]
fn a_refused_record_leaves_the_document_whole_and_the_next_one_is_written() {
    let disk = Disk::default();
    let (notices, shown) = board();
    let mut file = document(&disk, &notices);
    file.append(b",1").unwrap();
    assert_eq!(disk.text(), "[0,1]\n");

    disk.fill(1); // ",22" fits where the tail was, the new tail does not
    assert!(file.append(b",22").is_err());
    assert_eq!(disk.text(), "[0,1]\n");
    assert!(file.append(b",333").is_err());
    assert_eq!(disk.text(), "[0,1]\n");
    assert_eq!(
        *shown.lock().unwrap(),
        [
            "could not write --har t.json: No space left on device (os error 28); 1 entry not written, retrying"
        ],
        "said once, at the first failure"
    );
    let ledger = notices.ledger();
    assert_eq!(ledger.len(), 1);
    assert_eq!((ledger[0].count, ledger[0].unit), (2, Unit::ENTRY));
    assert_eq!(
        ledger[0].to_string(),
        "--har t.json: 2 entries not written (No space left on device (os error 28))"
    );

    disk.free();
    file.append(b",4").unwrap();
    assert_eq!(disk.text(), "[0,1,4]\n");
    assert_eq!(
        shown.lock().unwrap()[1],
        "writing --har t.json again; 2 entries not written"
    );
    file.finish().unwrap();
}

#[test]
fn lines_are_whole_after_a_failure_mid_line() {
    let disk = Disk::default();
    let (notices, _) = board();
    let mut file = DurableFile::create(
        &on(&disk),
        Path::new("t.jsonl"),
        b"",
        b"",
        "--json t.jsonl".into(),
        Unit::EVENT,
        Some(notices.clone()),
    )
    .unwrap();
    let mut target = Target::File(file);
    target.write_record(b"{\"a\":1}\n").unwrap();
    disk.fill(4);
    // Told and counted, not an error: the outlet goes on.
    target.write_record(b"{\"b\":2}\n").unwrap();
    assert_eq!(disk.text(), "{\"a\":1}\n");
    disk.free();
    target.write_record(b"{\"c\":3}\n").unwrap();
    assert_eq!(disk.text(), "{\"a\":1}\n{\"c\":3}\n");
    assert_eq!(notices.ledger()[0].count, 1);

    // Without notices, the failure is the caller's error (the report).
    let disk = Disk::default();
    file = DurableFile::create(
        &on(&disk),
        Path::new("r.md"),
        b"",
        b"",
        "the report on r.md".into(),
        Unit::EVENT,
        None,
    )
    .unwrap();
    disk.fill(2);
    let mut target = Target::File(file);
    assert!(target.write_record(b"# report\n").is_err());
    assert_eq!(disk.text(), "");
}

/// A [`Disk`] whose writes or truncates can be refused outright, and a
/// document `[0` … `]\n` on it.
#[derive(Clone, Default)]
struct Flaky {
    disk: Disk,
    refuse_writes: Arc<Mutex<bool>>,
    refuse_cuts: Arc<Mutex<bool>>,
}

impl Storage for Flaky {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        if *self.refuse_writes.lock().unwrap() {
            return Err(io::Error::from_raw_os_error(28));
        }
        self.disk.write_at(offset, bytes)
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        if *self.refuse_cuts.lock().unwrap() {
            return Err(io::Error::from_raw_os_error(5));
        }
        self.disk.truncate(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Flaky {
    fn document(&self) -> DurableFile {
        let storage = self.clone();
        let files = Files::with(move |_| Ok(Box::new(storage.clone())));
        DurableFile::create(
            &files,
            Path::new("t.json"),
            b"[0",
            b"]\n",
            "t".into(),
            Unit::ENTRY,
            Some(Notices::default()),
        )
        .unwrap()
    }
}

/// A disk that also refuses the tail written back in place: the document is
/// closed by the next record, or at the end.
#[test]
fn a_tail_that_could_not_be_written_back_is_written_at_the_end() {
    let flaky = Flaky::default();
    let mut file = flaky.document();
    *flaky.refuse_writes.lock().unwrap() = true;
    assert!(file.append(b",1").is_err());
    assert!(file.finish().is_err(), "still refused");
    *flaky.refuse_writes.lock().unwrap() = false;
    file.finish().unwrap();
    assert_eq!(flaky.disk.text(), "[0]\n");
}

/// A roll-back that could not cut the file (the truncate failed too) leaves
/// the failed write's bytes after the tail; the next record that lands cuts
/// them, so the document ends with its tail.
#[test]
fn bytes_a_failed_roll_back_left_are_cut_by_the_next_record() {
    let flaky = Flaky::default();
    let mut file = flaky.document();
    // A long record half written, then the disk refuses; the cut fails.
    flaky.disk.fill(20);
    *flaky.refuse_cuts.lock().unwrap() = true;
    assert!(
        file.append(b",1111111111111111111111111111111111111111")
            .is_err()
    );
    flaky.disk.free();
    *flaky.refuse_cuts.lock().unwrap() = false;
    file.append(b",2").unwrap();
    assert_eq!(flaky.disk.text(), "[0,2]\n");
}
