//! Launching Chromium or Chrome through the proxy: found on PATH (or given),
//! with a fresh profile, the proxy for every URL including loopback (Chrome
//! skips the proxy for localhost by default, which would hide the
//! `http://localhost:3000/callback` leg of a sign-in), and the authlens leaf
//! key accepted by its SPKI hash, so no trust store is touched.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    let dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    for name in CANDIDATES {
        for dir in &dirs {
            for file in [name.to_string(), format!("{name}.exe")] {
                let candidate = dir.join(file);
                if is_executable(&candidate) {
                    return Some(candidate);
                }
            }
        }
    }
    INSTALL_LOCATIONS
        .iter()
        .map(PathBuf::from)
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = path.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
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
    /// Extra flags from the command line (`--headless` in tests).
    pub extra: Vec<OsString>,
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
            "--proxy-bypass-list=<-loopback>".into(),
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
        args.extend(self.extra.iter().cloned());
        if let Some(url) = &self.url {
            args.push(url.into());
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
            extra: vec!["--headless".into()],
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
                "--headless",
                "http://localhost:3000/",
            ]
        );
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
