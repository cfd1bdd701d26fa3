//! Tests of the auth state: origins, tokens and the tokens file, grants, reserved names.

use super::*;

#[test]
fn origin_lookalikes_are_rejected() {
    let policy = OriginPolicy {
        rules: vec![OriginRule::parse("http://localhost:8080").unwrap()],
        allow_missing: false,
    };
    assert!(policy.allows(Some("http://localhost:8080")));
    for bad in [
        "http://localhost:8080.evil.example",
        "HTTP://LOCALHOST:8080",
        "http://localhost:8080/",
        "null",
        "http://localhost",
        "https://localhost:8080",
    ] {
        assert!(!policy.allows(Some(bad)), "{bad}");
    }
    assert!(!policy.allows(None));
}

#[test]
fn wildcard_origins_match_subdomains_only() {
    let rule = OriginRule::parse("https://*.example.com").unwrap();
    assert!(rule.matches("https://chat.example.com"));
    assert!(rule.matches("https://a.b.example.com"));
    for bad in [
        "https://example.com",
        "https://.example.com",
        "https://evil.com/.example.com",
        "https://a.example.com.evil.com",
        "http://chat.example.com",
        "https://a_b.example.com",
    ] {
        assert!(!rule.matches(bad), "{bad}");
    }
    assert!(OriginRule::parse("https://*").is_err());
    assert!(OriginRule::parse("chat.example.com").is_err());
    assert!(OriginRule::parse("https://a.example.com/").is_err());
}

#[test]
fn tokens_match_plain_and_hashed_forms() {
    let hashed = format!(
        "sha256:{}",
        digest("second")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let set = TokenSet::new(
        [
            TokenSecret::parse("first").unwrap(),
            TokenSecret::parse(&hashed).unwrap(),
        ]
        .into_iter()
        .map(|s| (s.0, Arc::new(Grant::guest())))
        .collect(),
    );
    assert!(set.find(&digest("first")).is_some());
    assert!(set.find(&digest("second")).is_some());
    assert!(set.find(&digest("third")).is_none());
    assert!(TokenSecret::parse("sha256:abc").is_err());
}

#[test]
fn the_builtin_dev_token_is_for_loopback_clients_only() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    for local in ["127.0.0.1", "127.9.8.7", "::1", "::ffff:127.0.0.1"] {
        assert!(is_loopback(ip(local)), "{local}");
    }
    for remote in [
        "10.0.0.1",
        "192.168.1.2",
        "::ffff:10.0.0.1",
        "2001:db8::1",
        "0.0.0.0",
        "::",
    ] {
        assert!(!is_loopback(ip(remote)), "{remote}");
    }
    let built_in = Grant {
        loopback_only: true,
        ..Grant::guest()
    };
    assert!(built_in.allows_client(ip("127.0.0.1")));
    assert!(!built_in.allows_client(ip("10.1.2.3")));
    let configured = Grant {
        loopback_only: false,
        ..built_in
    };
    assert!(configured.allows_client(ip("10.1.2.3")));

    // Only auth.tokens_file set: the built-in token stays loopback-only,
    // unless the file grants it too (then the file's grant is its grant).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.toml");
    let settings = |text: &str| {
        std::fs::write(&file, text).unwrap();
        let path = file.to_string_lossy().to_string();
        let sources = crate::config::Sources::from_env([("CHAT__AUTH__TOKENS_FILE", path)]);
        Settings::load(&sources, |_| Vec::new()).unwrap()
    };
    let s = settings("[[tokens]]\ntoken = \"other\"\n");
    assert!(s.auth.builtin_dev_token);
    let set = TokenSet::from_settings(&s).unwrap();
    assert!(set.find(&digest(DEV_TOKEN)).unwrap().loopback_only);
    assert!(!set.find(&digest("other")).unwrap().loopback_only);
    assert!(set.has_loopback_only(), "the startup warning is due");
    let s = settings("[[tokens]]\ntoken = \"dev-token\"\nrooms = [\"dev\"]\n");
    let set = TokenSet::from_settings(&s).unwrap();
    let grant = set.find(&digest(DEV_TOKEN)).unwrap();
    assert!(!grant.loopback_only && grant.allows_room("dev") && !grant.allows_room("lobby"));
    assert_eq!(set.len(), 1);
    assert!(
        !set.has_loopback_only(),
        "no warning: the file configured it"
    );
}

#[test]
fn tokens_file_errors_never_quote_the_token() {
    let e = tokens::parse_tokens_file(
        "tokens.toml",
        "[[tokens]]\ntoken = \"hunter2\"\nroms = [\"a\"]\n",
    )
    .unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
    let grants = tokens::parse_tokens_file(
        "tokens.toml",
        "[[tokens]]\ntoken = \"t\"\nrooms = [\"ops\"]\nread_only = true\n",
    )
    .unwrap();
    assert!(!grants[0].1.can_write());
    assert!(grants[0].1.admits("ops") && !grants[0].1.admits("lobby"));
}

#[test]
fn tokens_file_entries_name_users_and_take_perm() {
    let grants = tokens::parse_tokens_file(
        "t.toml",
        "[[tokens]]\ntoken = \"a\"\nuser = \"u-1\"\nname = \"Ana\"\nperm = [\"read\", \"moderate\"]\n\
         rooms = [\"support-*\"]\n[[tokens]]\ntoken = \"b\"\nuser = \"bo\"\n[[tokens]]\ntoken = \"c\"\n",
    )
    .unwrap();
    let (a, b, c) = (&grants[0].1, &grants[1].1, &grants[2].1);
    assert_eq!(
        (a.user.as_deref(), a.name.as_deref()),
        (Some("u-1"), Some("Ana"))
    );
    assert!(a.admits("support-1") && !a.can_write() && a.perm.contains(Perm::MODERATE));
    assert_eq!(
        b.name.as_deref(),
        Some("bo"),
        "the name defaults to the user"
    );
    assert_eq!(
        (c.user.as_deref(), c.name.as_deref()),
        (None, None),
        "a guest"
    );
    for bad in [
        "perm = [\"read\"]\nread_only = true",
        "perm = [\"root\"]",
        "name = \"Ana\"",
        "user = \"\"",
        "rooms = [\"a*b\"]",
    ] {
        let text = format!("[[tokens]]\ntoken = \"hunter2\"\n{bad}\n");
        let e = tokens::parse_tokens_file("t.toml", &text).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }
}
