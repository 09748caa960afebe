//! `authlens explain` run as a process: exit codes, text, JSON shape and
//! stdin mode. No network, no proxy.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// Runs `authlens explain ARGS`, feeding `stdin` when given.
fn explain(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_authlens"))
        .arg("explain")
        .args(args)
        .env("RUST_LOG", "off")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("authlens starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(text.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

#[test]
fn a_known_code_in_any_spelling_exits_0_and_reads_well() {
    for code in ["AADSTS90056", "90056", "aadsts90056"] {
        let out = explain(&[code], None);
        assert_eq!(out.status.code(), Some(0), "{code}: {}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.starts_with("AADSTS90056  (Microsoft Entra ID"),
            "{text}"
        );
        assert!(text.contains("Likely causes:") && text.contains("How to fix:"));
    }
    for (code, want) in [
        ("54005", "AADSTS54005"),
        ("invalid_grant", "invalid_grant"),
        ("AADB2C90088", "AADB2C90088"),
        ("bad_verification_code", "github:bad_verification_code"),
    ] {
        let out = explain(&[code], None);
        assert_eq!(out.status.code(), Some(0), "{code}");
        assert!(stdout(&out).starts_with(want), "{code}: {}", stdout(&out));
    }
}

#[test]
fn an_unknown_code_exits_1_and_suggests_the_closest() {
    let out = explain(&["AADSTS54006"], None);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.starts_with("AADSTS54006: not in the authlens catalogue."),
        "{text}"
    );
    assert!(text.contains("AADSTS54005"), "{text}");

    let out = explain(&["--json", "invalid_grnt"], None);
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["found"], false);
    assert_eq!(v["entry"], Value::Null);
    assert_eq!(v["suggestions"][0]["code"], "invalid_grant");
}

#[test]
fn json_is_the_catalogue_entry() {
    let out = explain(&["54005", "--json"], None);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["query"], "54005");
    assert_eq!(v["found"], true);
    let entry = &v["entry"];
    assert_eq!(entry["code"], "AADSTS54005");
    assert_eq!(entry["provider"], "entra");
    assert_eq!(entry["error"], "invalid_grant");
    assert!(entry["meaning"].as_str().is_some_and(|m| !m.is_empty()));
    for list in ["causes", "fix", "rules"] {
        assert!(
            entry[list].as_array().is_some_and(|l| !l.is_empty()),
            "{list}: {v}"
        );
    }
    assert_eq!(v["suggestions"], Value::Array(Vec::new()));
}

#[test]
fn stdin_mode_explains_every_code_in_a_pasted_response() {
    let body = r#"{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.\r\nTrace ID: 0000aaaa-11bb","error_codes":[70002,54005]}"#;
    // No argument, and `-`, both read stdin.
    for args in [&[][..], &["-"][..]] {
        let out = explain(args, Some(body));
        assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
        let text = stdout(&out);
        assert!(
            text.starts_with("Found in the input: AADSTS54005, AADSTS70002, invalid_grant\n"),
            "{text}"
        );
    }
    let out = explain(&["--json"], Some(body));
    let v = json(&out);
    let codes: Vec<&str> = v
        .as_array()
        .expect("an array for stdin")
        .iter()
        .map(|e| e["entry"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["AADSTS54005", "AADSTS70002", "invalid_grant"]);

    // A redirect URL, and a bare error_description.
    let url = "https://app.test/callback?error=invalid_client&error_description=AADSTS7000215%3A+Invalid+client+secret+provided.&state=x\n";
    let out = explain(&[], Some(url));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("Found in the input: AADSTS7000215, invalid_client"));
    let out = explain(&[], Some("Keycloak said: Code not valid"));
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("keycloak:invalid_grant:code_not_valid"));

    // A pasted text given as the argument works the same way.
    let out = explain(&["AADSTS50011: The redirect URI does not match"], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("Found in the input: AADSTS50011"));
}

#[test]
fn stdin_without_a_code_or_with_an_unknown_one_exits_1() {
    let out = explain(&[], Some("hello, nothing here"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).starts_with("No error code"));
    let out = explain(&["--json"], Some(""));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out), Value::Array(Vec::new()));
    let out = explain(&[], Some("AADSTS9999999: brand new"));
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("AADSTS9999999: not in the authlens catalogue."));
}
