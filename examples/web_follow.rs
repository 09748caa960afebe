//! What the live web view costs the proxy: keep-alive throughput through
//! the release `authlens` binary with the view off (`--no-web`), on but
//! closed, and on with a page following its stream (every exchange becomes
//! a row sent to the page).
//!
//! `cargo run --example web_follow -- [--seconds N] [--connections C] [--rounds R] [--only PHASE]`
//!
//! `--only 0|1|2` runs one phase (0 `--no-web`, 1 closed, 2 following) and
//! prints the proxy's pid first: for a profiler (`perf record -p PID`). With
//! `AUTHLENS_BINARY=wrapper.sh` the proxy runs under a wrapper (e.g. one that
//! execs it under `valgrind --tool=callgrind`, whose instruction counts do
//! not depend on what else the machine runs).
//!
//! The proxy is the release binary (built here); the load generator is
//! this example (plain HTTP/1.1, absolute-form, keep-alive, to an upstream
//! in this process). Phases alternate, so drift hits each alike. Besides
//! the rate, the proxy's own CPU time per request (from /proc) is printed:
//! on a machine shared with other work it is the steadier figure.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use testkit::binary::Binary;
use testkit::upstream::{Handler, TestUpstream, Tls};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One keep-alive request and its answer (Content-Length bodies only).
async fn request(conn: &mut BufReader<TcpStream>, upstream: SocketAddr) {
    let head = format!("GET http://{upstream}/hello HTTP/1.1\r\nHost: {upstream}\r\n\r\n");
    conn.get_mut().write_all(head.as_bytes()).await.unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        if line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await.unwrap();
}

/// CPU time (user + system) the process `pid` has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line (11 and 12 here).
    (ticks(11) + ticks(12)) / 100.0
}

/// Requests per second through `proxy` with `connections` keep-alive
/// connections for `seconds`.
async fn load(proxy: SocketAddr, upstream: SocketAddr, connections: u64, seconds: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..connections {
        let mut conn = BufReader::new(TcpStream::connect(proxy).await.unwrap());
        request(&mut conn, upstream).await; // warm-up
        conns.push(conn);
    }
    let start = Instant::now();
    for mut conn in conns {
        let (stop, done) = (stop.clone(), done.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                request(&mut conn, upstream).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// A page following the view's stream: reads (and counts) every byte.
fn follow(proxy: SocketAddr, token: String) -> (tokio::task::JoinHandle<()>, Arc<AtomicU64>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = bytes.clone();
    let task = tokio::spawn(async move {
        let mut tcp = TcpStream::connect(proxy).await.unwrap();
        let head = format!("GET /api/stream?token={token} HTTP/1.1\r\nHost: {proxy}\r\n\r\n");
        tcp.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
    });
    (task, bytes)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = testkit::binary::number_arg(&args, "--seconds", 5);
    let connections = testkit::binary::number_arg(&args, "--connections", 10);
    let rounds = testkit::binary::number_arg(&args, "--rounds", 2);
    let only = args
        .iter()
        .position(|a| a == "--only")
        .map(|_| testkit::binary::number_arg(&args, "--only", 0) as usize);

    let built = testkit::binary::release_build();
    // AUTHLENS_BINARY: another binary, or a wrapper script that runs it
    // under a profiler (e.g. `valgrind --tool=callgrind`).
    let binary = std::env::var_os("AUTHLENS_BINARY")
        .map(std::path::PathBuf::from)
        .unwrap_or(built);

    let ca = testkit::TestCa::new();
    let hello: Handler =
        Arc::new(|_req| http::Response::new(bytes::Bytes::from_static(&[b'x'; 100])));
    let upstream = TestUpstream::start_with(&ca, Tls::None, hello).await;
    let certs = tempfile::tempdir().unwrap();

    println!(
        "web view cost: keep-alive 100 B, HTTP/1.1 plain, c={connections}, {seconds} s per phase, {rounds} round(s), {} CPUs",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let mut results: Vec<(&str, Vec<f64>, Vec<f64>)> = vec![
        ("--no-web", Vec::new(), Vec::new()),
        ("view on, closed", Vec::new(), Vec::new()),
        ("view on, a page following", Vec::new(), Vec::new()),
    ];
    for _ in 0..rounds {
        for (i, (_, rates, cpu)) in results.iter_mut().enumerate() {
            if only.is_some_and(|only| only != i) {
                continue;
            }
            let mut command = testkit::binary::command(&binary, certs.path());
            command.stdout(Stdio::null()).env("RUST_LOG", "warn");
            if i == 0 {
                command.arg("--no-web");
            }
            let mut proxy = Binary::start(&mut command);
            let addr: SocketAddr = proxy.addr.parse().unwrap();
            if only.is_some() {
                println!("proxy pid {}", proxy.id());
            }
            let follower = if i == 2 {
                let line = proxy.wait_for("/?token=");
                let token = line.split("token=").nth(1).unwrap().trim().to_owned();
                Some(follow(addr, token))
            } else {
                None
            };
            let cpu0 = cpu_seconds(proxy.id());
            let rate = load(addr, upstream.addr, connections, seconds).await;
            let used = cpu_seconds(proxy.id()) - cpu0;
            cpu.push(used * 1e6 / (rate * seconds as f64));
            if let Some((task, bytes)) = follower {
                println!(
                    "  (the page read {} KiB of updates)",
                    bytes.load(Ordering::Relaxed) / 1024
                );
                task.abort();
            }
            rates.push(rate);
            drop(proxy);
        }
    }
    // Medians of the per-round ratios to `--no-web` (each round's phases
    // run back to back, so drift hits them alike).
    let median = |mut v: Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        if n == 0 {
            f64::NAN
        } else if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        }
    };
    let base = results[0].clone();
    for (name, rates, cpu) in results.iter().filter(|(_, rates, _)| !rates.is_empty()) {
        let each: Vec<String> = rates.iter().map(|r| format!("{r:.0}")).collect();
        let cpu_each: Vec<String> = cpu.iter().map(|c| format!("{c:.1}")).collect();
        let ratio = |mine: &[f64], theirs: &[f64]| {
            median(mine.iter().zip(theirs).map(|(m, t)| m / t - 1.0).collect()) * 100.0
        };
        println!(
            "{name:<28} {:>8.0} req/s ({}; median {:+.1}% vs --no-web); proxy CPU {:.1} us/request ({}; median {:+.1}%)",
            median(rates.clone()),
            each.join(", "),
            ratio(rates, &base.1),
            median(cpu.clone()),
            cpu_each.join(", "),
            ratio(cpu, &base.2),
        );
    }
}
