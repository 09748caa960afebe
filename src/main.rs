//! The `authlens` command: parses flags into a validated configuration and
//! hands over to the library.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use std::io::IsTerminal;

use authlens::config::{ConnectTo, HostPattern, ProxyConfig};
use authlens::oauth::AnalyzerConfig;
use authlens::output::live_log::LiveLogOptions;
use authlens::pipeline::{self, Analysis};
use authlens::proxy::Proxy;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "authlens",
    version,
    about = "A local HTTPS debugging proxy that makes OAuth 2.0 / OpenID Connect sign-in failures obvious"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    proxy: ProxyArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy (the default when no subcommand is given).
    Proxy(ProxyArgs),
    /// Explain an IdP error code (AADSTS90056, 54005, invalid_grant, AADB2C90088), or every code in an error response read from stdin.
    Explain(ExplainArgs),
    /// Analyse HAR files (DevTools, mitmproxy, authlens --har) with the same rules as the proxy; exit 0 clean, 1 errors found, 2 unreadable input.
    Analyze(AnalyzeArgs),
    /// Write a Markdown report of a recorded session for a bug ticket (no secret in clear).
    Report(ReportArgs),
}

#[derive(Args, Clone)]
struct ProxyArgs {
    /// Address to listen on. Anything but loopback exposes the proxy to the network.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory holding the local CA (created on first run).
    #[arg(long, default_value = "certs")]
    certs: PathBuf,
    /// Extra PEM CA file trusted for upstream servers (repeatable).
    #[arg(long = "upstream-ca", value_name = "FILE")]
    upstream_ca: Vec<PathBuf>,
    /// Do not verify upstream certificates (dangerous).
    #[arg(long)]
    insecure: bool,
    /// Send requests for HOST:PORT to ADDR:PORT2, keeping HOST for TLS (repeatable, curl syntax).
    #[arg(long = "connect-to", value_name = "HOST:PORT:ADDR:PORT2")]
    connect_to: Vec<ConnectTo>,
    /// Splice CONNECT tunnels to matching hosts without interception (repeatable, e.g. *.googleapis.com).
    #[arg(long, value_name = "PATTERN")]
    passthrough: Vec<HostPattern>,
    /// Largest body copy (bytes) handed to the analysis per message.
    #[arg(long, default_value_t = authlens::exchange::DEFAULT_CAPTURE_LIMIT)]
    capture_limit: usize,
    /// Also write every leg and finding as JSON lines to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Show codes, secrets, verifiers and tokens in clear instead of fingerprints.
    #[arg(long)]
    show_secrets: bool,
    /// Treat codes older than this as expired (e.g. 90s, 10m); default: the provider's lifetime.
    #[arg(long, value_name = "DURATION", value_parser = authlens::config::parse_duration)]
    code_lifetime: Option<std::time::Duration>,
    /// Show more detail under each leg of the live log.
    #[arg(short, long)]
    verbose: bool,
    /// Never colour the live log (NO_COLOR is respected too).
    #[arg(long)]
    no_color: bool,
    /// Also record the session as a HAR 1.2 file (complete on disk after every exchange; secrets redacted unless --show-secrets).
    #[arg(long, value_name = "PATH")]
    har: Option<PathBuf>,
}

#[derive(Args)]
struct AnalyzeArgs {
    /// HAR files; several (a browser's and an app's) are merged by time.
    #[arg(required = true, value_name = "FILE.har")]
    files: Vec<PathBuf>,
    /// Also write every leg and finding as JSON lines to PATH (`-` for stdout).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Treat codes older than this as expired (e.g. 90s, 10m); default: the provider's lifetime.
    #[arg(long, value_name = "DURATION", value_parser = authlens::config::parse_duration)]
    code_lifetime: Option<std::time::Duration>,
    /// Show codes, secrets, verifiers and tokens in clear instead of fingerprints.
    #[arg(long)]
    show_secrets: bool,
    /// Show more detail under each leg.
    #[arg(short, long)]
    verbose: bool,
    /// Never colour the log (NO_COLOR is respected too).
    #[arg(long)]
    no_color: bool,
}

#[derive(Args)]
struct ReportArgs {
    /// HAR files to analyse (merged by time).
    #[arg(
        value_name = "FILE.har",
        required_unless_present = "from_json",
        conflicts_with = "from_json"
    )]
    files: Vec<PathBuf>,
    /// Build the report from a JSON lines file written with --json instead.
    #[arg(long, value_name = "PATH")]
    from_json: Option<PathBuf>,
    /// Where to write the Markdown (default: stdout).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Treat codes older than this as expired (e.g. 90s, 10m); default: the provider's lifetime.
    #[arg(long, value_name = "DURATION", value_parser = authlens::config::parse_duration)]
    code_lifetime: Option<std::time::Duration>,
}

/// True when stdout is a terminal that may be coloured.
fn colour(no_color: bool) -> bool {
    !no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stdout().is_terminal()
}

/// `authlens analyze`: exit 0 without error findings, 1 with, 2 when an
/// input (or the output) cannot be used.
fn analyze(args: AnalyzeArgs) -> ExitCode {
    use authlens::har::{AnalyzeOptions, ReadOptions, analyze_files};
    let options = AnalyzeOptions {
        analyzer: AnalyzerConfig {
            code_lifetime: args.code_lifetime,
            show_secrets: args.show_secrets,
            ..AnalyzerConfig::default()
        },
        live: LiveLogOptions {
            color: colour(args.no_color),
            verbose: args.verbose,
        },
        read: ReadOptions {
            progress: std::io::stderr().is_terminal(),
            ..ReadOptions::default()
        },
    };
    let mut json: Option<Box<dyn std::io::Write>> = match args.json.as_deref() {
        Some(path) if path == std::path::Path::new("-") => Some(Box::new(std::io::stdout())),
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some(Box::new(std::io::BufWriter::new(file))),
            Err(e) => {
                eprintln!("authlens: cannot create --json {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut log = std::io::stdout();
    let json = json.as_mut().map(|w| w.as_mut() as &mut dyn std::io::Write);
    match analyze_files(&args.files, &options, &mut log, json) {
        Ok(s) => {
            eprintln!(
                "authlens: {} exchange(s), {} sign-in attempt(s), {} error(s), {} warning(s)",
                s.exchanges, s.attempts, s.errors, s.warnings
            );
            if s.errors > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("authlens: {e}");
            ExitCode::from(2)
        }
    }
}

/// `authlens report`: exit 0 when written, 2 when an input or the output
/// cannot be used.
fn report(args: ReportArgs) -> ExitCode {
    use authlens::report;
    let input = match &args.from_json {
        Some(path) => report::from_json_lines(path),
        None => report::from_har(
            &args.files,
            authlens::har::ReadOptions {
                progress: std::io::stderr().is_terminal(),
                ..Default::default()
            },
            AnalyzerConfig {
                code_lifetime: args.code_lifetime,
                ..AnalyzerConfig::default()
            },
        ),
    };
    let markdown = match input {
        Ok(input) => report::render(&input),
        Err(e) => {
            eprintln!("authlens: {e}");
            return ExitCode::from(2);
        }
    };
    let written = match &args.out {
        Some(path) => std::fs::write(path, markdown)
            .map_err(|e| format!("cannot write {}: {e}", path.display())),
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(markdown.as_bytes())
                .map_err(|e| format!("cannot write the report: {e}"))
        }
    };
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authlens: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Args)]
struct ExplainArgs {
    /// The code or error value; `-` or nothing reads a pasted error response (JSON body, error_description, or URL) from stdin.
    code: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// `authlens explain`: exit 0 when every code is known, 1 otherwise.
fn explain(args: ExplainArgs) -> ExitCode {
    use authlens::explain::{self, Input, MAX_INPUT};
    use std::io::Read as _;

    let input = match args.code.as_deref().filter(|c| *c != "-") {
        Some(code) => Input::from_arg(code),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("authlens: paste the error response, then press Ctrl-D");
            }
            let mut bytes = Vec::new();
            let limit = u64::try_from(MAX_INPUT).unwrap_or(u64::MAX);
            if let Err(e) = std::io::stdin().lock().take(limit).read_to_end(&mut bytes) {
                eprintln!("authlens: cannot read stdin: {e}");
                return ExitCode::from(2);
            }
            Input::Text(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let report = explain::explain(&input);
    if args.json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    if report.found() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What the outlets need, split from the proxy's own configuration.
struct OutputConfig {
    json: Option<PathBuf>,
    har: Option<PathBuf>,
    analyzer: AnalyzerConfig,
    live: LiveLogOptions,
}

impl ProxyArgs {
    fn into_config(self) -> (ProxyConfig, OutputConfig) {
        let mut config = ProxyConfig::new(self.listen, self.certs);
        config.upstream_cas = self.upstream_ca;
        config.insecure = self.insecure;
        config.connect_to = self.connect_to;
        config.passthrough = self.passthrough;
        config.capture_limit = self.capture_limit;
        let color = !self.no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::io::stdout().is_terminal();
        let output = OutputConfig {
            json: self.json,
            har: self.har,
            analyzer: AnalyzerConfig {
                code_lifetime: self.code_lifetime,
                show_secrets: self.show_secrets,
                ..AnalyzerConfig::default()
            },
            live: LiveLogOptions {
                color,
                verbose: self.verbose,
            },
        };
        (config, output)
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("authlens=info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Proxy(args)) => args,
        Some(Command::Explain(args)) => return explain(args),
        Some(Command::Analyze(args)) => return analyze(args),
        Some(Command::Report(args)) => return report(args),
        None => cli.proxy,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authlens: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (config, output) = args.into_config();
    match runtime.block_on(run_proxy(config, output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authlens: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run_proxy(config: ProxyConfig, output: OutputConfig) -> anyhow::Result<()> {
    if !config.listen.ip().is_loopback() {
        tracing::warn!(
            "listening on {}: the proxy is open to the network, and anyone who can reach it can use it and see decrypted traffic",
            config.listen
        );
    }
    if config.insecure {
        tracing::warn!(
            "--insecure: upstream certificates are NOT verified; anyone on the path can impersonate any server"
        );
    }
    let proxy = Proxy::bind(config)
        .await
        .context("cannot start the proxy")?;
    let addr = proxy.local_addr();
    let ca_path = proxy.ca().cert_path().display().to_string();
    eprintln!("authlens listening on http://{addr}");
    eprintln!("  CA certificate: {ca_path}");
    eprintln!("  export HTTPS_PROXY=http://{addr} HTTP_PROXY=http://{addr}");
    eprintln!("  curl -x http://{addr} --cacert {ca_path} https://example.com/");

    let stop = CancellationToken::new();
    let recorder = match output.har.as_deref() {
        Some(path) => Some(
            authlens::har::spawn_recorder(
                proxy.subscribe(),
                path,
                output.analyzer.show_secrets,
                stop.clone(),
            )
            .with_context(|| format!("cannot create --har {}", path.display()))?,
        ),
        None => None,
    };
    let analysis = Analysis::spawn(proxy.subscribe(), output.analyzer, stop.clone());
    let mut outlets = vec![pipeline::live_log_outlet(
        analysis.subscribe(),
        std::io::stdout(),
        output.live,
    )];
    match output.json.as_deref() {
        Some(path) if path == std::path::Path::new("-") => {
            outlets.push(pipeline::json_lines_outlet(
                analysis.subscribe(),
                std::io::stdout(),
            ));
        }
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open --json {}", path.display()))?;
            outlets.push(pipeline::json_lines_outlet(
                analysis.subscribe(),
                std::io::LineWriter::new(file),
            ));
        }
        None => {}
    }

    proxy.run(shutdown_signal()).await;
    stop.cancel();
    analysis.finish().await;
    for outlet in outlets {
        match outlet.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("authlens: writing output failed: {e}"),
            Err(e) => eprintln!("authlens: an output task failed: {e}"),
        }
    }
    if let (Some(recorder), Some(path)) = (recorder, output.har.as_deref()) {
        match recorder.await {
            Ok(Ok(n)) => eprintln!("authlens: {n} exchange(s) recorded in {}", path.display()),
            Ok(Err(e)) => eprintln!("authlens: writing {} failed: {e}", path.display()),
            Err(e) => eprintln!("authlens: the HAR recorder failed: {e}"),
        }
    }
    eprintln!("authlens stopped");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
