//! The `authlens` binary as a user runs it: flags, the live log, `--json`,
//! and a clean exit on SIGTERM that loses nothing already captured.

use std::process::{Command, Stdio};
use std::time::Duration;

use testkit::binary::{self, Binary};
use testkit::lab::{IDP, WEB_SECRET, code_from_authorize, token_form, web_authorize_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_writes_json_lines_and_exits_cleanly_on_sigterm() {
    let ca = testkit::TestCa::new();
    let (idp, server) = testkit::lab::default_mock_idp(&ca).await;
    let tenant = idp.config().tenant.clone();
    let work = tempfile::tempdir().unwrap();
    let json_path = work.path().join("signins.jsonl");

    let mut proxy = Binary::start(
        binary::command_with_idp(
            env!("CARGO_BIN_EXE_authlens"),
            &work.path().join("certs"),
            &ca,
            server.addr,
        )
        .arg("--json")
        .arg(&json_path)
        .stdout(Stdio::piped()),
    );
    proxy.wait_for("export HTTPS_PROXY");
    let banner = proxy.seen.join("\n");
    assert!(banner.contains("authlens-ca.pem"), "{banner}");

    let ca_pem = std::fs::read(work.path().join("certs/authlens-ca.pem")).unwrap();
    let client = testkit::client_through(&proxy.url(), &ca_pem);
    let code = code_from_authorize(&client, web_authorize_url(&tenant, "cli-state")).await;
    let mut form = token_form(&code);
    form.remove(5); // no PKCE in this flow
    let token_url = format!("https://{IDP}/{tenant}/oauth2/v2.0/token");
    for expected in [200, 400] {
        let resp = client.post(&token_url).form(&form).send().await.unwrap();
        assert_eq!(resp.status(), expected);
    }

    // SIGTERM right away: the findings of the last exchange must still land.
    proxy.terminate();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut proxy.take_stdout(), &mut stdout).unwrap();
    let exit = proxy.wait().await;
    assert!(exit.success(), "exit status {exit:?}");
    let stderr_rest = proxy.rest_of_stderr().join("\n");

    assert!(stdout.contains("code-reused"), "live log:\n{stdout}");
    assert!(!stdout.contains(&code), "the code leaked in the live log");
    assert!(!stdout.contains(WEB_SECRET));
    let json = tokio::time::timeout(Duration::from_secs(5), async {
        std::fs::read_to_string(&json_path).unwrap()
    })
    .await
    .unwrap();
    let values: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is one JSON object"))
        .collect();
    assert!(
        values
            .iter()
            .any(|v| v["type"] == "finding" && v["rule"] == "code-reused"),
        "{json}"
    );
    assert!(
        values.iter().any(|v| v["type"] == "finding"
            && v["rule"] == "idp-error"
            && v["field"] == "AADSTS54005"),
        "{json}"
    );
    assert!(!json.contains(&code) && !json.contains(WEB_SECRET));
    assert!(stderr_rest.contains("authlens stopped"), "{stderr_rest}");
    let summary = stderr_rest
        .lines()
        .find(|l| l.starts_with("authlens: 1 sign-in attempt(s)"))
        .unwrap_or_else(|| panic!("no closing summary in:\n{stderr_rest}"));
    assert!(summary.contains("1 signed in"), "{summary}");
    assert!(summary.contains("code-reused \u{d7}1"), "{summary}");
    assert!(summary.contains("idp-error \u{d7}1"), "{summary}");
    assert!(
        summary.contains(&format!("wrote {}", json_path.display())),
        "{summary}"
    );
}

#[test]
fn bad_flags_and_a_corrupt_ca_are_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(["--connect-to", "nonsense"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("--connect-to"), "{text}");

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("authlens-ca.pem"), "not a certificate").unwrap();
    std::fs::write(dir.path().join("authlens-ca-key.pem"), "not a key").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_authlens"))
        .args(["--listen", "127.0.0.1:0", "--certs"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("authlens-ca"), "{text}");
    assert!(
        std::fs::read_to_string(dir.path().join("authlens-ca.pem")).unwrap() == "not a certificate",
        "never silently regenerated"
    );
}

fn authlens() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_authlens"));
    command.env_remove("NO_COLOR").env_remove("RUST_LOG");
    command
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/har")
        .join(name)
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn diagnostics_on_a_redirected_stderr_carry_no_colour() {
    let work = tempfile::tempdir().unwrap();
    let out = authlens()
        .args(["run", "--insecure", "--listen", "127.0.0.1:0", "--certs"])
        .arg(work.path().join("certs"))
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let text = stderr_of(&out);
    assert!(
        text.contains("--insecure: upstream certificates are NOT verified"),
        "{text}"
    );
    assert!(!out.stderr.contains(&0x1b), "an ANSI escape in:\n{text:?}");
}

#[test]
fn listen_takes_a_name_that_resolves_to_loopback() {
    let work = tempfile::tempdir().unwrap();
    let out = authlens()
        .args(["run", "--listen", "localhost:0", "--certs"])
        .arg(work.path().join("certs"))
        .args(["--", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = stderr_of(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("authlens listening on http://127.0.0.1:")
            || text.contains("authlens listening on http://[::1]:"),
        "{text}"
    );
    assert!(!text.contains("open to the network"), "{text}");
    // An unresolvable name is tested on `config::parse_listen` with a stub
    // resolver: this binary would ask the system's.
}

#[test]
fn a_taken_port_names_its_cause_once_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let work = tempfile::tempdir().unwrap();
    let out = authlens()
        .args(["--listen", &addr, "--certs"])
        .arg(work.path().join("certs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stderr_of(&out);
    assert!(text.contains(&format!("cannot listen on {addr}")), "{text}");
    let cause = std::io::Error::from(std::io::ErrorKind::AddrInUse).to_string();
    assert_eq!(
        text.matches("(os error").count(),
        1,
        "the cause ({cause}) once: {text}"
    );
    assert!(
        text.contains("another authlens") && text.contains("--listen"),
        "{text}"
    );
}

#[test]
fn certs_naming_a_file_says_so() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("hostname");
    std::fs::write(&file, "a file\n").unwrap();
    let out = authlens()
        .args(["--listen", "127.0.0.1:0", "--certs"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = stderr_of(&out);
    assert!(
        text.contains("--certs") && text.contains("is a file, not a directory"),
        "{text}"
    );
    assert!(!text.contains("File exists"), "{text}");
}

#[test]
fn analyze_given_a_json_lines_file_points_to_report_from_json() {
    let work = tempfile::tempdir().unwrap();
    let jsonl = work.path().join("signins.jsonl");
    let out = authlens()
        .arg("analyze")
        .arg(fixture("chrome-browser.har"))
        .arg("--json")
        .arg(&jsonl)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let written = std::fs::read_to_string(&jsonl).unwrap();
    let first = written.lines().next().expect("some events");
    let one = work.path().join("one.jsonl");
    std::fs::write(&one, format!("{first}\n")).unwrap();
    // Several lines are not one JSON document; one line is, but not a HAR.
    for path in [&jsonl, &one] {
        let out = authlens().arg("analyze").arg(path).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let text = stderr_of(&out);
        assert!(
            text.contains("JSON lines file of authlens events")
                && text.contains(&format!("authlens report --from-json {}", path.display())),
            "{text}"
        );
    }
}

/// The proxy's banner when PATH is `path`, up to its last line.
fn banner_with_path(path: &std::ffi::OsStr, certs: &std::path::Path) -> String {
    let mut proxy = Binary::start(
        authlens()
            .args(["--listen", "127.0.0.1:0", "--certs"])
            .arg(certs)
            .env("PATH", path)
            .stdout(Stdio::null()),
    );
    proxy.wait_for("curl -x");
    let banner: String = proxy.seen.iter().map(|l| format!("{l}\n")).collect();
    banner
}

#[cfg(unix)]
#[test]
fn the_banner_shows_commands_that_work_here() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    let empty = tempfile::tempdir().unwrap();
    let banner = banner_with_path(empty.path().as_os_str(), &certs);
    let ca = std::path::absolute(certs.join("authlens-ca.pem")).unwrap();
    for line in [
        "  run a program through it:  cargo run --release -- run --proxy 127.0.0.1:",
        "  open a browser through it: cargo run --release -- browser --proxy 127.0.0.1:",
        &format!("  export REQUESTS_CA_BUNDLE={}", ca.display()),
        &format!("  export NODE_EXTRA_CA_CERTS={}", ca.display()),
        &format!("--cacert {} https://", ca.display()),
    ] {
        assert!(banner.contains(line), "{line:?} missing:\n{banner}");
    }

    let installed = tempfile::tempdir().unwrap();
    let program = installed.path().join("authlens");
    std::fs::write(&program, "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let banner = banner_with_path(installed.path().as_os_str(), &certs);
    assert!(
        banner.contains("  run a program through it:  authlens run --proxy 127.0.0.1:"),
        "{banner}"
    );
    assert!(!banner.contains("cargo run"), "{banner}");
}
