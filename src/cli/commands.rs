//! The body of each subcommand: start what it needs through the library,
//! print what a person reads, and say how it ended. The exit status itself
//! is decided in one place, `main`.

use std::ffi::OsString;
use std::io::{IsTerminal as _, Read as _};
use std::path::PathBuf;

use std::sync::Arc;

use super::args::{
    AnalyzeArgs, BrowserArgs, CaArgs, ExplainArgs, FailOn, ProxyArgs, ReportArgs, RunArgs,
};
use super::{Failure, Outcome};
use crate::ca::CertificateAuthority;
use crate::clients::join::{Joined, join_or_start};
use crate::config::{Audience, ColorChoice};
use crate::har::ReadOptions;
use crate::inject::FaultInjector;
use crate::output::escape::escape_controls;
use crate::proxy::Hooks;
use crate::session::{Session, SessionSummary};
use crate::web::{WebOptions, WebView};

/// The proxy, until Ctrl-C or SIGTERM.
pub async fn proxy(args: ProxyArgs, color: ColorChoice) -> Result<Outcome, Failure> {
    let (injector, faults) = fault_hooks(&args)?;
    let fail_on = args.fail_on;
    let web = web_view(&args, injector.as_ref());
    let (mut config, output) = args.into_configs(Audience::Terminal, color);
    let hooks = hooks(injector, web.as_ref(), &mut config);
    let session = Session::start_with(config, output, hooks)
        .await
        .map_err(Failure::failed)?;
    let mut signals = StopSignals::listen();
    if let Some(web) = &web {
        web.attach(&session);
    }
    eprint!("{}", super::banner::banner(&session));
    eprint!("{}", super::banner::web(web.as_ref(), session.local_addr()));
    eprint!("{}", super::banner::faults(&faults));
    signals.next().await;
    eprintln!("authlens: stopping, writing what was captured (Ctrl-C again to stop at once)");
    let Some(summary) = stop_or_give_up(session, &mut signals).await else {
        return Ok(Outcome::Interrupted);
    };
    closing_lines(&summary);
    eprintln!("authlens stopped");
    Ok(gate(fail_on, &summary, Outcome::Clean))
}

/// The fault injector `--fault` asks for, plugged in as the proxy's
/// interceptor (none without `--fault`: forwarding stays untouched), and
/// one line per fault for the banner. Conflicting faults are unusable.
fn fault_hooks(args: &ProxyArgs) -> Result<(Option<Arc<FaultInjector>>, Vec<String>), Failure> {
    if args.faults.is_empty() {
        return Ok((None, Vec::new()));
    }
    let injector = FaultInjector::new(args.faults.clone(), args.code_lifetime, args.show_secrets)
        .map_err(Failure::unusable)?;
    let lines = injector.describe();
    Ok((Some(Arc::new(injector)), lines))
}

/// The web view, unless `--no-web`.
fn web_view(args: &ProxyArgs, injector: Option<&Arc<FaultInjector>>) -> Option<WebView> {
    (!args.no_web).then(|| {
        WebView::new(WebOptions {
            history: args.web_history,
            show_secrets: args.show_secrets,
            code_lifetime: args.code_lifetime,
            faults: injector.cloned(),
        })
    })
}

/// The proxy's hooks for `injector` (its timeouts fitted to the holds)
/// and the web view.
fn hooks(
    injector: Option<Arc<FaultInjector>>,
    web: Option<&WebView>,
    config: &mut crate::config::ProxyConfig,
) -> Hooks {
    if let Some(injector) = &injector {
        injector.fit_timeouts(&mut config.timeouts);
    }
    Hooks {
        interceptor: injector.map(|i| i as Arc<dyn crate::proxy::Interceptor>),
        local: web.map(WebView::service),
    }
}

/// `--fail-on`: `otherwise`, unless the app's own findings (not injected)
/// reached the severity, which flags the run (exit 1).
fn gate(fail_on: Option<FailOn>, summary: &SessionSummary, otherwise: Outcome) -> Outcome {
    let Some(level) = fail_on else {
        return otherwise;
    };
    let tally = &summary.tally;
    if !tally.fails_at(level.severity()) {
        return otherwise;
    }
    eprintln!(
        "authlens: --fail-on {}: the app's own sign-in findings: {} error(s), {} warning(s) ({} injected finding(s) not counted)",
        level.severity().as_str(),
        tally.app_errors,
        tally.app_warnings,
        tally.injected
    );
    Outcome::Flagged
}

/// `authlens faults`: every fault, what it does, and an example.
pub fn faults() -> Result<Outcome, Failure> {
    print!("{}", super::banner::fault_list());
    Ok(Outcome::Clean)
}

/// What a stopped session has to say: failed outputs, what output files
/// could not write (a full disk), then the one-line summary (sign-ins,
/// findings, files written).
fn closing_lines(summary: &SessionSummary) {
    for problem in &summary.problems {
        eprintln!("authlens: {}", escape_controls(problem));
    }
    for lost in &summary.unwritten {
        eprintln!("authlens: {lost}");
    }
    eprintln!("{}", super::banner::closing_summary(summary));
}

/// Stops `session`, draining every output, unless a second Ctrl-C or
/// SIGTERM comes first (`None`: the user chose not to wait).
async fn stop_or_give_up(session: Session, signals: &mut StopSignals) -> Option<SessionSummary> {
    tokio::select! {
        summary = session.stop() => Some(summary),
        _ = signals.next() => {
            eprintln!(
                "authlens: stopped at once on a second signal; what was still on its way to the outputs is not written"
            );
            None
        }
    }
}

/// Ctrl-C and SIGTERM, listened to from start-up on, so a signal that
/// arrives while authlens is busy stopping is not missed.
pub(super) struct StopSignals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    pub(super) fn listen() -> StopSignals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            StopSignals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        StopSignals {}
    }

    /// Completes on the next Ctrl-C or SIGTERM.
    pub(super) async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn on(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            if self.interrupt.is_none() && self.terminate.is_none() {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
            tokio::select! {
                _ = on(&mut self.interrupt) => {}
                _ = on(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// `authlens analyze`: clean, flagged when errors were found, unusable when
/// an input or the output cannot be used.
pub fn analyze(args: AnalyzeArgs, color: ColorChoice) -> Result<Outcome, Failure> {
    let output = args.output(color);
    let read = ReadOptions {
        progress: output.progress,
        ..ReadOptions::default()
    };
    let recording = crate::har::load(&args.files, read).map_err(Failure::unusable)?;
    let tally = Session::replay(&recording, &output).map_err(Failure::unusable)?;
    let skipped = if recording.skipped > 0 {
        format!(
            ", {} non-HTTP entr(ies) skipped (data:, blob:)",
            recording.skipped
        )
    } else {
        String::new()
    };
    let injected = if tally.injected > 0 {
        format!(
            " ({} finding(s) injected by --fault when recorded: not counted as errors)",
            tally.injected
        )
    } else {
        String::new()
    };
    let grants = super::banner::other_token_requests(&tally)
        .map(|g| format!(", {g}"))
        .unwrap_or_default();
    eprintln!(
        "authlens: {} exchange(s), {} sign-in attempt(s){grants}, {} error(s), {} warning(s){injected}{skipped}",
        tally.exchanges, tally.attempts, tally.errors, tally.warnings,
    );
    // Failures caused on purpose (a recording made with --fault) are not
    // the app's errors.
    Ok(if tally.app_errors > 0 {
        Outcome::Flagged
    } else {
        Outcome::Clean
    })
}

/// `authlens report`: the Markdown report of HAR files (analysed as
/// `analyze` does) or of a JSON lines file written earlier.
pub fn report(args: ReportArgs) -> Result<Outcome, Failure> {
    let mut output = args.output();
    match &args.from_json {
        Some(path) => {
            let events = crate::report::read_json_lines(path).map_err(Failure::unusable)?;
            output.source = format!("{} ({} events)", path.display(), events.len());
            Session::replay_events(events, &output)
        }
        None => {
            let read = ReadOptions {
                progress: output.progress,
                ..ReadOptions::default()
            };
            let recording = crate::har::load(&args.files, read).map_err(Failure::unusable)?;
            let names: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
            output.source = format!(
                "{} ({} exchanges)",
                names.join(", "),
                recording.exchanges.len()
            );
            Session::replay(&recording, &output)
        }
    }
    .map_err(Failure::unusable)?;
    Ok(Outcome::Clean)
}

/// `authlens explain`: clean when every code is known, flagged otherwise.
pub fn explain(args: ExplainArgs) -> Result<Outcome, Failure> {
    use crate::explain::{self, Input, MAX_INPUT};
    let input = match args.code.as_deref().filter(|c| *c != "-") {
        Some(code) => Input::from_arg(code),
        None => {
            if std::io::stdin().is_terminal() {
                eprintln!("authlens: paste the error response, then press Ctrl-D");
            }
            let mut bytes = Vec::new();
            let limit = u64::try_from(MAX_INPUT).unwrap_or(u64::MAX);
            std::io::stdin()
                .lock()
                .take(limit)
                .read_to_end(&mut bytes)
                .map_err(|e| Failure::unusable(format!("cannot read stdin: {e}")))?;
            Input::Text(String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let report = explain::explain(&input);
    if args.json {
        println!("{:#}", report.to_json());
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.found() {
        Outcome::Clean
    } else {
        Outcome::Flagged
    })
}

/// Joins or starts the proxy a `run` or `browser` command goes through;
/// with the web view's URL when one was started here.
async fn join(
    explicit: Option<std::net::SocketAddr>,
    settings: ProxyArgs,
    audience: Audience,
    color: ColorChoice,
) -> Result<(Joined, Option<String>), Failure> {
    let (injector, faults) = fault_hooks(&settings)?;
    let wants_session = !faults.is_empty() || settings.fail_on.is_some();
    let web = web_view(&settings, injector.as_ref());
    let (mut config, output) = settings.into_configs(audience, color);
    let hooks = hooks(injector, web.as_ref(), &mut config);
    let wants_outputs = output.json.is_some() || output.har.is_some();
    let live_on = output
        .live_log
        .as_ref()
        .map_or_else(|| "nowhere".into(), |l| l.sink.describe());
    let joined = join_or_start(explicit, config, output, hooks)
        .await
        .map_err(Failure::failed)?;
    let mut view = None;
    match &joined {
        Joined::Running { addr, .. } if wants_session => {
            return Err(Failure::unusable(format!(
                "--fault and --fail-on need a proxy started for this command, but one is already running at http://{addr}: stop it, pass the flags where it was started, or pick a free --listen address"
            )));
        }
        Joined::Running { addr, ca } => {
            eprintln!(
                "authlens: using the proxy running at http://{addr} (its live log is where it runs), CA {}",
                ca.cert_path().display()
            );
            if wants_outputs {
                eprintln!(
                    "authlens: warning: --json and --har apply only to a proxy started here; \
                     the running proxy keeps its own outputs (pass them where it was started)"
                );
            }
        }
        Joined::Started(session) => {
            eprintln!(
                "authlens listening on http://{} for this command (live log on {live_on}), CA {}",
                session.local_addr(),
                session.ca().cert_path().display()
            );
            if let Some(web) = &web {
                web.attach(session);
            }
            eprint!("{}", super::banner::web(web.as_ref(), session.local_addr()));
            view = web.as_ref().map(|w| w.url(session.local_addr()));
            eprint!("{}", super::banner::faults(&faults));
        }
    }
    Ok((joined, view))
}

/// Stops a session started for a command, printing what it has to say;
/// `--fail-on` then turns a command's success into a flagged run.
async fn leave(joined: Joined, fail_on: Option<FailOn>, outcome: Outcome) -> Outcome {
    let Some(summary) = joined.finish().await else {
        return outcome;
    };
    closing_lines(&summary);
    eprintln!("authlens stopped");
    match outcome {
        Outcome::Child(0) => gate(fail_on, &summary, outcome),
        other => other,
    }
}

/// `authlens run -- CMD`: CMD's own status.
pub async fn run(args: RunArgs, color: ColorChoice) -> Result<Outcome, Failure> {
    let fail_on = args.settings.fail_on;
    let (joined, _) = Box::pin(join(args.proxy, args.settings, Audience::Command, color)).await?;
    match run_through(&joined, args.command).await {
        Ok(outcome) => Ok(leave(joined, fail_on, outcome).await),
        Err(failure) => {
            leave(joined, None, Outcome::Clean).await;
            Err(failure)
        }
    }
}

async fn run_through(joined: &Joined, command: Vec<OsString>) -> Result<Outcome, Failure> {
    use crate::clients::env::ClientEnv;
    use crate::clients::launch::{ChildOutput, Launch, exit_code};
    use crate::clients::trust::{TrustFiles, TrustSet};

    let current = |name: &str| std::env::var_os(name);
    let set = TrustSet::gather(joined.ca().cert_der(), current);
    for warning in &set.warnings {
        eprintln!("authlens: warning: {warning}");
    }
    // Kept until the command has exited, then removed.
    let files = TrustFiles::create(&set).map_err(Failure::failed)?;
    let env = ClientEnv::plan(joined.addr(), files.paths(), current);
    let mut command = command.into_iter();
    let program = command
        .next()
        .ok_or_else(|| Failure::failed("no command given after --"))?;
    eprintln!(
        "authlens: running {} through http://{} (HTTPS_PROXY and friends, NO_PROXY without loopback, a bundle of {} CAs with authlens's, a Java trust store, a Node preload)",
        program.to_string_lossy(),
        joined.addr(),
        set.len()
    );
    let launch = Launch {
        program: program.into(),
        args: command.collect(),
        env,
        output: ChildOutput::Inherit,
    };
    match launch.run().await {
        Ok(finished) => Ok(Outcome::Child(exit_code(finished.status))),
        Err(e) => Err(Failure::launch(e)),
    }
}

/// `authlens browser`: the browser's own status.
pub async fn browser(args: BrowserArgs, color: ColorChoice) -> Result<Outcome, Failure> {
    use crate::clients::browser;
    let program = match args.browser {
        Some(path) => path,
        None => browser::find(std::env::var_os("PATH").as_deref())
            .ok_or_else(|| Failure::failed(browser::not_found_help()))?,
    };
    let fail_on = args.settings.fail_on;
    let (joined, view) =
        Box::pin(join(args.proxy, args.settings, Audience::Terminal, color)).await?;
    if args.web_tab && view.is_none() {
        eprintln!(
            "authlens: --web-tab: the web view is served only by a proxy started here (not with --no-web or an already running proxy, whose banner prints its URL)"
        );
    }
    let outcome = open_browser(
        &joined,
        program,
        args.url,
        args.web_tab.then_some(view).flatten(),
        args.browser_args,
        args.browser_output,
    )
    .await;
    match outcome {
        Ok(outcome) => Ok(leave(joined, fail_on, outcome).await),
        Err(failure) => {
            leave(joined, None, Outcome::Clean).await;
            Err(failure)
        }
    }
}

async fn open_browser(
    joined: &Joined,
    program: PathBuf,
    url: Option<String>,
    view: Option<String>,
    extra: Vec<OsString>,
    show_output: bool,
) -> Result<Outcome, Failure> {
    use crate::clients::browser::{self, BrowserLaunch};
    use crate::clients::launch::{ChildOutput, Launch, exit_code};

    let profile = tempfile::Builder::new()
        .prefix("authlens-browser-")
        .tempdir()
        .map_err(|e| Failure::failed(format!("cannot create a temporary browser profile: {e}")))?;
    let no_sandbox = browser::no_sandbox_needed(browser::effective_uid(), &extra);
    let launch = BrowserLaunch {
        proxy: joined.addr(),
        leaf_spki_sha256: joined.ca().leaf_spki_sha256_base64(),
        profile: profile.path().to_path_buf(),
        url,
        view,
        extra,
        no_sandbox,
    };
    eprintln!(
        "authlens: starting {} with a fresh profile in {} (removed when it exits)",
        program.display(),
        profile.path().display()
    );
    eprintln!(
        "  every URL goes through http://{}, localhost included (--proxy-bypass-list=<-loopback>)",
        joined.addr()
    );
    eprintln!(
        "  authlens's certificates are accepted by key (--ignore-certificate-errors-spki-list={}); nothing is installed in any trust store",
        launch.leaf_spki_sha256
    );
    if no_sandbox {
        eprintln!(
            "  running as root, where Chromium refuses its sandbox: --no-sandbox is passed (pages run unsandboxed; a normal user is safer)"
        );
    }
    let finished = Launch {
        program: program.clone(),
        args: launch.args(),
        env: Default::default(),
        output: if show_output {
            ChildOutput::Inherit
        } else {
            ChildOutput::Tail(browser::TAIL_LINES)
        },
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
    let finished = finished.map_err(Failure::launch)?;
    if browser::failed_at_start(finished.status, finished.elapsed) {
        explain_quick_failure(&program, &finished, show_output);
    }
    Ok(Outcome::Child(exit_code(finished.status)))
}

/// A browser that failed right away: its status and what it said.
fn explain_quick_failure(
    program: &std::path::Path,
    finished: &crate::clients::launch::Finished,
    shown: bool,
) {
    let program = program.display();
    let status = match finished.status.code() {
        Some(code) => format!("status {code}"),
        None => finished.status.to_string(),
    };
    let after = format!("{:.1} s", finished.elapsed.as_secs_f64());
    if shown {
        eprintln!("authlens: {program} exited with {status} after {after} (its output is above)");
        return;
    }
    if finished.tail.is_empty() {
        eprintln!("authlens: {program} exited with {status} after {after} and printed nothing");
        return;
    }
    eprintln!(
        "authlens: {program} exited with {status} after {after}; the last lines of its output (all of it with --browser-output):"
    );
    for line in &finished.tail {
        eprintln!("  | {}", escape_controls(line));
    }
}

/// `authlens ca`: show, export, explain or regenerate the CA. Failing to use
/// or write the CA is a failure; `--regenerate` without `--yes` is unusable.
pub fn ca(args: CaArgs) -> Result<Outcome, Failure> {
    use crate::clients::{install_help, trust};
    let provider = crate::tls::provider();
    let existed = args.certs.join(crate::ca::CA_CERT_FILE).exists();
    if args.regenerate && !args.yes {
        return Err(Failure::unusable(format!(
            "--regenerate deletes the CA in {} and makes a new one: every client and trust store that trusts the current CA must be given the new one, and a running proxy restarted. Add --yes to go ahead.",
            args.certs.display()
        )));
    }
    let ca = if args.regenerate {
        CertificateAuthority::regenerate(&args.certs, &provider)
    } else {
        CertificateAuthority::load_or_create(&args.certs, &provider, args.open_key())
    }
    .map_err(Failure::failed)?;
    let path = std::path::absolute(ca.cert_path()).unwrap_or_else(|_| ca.cert_path().into());
    let name = ca.name().to_owned();
    if args.install_help {
        print!(
            "{}",
            install_help::text(&path, &name, &ca.fingerprint_sha256())
        );
        return Ok(Outcome::Clean);
    }
    if let Some(dir) = &args.export {
        let bundle = trust::TrustSet::gather(ca.cert_der(), |n| std::env::var_os(n));
        for warning in &bundle.warnings {
            eprintln!("authlens: warning: {warning}");
        }
        for file in trust::export(dir, ca.cert_der(), &bundle).map_err(Failure::failed)? {
            println!("{}  {}", file.path.display(), file.purpose);
        }
        return Ok(Outcome::Clean);
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
    Ok(Outcome::Clean)
}
