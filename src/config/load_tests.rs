//! Tests of loading the settings: layers, reference variables, and each check naming its key.

use std::time::Duration;

use super::*;
use crate::config::TracesMode;

fn load(sources: &Sources) -> Result<Settings, SettingsError> {
    Settings::load(sources, |_| Vec::new())
}

#[test]
fn defaults_match_the_reference_server() {
    let s = load(&Sources::default()).expect("defaults load");
    assert_eq!(s.server.port, 8080);
    assert_eq!(s.auth.tokens, vec!["dev-token".to_string()]);
    assert_eq!(
        s.allowed_origins(),
        vec!["http://localhost:8080", "http://127.0.0.1:8080"]
    );
    assert_eq!(s.rooms.history, 50);
    assert_eq!(s.limits.message_burst, 20);
    assert_eq!(s.limits.message_refill, Duration::from_millis(500));
    assert_eq!(s.limits.max_text_chars, 500);
    assert_eq!(s.limits.max_message_bytes, 2048);
    assert_eq!(s.session.heartbeat_interval, Duration::from_secs(30));
}

#[test]
fn reference_variables_and_double_underscore_variables_apply() {
    let s = load(&Sources::from_env([
        ("PORT", "9000"),
        ("CHAT_TOKEN", "s3cret"),
        (
            "CHAT__AUTH__ALLOWED_ORIGINS",
            "https://a.example, https://b.example",
        ),
        ("CHAT__SESSION__HEARTBEAT_INTERVAL", "5s"),
    ]))
    .expect("loads");
    assert_eq!(s.server.port, 9000);
    assert_eq!(s.auth.tokens, vec!["s3cret".to_string()]);
    assert_eq!(
        s.allowed_origins(),
        vec!["https://a.example", "https://b.example"]
    );
    assert_eq!(s.session.heartbeat_interval, Duration::from_secs(5));
}

#[test]
fn the_dev_token_is_builtin_only_when_no_layer_sets_tokens() {
    let s = load(&Sources::default()).expect("defaults load");
    assert!(s.auth.builtin_dev_token);
    // Another auth key does not count as configuring the tokens.
    let s = load(&Sources::from_env([(
        "CHAT__AUTH__ALLOW_MISSING_ORIGIN",
        "true",
    )]))
    .expect("loads");
    assert!(s.auth.builtin_dev_token);
    for (key, value) in [("CHAT_TOKEN", "dev-token"), ("CHAT__AUTH__TOKENS", "a,b")] {
        let s = load(&Sources::from_env([(key, value)])).expect("loads");
        assert!(!s.auth.builtin_dev_token, "{key}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[auth]\ntokens = [\"dev-token\"]\n").expect("write");
    let sources = Sources {
        config_file: Some(file),
        ..Sources::default()
    };
    assert!(!load(&sources).expect("loads").auth.builtin_dev_token);
}

#[test]
fn direct_write_buffer_is_a_size_within_its_range() {
    let s = load(&Sources::default()).expect("defaults load");
    assert!(s.session.direct_writes);
    assert_eq!(s.session.direct_write_buffer, 64 << 10);
    let s = load(&Sources::from_env([(
        "CHAT__SESSION__DIRECT_WRITE_BUFFER",
        "1MiB",
    )]))
    .expect("1MiB");
    assert_eq!(s.session.direct_write_buffer, 1 << 20);
    for bad in ["1KiB", "32MiB", "0"] {
        let e = load(&Sources::from_env([(
            "CHAT__SESSION__DIRECT_WRITE_BUFFER",
            bad,
        )]))
        .unwrap_err();
        assert!(
            e.to_string().contains("session.direct_write_buffer"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn fanout_pause_defaults_and_is_checked_naming_its_key() {
    let s = load(&Sources::default()).expect("defaults load");
    assert_eq!(s.rooms.fanout_pause, 0.5);
    assert_eq!(s.rooms.fanout_pause_max, Duration::from_millis(5));
    let off = load(&Sources::from_env([("CHAT__ROOMS__FANOUT_PAUSE", "0")])).expect("0: off");
    assert_eq!(off.rooms.fanout_pause, 0.0);
    for (key, bad) in [
        ("CHAT__ROOMS__FANOUT_PAUSE", "4.5"),
        ("CHAT__ROOMS__FANOUT_PAUSE", "-1"),
        ("CHAT__ROOMS__FANOUT_PAUSE", "NaN"),
        ("CHAT__ROOMS__FANOUT_PAUSE_MAX", "2s"),
    ] {
        let e = load(&Sources::from_env([(key, bad)])).unwrap_err();
        let named = key.trim_start_matches("CHAT__ROOMS__").to_lowercase();
        assert!(
            e.to_string().contains(&format!("rooms.{named}:")),
            "{bad}: {e}"
        );
    }
}

#[test]
fn history_bytes_takes_bytes_or_units_and_must_hold_one_room() {
    let s = load(&Sources::default()).expect("defaults load");
    assert_eq!(s.rooms.history_bytes, 64 << 20);
    for (text, bytes) in [
        ("1048576", 1 << 20),
        ("2MiB", 2 << 20),
        ("2 mib", 2 << 20),
        ("3MB", 3_000_000),
        ("1GiB", 1 << 30),
        ("512KiB", 512 << 10),
    ] {
        let s = load(&Sources::from_env([("CHAT__ROOMS__HISTORY_BYTES", text)]))
            .unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(s.rooms.history_bytes, bytes, "{text}");
    }
    for bad in ["64M", "lots", "-5", "1.5MiB", "99999999999999999999GiB"] {
        let e = load(&Sources::from_env([("CHAT__ROOMS__HISTORY_BYTES", bad)])).unwrap_err();
        assert!(e.to_string().contains("history_bytes"), "{bad}: {e}");
    }
    let e = load(&Sources::from_env([(
        "CHAT__ROOMS__HISTORY_BYTES",
        "64KiB",
    )]))
    .unwrap_err();
    assert!(
        e.to_string().contains("rooms.history_bytes: must hold"),
        "{e}"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "[rooms]\nhistory_bytes = 2097152\n").expect("write");
    let sources = Sources {
        config_file: Some(file),
        ..Sources::default()
    };
    assert_eq!(load(&sources).expect("loads").rooms.history_bytes, 2 << 20);
}

#[test]
fn port_change_moves_the_default_origins() {
    let s = load(&Sources::from_env([("PORT", "8090")])).expect("loads");
    assert_eq!(s.allowed_origins()[0], "http://localhost:8090");
}

#[test]
fn misspelt_and_unknown_keys_are_errors_naming_the_key() {
    let e = load(&Sources::from_env([("CHAT_SERVER__PORT", "1")])).unwrap_err();
    assert!(e.to_string().contains("CHAT_SERVER__PORT"), "{e}");
    let e = load(&Sources::from_env([("CHAT__SERVER__PROT", "1")])).unwrap_err();
    assert!(e.to_string().contains("prot"), "{e}");
}

#[test]
fn redaction_hides_tokens_and_redis_passwords() {
    let mut s = load(&Sources::from_env([("CHAT_TOKEN", "hunter2")])).expect("loads");
    s.broker.redis_url = "redis://app:pa55@redis:6379".into();
    let text = s.redacted();
    assert!(
        !text.contains("hunter2") && !text.contains("pa55"),
        "{text}"
    );
    assert!(text.contains("<redacted>"));
}

#[test]
fn jwt_settings_load_from_a_file_and_their_secrets_are_redacted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(
        &file,
        "[auth]\ntokens = []\n[auth.jwt]\naudience = [\"chat\"]\n\
         [[auth.jwt.keys]]\nalg = \"HS256\"\nkid = \"a\"\nsecret = \"jwt-hunter2-jwt-hunter2-jwt-hunter2\"\n\
         [[auth.jwt.keys]]\nalg = \"RS256\"\npublic_key_file = \"/k.pem\"\n",
    )
    .expect("write");
    let sources = Sources {
        config_file: Some(file),
        ..Sources::default()
    };
    let s = load(&sources).expect("JWT alone is enough to connect with");
    assert!(s.auth.jwt.enabled());
    assert_eq!(s.auth.jwt.keys.len(), 2);
    assert_eq!(s.auth.jwt.keys[0].kid, "a");
    assert_eq!(s.auth.jwt.leeway, Duration::from_secs(5));
    assert_eq!(s.auth.expiry_warning, Duration::from_secs(60));
    let text = s.redacted();
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!format!("{s:?}").contains("hunter2"), "Debug hides it too");
    assert!(text.contains("public_key_file = \"/k.pem\""), "{text}");
    let e = load(&Sources::from_env([
        ("CHAT__AUTH__EXPIRY_WARNING", "0s"),
        ("CHAT__AUTH__JWT__LEEWAY", "10m"),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("auth.expiry_warning") && e.contains("auth.jwt.leeway"),
        "{e}"
    );
}

#[test]
fn trace_settings_load_from_the_environment_and_are_checked() {
    let s = load(&Sources::default()).expect("defaults load");
    assert_eq!(s.telemetry.traces, TracesMode::Auto);
    assert_eq!(s.telemetry.sample_ratio, 0.01);
    let s = load(&Sources::from_env([
        ("CHAT__TELEMETRY__TRACES", "otlp"),
        ("CHAT__TELEMETRY__SAMPLE_RATIO", "0.5"),
    ]))
    .expect("loads");
    assert_eq!(s.telemetry.traces, TracesMode::Otlp);
    assert_eq!(s.telemetry.sample_ratio, 0.5);
    let e = load(&Sources::from_env([(
        "CHAT__TELEMETRY__SAMPLE_RATIO",
        "1.5",
    )]))
    .unwrap_err();
    assert!(e.to_string().contains("telemetry.sample_ratio"), "{e}");
    let e = load(&Sources::from_env([("CHAT__TELEMETRY__TRACES", "jaeger")])).unwrap_err();
    assert!(e.to_string().contains("jaeger"), "{e}");
}

#[test]
fn edge_settings_default_and_are_checked_naming_their_keys() {
    let s = load(&Sources::default()).expect("defaults load");
    assert_eq!(s.limits.ipv6_prefix, 64);
    assert_eq!(s.server.max_header_bytes, 16384);
    assert_eq!(s.server.max_http_connections, 4096);
    assert_eq!(s.server.ip_max_http_connections, 32);
    for (var, value, key) in [
        ("CHAT__LIMITS__IPV6_PREFIX", "0", "limits.ipv6_prefix"),
        ("CHAT__LIMITS__IPV6_PREFIX", "129", "limits.ipv6_prefix"),
        ("CHAT__LIMITS__IPV6_PREFIX", "300", "limits.ipv6_prefix"),
        (
            "CHAT__SERVER__MAX_HEADER_BYTES",
            "8191",
            "server.max_header_bytes",
        ),
        (
            "CHAT__SERVER__MAX_HEADER_BYTES",
            "2000000",
            "server.max_header_bytes",
        ),
        (
            "CHAT__SERVER__MAX_HTTP_CONNECTIONS",
            "0",
            "server.max_http_connections",
        ),
        (
            "CHAT__SERVER__IP_MAX_HTTP_CONNECTIONS",
            "0",
            "server.ip_max_http_connections",
        ),
    ] {
        let e = load(&Sources::from_env([(var, value)])).unwrap_err();
        assert!(e.to_string().contains(key), "{var}={value}: {e}");
    }
    for (var, value) in [
        ("CHAT__LIMITS__IPV6_PREFIX", "1"),
        ("CHAT__LIMITS__IPV6_PREFIX", "128"),
        ("CHAT__SERVER__MAX_HEADER_BYTES", "8192"),
    ] {
        load(&Sources::from_env([(var, value)])).expect(value);
    }
}

#[test]
fn ipv4_mapped_trusted_proxies_are_ipv4_networks() {
    let s = load(&Sources::from_env([(
        "CHAT__SERVER__TRUSTED_PROXIES",
        "::ffff:10.0.0.0/104, ::ffff:192.0.2.1, 2001:db8::/32, ::ffff:0:0/95",
    )]))
    .expect("loads");
    let nets: Vec<String> = s.trusted_proxies().iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        [
            "10.0.0.0/8",
            "192.0.2.1/32",
            "2001:db8::/32",
            "::ffff:0.0.0.0/95"
        ]
    );
}

#[test]
fn user_limits_default_and_zero_is_an_error_naming_the_key() {
    let s = load(&Sources::default()).expect("defaults load");
    assert_eq!(s.limits.user_max_connections, 20);
    assert_eq!(s.limits.user_message_burst, 40);
    assert_eq!(s.limits.user_message_refill, Duration::from_millis(250));
    for (var, value, key) in [
        (
            "CHAT__LIMITS__USER_MAX_CONNECTIONS",
            "0",
            "limits.user_max_connections: must be at least 1",
        ),
        (
            "CHAT__LIMITS__USER_MESSAGE_BURST",
            "0",
            "limits.user_message_burst: must be at least 1",
        ),
        (
            "CHAT__LIMITS__USER_MESSAGE_REFILL",
            "0s",
            "limits.user_message_refill: must be longer than zero",
        ),
        (
            "CHAT__LIMITS__USER_MESSAGE_REFILL",
            "soon",
            "user_message_refill",
        ),
        (
            "CHAT__LIMITS__USER_MAX_CONNECTIONS",
            "-1",
            "user_max_connections",
        ),
    ] {
        let e = load(&Sources::from_env([(var, value)])).unwrap_err();
        assert!(e.to_string().contains(key), "{var}={value}: {e}");
    }
}
