//! Launching Chromium or Chrome through the proxy: found on PATH (or given),
//! with a fresh profile, the proxy for every URL including loopback (Chrome
//! skips the proxy for localhost by default, which would hide the
//! `http://localhost:3000/callback` leg of a sign-in), and the authlens leaf
//! key accepted by its SPKI hash, so no trust store is touched. As root,
//! where Chromium refuses to start with its sandbox, the sandbox is turned
//! off (and the user told). A browser that fails right away is explained
//! with the last lines of its own output.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::program::{is_executable, on_path};

/// Executable names tried on PATH, in order.
pub const CANDIDATES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
    "chrome",
    "microsoft-edge",
    "microsoft-edge-stable",
    "brave-browser",
];

/// Where macOS and Windows install them, outside PATH.
const INSTALL_LOCATIONS: &[&str] = &[
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
];

/// What to tell someone with no Chromium-family browser; the names tried
/// come from [`CANDIDATES`] so the message cannot drift from the search.
pub fn not_found_help() -> String {
    format!(
        "no Chromium or Chrome found (looked on PATH for {}, and in the usual macOS and Windows \
         install folders).
  - install one (Debian/Ubuntu: sudo apt install chromium; Fedora: sudo dnf install chromium), or
  - pass its executable with --browser PATH, or
  - configure any browser by hand: proxy 127.0.0.1 and the authlens port for HTTP and HTTPS,
    trust the CA (see `authlens ca --install-help`), and make it proxy localhost too
    (Firefox: about:config network.proxy.allow_hijacking_localhost = true).",
        CANDIDATES.join(", ")
    )
}

/// The first Chromium-family browser on `path` (a PATH value) or in the
/// usual install locations.
pub fn find(path: Option<&OsStr>) -> Option<PathBuf> {
    CANDIDATES
        .iter()
        .find_map(|name| on_path(name, path))
        .or_else(|| {
            INSTALL_LOCATIONS
                .iter()
                .map(PathBuf::from)
                .find(|p| is_executable(p))
        })
}

/// Everything the browser is started with.
#[derive(Debug, Clone)]
pub struct BrowserLaunch {
    pub proxy: SocketAddr,
    /// Base64 SHA-256 of the authlens leaf key's SubjectPublicKeyInfo.
    pub leaf_spki_sha256: String,
    /// The fresh profile directory.
    pub profile: PathBuf,
    /// The page to open, if any.
    pub url: Option<String>,
    /// The web view's URL (`--web-tab`), opened in a tab beside the page
    /// and reached directly: the proxy refuses its own view through itself.
    pub view: Option<String>,
    /// Extra flags from the command line (`--headless` in tests).
    pub extra: Vec<OsString>,
    /// Pass `--no-sandbox` (see [`no_sandbox_needed`]).
    pub no_sandbox: bool,
}

/// Chromium's flag that turns its sandbox off.
pub const NO_SANDBOX: &str = "--no-sandbox";

/// Whether `--no-sandbox` must be added for a process with effective user
/// id `euid` (`None` where there is none): Chromium will not start as root
/// with its sandbox ("Running as root without --no-sandbox is not
/// supported"). Not added twice when the user passed it already.
pub fn no_sandbox_needed(euid: Option<u32>, extra: &[OsString]) -> bool {
    euid == Some(0) && !extra.iter().any(|a| a == NO_SANDBOX)
}

/// This process's effective user id, where there is one.
pub fn effective_uid() -> Option<u32> {
    #[cfg(unix)]
    {
        Some(rustix::process::geteuid().as_raw())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A browser that exits with an error within this long after its start
/// never got going (a flag it refuses, no display, the sandbox as root): its
/// last lines of output say why.
pub const QUICK_FAILURE: Duration = Duration::from_secs(10);
/// How many lines of the hidden output are kept to explain a quick failure.
pub const TAIL_LINES: usize = 20;

/// True when the browser failed at start rather than being used and closed.
pub fn failed_at_start(status: ExitStatus, elapsed: Duration) -> bool {
    !status.success() && elapsed < QUICK_FAILURE
}

impl BrowserLaunch {
    /// The browser's arguments. `--ignore-certificate-errors-spki-list` is
    /// only honoured together with `--user-data-dir`, which the fresh
    /// profile provides.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            flag("--user-data-dir=", self.profile.as_os_str()),
            format!("--proxy-server=http://{}", self.proxy).into(),
            // `<-loopback>` removes Chrome's implicit bypass of localhost,
            // 127.0.0.0/8 and [::1].
            match &self.view {
                // The proxy's own address, and only it, goes direct.
                Some(_) => format!(
                    "--proxy-bypass-list=<-loopback>;{}",
                    crate::config::connectable(self.proxy)
                )
                .into(),
                None => "--proxy-bypass-list=<-loopback>".into(),
            },
            format!(
                "--ignore-certificate-errors-spki-list={}",
                self.leaf_spki_sha256
            )
            .into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            // Keep the session to the user's own traffic: no component or
            // safe-browsing updates through the proxy.
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
        ];
        if self.no_sandbox {
            args.push(NO_SANDBOX.into());
        }
        args.extend(self.extra.iter().cloned());
        if let Some(url) = &self.url {
            args.push(url.into());
        }
        if let Some(view) = &self.view {
            args.push(view.into());
        }
        args
    }
}

fn flag(name: &str, value: &OsStr) -> OsString {
    let mut flag = OsString::from(name);
    flag.push(value);
    flag
}

/// Removes the profile, retrying briefly: Chromium's helper processes
/// (crash handler, GPU process) can outlive the main one by a moment and
/// still write into it.
pub async fn remove_profile(dir: tempfile::TempDir) -> std::io::Result<()> {
    let path = dir.keep();
    let mut last = Ok(());
    for _ in 0..20 {
        last = std::fs::remove_dir_all(&path);
        match &last {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_route_loopback_and_pin_the_leaf_key() {
        let launch = BrowserLaunch {
            proxy: "127.0.0.1:8080".parse().unwrap(),
            leaf_spki_sha256: "abc=".into(),
            profile: "/tmp/profile".into(),
            url: Some("http://localhost:3000/".into()),
            view: None,
            extra: vec!["--headless".into()],
            no_sandbox: true,
        };
        let args: Vec<String> = launch
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "--user-data-dir=/tmp/profile",
                "--proxy-server=http://127.0.0.1:8080",
                "--proxy-bypass-list=<-loopback>",
                "--ignore-certificate-errors-spki-list=abc=",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-sandbox",
                "--headless",
                "http://localhost:3000/",
            ]
        );
    }

    #[test]
    fn the_sandbox_goes_off_only_for_root_and_only_once() {
        let given = vec![OsString::from("--no-sandbox")];
        let other = vec![OsString::from("--headless")];
        let cases: [(Option<u32>, &[OsString], bool); 6] = [
            (Some(0), &[], true),
            (Some(0), &other, true),
            (Some(0), &given, false),
            (Some(1000), &[], false),
            (Some(1), &[], false),
            (None, &[], false),
        ];
        for (euid, extra, want) in cases {
            assert_eq!(no_sandbox_needed(euid, extra), want, "{euid:?} {extra:?}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn only_a_quick_error_exit_is_a_failure_at_start() {
        use std::os::unix::process::ExitStatusExt as _;
        let failed = ExitStatus::from_raw(1 << 8);
        let ok = ExitStatus::from_raw(0);
        let second = Duration::from_secs(1);
        assert!(failed_at_start(failed, second));
        assert!(!failed_at_start(ok, second));
        assert!(!failed_at_start(failed, QUICK_FAILURE + second));
    }

    #[cfg(unix)]
    #[test]
    fn finds_the_first_candidate_on_path_that_is_executable() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let not_exec = a.path().join("chromium");
        std::fs::write(&not_exec, "").unwrap();
        let chrome = b.path().join("google-chrome");
        std::fs::write(&chrome, "").unwrap();
        std::fs::set_permissions(&chrome, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = std::env::join_paths([a.path(), b.path()]).unwrap();
        assert_eq!(find(Some(&path)), Some(chrome));
        let empty = tempfile::tempdir().unwrap();
        let path = std::env::join_paths([empty.path()]).unwrap();
        let found = find(Some(&path));
        assert!(
            found
                .as_ref()
                .is_none_or(|p| p.is_absolute() && !p.starts_with(empty.path())),
            "{found:?}"
        );
    }
}
