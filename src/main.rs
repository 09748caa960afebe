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
}

/// What the outlets need, split from the proxy's own configuration.
struct OutputConfig {
    json: Option<PathBuf>,
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
