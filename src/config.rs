//! The validated configuration of a run: the proxy's ([`ProxyConfig`]) and
//! the outputs' ([`OutputConfig`]).
//!
//! Raw command-line values are parsed once into these types; the rest of
//! authlens never sees a string it has to re-check. Every output decision
//! (which stream the live log goes to, colour, its width, whether a file is
//! truncated, progress bars) is made here, once, from the flags and the kind
//! of command.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::ca::OpenKey;
use crate::exchange::DEFAULT_CAPTURE_LIMIT;
use crate::oauth::AnalyzerConfig;
use crate::output::file::Files;
use crate::output::live_log::{self, LiveLogOptions};

/// Where the proxy listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where the CA lives unless told otherwise (relative to the working directory).
pub const DEFAULT_CERTS_DIR: &str = "certs";

/// Everything the proxy needs to run.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// Where the CA certificate and key live.
    pub certs_dir: PathBuf,
    /// Extra PEM files of CAs trusted for upstream connections.
    pub upstream_cas: Vec<PathBuf>,
    /// Skip upstream certificate verification.
    pub insecure: bool,
    /// Whether a CA key other users can read is refused (`--allow-open-key`).
    pub open_key: OpenKey,
    pub connect_to: Vec<ConnectTo>,
    pub passthrough: Vec<HostPattern>,
    /// How much of each body observers get a copy of.
    pub capture_limit: usize,
    pub timeouts: Timeouts,
    /// How upstream host names become addresses.
    pub resolver: Resolver,
}

/// How the proxy resolves upstream host names: the system's resolver, or a
/// fixed table (tests: a name's fate must not depend on the machine's DNS).
#[derive(Clone, Default)]
pub enum Resolver {
    #[default]
    System,
    /// Only these names resolve (IP literals always do); any other is an
    /// unknown host, at once.
    Table(Arc<HashMap<String, Vec<SocketAddr>>>),
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resolver::System => f.write_str("System"),
            Resolver::Table(names) => f.debug_tuple("Table").field(&names.len()).finish(),
        }
    }
}

impl Resolver {
    /// A table resolver knowing `names`.
    pub fn table(names: impl IntoIterator<Item = (String, Vec<SocketAddr>)>) -> Resolver {
        Resolver::Table(Arc::new(names.into_iter().collect()))
    }

    /// The addresses of `host:port`.
    pub async fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        match self {
            Resolver::System => Ok(tokio::net::lookup_host((host, port)).await?.collect()),
            Resolver::Table(names) => {
                let bare = host.trim_start_matches('[').trim_end_matches(']');
                if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
                    return Ok(vec![SocketAddr::new(ip, port)]);
                }
                names
                    .get(&host.to_ascii_lowercase())
                    .cloned()
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::NotFound,
                            "no such host (not in the resolver table)",
                        )
                    })
            }
        }
    }
}

impl ProxyConfig {
    /// A configuration listening on `listen` with defaults for the rest.
    pub fn new(listen: SocketAddr, certs_dir: impl Into<PathBuf>) -> Self {
        ProxyConfig {
            listen,
            certs_dir: certs_dir.into(),
            upstream_cas: Vec::new(),
            insecure: false,
            open_key: OpenKey::Refuse,
            connect_to: Vec::new(),
            passthrough: Vec::new(),
            capture_limit: DEFAULT_CAPTURE_LIMIT,
            timeouts: Timeouts::default(),
            resolver: Resolver::System,
        }
    }
}

/// Parses a `--listen` or `--proxy` value: an IP address and port
/// (`127.0.0.1:8080`, `[::1]:8080`), or a host name and port, resolved once,
/// here (`localhost:8091`). A name that resolves only to loopback addresses
/// means loopback; a name with any other address means that address, and the
/// proxy then warns, as for any address but loopback, that it is open to the
/// network.
pub fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    listen_with(value, |host, port| {
        (host, port).to_socket_addrs().map(Iterator::collect)
    })
}

/// [`parse_listen`] with the name lookup given (tests pass a stub, so no
/// test depends on a resolver).
fn listen_with(
    value: &str,
    resolve: impl Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>,
) -> Result<SocketAddr, String> {
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let (host, port) = value
        .rsplit_once(':')
        .filter(|(host, _)| !host.is_empty())
        .ok_or_else(|| {
            format!("{value:?}: expected HOST:PORT, such as 127.0.0.1:8080 or localhost:8080")
        })?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{value:?}: {port:?} is not a port number"))?;
    let host = unbracket(host);
    let resolved = resolve(host, port).map_err(|e| {
        format!(
            "cannot resolve {host:?} ({e}); give an IP address instead, such as 127.0.0.1:{port}"
        )
    })?;
    pick_listen_addr(&resolved).ok_or_else(|| {
        format!(
            "{host:?} resolves to no address; give an IP address instead, such as 127.0.0.1:{port}"
        )
    })
}

/// The one address to listen on among those a name resolves to: loopback
/// when every address is loopback, else the first other one (never a
/// loopback address of a name that also has public ones: the user named a
/// network interface). IPv4 first, like the default `127.0.0.1`.
fn pick_listen_addr(resolved: &[SocketAddr]) -> Option<SocketAddr> {
    let all_loopback = resolved.iter().all(|a| a.ip().is_loopback());
    let candidates: Vec<SocketAddr> = resolved
        .iter()
        .copied()
        .filter(|a| all_loopback || !a.ip().is_loopback())
        .collect();
    candidates
        .iter()
        .find(|a| a.is_ipv4())
        .or(candidates.first())
        .copied()
}

/// The address a local client connects to for a proxy listening on `addr`:
/// an unspecified address (`0.0.0.0`, `[::]`) becomes loopback.
pub fn connectable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// How many recent analysis events a session keeps for subscribers that
/// join late (a web page opened mid-session sees what already happened):
/// about 300 sign-ins, a few MiB at most, so a long busy run's memory stays
/// flat. An outlet that wants more history keeps its own.
pub const DEFAULT_EVENT_HISTORY: usize = 2_048;

/// Where a text output goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    Stderr,
    /// A file, created or truncated when the run starts: one file holds one
    /// run, like `--har` (and so `report --from-json` never mixes runs).
    File(PathBuf),
}

impl Sink {
    /// `-` means stdout, anything else a file.
    pub fn from_flag(path: &std::path::Path) -> Sink {
        if path == std::path::Path::new("-") {
            Sink::Stdout
        } else {
            Sink::File(path.to_path_buf())
        }
    }

    /// True when this sink is a terminal (never for a file).
    fn is_terminal(&self) -> bool {
        use std::io::IsTerminal as _;
        match self {
            Sink::Stdout => std::io::stdout().is_terminal(),
            Sink::Stderr => std::io::stderr().is_terminal(),
            Sink::File(_) => false,
        }
    }

    /// The terminal's width in columns, when this sink is a terminal.
    fn terminal_width(&self) -> Option<usize> {
        let term = match self {
            Sink::Stdout => console::Term::stdout(),
            Sink::Stderr => console::Term::stderr(),
            Sink::File(_) => return None,
        };
        term.size_checked()
            .map(|(_rows, columns)| usize::from(columns))
    }

    /// How the sink is named in messages (`--json signins.jsonl`, `stdout`).
    pub fn describe(&self) -> String {
        match self {
            Sink::Stdout => "stdout".into(),
            Sink::Stderr => "stderr".into(),
            Sink::File(path) => path.display().to_string(),
        }
    }
}

/// The output flags shared by the proxy, `run`, `browser`, `analyze` and
/// `report`, as given.
#[derive(Debug, Clone, Default)]
pub struct OutputFlags {
    /// `--json PATH` (`-` for stdout).
    pub json: Option<PathBuf>,
    /// `--har PATH`.
    pub har: Option<PathBuf>,
    /// `--report PATH` (`-` for stdout): the Markdown report.
    pub report: Option<PathBuf>,
    pub show_secrets: bool,
    pub code_lifetime: Option<Duration>,
    pub verbose: bool,
    /// Whether colour may be used (`--no-color`, `NO_COLOR`).
    pub color: ColorChoice,
    /// The live log is not wanted at all (`report`).
    pub no_live_log: bool,
}

/// Whether a run may use colour at all: not with `--no-color`, not with a
/// non-empty `NO_COLOR` (<https://no-color.org>). Decided once per run, in
/// `main`, and used for every stream it writes: the diagnostics on stderr
/// and each output. A stream is then coloured only when it is a terminal
/// ([`ColorChoice::on`]), so nothing redirected to a file carries ANSI codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColorChoice {
    allowed: bool,
}

impl ColorChoice {
    /// No colour anywhere.
    pub const NEVER: ColorChoice = ColorChoice { allowed: false };

    /// The choice for a run given `--no-color` (or not), reading `NO_COLOR`.
    pub fn decide(no_color_flag: bool) -> ColorChoice {
        ColorChoice::from_settings(no_color_flag, std::env::var_os("NO_COLOR").as_deref())
    }

    /// The rule itself: colour unless the flag is given or `NO_COLOR` is
    /// set to anything but the empty string.
    pub fn from_settings(no_color_flag: bool, no_color_env: Option<&OsStr>) -> ColorChoice {
        let env_says_no = no_color_env.is_some_and(|v| !v.is_empty());
        ColorChoice {
            allowed: !no_color_flag && !env_says_no,
        }
    }

    /// Whether to colour what goes to `sink`: only a terminal is coloured.
    pub fn on(self, sink: &Sink) -> bool {
        self.allowed && sink.is_terminal()
    }
}

/// No `--no-color` given: colour unless `NO_COLOR` says otherwise.
impl Default for ColorChoice {
    fn default() -> Self {
        ColorChoice::decide(false)
    }
}

/// Which command the outputs serve: it decides who owns stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The proxy, `browser` and `analyze`: the live log owns stdout unless
    /// `--json -` claims it.
    Terminal,
    /// `run -- CMD`: stdout belongs to CMD, so the live log goes to stderr.
    Command,
}

/// The live log: where it goes and how it looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLogConfig {
    pub sink: Sink,
    pub options: LiveLogOptions,
}

/// Everything the outputs of a run need, decided once.
#[derive(Debug, Clone)]
pub struct OutputConfig {
    pub analyzer: AnalyzerConfig,
    /// `None`: no live log (tests, `report`).
    pub live_log: Option<LiveLogConfig>,
    /// JSON lines, one event per line.
    pub json: Option<Sink>,
    /// The HAR recording (live proxy only; secrets redacted unless shown).
    pub har: Option<PathBuf>,
    /// The Markdown report, written when the run ends.
    pub report: Option<Sink>,
    /// What the run reads, named in the report's header
    /// (`session.har (42 exchanges)`).
    pub source: String,
    /// Draw progress bars on stderr (only when it is a terminal).
    pub progress: bool,
    /// How many recent events are kept for late subscribers.
    pub history: usize,
    /// How the output files are created (the filesystem, unless a program
    /// embedding authlens stands something else in, as the full-disk tests
    /// do).
    pub files: Files,
}

impl OutputConfig {
    /// The outputs the flags ask for. `--json -` and `--report -` own stdout,
    /// so the live log then moves to stderr; so it does under `run`, whose
    /// stdout is the command's. Colour follows `flags.color` (see
    /// [`ColorChoice`]); the width: see [`live_log_width`].
    pub fn decide(flags: &OutputFlags, audience: Audience) -> OutputConfig {
        let json = flags.json.as_deref().map(Sink::from_flag);
        let report = flags.report.as_deref().map(Sink::from_flag);
        let stdout_taken = json == Some(Sink::Stdout) || report == Some(Sink::Stdout);
        let live_log = (!flags.no_live_log).then(|| {
            let sink = if stdout_taken || audience == Audience::Command {
                Sink::Stderr
            } else {
                Sink::Stdout
            };
            LiveLogConfig {
                options: LiveLogOptions {
                    color: flags.color.on(&sink),
                    verbose: flags.verbose,
                    width: live_log_width(
                        std::env::var("COLUMNS").ok().as_deref(),
                        sink.terminal_width(),
                    ),
                },
                sink,
            }
        });
        OutputConfig {
            analyzer: AnalyzerConfig {
                code_lifetime: flags.code_lifetime,
                show_secrets: flags.show_secrets,
                ..AnalyzerConfig::default()
            },
            live_log,
            json,
            har: flags.har.clone(),
            report,
            source: String::new(),
            progress: Sink::Stderr.is_terminal(),
            history: DEFAULT_EVENT_HISTORY,
            files: Files::default(),
        }
    }

    /// No outputs at all: the events are only read by subscribers (tests,
    /// programs embedding authlens).
    pub fn silent(analyzer: AnalyzerConfig) -> OutputConfig {
        OutputConfig {
            analyzer,
            live_log: None,
            json: None,
            har: None,
            report: None,
            source: String::new(),
            progress: false,
            history: DEFAULT_EVENT_HISTORY,
            files: Files::default(),
        }
    }
}

/// Narrower than this, a log line would be mostly indent.
const MIN_LIVE_LOG_WIDTH: usize = 40;

/// How wide the live log's lines may be: `COLUMNS` when it holds a number
/// (the usual override, for a terminal that misreports or a file meant for
/// a given width), else the terminal's width when the log goes to one, else
/// [`live_log::DEFAULT_WIDTH`] (a file, a pipe). Decided once: a terminal
/// resized later keeps the width the run started with.
fn live_log_width(columns: Option<&str>, terminal: Option<usize>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|c| *c > 0)
        .or(terminal)
        .unwrap_or(live_log::DEFAULT_WIDTH)
        .max(MIN_LIVE_LOG_WIDTH)
}

/// Time limits that keep a stuck peer from holding resources forever.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// DNS resolution plus TCP connect plus TLS handshake to an upstream.
    pub connect: Duration,
    /// A client must deliver a complete request head within this time.
    pub header_read: Duration,
    /// A connection with no bytes moving either way is closed after this.
    pub idle: Duration,
    /// Upstream must start answering a request within this time.
    pub response_head: Duration,
    /// A client's request body may keep authlens waiting this long in all,
    /// plus one second per `client_body_min_rate` bytes it sends; then the
    /// client gets a 408. Zero turns the limit off.
    pub client_body: Duration,
    /// Bytes per second that earn a request body one more second of waiting.
    pub client_body_min_rate: u64,
    /// An upstream's response body may go silent mid-body this long before
    /// authlens cuts it off (blaming the upstream). Zero turns it off.
    pub upstream_body_stall: Duration,
    /// How long in-flight exchanges may finish after Ctrl-C.
    pub shutdown_grace: Duration,
    /// Idle upstream connections are closed after this.
    pub pool_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            header_read: Duration::from_secs(30),
            idle: Duration::from_secs(300),
            response_head: Duration::from_secs(120),
            client_body: Duration::from_secs(30),
            client_body_min_rate: 1024,
            upstream_body_stall: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(3),
            pool_idle: Duration::from_secs(90),
        }
    }
}

/// A `--connect-to HOST:PORT:ADDR:PORT2` rule (curl's meaning): requests for
/// HOST:PORT are sent to ADDR:PORT2, while TLS SNI and certificate checks
/// still use HOST. An empty HOST or PORT matches any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub to_host: String,
    pub to_port: u16,
}

/// A bad `--connect-to` or `--passthrough` value.
#[derive(Debug, thiserror::Error)]
#[error("invalid {flag} value {value:?}: {reason}")]
pub struct ConfigError {
    pub flag: &'static str,
    pub value: String,
    pub reason: String,
}

impl FromStr for ConnectTo {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ConfigError {
            flag: "--connect-to",
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (host, rest) = split_host(value).ok_or_else(|| err("expected HOST:PORT:ADDR:PORT2"))?;
        let (port, rest) = rest
            .split_once(':')
            .ok_or_else(|| err("expected HOST:PORT:ADDR:PORT2"))?;
        let (to_host, to_port) = split_host(rest).ok_or_else(|| err("expected ADDR:PORT2"))?;
        let port = match port {
            "" => None,
            p => Some(p.parse().map_err(|_| err("PORT is not a port number"))?),
        };
        let to_port = to_port
            .parse()
            .map_err(|_| err("PORT2 is not a port number"))?;
        if to_host.is_empty() {
            return Err(err("ADDR is empty"));
        }
        Ok(ConnectTo {
            host: (!host.is_empty()).then(|| unbracket(host).to_ascii_lowercase()),
            port,
            to_host: unbracket(to_host).to_string(),
            to_port,
        })
    }
}

/// Splits `host:rest` where host may be a bracketed IPv6 literal.
fn split_host(s: &str) -> Option<(&str, &str)> {
    if s.starts_with('[') {
        let end = s.find(']')?;
        let rest = s[end + 1..].strip_prefix(':')?;
        Some((&s[..=end], rest))
    } else {
        s.split_once(':')
    }
}

/// `host` without the brackets of an IPv6 literal (`[::1]` → `::1`).
pub(crate) fn unbracket(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl ConnectTo {
    /// Where to connect for `host:port`, if this rule applies.
    pub fn apply(&self, host: &str, port: u16) -> Option<(&str, u16)> {
        let host_ok = self
            .host
            .as_deref()
            .is_none_or(|h| h.eq_ignore_ascii_case(unbracket(host)));
        let port_ok = self.port.is_none_or(|p| p == port);
        (host_ok && port_ok).then_some((self.to_host.as_str(), self.to_port))
    }
}

/// A host glob for `--passthrough`: `*` matches any run of characters
/// (`*.googleapis.com` matches `www.googleapis.com`, not `googleapis.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(String);

impl FromStr for HostPattern {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let trimmed = value.trim();
        if trimmed.is_empty() || trimmed.contains(['/', ' ']) {
            return Err(ConfigError {
                flag: "--passthrough",
                value: value.to_string(),
                reason: "expected a host name pattern such as *.example.com".into(),
            });
        }
        Ok(HostPattern(unbracket(trimmed).to_ascii_lowercase()))
    }
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        glob(
            self.0.as_bytes(),
            unbracket(host).to_ascii_lowercase().as_bytes(),
        )
    }
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard matching with single-star backtracking.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_parses_curl_syntax() {
        let rule: ConnectTo = "idp.test:443:127.0.0.1:8443".parse().unwrap();
        assert_eq!(rule.apply("idp.test", 443), Some(("127.0.0.1", 8443)));
        assert_eq!(rule.apply("IDP.test", 443), Some(("127.0.0.1", 8443)));
        assert_eq!(rule.apply("idp.test", 80), None);
        let any: ConnectTo = "::[::1]:9".parse().unwrap();
        assert_eq!(any.apply("x", 1), Some(("::1", 9)));
        let v6: ConnectTo = "[::1]:443:127.0.0.1:1".parse().unwrap();
        assert_eq!(v6.apply("[::1]", 443), Some(("127.0.0.1", 1)));
        for bad in ["", "a:b:c:d", "a:1:b", "a:1::2", "a:1:b:99999"] {
            assert!(bad.parse::<ConnectTo>().is_err(), "{bad}");
        }
    }

    #[test]
    fn passthrough_globs() {
        let p: HostPattern = "*.googleapis.com".parse().unwrap();
        assert!(p.matches("www.googleapis.com"));
        assert!(p.matches("A.B.GoogleApis.com"));
        assert!(!p.matches("googleapis.com"));
        assert!(!p.matches("www.googleapis.com.evil"));
        let exact: HostPattern = "idp.test".parse().unwrap();
        assert!(exact.matches("idp.test") && !exact.matches("xidp.test"));
        assert!("".parse::<HostPattern>().is_err());
    }

    #[test]
    fn live_log_width_columns_then_terminal_then_default() {
        assert_eq!(live_log_width(Some("100"), Some(80)), 100);
        assert_eq!(live_log_width(None, Some(80)), 80);
        assert_eq!(live_log_width(None, None), live_log::DEFAULT_WIDTH);
        // Not a number, or zero: ignored.
        assert_eq!(live_log_width(Some("wide"), Some(80)), 80);
        assert_eq!(live_log_width(Some("0"), None), live_log::DEFAULT_WIDTH);
        // Never so narrow that a line is all indent.
        assert_eq!(live_log_width(Some("12"), None), MIN_LIVE_LOG_WIDTH);
    }

    #[test]
    fn colour_needs_no_flag_and_no_no_color_and_a_terminal() {
        let cases: [(bool, Option<&str>, bool); 5] = [
            (false, None, true),
            (false, Some(""), true),
            (false, Some("1"), false),
            (true, None, false),
            (true, Some("1"), false),
        ];
        for (flag, env, allowed) in cases {
            let choice = ColorChoice::from_settings(flag, env.map(OsStr::new));
            assert_eq!(
                choice,
                ColorChoice { allowed },
                "flag {flag}, NO_COLOR {env:?}"
            );
            // A file is never a terminal, whatever the choice.
            let file = Sink::File("out.log".into());
            assert!(!choice.on(&file));
        }
        assert!(!ColorChoice::NEVER.on(&Sink::Stderr));
    }

    #[test]
    fn a_listen_name_means_loopback_only_when_every_address_is() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let cases = [
            (
                vec![a("[::1]:8091"), a("127.0.0.1:8091")],
                Some(a("127.0.0.1:8091")),
            ),
            (vec![a("[::1]:8091")], Some(a("[::1]:8091"))),
            (
                vec![a("127.0.1.1:8091"), a("192.168.1.5:8091")],
                Some(a("192.168.1.5:8091")),
            ),
            (
                vec![a("[2001:db8::5]:8091"), a("10.0.0.5:8091")],
                Some(a("10.0.0.5:8091")),
            ),
            (vec![a("[2001:db8::5]:8091")], Some(a("[2001:db8::5]:8091"))),
            (vec![], None),
        ];
        for (resolved, want) in cases {
            assert_eq!(pick_listen_addr(&resolved), want, "{resolved:?}");
        }
    }

    #[test]
    fn listen_takes_addresses_and_names() {
        assert_eq!(
            parse_listen("127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:0").unwrap(),
            "[::1]:0".parse::<SocketAddr>().unwrap()
        );
        let localhost = parse_listen("localhost:8091").unwrap();
        assert!(localhost.ip().is_loopback(), "{localhost}");
        assert_eq!(localhost.port(), 8091);
        for bad in ["localhost", ":8080", "localhost:http", "localhost:70000"] {
            let err = parse_listen(bad).unwrap_err();
            assert!(err.contains(bad), "{bad}: {err}");
        }
        let unknown = |_: &str, _: u16| Err(std::io::Error::other("no such host"));
        let err = listen_with("no-such-host.invalid:8080", unknown).unwrap_err();
        assert!(
            err.contains("cannot resolve") && err.contains("127.0.0.1:8080"),
            "{err}"
        );
    }
}

/// Parses a duration such as `90s`, `10m`, `1h30m`, `500ms` or a bare number
/// of seconds.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let text = value.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| format!("{value:?}: {e}"));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{value:?}: a number needs a unit (ms, s, m, h)"))?;
        if digits == 0 {
            return Err(format!("{value:?}: expected a number before the unit"));
        }
        let number: f64 = rest[..digits]
            .parse()
            .map_err(|_| format!("{value:?}: bad number"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            unit => {
                return Err(format!(
                    "{value:?}: unknown unit {unit:?} (use ms, s, m, h)"
                ));
            }
        };
        rest = &rest[unit_len..];
        let part =
            Duration::try_from_secs_f64(number * scale).map_err(|e| format!("{value:?}: {e}"))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("{value:?}: too long"))?;
    }
    Ok(total)
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in [
            "",
            "m",
            "10x",
            "-1",
            "5 m",
            "10000000000000000000s10000000000000000000s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
