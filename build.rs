//! Lays out the release binary's machine code for a small idle footprint.
//!
//! The kernel maps a program's code into memory 64 KiB at a time around
//! each page it runs, so code that runs at start-up and on the proxy's hot
//! path, scattered across a 7 MB `.text`, made almost all of it resident:
//! 6.2 of 11.6 MiB idle RSS. `layout/hot-text.txt` lists the functions the
//! bench's proxy ran (start-up, a first HTTPS and a first plain-HTTP
//! request, HTTP/1.1 and HTTP/2 loads, 1 MiB bodies; `layout/refresh.sh`
//! makes it); the linker puts them first, together, and the rest
//! (`analyze`, `report`, the HAR reader, the web view's pages) stays on disk
//! until used. Measured in docs/performance.md ("Memory: what idle
//! RSS is made of, and the code layout"). A name the build no longer has is
//! skipped, so a stale list costs memory, never correctness; it goes stale
//! as soon as the functions the proxy runs per request change (their names
//! change), so remake it then: `bench --peer hudsucker` prints the code
//! resident at idle, about 2.4 MiB with a fitting list and 3.9 with a stale
//! one.
//!
//! Only for release builds, and only when the linker takes
//! `--symbol-ordering-file` (LLD, Rust's default linker on x86-64 Linux since
//! 1.90, and mold): a one-line program is linked with it first, and without
//! it the binary is linked as before.

use std::path::PathBuf;
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=layout/hot-text.txt");
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let list = manifest.join("layout").join("hot-text.txt");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    // ELF targets (Linux, the BSDs); Apple's and Windows' linkers have
    // their own ways.
    let cfg = |key: &str| std::env::var(key).unwrap_or_default();
    let elf = cfg("CARGO_CFG_TARGET_FAMILY") == "unix" && cfg("CARGO_CFG_TARGET_VENDOR") != "apple";
    // `-Wl,` splits its argument at commas.
    let usable = list.is_file() && !list.to_string_lossy().contains(',');
    if !(release && elf && usable) {
        return;
    }
    let arg = format!("-Wl,--symbol-ordering-file={}", list.display());
    if linker_takes(&arg) {
        println!("cargo:rustc-link-arg-bin=authlens={arg}");
        // Names missing from this build (another toolchain, a dependency
        // upgraded) would each be warned about.
        println!("cargo:rustc-link-arg-bin=authlens=-Wl,--no-warn-symbol-ordering");
    } else {
        println!(
            "cargo:warning=the linker does not take --symbol-ordering-file: the release binary is laid out by default (about 3 MiB more idle RSS)"
        );
    }
}

/// Whether a one-line program links with `arg` and `--no-warn-symbol-ordering`
/// given to the linker, through the same rustc, target, linker and flags as
/// the real build.
fn linker_takes(arg: &str) -> bool {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    let source = out.join("layout_probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let mut probe = Command::new(rustc);
    probe
        .arg(&source)
        .arg("-o")
        .arg(out.join("layout_probe"))
        .args(["--crate-type", "bin", "--edition", "2021"])
        .arg("--target")
        .arg(std::env::var("TARGET").unwrap())
        .arg("-C")
        .arg(format!("link-arg={arg}"))
        .args(["-C", "link-arg=-Wl,--no-warn-symbol-ordering"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(linker) = std::env::var_os("RUSTC_LINKER") {
        probe
            .arg("-C")
            .arg(format!("linker={}", linker.to_string_lossy()));
    }
    if let Ok(flags) = std::env::var("CARGO_ENCODED_RUSTFLAGS") {
        probe.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    }
    probe.status().is_ok_and(|s| s.success())
}
