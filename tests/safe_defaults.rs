//! Safe defaults (issue 16, part 5) against the real server: texts and
//! names that cannot deceive (PROTOCOL.md §13).

mod common;

use common::TestServer;

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
