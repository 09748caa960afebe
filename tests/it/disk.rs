//! A full disk under `--json` and `--har`: the failure is said at once in
//! the live log, the files stay whole (the HAR a valid document, the JSON
//! lines whole lines), writing resumes when space returns, and the summary
//! counts what was not written. A small disk stands in through the
//! library's `Files`; as root, a real tmpfs is filled up too. Also: an
//! output that cannot be created is said before anything listens.

use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use authlens::config::{LiveLogConfig, OutputConfig, Sink};
use authlens::oauth::AnalyzerConfig;
use authlens::output::file::{Files, Storage, Unit};
use authlens::output::live_log::LiveLogOptions;
use serde_json::Value;
use testkit::binary::{self, Binary};
use testkit::lab::{IDP, Lab, authorize_params, token_form};
use testkit::mock_idp::MockIdp;
use testkit::outputs::{har_entries, json_lines};
use testkit::skip::{InCi, skip};

/// A small disk shared by the files on it: `None` is room without limit.
#[derive(Clone, Default)]
struct SmallDisk {
    free: Arc<Mutex<Option<u64>>>,
}

impl SmallDisk {
    /// Leaves `bytes` of room: less than a record, so the next write is cut
    /// in the middle, as on a disk that fills up.
    fn fill(&self, bytes: u64) {
        *self.free.lock().unwrap() = Some(bytes);
    }

    fn free(&self) {
        *self.free.lock().unwrap() = None;
    }
}

/// A real file whose growth takes room on a [`SmallDisk`].
struct FileOnDisk {
    file: File,
    len: u64,
    disk: SmallDisk,
}

impl Storage for FileOnDisk {
    fn write_at(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut free = self.disk.free.lock().unwrap();
        let room = free.map_or(u64::MAX, |free| self.len + free);
        let fits = room.saturating_sub(offset).min(bytes.len() as u64) as usize;
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.write_all(&bytes[..fits])?;
        let end = self.len.max(offset + fits as u64);
        if let Some(free) = free.as_mut() {
            *free -= end - self.len;
        }
        self.len = end;
        if fits < bytes.len() {
            return Err(io::Error::from_raw_os_error(28)); // ENOSPC
        }
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        let mut free = self.disk.free.lock().unwrap();
        self.file.set_len(len)?;
        if let Some(free) = free.as_mut() {
            *free += self.len.saturating_sub(len);
        }
        self.len = len;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_all()
    }
}

/// Polls `done` until it holds, for at most 30 s (generous: a slow machine
/// only makes it wait longer).
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn urls(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["request"]["url"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// One sign-in in the lab, `state` naming it; waits for its verdict and
/// returns how many events it read.
async fn sign_in(lab: &mut Lab, state: &str) -> usize {
    let tenant = lab.tenant();
    let code = lab
        .authorize(&tenant, &authorize_params(state, &[]))
        .await
        .expect("a code");
    let (status, _) = lab.redeem(&tenant, &token_form(&code)).await;
    assert_eq!(status, 200);
    lab.lines_until_verdict().await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_said_at_once_rolled_back_and_written_again_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.log");
    let json = dir.path().join("events.jsonl");
    let har = dir.path().join("session.har");
    let disk = SmallDisk::default();
    let files = {
        let (disk, live) = (disk.clone(), live.clone());
        Files::with(move |path: &Path| {
            let file = File::create(path)?;
            Ok(if path == live {
                Box::new(file) as Box<dyn Storage>
            } else {
                Box::new(FileOnDisk {
                    file,
                    len: 0,
                    disk: disk.clone(),
                })
            })
        })
    };
    let mut output = OutputConfig::silent(AnalyzerConfig::default());
    output.live_log = Some(LiveLogConfig {
        sink: Sink::File(live.clone()),
        options: LiveLogOptions::default(),
    });
    output.json = Some(Sink::File(json.clone()));
    output.har = Some(har.clone());
    output.files = files;
    let mut lab = Lab::start_with_output(MockIdp::default_config(), output).await;
    let mut exchanges = std::mem::replace(&mut lab.proxy.exchanges, lab.proxy.session.exchanges());

    let mut events = sign_in(&mut lab, "st-before").await;
    wait_until("the first sign-in in both files", || {
        let urls = urls(&har_entries(&har));
        json_lines(&json).iter().any(|l| l["type"] == "verdict")
            && urls.iter().any(|u| u.contains("st-before"))
            && urls.iter().any(|u| u.contains("/token"))
    })
    .await;

    disk.fill(40);
    events += sign_in(&mut lab, "st-full").await;
    let json_failed = format!(
        "authlens: could not write --json {}: No space left on device",
        json.display()
    );
    let har_failed = format!(
        "authlens: could not write --har {}: No space left on device",
        har.display()
    );
    wait_until("both failures in the live log", || {
        let log = read(&live);
        log.contains(&json_failed) && log.contains(&har_failed)
    })
    .await;
    // While the run goes on: both files whole, the failures said once.
    let log = read(&live);
    assert_eq!(log.matches(&json_failed).count(), 1, "{log}");
    assert!(log.contains("not written, retrying"), "{log}");
    let before = har_entries(&har).len();
    json_lines(&json);

    disk.free();
    events += sign_in(&mut lab, "st-after").await;
    wait_until(
        "the sign-in after the disk was freed, in both files",
        || {
            json_lines(&json).iter().any(|l| l["state"] == "st-after")
                && urls(&har_entries(&har))
                    .iter()
                    .any(|u| u.contains("st-after"))
        },
    )
    .await;
    let log = read(&live);
    assert!(
        log.contains(&format!(
            "authlens: writing --json {} again;",
            json.display()
        )),
        "{log}"
    );

    let mut late_events = std::mem::replace(&mut lab.events, lab.proxy.session.events().live);
    let summary = lab.stop().await;
    while late_events.try_recv().is_ok() {
        events += 1;
    }
    let mut published = 0;
    while exchanges.try_recv().is_ok() {
        published += 1;
    }
    assert!(summary.problems.is_empty(), "{:?}", summary.problems);

    // Every entry and line written is whole; what is missing is counted.
    let entries = har_entries(&har);
    assert!(
        entries.len() > before,
        "nothing written after the disk was freed"
    );
    assert!(urls(&entries).iter().any(|u| u.contains("st-before")));
    let lost = |output: String| {
        summary
            .unwritten
            .iter()
            .find(|u| u.output == output)
            .unwrap_or_else(|| panic!("{output} not in {:?}", summary.unwritten))
            .clone()
    };
    let har_lost = lost(format!("--har {}", har.display()));
    assert_eq!(har_lost.unit, Unit::ENTRY);
    assert!(har_lost.count >= 1);
    assert_eq!(entries.len() + har_lost.count, published);
    assert_eq!(summary.har, Some((har.clone(), entries.len())));
    let json_lost = lost(format!("--json {}", json.display()));
    assert!(json_lost.count >= 1);
    assert!(json_lost.cause.contains("No space left on device"));
    let lines = json_lines(&json);
    assert_eq!(lines.len() + json_lost.count, events, "{lines:?}");
    assert!(lines.iter().any(|l| l["state"] == "st-before"));
}

/// `analyze --json` onto a full disk: the lines written are whole, and the
/// replay fails saying how many events were not written.
#[test]
fn a_replay_onto_a_full_disk_fails_with_whole_lines_and_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("events.jsonl");
    let disk = SmallDisk::default();
    disk.fill(2_000);
    let mut output = OutputConfig::silent(AnalyzerConfig::default());
    output.json = Some(Sink::File(json.clone()));
    output.files = Files::with(move |path: &Path| {
        Ok(Box::new(FileOnDisk {
            file: File::create(path)?,
            len: 0,
            disk: disk.clone(),
        }))
    });
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/har");
    let files = [
        fixtures.join("chrome-browser.har"),
        fixtures.join("firefox-app.har"),
    ];
    let recording = authlens::har::load(&files, authlens::har::ReadOptions::default()).unwrap();
    let error = authlens::session::Session::replay(&recording, &output)
        .expect_err("a replay that could not write everything fails")
        .to_string();
    let prefix = format!("cannot write --json {}: ", json.display());
    let rest = error
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{error}"));
    assert!(
        rest.ends_with("not written: No space left on device (os error 28)"),
        "{error}"
    );
    let lines = json_lines(&json);
    assert!(!lines.is_empty(), "the first events fit");
    assert!(read(&json).len() <= 2_000);
}

/// `authlens` with an output it cannot create: said before it listens.
#[test]
fn an_output_that_cannot_be_created_is_said_before_listening() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("no-such-dir");
    for (flag, file) in [("--json", "x.jsonl"), ("--har", "x.har")] {
        let path = missing.join(file);
        let out = Command::new(env!("CARGO_BIN_EXE_authlens"))
            .args(["--listen", "127.0.0.1:0", "--no-color", "--certs"])
            .arg(work.path().join("certs"))
            .arg(flag)
            .arg(&path)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!("cannot create {flag} {}", path.display())),
            "{stderr}"
        );
        assert!(!stderr.contains("listening"), "{stderr}");
    }
    let events = work.path().join("events.jsonl");
    std::fs::write(&events, "").unwrap();
    let path = missing.join("report.md");
    let out = Command::new(env!("CARGO_BIN_EXE_authlens"))
        .arg("report")
        .arg("--from-json")
        .arg(&events)
        .arg("--out")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot create the report {}", path.display())),
        "{stderr}"
    );
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// A `size` tmpfs, when running as root where `mount` works.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        use std::os::unix::fs::MetadataExt as _;
        let uid = std::fs::metadata("/proc/self")
            .map_err(|e| e.to_string())?
            .uid();
        if uid != 0 {
            return Err(format!("not running as root (uid {uid})"));
        }
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "authlens-test",
            ])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs failed: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or_default()
            ));
        }
        Ok(Tmpfs(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Everything a pipe has said so far, read on a thread.
fn collect(pipe: impl io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = text.clone();
    std::thread::spawn(move || {
        use io::BufRead as _;
        for line in io::BufReader::new(pipe).lines().map_while(Result::ok) {
            let mut text = sink.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// Fills the filesystem of `path` up: writes until the disk says no.
fn fill_up(path: &Path) {
    let mut filler = File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    loop {
        match filler.write_all(&chunk).and_then(|()| filler.sync_all()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(28) => return,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_full_tmpfs_keeps_the_har_and_json_lines_whole() {
    let tmpfs = match Tmpfs::mount("512k") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            skip(
                "the real full-disk test (tests/it/disk.rs, a tmpfs filled up)",
                &format!("{why}; the stand-in disk test still ran"),
                InCi::Optional,
            );
            return;
        }
    };
    let ca = testkit::TestCa::new();
    let (idp, server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    let work = tempfile::tempdir().unwrap();
    let json = tmpfs.path().join("events.jsonl");
    let har = tmpfs.path().join("session.har");
    let filler = tmpfs.path().join("filler");
    let mut proxy = Binary::start(
        binary::command_with_idp(
            env!("CARGO_BIN_EXE_authlens"),
            &work.path().join("certs"),
            &ca,
            server.addr,
        )
        .arg("--json")
        .arg(&json)
        .arg("--har")
        .arg(&har)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped()),
    );
    let live = collect(proxy.take_stdout());
    let ca_pem = std::fs::read(work.path().join("certs/authlens-ca.pem")).unwrap();
    let client = testkit::client_through(&proxy.url(), &ca_pem);
    let endpoint = |leaf: &str| format!("https://{IDP}/{tenant}/oauth2/v2.0/{leaf}");
    let sign_in = |state: String| {
        let (client, authorize, token) = (client.clone(), endpoint("authorize"), endpoint("token"));
        async move {
            let url =
                reqwest::Url::parse_with_params(&authorize, authorize_params(&state, &[])).unwrap();
            let code = testkit::lab::code_from_authorize(&client, url).await;
            let resp = client
                .post(token)
                .form(&token_form(&code))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    };
    let has_state = |state: &str| {
        json_lines(&json).iter().any(|l| l["state"] == state)
            && urls(&har_entries(&har)).iter().any(|u| u.contains(state))
    };

    sign_in("st-before".into()).await;
    wait_until("the first sign-in in both files", || has_state("st-before")).await;

    fill_up(&filler);
    // Sign in until both files have said they cannot write (the last page
    // of each file may still have room for a record or two).
    let said = |what: &str, path: &Path| {
        live.lock().unwrap().contains(&format!(
            "authlens: could not write {what} {}: No space left on device",
            path.display()
        ))
    };
    let mut n = 0;
    while !(said("--json", &json) && said("--har", &har)) {
        assert!(
            n < 50,
            "no failure said after {n} sign-ins:\n{}",
            live.lock().unwrap()
        );
        sign_in(format!("st-full-{n}")).await;
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // While the disk is full and the run goes on, both files are whole.
    eprintln!("both failures said after {n} sign-in(s) on the full tmpfs");
    har_entries(&har);
    json_lines(&json);

    std::fs::remove_file(&filler).unwrap();
    sign_in("st-after".into()).await;
    wait_until(
        "the sign-in after the disk was freed, in both files",
        || has_state("st-after"),
    )
    .await;

    proxy.terminate();
    let exit = proxy.wait().await;
    assert!(exit.success(), "exit status {exit:?}");
    proxy.rest_of_stderr();
    let closing = proxy.seen.join("\n");
    assert!(
        closing.contains("authlens stopped"),
        "no closing lines:\n{closing}"
    );
    for (what, path, unit) in [("--json", &json, " event"), ("--har", &har, " entr")] {
        let prefix = format!("authlens: {what} {}: ", path.display());
        let line = closing
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no closing line for {what}:\n{closing}"));
        let (count, rest) = line.split_once(unit).unwrap_or_else(|| panic!("{line}"));
        assert!(count.parse::<usize>().unwrap() >= 1, "{line}");
        assert!(
            rest.contains(" not written (No space left on device"),
            "{line}"
        );
    }
    let entries = har_entries(&har);
    assert!(urls(&entries).iter().any(|u| u.contains("st-before")));
    assert!(urls(&entries).iter().any(|u| u.contains("st-after")));
    json_lines(&json);
    wait_until("the live log to say writing works again", || {
        live.lock().unwrap().contains("again;")
    })
    .await;
}
