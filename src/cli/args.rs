//! The command line's flags (clap), parsed once into the validated
//! configurations of `crate::config`. Nothing here does any work.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::ca::OpenKey;
use crate::config::{
    Audience, ColorChoice, ConnectTo, HostPattern, OutputConfig, OutputFlags, ProxyConfig,
};
use crate::inject::Fault;
use crate::oauth::Severity;

#[derive(Parser)]
#[command(
    name = "authlens",
    version,
    about = "A local HTTPS debugging proxy that makes OAuth 2.0 / OpenID Connect sign-in failures obvious"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub proxy: ProxyArgs,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy (the default when no subcommand is given).
    Proxy(ProxyArgs),
    /// Explain an IdP error code (AADSTS90056, 54005, invalid_grant, AADB2C90088), or every code in an error response read from stdin.
    Explain(ExplainArgs),
    /// Analyse HAR files (DevTools, mitmproxy, authlens --har) with the same rules as the proxy; exit 0 clean, 1 errors found, 2 unreadable input.
    Analyze(AnalyzeArgs),
    /// Write a Markdown report of a recorded session for a bug ticket (no secret in clear).
    Report(ReportArgs),
    /// Run a command through authlens: proxy variables, CA bundles, Java trust store and a Node preload set for it; exits with its status.
    Run(RunArgs),
    /// Launch Chromium or Chrome through authlens with a fresh profile, localhost included, nothing installed.
    Browser(BrowserArgs),
    /// Show the CA (path, fingerprint, expiry), export it, explain how to trust it, or regenerate it.
    Ca(CaArgs),
    /// List the faults `--fault` can inject to reproduce a sign-in failure, with an example each.
    Faults,
}

#[derive(Args)]
pub struct RunArgs {
    /// Use the authlens proxy already running at ADDR (with --certs naming its CA directory).
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen)]
    pub proxy: Option<SocketAddr>,
    /// Settings for the proxy started for this command when none is running at --listen.
    #[command(flatten)]
    pub settings: ProxyArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Args)]
pub struct BrowserArgs {
    /// Use the authlens proxy already running at ADDR (with --certs naming its CA directory).
    #[arg(long, value_name = "ADDR", value_parser = crate::config::parse_listen)]
    pub proxy: Option<SocketAddr>,
    /// The browser executable (default: chromium, google-chrome… found on PATH).
    #[arg(long, value_name = "PATH")]
    pub browser: Option<PathBuf>,
    /// Show the browser's own output (hidden by default: Chromium is chatty).
    #[arg(long)]
    pub browser_output: bool,
    /// Also open authlens's live web view in a tab beside the page (when the proxy is started for this browser).
    #[arg(long)]
    pub web_tab: bool,
    /// Settings for the proxy started for the browser when none is running at --listen.
    #[command(flatten)]
    pub settings: ProxyArgs,
    /// The page to open.
    pub url: Option<String>,
    /// Extra browser flags, after `--` (e.g. -- --incognito).
    #[arg(last = true, value_name = "BROWSER_FLAGS")]
    pub browser_args: Vec<OsString>,
}

#[derive(Args)]
pub struct CaArgs {
    /// Directory holding the local CA.
    #[arg(long, default_value = crate::config::DEFAULT_CERTS_DIR)]
    pub certs: PathBuf,
    /// Write the CA as PEM, DER (.crt), a PKCS#12 trust store and a system+authlens bundle into DIR.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["install_help", "regenerate"])]
    pub export: Option<PathBuf>,
    /// Print exact steps to trust the CA permanently, per OS and runtime.
    #[arg(long, conflicts_with = "regenerate")]
    pub install_help: bool,
    /// Replace the CA with a new one (needs --yes; clients must then trust the new CA).
    #[arg(long)]
    pub regenerate: bool,
    /// Confirms --regenerate.
    #[arg(long, requires = "regenerate")]
    pub yes: bool,
    /// Use a CA key that other users can read instead of refusing it (fix it with chmod 600 instead).
    #[arg(long)]
    pub allow_open_key: bool,
}

impl CaArgs {
    pub fn open_key(&self) -> OpenKey {
        open_key(self.allow_open_key)
    }
}

fn open_key(allow: bool) -> OpenKey {
    if allow {
        OpenKey::Allow
    } else {
        OpenKey::Refuse
    }
}

#[derive(Args, Clone)]
pub struct ProxyArgs {
    /// Address to listen on (an IP or a host name, with a port). Anything but loopback exposes the proxy to the network.
    #[arg(long, default_value = crate::config::DEFAULT_LISTEN, value_parser = crate::config::parse_listen)]
    pub listen: SocketAddr,
    /// Directory holding the local CA (created on first run).
    #[arg(long, default_value = crate::config::DEFAULT_CERTS_DIR)]
    pub certs: PathBuf,
    /// Extra PEM CA file trusted for upstream servers (repeatable).
    #[arg(long = "upstream-ca", value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
    /// Do not verify upstream certificates (dangerous).
    #[arg(long)]
    pub insecure: bool,
    /// Use a CA key that other users can read instead of refusing it (fix it with chmod 600 instead).
    #[arg(long)]
    pub allow_open_key: bool,
    /// Send requests for HOST:PORT to ADDR:PORT2, keeping HOST for TLS (repeatable, curl syntax).
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT2")]
    pub connect_to: Vec<ConnectTo>,
    /// Splice CONNECT tunnels to matching hosts without interception (repeatable, e.g. *.googleapis.com).
    #[arg(long, value_name = "PATTERN")]
    pub passthrough: Vec<HostPattern>,
    /// Largest body copy (bytes) handed to the analysis per message.
    #[arg(long, default_value_t = crate::exchange::DEFAULT_CAPTURE_LIMIT)]
    pub capture_limit: usize,
    /// How long a client's request body may keep authlens waiting in all (plus 1 s per --client-body-min-rate bytes it sends) before the client gets a 408 (e.g. 30s; 0 turns it off).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::config::parse_duration)]
    pub client_body_timeout: std::time::Duration,
    /// Bytes of request body that earn one more second of waiting (see --client-body-timeout).
    #[arg(long, value_name = "BYTES", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub client_body_min_rate: u64,
    /// How long an upstream may go silent mid-body before authlens cuts the response off, blaming the upstream (e.g. 60s; 0 turns it off).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::config::parse_duration)]
    pub upstream_body_stall: std::time::Duration,
    /// Also write every leg and finding as JSON lines to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Show codes, secrets, verifiers and tokens in clear instead of fingerprints.
    #[arg(long)]
    pub show_secrets: bool,
    /// Treat codes older than this as expired (e.g. 90s, 10m); default: the provider's lifetime.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub code_lifetime: Option<std::time::Duration>,
    /// More detail in the live log: every id and URL whole, the verdict's cause in full, each finding's evidence.
    #[arg(short, long)]
    pub verbose: bool,
    /// Never colour the live log or the diagnostics (NO_COLOR is respected too).
    #[arg(long)]
    pub no_color: bool,
    /// Also record the session as a HAR 1.2 file (complete on disk after every exchange; secrets redacted unless --show-secrets).
    #[arg(long, value_name = "PATH")]
    pub har: Option<PathBuf>,
    /// Make sign-ins fail on purpose (repeatable), e.g. reuse-code, expire-code=90s, idp-error=AADSTS50076@authorize; scope with @client=ID,host=HOST,times=N. `authlens faults` lists them.
    #[arg(long = "fault", value_name = "NAME[=VALUE][@SCOPE]", value_parser = parse_fault)]
    pub faults: Vec<Fault>,
    /// Exit 1 when the app's own findings (not injected by --fault) reach this severity: at Ctrl-C/SIGTERM, or when `run`'s command succeeded.
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,
    /// Do not serve the live web view on the proxy's port.
    #[arg(long)]
    pub no_web: bool,
    /// Sign-in attempts, and exchanges, the web view keeps (the oldest are forgotten).
    #[arg(long, value_name = "N", default_value_t = crate::web::DEFAULT_WEB_HISTORY, value_parser = parse_history)]
    pub web_history: usize,
}

/// The severity `--fail-on` gates on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
}

impl FailOn {
    pub fn severity(self) -> Severity {
        match self {
            FailOn::Error => Severity::Error,
            FailOn::Warning => Severity::Warning,
        }
    }
}

fn parse_fault(text: &str) -> Result<Fault, String> {
    Fault::parse(text).map_err(|e| e.to_string())
}

#[derive(Args)]
pub struct AnalyzeArgs {
    /// HAR files; several (a browser's and an app's) are merged by time.
    #[arg(required = true, value_name = "FILE.har")]
    pub files: Vec<PathBuf>,
    /// Also write every leg and finding as JSON lines to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    /// Treat codes older than this as expired (e.g. 90s, 10m); default: the provider's lifetime.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub code_lifetime: Option<std::time::Duration>,
    /// Show codes, secrets, verifiers and tokens in clear instead of fingerprints.
    #[arg(long)]
    pub show_secrets: bool,
    /// More detail: every id and URL whole, the verdict's cause in full, each finding's evidence.
    #[arg(short, long)]
    pub verbose: bool,
    /// Never colour the log or the diagnostics (NO_COLOR is respected too).
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// HAR files to analyse (merged by time).
    #[arg(
        value_name = "FILE.har",
        required_unless_present = "from_json",
        conflicts_with = "from_json"
    )]
    pub files: Vec<PathBuf>,
    /// Build the report from a JSON lines file written with --json instead.
    #[arg(long, value_name = "PATH")]
    pub from_json: Option<PathBuf>,
    /// Where to write the Markdown (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Treat codes older than this as expired (e.g. 90s, 10m); default: the provider's lifetime.
    #[arg(long, value_name = "DURATION", value_parser = crate::config::parse_duration)]
    pub code_lifetime: Option<std::time::Duration>,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The code or error value; `-` or nothing reads a pasted error response (JSON body, error_description, or URL) from stdin.
    pub code: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

impl Cli {
    /// Whether this run may use colour, from its command's `--no-color` and
    /// `NO_COLOR`: decided once, in `main`, for the diagnostics on stderr
    /// and every output the command opens. A `--no-color` before the
    /// subcommand counts too.
    pub fn color(&self) -> ColorChoice {
        let no_color = self.proxy.no_color
            || match &self.command {
                None => false,
                Some(Command::Proxy(args)) => args.no_color,
                Some(Command::Run(args)) => args.settings.no_color,
                Some(Command::Browser(args)) => args.settings.no_color,
                Some(Command::Analyze(args)) => args.no_color,
                Some(
                    Command::Explain(_) | Command::Report(_) | Command::Ca(_) | Command::Faults,
                ) => false,
            };
        ColorChoice::decide(no_color)
    }
}

impl ProxyArgs {
    /// The proxy's configuration and the outputs' flags; `--no-color` is
    /// already part of `color`.
    pub fn into_config(self, color: ColorChoice) -> (ProxyConfig, OutputFlags) {
        let mut config = ProxyConfig::new(self.listen, self.certs);
        config.upstream_cas = self.upstream_ca;
        config.insecure = self.insecure;
        config.open_key = open_key(self.allow_open_key);
        config.connect_to = self.connect_to;
        config.passthrough = self.passthrough;
        config.capture_limit = self.capture_limit;
        config.timeouts.client_body = self.client_body_timeout;
        config.timeouts.client_body_min_rate = self.client_body_min_rate;
        config.timeouts.upstream_body_stall = self.upstream_body_stall;
        let flags = OutputFlags {
            json: self.json,
            har: self.har,
            show_secrets: self.show_secrets,
            code_lifetime: self.code_lifetime,
            verbose: self.verbose,
            color,
            ..OutputFlags::default()
        };
        (config, flags)
    }

    /// The proxy's configuration and its outputs, for `audience`.
    pub fn into_configs(
        self,
        audience: Audience,
        color: ColorChoice,
    ) -> (ProxyConfig, OutputConfig) {
        let (config, flags) = self.into_config(color);
        (config, OutputConfig::decide(&flags, audience))
    }
}

impl AnalyzeArgs {
    /// The outputs; `--no-color` is already part of `color`.
    pub fn output(&self, color: ColorChoice) -> OutputConfig {
        let flags = OutputFlags {
            json: self.json.clone(),
            show_secrets: self.show_secrets,
            code_lifetime: self.code_lifetime,
            verbose: self.verbose,
            color,
            ..OutputFlags::default()
        };
        OutputConfig::decide(&flags, Audience::Terminal)
    }
}

impl ReportArgs {
    /// The report is written to `--out` (stdout without it); secrets are
    /// never shown in a report, whatever the recording holds.
    pub fn output(&self) -> OutputConfig {
        let flags = OutputFlags {
            report: Some(self.out.clone().unwrap_or_else(|| "-".into())),
            code_lifetime: self.code_lifetime,
            no_live_log: true,
            color: ColorChoice::NEVER,
            ..OutputFlags::default()
        };
        OutputConfig::decide(&flags, Audience::Terminal)
    }
}

fn parse_history(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("expected a whole number above 0, got {text:?}")),
    }
}
