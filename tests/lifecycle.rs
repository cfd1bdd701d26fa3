//! A connection's life and the server's: slow consumers, frame
//! violations, token revocation on reload, drain, signals, check-config.

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{connect, Process, Raw, TestServer, ORIGIN, TOKEN};

#[tokio::test]
async fn a_consumer_that_stops_reading_loses_frames_then_is_closed_with_1013() {
    let s = TestServer::start(&[
        ("CHAT__SESSION__OUTBOUND_QUEUE", "8"),
        ("CHAT__SESSION__SLOW_CONSUMER_DROPS", "16"),
        ("CHAT__LIMITS__MESSAGE_BURST", "100000"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000"),
    ])
    .await;
    let mut slow = Raw::connect(s.addr, "room=slow").await;
    let (mut fast, _) = s.join("room=slow").await;
    let big = "x".repeat(480);
    // Fill the kernel buffers of the reader that does not read, then its queue.
    let mut sent = 0;
    while s.metric("wschat_slow_consumer_closes_total").await < 1.0 && sent < 20_000 {
        for _ in 0..100 {
            fast.say(&big).await;
        }
        sent += 100;
        // The sender keeps up and keeps receiving its own messages.
        while let Ok(Some(Ok(_))) = tokio::time::timeout(
            Duration::from_millis(1),
            futures_util::StreamExt::next(&mut fast.ws),
        )
        .await
        {}
    }
    assert!(s.metric("wschat_drops_total{reason=\"queue_full\"}").await >= 1.0);
    assert_eq!(s.metric("wschat_slow_consumer_closes_total").await, 1.0);
    // Reading now, the slow one finds the close frame after what it had.
    assert_eq!(slow.close_code().await, Some(1013));
    fast.say("the room goes on").await;
    loop {
        if fast.next_message().await["text"] == "the room goes on" {
            break;
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn frame_violations_close_with_their_codes() {
    let s = TestServer::start(&[]).await;
    type Frames = Vec<(bool, u8, Vec<u8>)>;
    let cases: [(&str, Frames, u16); 4] = [
        ("binary", vec![(true, 2, b"bin".to_vec())], 1003),
        ("invalid utf-8", vec![(true, 1, vec![0xC3, 0x28])], 1007),
        ("one big frame", vec![(true, 1, vec![b'a'; 2049])], 1009),
        (
            "many small fragments",
            (0..30)
                .map(|i| (i == 29, if i == 0 { 1 } else { 0 }, vec![b'a'; 100]))
                .collect(),
            1009,
        ),
    ];
    for (what, frames, code) in cases {
        let mut raw = Raw::connect(s.addr, "room=f").await;
        for (fin, opcode, payload) in frames {
            raw.frame(fin, opcode, &payload).await;
        }
        assert_eq!(raw.close_code().await, Some(code), "{what}");
    }
    // A 2048-byte message is fine, fragmented or not.
    let mut raw = Raw::connect(s.addr, "room=f").await;
    let text = format!(r#"{{"type":"message","text":"{}"}}"#, "b".repeat(2048 - 28));
    assert_eq!(text.len(), 2048);
    raw.frame(false, 1, &text.as_bytes()[..1000]).await;
    raw.frame(true, 0, &text.as_bytes()[1000..]).await;
    let mut got_error = false;
    while let Some((op, payload)) = raw.read_frame().await {
        if op == 1 && String::from_utf8_lossy(&payload).contains("too_large") {
            got_error = true; // 2019 chars of text: too long as text, but not a 1009
            break;
        }
    }
    assert!(got_error);
    s.stop().await;
}

#[tokio::test]
async fn pings_get_pongs_and_a_client_close_is_echoed() {
    let s = TestServer::start(&[]).await;
    let mut raw = Raw::connect(s.addr, "room=pp").await;
    raw.frame(true, 9, b"are you there").await;
    loop {
        let (op, payload) = raw.read_frame().await.expect("a frame");
        if op == 10 {
            assert_eq!(payload, b"are you there");
            break;
        }
    }
    raw.frame(true, 8, &[0x03, 0xE8, b'o', b'k']).await;
    assert_eq!(raw.close_code().await, Some(1000));
    assert!(
        raw.read_frame().await.is_none(),
        "the server closes the TCP connection after the echo"
    );
    s.stop().await;
}

#[tokio::test]
async fn revoking_a_token_in_the_tokens_file_closes_its_connections_with_1008_within_a_second() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    write!(
        file,
        "[[tokens]]\ntoken = \"doomed\"\n\n[[tokens]]\ntoken = \"kept\"\nrooms = [\"a\"]\n"
    )
    .unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let s = TestServer::start(&[("CHAT__AUTH__TOKENS_FILE", &path)]).await;
    let url = |t: &str| format!("ws://{}/chat?token={t}&room=a", s.addr);
    let mut doomed = connect(&url("doomed"), Some(ORIGIN)).await.unwrap();
    let mut kept = connect(&url("kept"), Some(ORIGIN)).await.unwrap();
    doomed.next_of("history").await;
    kept.next_of("history").await;
    std::fs::write(
        file.path(),
        "[[tokens]]\ntoken = \"kept\"\nrooms = [\"a\"]\n",
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        doomed.closed_within(Duration::from_secs(2)).await,
        Some(1008)
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    kept.say("still allowed").await;
    assert_eq!(kept.next_message().await["text"], "still allowed");
    assert_eq!(connect(&url("doomed"), Some(ORIGIN)).await.err(), Some(401));
    assert_eq!(
        s.metric("wschat_config_reloads_total{outcome=\"success\"}")
            .await,
        1.0
    );
    assert_eq!(s.metric("wschat_token_revocation_closes_total").await, 1.0);

    // A broken file is refused and the tokens in force stay.
    std::fs::write(file.path(), "[[tokens]]\ntokn = \"x\"\n").unwrap();
    let failures = s
        .wait_for_metric(
            "wschat_config_reloads_total{outcome=\"failure\"}",
            ">= 1",
            |v| v >= 1.0,
        )
        .await;
    assert_eq!(failures, 1.0);
    assert!(connect(&url("kept"), Some(ORIGIN)).await.is_ok());
    s.stop().await;
}

#[tokio::test]
async fn drain_refuses_upgrades_flips_readiness_and_closes_everyone_with_1001() {
    let s = TestServer::start(&[("CHAT__SHUTDOWN__DRAIN_WINDOW", "1s")]).await;
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(s.join(&format!("room=d{}", i % 3)).await.0);
    }
    assert_eq!(s.admin_get("/readyz").await.0, 200);
    s.control.shutdown.cancel();
    common::wait_readyz(s.admin, 503, common::WAIT).await;
    assert_eq!(s.admin_get("/healthz").await.0, 200);
    assert_eq!(connect(&s.url(""), Some(ORIGIN)).await.err(), Some(503));
    let started = Instant::now();
    let mut closed_at = Vec::new();
    for c in &mut clients {
        assert_eq!(c.closed_within(Duration::from_secs(3)).await, Some(1001));
        closed_at.push(started.elapsed());
    }
    // Spread across the window, not all at once.
    let spread = closed_at
        .iter()
        .max()
        .unwrap()
        .saturating_sub(*closed_at.iter().min().unwrap());
    assert!(
        spread >= Duration::from_millis(500),
        "closes spread over {spread:?}"
    );
    s.stop().await;
}

#[test]
fn sigterm_drains_with_1001_and_exits_zero_within_the_window() {
    let p = Process::start(&[("CHAT__SHUTDOWN__DRAIN_WINDOW", "1s")], &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut client = rt.block_on(async { connect(&p.url("room=t"), Some(ORIGIN)).await.unwrap() });
    rt.block_on(client.next_of("history"));
    let started = Instant::now();
    p.signal("TERM");
    assert_eq!(
        rt.block_on(client.closed_within(Duration::from_secs(3))),
        Some(1001)
    );
    let (code, out) = p.wait_exit(Duration::from_secs(5));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.contains(TOKEN), "the token never reaches the logs");
}

/// The real binary with only `--config <file>` (no environment), on the
/// ports that file names; killed when dropped, so a failed check does not
/// leave it running.
fn with_config_file(config: &std::path::Path, port: u16, admin_port: u16) -> Process {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ws-chat"))
        .args(["--config", config.to_str().unwrap()])
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    Process {
        child,
        port,
        admin_port,
    }
}

#[test]
fn sighup_reloads_allowed_origins() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("chat.toml");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (port, admin) = (common::free_port(), common::free_port());
    std::fs::write(
        &config,
        format!("[server]\nport = {port}\nadmin_port = {admin}\nhost = \"127.0.0.1\"\nadmin_host = \"127.0.0.1\"\n[auth]\ntokens = [\"{TOKEN}\"]\nallowed_origins = [\"http://one.example\"]\n"),
    )
    .unwrap();
    let p = with_config_file(&config, port, admin);
    let url = format!("ws://127.0.0.1:{port}/chat?token={TOKEN}");
    common::wait_listening(admin);
    assert!(rt
        .block_on(connect(&url, Some("http://one.example")))
        .is_ok());
    assert_eq!(
        rt.block_on(connect(&url, Some("http://two.example"))).err(),
        Some(403)
    );
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("one.example", "two.example");
    std::fs::write(&config, text).unwrap();
    p.signal("HUP");
    rt.block_on(common::eventually(
        "the new origin to be allowed after the reload (seen: refusal status)",
        common::WAIT,
        async || connect(&url, Some("http://two.example")).await.map(|_| ()),
    ));
}

/// A reload that points `auth.tokens_file` at another file starts watching
/// that file: a later edit of it applies without a SIGHUP.
#[test]
fn a_reload_that_moves_the_tokens_file_watches_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let (config, old, new) = (
        dir.path().join("chat.toml"),
        dir.path().join("old.toml"),
        dir.path().join("new.toml"),
    );
    let grant = |token: &str| format!("[[tokens]]\ntoken = \"{token}\"\n");
    std::fs::write(&old, grant("first")).unwrap();
    std::fs::write(&new, grant("second")).unwrap();
    let (port, admin) = (common::free_port(), common::free_port());
    let settings = |tokens: &std::path::Path| {
        format!(
            "[server]\nport = {port}\nadmin_port = {admin}\nhost = \"127.0.0.1\"\nadmin_host = \"127.0.0.1\"\n\
             [auth]\ntokens_file = \"{}\"\nallowed_origins = [\"http://one.example\"]\n\
             [limits]\nip_auth_failure_burst = 1000\n",
            tokens.display()
        )
    };
    std::fs::write(&config, settings(&old)).unwrap();
    let _p = with_config_file(&config, port, admin);
    let rt = tokio::runtime::Runtime::new().unwrap();
    common::wait_listening(admin);
    let status = async |token: &str| {
        let url = format!("ws://127.0.0.1:{port}/chat?token={token}");
        match connect(&url, Some("http://one.example")).await {
            Ok(_) => 101,
            Err(code) => code,
        }
    };
    let admitted = async |token: &str| match status(token).await {
        101 => Ok(()),
        refused => Err(refused),
    };
    rt.block_on(async {
        assert_eq!(status("first").await, 101, "first token at start");
        std::fs::write(&config, settings(&new)).unwrap();
        common::eventually(
            "the moved tokens file to be loaded: `second` admitted (seen: status)",
            common::WAIT,
            async || admitted("second").await,
        )
        .await;
        assert_eq!(
            status("first").await,
            401,
            "the old file's token still admitted"
        );
        std::fs::write(&new, format!("{}{}", grant("second"), grant("third"))).unwrap();
        common::eventually(
            "an edit of the new tokens file to be picked up: `third` admitted (seen: status)",
            common::WAIT,
            async || admitted("third").await,
        )
        .await;
    });
}

#[test]
fn check_config_names_the_bad_key_and_redacts_secrets() {
    let bin = env!("CARGO_BIN_EXE_ws-chat");
    let run = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(bin)
            .arg("check-config")
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (code, out) = run(&[("CHAT_TOKEN", "super-secret-value")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        !out.contains("super-secret-value") && out.contains("<redacted>"),
        "{out}"
    );
    for (env, key) in [
        (("CHAT__SERVER__PROT", "1"), "prot"),
        (("CHAT__AUTH__TOKENS", ""), "auth.tokens"),
        (
            ("CHAT__SERVER__TRUSTED_PROXIES", "10.0.0.0/99"),
            "server.trusted_proxies",
        ),
        (
            ("CHAT__AUTH__ALLOWED_ORIGINS", "example.com"),
            "auth.allowed_origins",
        ),
        (
            ("CHAT__SESSION__HEARTBEAT_INTERVAL", "soon"),
            "heartbeat_interval",
        ),
        (
            ("CHAT_SESSION__HEARTBEAT_INTERVAL", "1s"),
            "CHAT_SESSION__HEARTBEAT_INTERVAL",
        ),
    ] {
        let (code, out) = run(&[env]);
        assert_eq!(code, Some(2), "{env:?}: {out}");
        assert!(out.contains(key), "{env:?} should name {key}: {out}");
    }
}
