//! The binary's helper commands: `smoke` (what `helm test` runs),
//! `healthcheck` (for Compose), `sleep` (a shell-less preStop).

mod common;

use std::process::Command;

use common::{Process, ORIGIN, TOKEN};

fn ws_chat(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ws-chat"))
        .args(args)
        .env_clear()
        .output()
        .expect("run ws-chat");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn smoke_passes_against_a_running_server_and_explains_refusals() {
    let p = Process::start(&[], &[]);
    let url = format!("ws://127.0.0.1:{}/chat", p.port);
    let (code, out) = ws_chat(&["smoke", "--url", &url, "--token", TOKEN, "--origin", ORIGIN]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("echo received"), "{out}");

    let (code, out) = ws_chat(&[
        "smoke",
        "--url",
        &url,
        "--token",
        "wrong-token",
        "--origin",
        ORIGIN,
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("401") && !out.contains("wrong-token"), "{out}");
    let (code, out) = ws_chat(&[
        "smoke",
        "--url",
        &url,
        "--token",
        TOKEN,
        "--origin",
        "http://evil.example",
    ]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("403"), "{out}");
}

#[test]
fn healthcheck_reports_the_admin_endpoint() {
    let p = Process::start(&[], &[]);
    let ok = format!("http://127.0.0.1:{}/healthz", p.admin_port);
    assert_eq!(ws_chat(&["healthcheck", "--url", &ok]).0, Some(0));
    let missing = format!("http://127.0.0.1:{}/nope", p.admin_port);
    assert_eq!(ws_chat(&["healthcheck", "--url", &missing]).0, Some(1));
    let closed = format!("http://127.0.0.1:{}/healthz", common::free_port());
    assert_eq!(ws_chat(&["healthcheck", "--url", &closed]).0, Some(1));
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let (code, out) = ws_chat(&["--frobnicate"]);
    assert_eq!(code, Some(2));
    assert!(out.contains("usage:"), "{out}");
    assert_eq!(ws_chat(&["sleep", "0.01"]).0, Some(0));
    assert_eq!(ws_chat(&["sleep", "soon"]).0, Some(2));
    assert_eq!(ws_chat(&["--version"]).0, Some(0));
}
