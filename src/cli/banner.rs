//! The start-up banner: where the proxy and its CA are, the one-line client
//! commands, and the variables for a shell. Text only; the proxy command
//! prints it.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::net::SocketAddr;

use crate::clients::program::on_path;
use crate::config::connectable;
use crate::config::{DEFAULT_CERTS_DIR, DEFAULT_LISTEN};
use crate::output::escape::escape_controls;
use crate::session::{Session, SessionSummary, Tally};

/// The banner for `session`, one line per `\n`.
pub fn banner(session: &Session) -> String {
    let addr = session.local_addr();
    let url = format!("http://{}", connectable(addr));
    let ca = session.ca();
    let ca_path = std::path::absolute(ca.cert_path()).unwrap_or_else(|_| ca.cert_path().into());
    let authlens = invocation(std::env::var_os("PATH").as_deref());
    // `run` and `browser` find this proxy by themselves at the defaults.
    let mut join = String::new();
    if Ok(addr) != DEFAULT_LISTEN.parse::<SocketAddr>() {
        let _ = write!(join, " --proxy {}", connectable(addr));
    }
    let default_certs = std::path::absolute(DEFAULT_CERTS_DIR).ok();
    if let Some(dir) = ca_path.parent()
        && default_certs.as_deref() != Some(dir)
    {
        let _ = write!(join, " --certs {}", dir.display());
    }
    let ca_file = ca_path.display();
    let mut text = String::new();
    let _ = writeln!(text, "authlens listening on http://{addr}");
    let _ = writeln!(
        text,
        "  CA certificate: {ca_file}  (SHA-256 {})",
        ca.fingerprint_sha256()
    );
    let _ = writeln!(
        text,
        "  run a program through it:  {authlens} run{join} -- <your command>"
    );
    let _ = writeln!(
        text,
        "  open a browser through it: {authlens} browser{join} [URL]"
    );
    let _ = writeln!(
        text,
        "  trust the CA for good:     {authlens} ca --install-help"
    );
    let _ = writeln!(text, "  or, in a shell:");
    let _ = writeln!(
        text,
        "  export HTTPS_PROXY={url} HTTP_PROXY={url} https_proxy={url} http_proxy={url} NO_PROXY= no_proxy="
    );
    let _ = writeln!(
        text,
        "  export REQUESTS_CA_BUNDLE={ca_file}   # Python requests"
    );
    let _ = writeln!(text, "  export NODE_EXTRA_CA_CERTS={ca_file}  # Node.js");
    let _ = writeln!(
        text,
        "  curl -x {url} --cacert {ca_file} https://example.com/"
    );
    text
}

/// The web view's URL, on a line of its own (token included), for the
/// start-up banner (nothing with `--no-web`).
pub fn web(web: Option<&crate::web::WebView>, listen: SocketAddr) -> String {
    match web {
        None => String::new(),
        Some(web) => format!(
            "  live web view (the token in it opens the view: share it with no one):\n{}\n",
            web.url(listen)
        ),
    }
}

/// The active faults, for the start-up banner (nothing without `--fault`).
pub fn faults(lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    let mut text = String::from(
        "  FAULTS ACTIVE: sign-ins will fail on purpose (findings they cause are marked injected):\n",
    );
    for line in lines {
        let _ = writeln!(
            text,
            "    --fault {}",
            crate::output::escape::escape_controls(line)
        );
    }
    text
}

/// `authlens faults`: every fault with its description and an example.
pub fn fault_list() -> String {
    let mut text = String::from(
        "Faults for --fault NAME[=VALUE][@SCOPE] (repeatable; also with `run` and `browser`):\n\n",
    );
    for fault in crate::inject::CATALOGUE {
        let _ = writeln!(text, "  {}{}", fault.name, fault.value);
        let _ = writeln!(text, "      {}", fault.description);
        let _ = writeln!(text, "      e.g. {}", fault.example);
    }
    text.push_str(
        "\nScope (after @, comma-separated): client=ID (one client_id), host=HOST (one IdP host), \
         times=N (the next N sign-ins only); default: every sign-in while the flag is set.\n\
         e.g. --fault reuse-code@client=11111111-1111-4111-8111-111111111111,times=1\n\
         The IdP's real answer reaches the app; the analysis reports it marked \"injected\".\n\
         --fail-on error|warning exits 1 only for findings that were not injected.\n",
    );
    text
}

/// The one line a stopped session ends with: sign-ins, failures, findings
/// by rule, files written, and anything left out.
/// `other token requests: refresh_token ×3 (1 failed), client_credentials ×1`:
/// the token requests that were not a sign-in's code redemption, for the
/// closing lines of a run and of `analyze`. `None` when there were none.
pub(crate) fn other_token_requests(tally: &Tally) -> Option<String> {
    if tally.other_grants.is_empty() {
        return None;
    }
    let grants: Vec<String> = tally
        .other_grants
        .iter()
        .map(|(grant, n)| {
            let grant = escape_controls(grant);
            match n.failed {
                0 => format!("{grant} \u{d7}{}", n.answered),
                failed => format!("{grant} \u{d7}{} ({failed} failed)", n.answered),
            }
        })
        .collect();
    Some(format!("other token requests: {}", grants.join(", ")))
}

pub fn closing_summary(summary: &SessionSummary) -> String {
    let tally = &summary.tally;
    let mut line = format!(
        "authlens: {} sign-in attempt(s), {} signed in, {} failed",
        tally.attempts, tally.signed_in, tally.failed
    );
    if let Some(grants) = other_token_requests(tally) {
        let _ = write!(line, "; {grants}");
    }
    if tally.by_rule.is_empty() {
        line.push_str("; no findings");
    } else {
        let rules: Vec<String> = tally
            .by_rule
            .iter()
            .map(|(rule, n)| format!("{rule} \u{d7}{n}"))
            .collect();
        let _ = write!(line, "; findings: {}", rules.join(", "));
        if tally.injected > 0 {
            let _ = write!(line, " ({} injected by --fault)", tally.injected);
        }
    }
    let _ = write!(line, "; {} exchange(s)", tally.exchanges);
    let mut files: Vec<String> = Vec::new();
    if let Some((path, n)) = &summary.har {
        files.push(format!("{} ({n} entries)", path.display()));
    }
    files.extend(summary.files.iter().map(|p| p.display().to_string()));
    if !files.is_empty() {
        let _ = write!(line, "; wrote {}", files.join(", "));
    }
    if tally.unanalysed > 0 {
        let _ = write!(
            line,
            "; {} exchange(s) that may be sign-in legs NOT analysed (an output stalled)",
            tally.unanalysed
        );
    }
    if summary.har_missed > 0 {
        let _ = write!(
            line,
            "; {} exchange(s) left out of the HAR (it fell behind)",
            summary.har_missed
        );
    }
    crate::output::escape::escape_controls(&line).into_owned()
}

/// How the user starts authlens again from a shell, given PATH: by name
/// when it is installed, else from the source tree it was built in.
fn invocation(path: Option<&OsStr>) -> &'static str {
    if on_path("authlens", path).is_some() {
        "authlens"
    } else {
        "cargo run --release --"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_token_requests_name_each_grant_with_its_failures_escaped() {
        let mut tally = Tally::default();
        assert_eq!(other_token_requests(&tally), None);
        tally.other_grants.insert(
            "refresh_token".into(),
            crate::session::GrantCount {
                answered: 3,
                failed: 1,
            },
        );
        tally.other_grants.insert(
            "x\u{1b}[2J".into(),
            crate::session::GrantCount {
                answered: 1,
                failed: 0,
            },
        );
        let text = other_token_requests(&tally).unwrap();
        assert!(
            text.starts_with("other token requests: refresh_token \u{d7}3 (1 failed), x"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "escaped: {text}");
    }

    #[test]
    fn active_faults_are_one_line_each_and_none_says_nothing() {
        assert_eq!(faults(&[]), "");
        let text = faults(&[
            "reuse-code (every sign-in)".into(),
            "x\u{1b}[2J (next sign-in only)".into(),
        ]);
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.contains("    --fault reuse-code (every sign-in)\n"),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "escaped: {text}");
    }

    #[cfg(unix)]
    #[test]
    fn names_authlens_only_when_it_is_on_path() {
        use std::os::unix::fs::PermissionsExt;
        let installed = tempfile::tempdir().unwrap();
        let program = installed.path().join("authlens");
        std::fs::write(&program, "").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let empty = tempfile::tempdir().unwrap();
        let path = |dirs: &[&std::path::Path]| std::env::join_paths(dirs).unwrap();
        assert_eq!(
            invocation(Some(&path(&[empty.path(), installed.path()]))),
            "authlens"
        );
        assert_eq!(
            invocation(Some(&path(&[empty.path()]))),
            "cargo run --release --"
        );
        assert_eq!(invocation(None), "cargo run --release --");
    }
}
