//! Safe defaults (issue 16, part 5) against the real server: reserved
//! names, and texts and names that cannot deceive (PROTOCOL.md §8 and §13).

mod common;

use common::TestServer;

/// PROTOCOL.md §8: guests may not take a reserved name; like any name that
/// is not valid, it becomes `guest`. Matching ignores case, spaces, `-`, `_`
/// and the characters §13 removes.
#[tokio::test]
async fn guests_asking_for_a_reserved_name_are_named_guest() {
    let s = TestServer::start(&[]).await;
    let name_for = async |asked: &str| {
        let mut c = s.connect(&format!("room=names&name={asked}")).await;
        let system = c.next_of("system").await;
        c.bye().await;
        system["message"].as_str().unwrap_or_default().to_string()
    };
    for reserved in [
        "admin",
        "Admin",
        "ADMIN",
        "ad+min",
        "System",
        "moderator",
        "server",
        "ws-chat",
        "WS_Chat",
        "ws+chat",
        "administrator",
        "%E2%80%AEadmin",
        "ad%07min",
    ] {
        assert_eq!(name_for(reserved).await, "connected as guest", "{reserved}");
    }
    for free in ["ana", "admins", "sysadmin", "chat"] {
        assert_eq!(name_for(free).await, format!("connected as {free}"));
    }
    s.stop().await;

    // The list is a setting: here only "boss".
    let s = TestServer::start(&[("CHAT__AUTH__RESERVED_NAMES", "boss")]).await;
    let mut c = s.connect("name=Boss").await;
    assert_eq!(c.next_of("system").await["message"], "connected as guest");
    let mut c2 = s.connect("name=admin").await;
    assert_eq!(c2.next_of("system").await["message"], "connected as admin");
    s.stop().await;
}

/// PROTOCOL.md §13: C0/C1 controls (but newline and tab) and bidirectional
/// overrides and isolates are removed from texts before the emptiness and
/// length checks, and from names.
#[tokio::test]
async fn controls_and_bidi_overrides_are_removed_from_texts_and_names() {
    let s = TestServer::start(&[]).await;
    let (mut a, _) = s.join("room=clean&name=ana%E2%80%AE%07").await;
    let (mut b, _) = s.join("room=clean&name=bo").await;
    for (sent, shown) in [
        ("\u{202e}evil\u{202c}", "evil"),
        ("a\r\nb\tc", "a\nb\tc"),
        ("\u{1b}[2Jhi\u{7}", "[2Jhi"),
        ("\u{2066}x\u{2069}\u{85}", "x"),
        // 505 characters sent, 5 once the removed ones are gone: within the
        // 500-character limit, which counts what is left.
        (&format!("{}hello", "\u{202e}".repeat(500)), "hello"),
    ] {
        a.say(sent).await;
        let m = b.next_message().await;
        assert_eq!(m["text"], shown, "{sent:?}");
        assert_eq!(m["from"], "ana");
    }
    a.say("\u{202e}\u{0}\u{7} \u{9f}").await;
    let e = a.next_of("error").await;
    assert_eq!(e["code"], "empty");
    s.stop().await;
}
