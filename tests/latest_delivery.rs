//! `delivery = "latest"` (room namespaces): a consumer that stops reading
//! in such a room skips to the newest events instead of being closed with
//! 1013, while one in an ordinary room is closed as a slow consumer, with
//! and without direct writes. Real sockets with a 4 KiB receive window, a
//! real flood.

mod common;

use common::jwt::start_with_config;
use common::Raw;
use tokio::io::AsyncReadExt;

const FLOOD: usize = 1500;

/// Floods `room` with numbered messages of about 1.6 KB, reading the echoes.
async fn flood(addr: std::net::SocketAddr, room: &str) {
    let raw = Raw::connect(addr, &format!("room={room}&name=flooder")).await;
    let (mut rd, mut wr) = raw.stream.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while matches!(rd.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let pad = "€".repeat(480);
    for i in 0..FLOOD {
        let msg = format!(r#"{{"type":"message","text":"m{i} {pad}"}}"#);
        let frame = ws_chat::ws::frame::client_frame(true, 1, msg.as_bytes(), [9, 8, 7, 6]);
        tokio::io::AsyncWriteExt::write_all(&mut wr, &frame)
            .await
            .expect("flood");
    }
    drop(wr);
    drain.abort();
}

#[tokio::test]
async fn a_latest_room_skips_a_slow_reader_ahead_where_another_room_closes_it() {
    slow_readers("false").await;
}

/// With direct writes the fan-out writes to the socket itself, past
/// `outbound_queue`: the kernel's send buffer, capped by
/// `session.direct_write_buffer`, is what keeps the sleeper's backlog
/// bounded (uncapped, it autotunes to megabytes and swallows the flood).
#[tokio::test]
async fn with_direct_writes_the_capped_send_buffer_still_closes_a_slow_reader() {
    slow_readers("true").await;
}

/// A dashboard reader and a chat reader that both stop reading under a
/// flood; `direct_writes`: the setting's value.
async fn slow_readers(direct_writes: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = "[[rooms.namespaces]]\npattern = \"dash-*\"\ndelivery = \"latest\"\n";
    let s = start_with_config(
        &dir.path().join("c.toml"),
        config,
        &[
            ("CHAT__LIMITS__MESSAGE_BURST", "100000"),
            ("CHAT__LIMITS__IP_MESSAGE_BURST", "100000"),
            ("CHAT__SESSION__OUTBOUND_QUEUE", "16"),
            ("CHAT__SESSION__SLOW_CONSUMER_DROPS", "8"),
            ("CHAT__SESSION__DIRECT_WRITES", direct_writes),
        ],
    )
    .await;
    let mut dash = Raw::connect_with(s.addr, "room=dash-builds&name=wall", Some(4096)).await;
    let mut plain = Raw::connect_with(s.addr, "room=chat&name=sleeper", Some(4096)).await;
    flood(s.addr, "dash-builds").await;
    flood(s.addr, "chat").await;

    // The ordinary room's sleeper was closed (1013, or cut while closing).
    let code = plain.close_code().await;
    assert!(matches!(code, Some(1013) | None), "{code:?}");
    // The dashboard is still open, and reading now it reaches the newest
    // event: the stale ones in between were replaced, not queued forever.
    let last = format!("m{} ", FLOOD - 1);
    let mut seen = 0;
    loop {
        let (opcode, payload) = dash.read_frame().await.expect("still open");
        assert_ne!(opcode, 8, "closed: {:?}", String::from_utf8_lossy(&payload));
        seen += 1;
        if String::from_utf8_lossy(&payload).contains(&last) {
            break;
        }
    }
    assert!(seen < FLOOD, "it skipped ahead ({seen} frames)");
    assert!(s.metric(r#"wschat_drops_total{reason="superseded"}"#).await > 0.0);
    // The fan-out wrote straight to the sockets only when direct writes are on.
    let direct = s.metric("wschat_fanout_direct_writes_total").await;
    assert_eq!(
        direct > 0.0,
        direct_writes == "true",
        "{direct} direct writes"
    );
    s.stop().await;
}
