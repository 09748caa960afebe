//! The `authlens` command: parses flags into a validated configuration and
//! hands over to the library.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use std::io::IsTerminal;

use authlens::ca::CertificateAuthority;
use authlens::clients::probe::{self, ProxyChoice};
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
    /// Run a command through authlens: proxy variables, CA bundles, Java trust store and a Node preload set for it; exits with its status.
    Run(RunArgs),
    /// Launch Chromium or Chrome through authlens with a fresh profile, localhost included, nothing installed.
    Browser(BrowserArgs),
    /// Show the CA (path, fingerprint, expiry), export it, explain how to trust it, or regenerate it.
    Ca(CaArgs),
}

#[derive(Args)]
struct RunArgs {
    /// Use the authlens proxy already running at ADDR (with --certs naming its CA directory).
    #[arg(long, value_name = "ADDR")]
    proxy: Option<SocketAddr>,
    /// Settings for the proxy started for this command when none is running at --listen.
    #[command(flatten)]
    settings: ProxyArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<OsString>,
}

#[derive(Args)]
struct BrowserArgs {
    /// Use the authlens proxy already running at ADDR (with --certs naming its CA directory).
    #[arg(long, value_name = "ADDR")]
    proxy: Option<SocketAddr>,
    /// The browser executable (default: chromium, google-chrome… found on PATH).
    #[arg(long, value_name = "PATH")]
    browser: Option<PathBuf>,
    /// Show the browser's own output (hidden by default: Chromium is chatty).
    #[arg(long)]
    browser_output: bool,
    /// Settings for the proxy started for the browser when none is running at --listen.
    #[command(flatten)]
    settings: ProxyArgs,
    /// The page to open.
    url: Option<String>,
    /// Extra browser flags, after `--` (e.g. -- --incognito).
    #[arg(last = true, value_name = "BROWSER_FLAGS")]
    browser_args: Vec<OsString>,
}

#[derive(Args)]
struct CaArgs {
    /// Directory holding the local CA.
    #[arg(long, default_value = authlens::config::DEFAULT_CERTS_DIR)]
    certs: PathBuf,
    /// Write the CA as PEM, DER (.crt), a PKCS#12 trust store and a system+authlens bundle into DIR.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["install_help", "regenerate"])]
    export: Option<PathBuf>,
    /// Print exact steps to trust the CA permanently, per OS and runtime.
    #[arg(long, conflicts_with = "regenerate")]
    install_help: bool,
    /// Replace the CA with a new one (needs --yes; clients must then trust the new CA).
    #[arg(long)]
    regenerate: bool,
    /// Confirms --regenerate.
    #[arg(long, requires = "regenerate")]
    yes: bool,
}

#[derive(Args, Clone)]
struct ProxyArgs {
    /// Address to listen on. Anything but loopback exposes the proxy to the network.
    #[arg(long, default_value = authlens::config::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Directory holding the local CA (created on first run).
    #[arg(long, default_value = authlens::config::DEFAULT_CERTS_DIR)]
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

/// `authlens analyze`: exit 0 without error findings, 1 with, 2 when an
/// input (or the output) cannot be used.
fn analyze(args: AnalyzeArgs) -> ExitCode {
    use authlens::har::{AnalyzeOptions, ReadOptions, analyze_files};
    let json_to_stdout = args.json.as_deref() == Some(std::path::Path::new("-"));
    let options = AnalyzeOptions {
        analyzer: AnalyzerConfig {
            code_lifetime: args.code_lifetime,
            show_secrets: args.show_secrets,
            ..AnalyzerConfig::default()
        },
        // `--json -` owns stdout: the log then goes to stderr.
        live: if json_to_stdout {
            LiveLogOptions::for_stream(args.no_color, args.verbose, &std::io::stderr())
        } else {
            LiveLogOptions::for_stream(args.no_color, args.verbose, &std::io::stdout())
        },
        // indicatif draws nothing when stderr is not a terminal.
        read: ReadOptions {
            progress: true,
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
    let mut log: Box<dyn std::io::Write> = if json_to_stdout {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let json = json.as_mut().map(|w| w.as_mut() as &mut dyn std::io::Write);
    match analyze_files(&args.files, &options, &mut log, json) {
        Ok(s) => {
            eprintln!(
                "authlens: {} exchange(s), {} sign-in attempt(s), {} error(s), {} warning(s){}",
                s.exchanges,
                s.attempts,
                s.errors,
                s.warnings,
                if s.skipped > 0 {
                    format!(", {} non-HTTP entr(ies) skipped (data:, blob:)", s.skipped)
                } else {
                    String::new()
                }
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
    no_color: bool,
    verbose: bool,
    /// The live log goes to stderr (with `--json -`, or under `authlens run`,
    /// so stdout stays the JSON's or the command's own).
    live_to_stderr: bool,
}

impl OutputConfig {
    /// The live log's options, for the stream it goes to.
    fn live(&self) -> LiveLogOptions {
        if self.live_to_stderr {
            LiveLogOptions::for_stream(self.no_color, self.verbose, &std::io::stderr())
        } else {
            LiveLogOptions::for_stream(self.no_color, self.verbose, &std::io::stdout())
        }
    }
}

impl ProxyArgs {
    fn into_config(self) -> (ProxyConfig, OutputConfig) {
        let mut config = ProxyConfig::new(self.listen, self.certs);
        config.upstream_cas = self.upstream_ca;
        config.insecure = self.insecure;
        config.connect_to = self.connect_to;
        config.passthrough = self.passthrough;
        config.capture_limit = self.capture_limit;
        let json_to_stdout = self.json.as_deref() == Some(std::path::Path::new("-"));
        let output = OutputConfig {
            json: self.json,
            har: self.har,
            analyzer: AnalyzerConfig {
                code_lifetime: self.code_lifetime,
                show_secrets: self.show_secrets,
                ..AnalyzerConfig::default()
            },
            no_color: self.no_color,
            verbose: self.verbose,
            // `--json -` owns stdout: the live log moves to stderr so the
            // two streams never interleave.
            live_to_stderr: json_to_stdout,
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
        Some(Command::Run(args)) => return block_on(run_command(args), 125),
        Some(Command::Browser(args)) => return block_on(browser(args), 1),
        Some(Command::Ca(args)) => return ca(args),
        None => cli.proxy,
    };
    let (config, output) = args.into_config();
    block_on(
        async move {
            run_proxy(config, output).await?;
            Ok(ExitCode::SUCCESS)
        },
        1,
    )
}

async fn run_proxy(config: ProxyConfig, output: OutputConfig) -> anyhow::Result<()> {
    let proxy = bind_proxy(config).await?;
    print_banner(&proxy);
    serve(proxy, output, shutdown_signal()).await
}

/// Binds the proxy, after warning about settings that expose it or its
/// clients.
async fn bind_proxy(config: ProxyConfig) -> anyhow::Result<Proxy> {
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
    Proxy::bind(config).await.context("cannot start the proxy")
}

/// What to do next, in a few lines: where the proxy and its CA are, the
/// one-line client commands, and the variables for a shell.
fn print_banner(proxy: &Proxy) {
    let addr = proxy.local_addr();
    let url = format!("http://{}", probe::connectable(addr));
    let ca = proxy.ca();
    let ca_path = std::path::absolute(ca.cert_path()).unwrap_or_else(|_| ca.cert_path().into());
    // `run` and `browser` find this proxy by themselves at the defaults.
    let mut join = String::new();
    if Ok(addr) != authlens::config::DEFAULT_LISTEN.parse::<SocketAddr>() {
        join.push_str(&format!(" --proxy {}", probe::connectable(addr)));
    }
    let default_certs = std::path::absolute(authlens::config::DEFAULT_CERTS_DIR).ok();
    if let Some(dir) = ca_path.parent()
        && default_certs.as_deref() != Some(dir)
    {
        join.push_str(&format!(" --certs {}", dir.display()));
    }
    eprintln!("authlens listening on http://{addr}");
    eprintln!(
        "  CA certificate: {}  (SHA-256 {})",
        ca_path.display(),
        ca.fingerprint_sha256()
    );
    eprintln!("  run a program through it:  authlens run{join} -- <your command>");
    eprintln!("  open a browser through it: authlens browser{join} [URL]");
    eprintln!("  trust the CA for good:     authlens ca --install-help");
    eprintln!("  or, in a shell:");
    eprintln!(
        "  export HTTPS_PROXY={url} HTTP_PROXY={url} https_proxy={url} http_proxy={url} NO_PROXY= no_proxy="
    );
    eprintln!("  export NODE_EXTRA_CA_CERTS={}", ca_path.display());
    eprintln!(
        "  curl -x {url} --cacert {} https://example.com/",
        ca_path.display()
    );
}

/// Feeds the analysis, the live log and the other outlets from `proxy`
/// until `until` completes, then flushes them.
async fn serve(
    proxy: Proxy,
    output: OutputConfig,
    until: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
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
    let live = output.live();
    let analysis = Analysis::spawn(proxy.subscribe(), output.analyzer, stop.clone());
    let mut outlets = vec![if output.live_to_stderr {
        pipeline::live_log_outlet(analysis.subscribe(), std::io::stderr(), live)
    } else {
        pipeline::live_log_outlet(analysis.subscribe(), std::io::stdout(), live)
    }];
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

    proxy.run(until).await;
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

/// Runs `task` on a fresh runtime; an error is printed and becomes
/// `failure` (125 for `run`, so it cannot be mistaken for the command's own
/// status).
fn block_on(
    task: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
    failure: u8,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("authlens: cannot start the async runtime: {e}");
            return ExitCode::from(failure);
        }
    };
    match runtime.block_on(task) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("authlens: {e:#}");
            ExitCode::from(failure)
        }
    }
}

/// The proxy a `run` or `browser` command goes through.
struct Joined {
    /// Where clients connect.
    addr: SocketAddr,
    ca: Arc<CertificateAuthority>,
    /// Set when the proxy runs in this process for the command's duration:
    /// cancel, then await the task to flush the outlets.
    served: Option<(
        CancellationToken,
        tokio::task::JoinHandle<anyhow::Result<()>>,
    )>,
}

impl Joined {
    async fn finish(self) {
        if let Some((stop, task)) = self.served {
            stop.cancel();
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("authlens: {e:#}"),
                Err(e) => eprintln!("authlens: the proxy task failed: {e}"),
            }
        }
    }
}

/// Joins the authlens proxy at `--proxy` (or at `--listen` when one runs
/// there), or starts one in this process.
async fn join_or_start(
    explicit: Option<SocketAddr>,
    settings: ProxyArgs,
    log_to_stderr: bool,
) -> anyhow::Result<Joined> {
    let (config, mut output) = settings.into_config();
    match probe::choose(explicit, config.listen).await? {
        ProxyChoice::Running(addr) => {
            let ca = CertificateAuthority::load(&config.certs_dir, &authlens::tls::provider())?;
            eprintln!(
                "authlens: using the proxy running at http://{addr} (its live log is where it runs), CA {}",
                ca.cert_path().display()
            );
            if output.json.is_some() || output.har.is_some() {
                eprintln!(
                    "authlens: warning: --json and --har apply only to a proxy started here; \
                     the running proxy keeps its own outputs (pass them where it was started)"
                );
            }
            Ok(Joined {
                addr,
                ca: Arc::new(ca),
                served: None,
            })
        }
        ProxyChoice::Start(_) => {
            let proxy = bind_proxy(config).await?;
            let ca = proxy.ca().clone();
            eprintln!(
                "authlens listening on http://{} for this command (live log on {}), CA {}",
                proxy.local_addr(),
                if log_to_stderr { "stderr" } else { "stdout" },
                ca.cert_path().display()
            );
            if log_to_stderr {
                output.live_to_stderr = true;
            }
            let addr = probe::connectable(proxy.local_addr());
            let stop = CancellationToken::new();
            let task = tokio::spawn(serve(proxy, output, stop.clone().cancelled_owned()));
            Ok(Joined {
                addr,
                ca,
                served: Some((stop, task)),
            })
        }
    }
}

/// `authlens run -- CMD`: exits with CMD's status (125 when authlens itself
/// fails, 126/127 when CMD cannot be run).
async fn run_command(args: RunArgs) -> anyhow::Result<ExitCode> {
    let joined = join_or_start(args.proxy, args.settings, true).await?;
    let outcome = run_through(&joined, args.command).await;
    joined.finish().await;
    outcome
}

async fn run_through(joined: &Joined, command: Vec<OsString>) -> anyhow::Result<ExitCode> {
    use authlens::clients::env::ClientEnv;
    use authlens::clients::launch::{Launch, exit_code};
    use authlens::clients::trust::{TrustFiles, TrustSet};

    let current = |name: &str| std::env::var_os(name);
    let set = TrustSet::gather(joined.ca.cert_der(), current);
    for warning in &set.warnings {
        eprintln!("authlens: warning: {warning}");
    }
    // Kept until the command has exited, then removed.
    let files = TrustFiles::create(&set)?;
    let env = ClientEnv::plan(joined.addr, files.paths(), current);
    let mut command = command.into_iter();
    let program = command.next().context("no command given after --")?;
    eprintln!(
        "authlens: running {} through http://{} (HTTPS_PROXY and friends, NO_PROXY without loopback, a bundle of {} CAs with authlens's, a Java trust store, a Node preload)",
        program.to_string_lossy(),
        joined.addr,
        set.len()
    );
    let launch = Launch {
        program: program.into(),
        args: command.collect(),
        env,
        quiet: false,
    };
    Ok(match launch.run().await {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(e) => {
            eprintln!("authlens: {e}");
            ExitCode::from(e.exit_code())
        }
    })
}

/// `authlens browser`: exits with the browser's status.
async fn browser(args: BrowserArgs) -> anyhow::Result<ExitCode> {
    use authlens::clients::browser;
    let program = match args.browser {
        Some(path) => path,
        None => browser::find(std::env::var_os("PATH").as_deref())
            .ok_or_else(|| anyhow::anyhow!(browser::not_found_help()))?,
    };
    let joined = join_or_start(args.proxy, args.settings, false).await?;
    let outcome = open_browser(
        &joined,
        program,
        args.url,
        args.browser_args,
        args.browser_output,
    )
    .await;
    joined.finish().await;
    outcome
}

async fn open_browser(
    joined: &Joined,
    program: PathBuf,
    url: Option<String>,
    extra: Vec<OsString>,
    show_output: bool,
) -> anyhow::Result<ExitCode> {
    use authlens::clients::browser::{self, BrowserLaunch};
    use authlens::clients::launch::{Launch, exit_code};

    let profile = tempfile::Builder::new()
        .prefix("authlens-browser-")
        .tempdir()
        .context("cannot create a temporary browser profile")?;
    let launch = BrowserLaunch {
        proxy: joined.addr,
        leaf_spki_sha256: joined.ca.leaf_spki_sha256_base64(),
        profile: profile.path().to_path_buf(),
        url,
        extra,
    };
    eprintln!(
        "authlens: starting {} with a fresh profile in {} (removed when it exits)",
        program.display(),
        profile.path().display()
    );
    eprintln!(
        "  every URL goes through http://{}, localhost included (--proxy-bypass-list=<-loopback>)",
        joined.addr
    );
    eprintln!(
        "  authlens's certificates are accepted by key (--ignore-certificate-errors-spki-list={}); nothing is installed in any trust store",
        launch.leaf_spki_sha256
    );
    let status = Launch {
        program,
        args: launch.args(),
        env: Default::default(),
        quiet: !show_output,
    }
    .run()
    .await;
    let profile_path = profile.path().to_path_buf();
    if let Err(e) = browser::remove_profile(profile).await {
        eprintln!(
            "authlens: warning: could not remove the profile {}: {e}",
            profile_path.display()
        );
    }
    Ok(match status {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(e) => {
            eprintln!("authlens: {e}");
            ExitCode::from(e.exit_code())
        }
    })
}

/// `authlens ca`: 0 on success, 1 when the CA cannot be used or written, 2
/// when --regenerate lacks its confirmation.
fn ca(args: CaArgs) -> ExitCode {
    use authlens::clients::{install_help, trust};
    let provider = authlens::tls::provider();
    let existed = args.certs.join(authlens::ca::CA_CERT_FILE).exists();
    if args.regenerate && !args.yes {
        eprintln!(
            "authlens: --regenerate deletes the CA in {} and makes a new one: every client and trust store that trusts the current CA must be given the new one, and a running proxy restarted. Add --yes to go ahead.",
            args.certs.display()
        );
        return ExitCode::from(2);
    }
    let loaded = if args.regenerate {
        CertificateAuthority::regenerate(&args.certs, &provider)
    } else {
        CertificateAuthority::load_or_create(&args.certs, &provider)
    };
    let ca = match loaded {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("authlens: {e}");
            return ExitCode::from(1);
        }
    };
    let path = std::path::absolute(ca.cert_path()).unwrap_or_else(|_| ca.cert_path().into());
    let name = ca.name().to_owned();
    if args.install_help {
        print!(
            "{}",
            install_help::text(&path, &name, &ca.fingerprint_sha256())
        );
        return ExitCode::SUCCESS;
    }
    if let Some(dir) = &args.export {
        let bundle = trust::TrustSet::gather(ca.cert_der(), |n| std::env::var_os(n));
        for warning in &bundle.warnings {
            eprintln!("authlens: warning: {warning}");
        }
        return match trust::export(dir, ca.cert_der(), &bundle) {
            Ok(files) => {
                for file in files {
                    println!("{}  {}", file.path.display(), file.purpose);
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("authlens: {e}");
                ExitCode::from(1)
            }
        };
    }
    let status = match (args.regenerate, existed) {
        (true, _) => "  (new: clients must trust it again; restart a running proxy)",
        (false, false) => "  (created now)",
        (false, true) => "",
    };
    let expires = ca.not_after();
    let days = (expires - time::OffsetDateTime::now_utc()).whole_days();
    let date = expires
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default();
    println!("CA certificate  {}{status}", path.display());
    println!("name            {name}");
    println!("SHA-256         {}", ca.fingerprint_sha256());
    println!("expires         {date} (in {days} days)");
    println!(
        "leaf key        sha256/{}  (what `authlens browser` passes to --ignore-certificate-errors-spki-list)",
        ca.leaf_spki_sha256_base64()
    );
    println!("export it:      authlens ca --export DIR");
    println!("trust it:       authlens ca --install-help");
    ExitCode::SUCCESS
}
