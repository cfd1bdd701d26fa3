//! Chat behaviour over real sockets: join order, broadcast, history, `since`,
//! presence, and every client error code.

mod common;

use common::{TestServer, ORIGIN};
use serde_json::Value;

#[tokio::test]
async fn join_sends_system_then_history_then_presence_and_messages_reach_the_room_only() {
    let s = TestServer::start(&[]).await;
    let mut ana = s.connect("name=ana&room=r1").await;
    let first = ana.next().await;
    assert_eq!(first["type"], "system");
    assert_eq!(first["message"], "connected as ana");
    let history = ana.next().await;
    assert_eq!(history["type"], "history");
    assert_eq!(history["messages"], Value::Array(vec![]));
    assert!(history["epoch"].is_string());
    let presence = ana.next().await;
    assert_eq!(presence["type"], "presence");
    assert_eq!(presence["message"], "ana joined");
    assert_eq!(presence["online"], 1);

    let (mut bo, _) = s.join("name=bo&room=r1").await;
    let (mut other, _) = s.join("name=cy&room=r2").await;
    assert_eq!(bo.next_of("presence").await["online"], 2);
    bo.say("hello ana").await;
    for c in [&mut ana, &mut bo] {
        let m = c.next_message().await;
        assert_eq!(m["text"], "hello ana");
        assert_eq!(m["from"], "bo");
        assert_eq!(m["room"], "r1");
        assert_eq!(m["seq"], 1);
        assert_eq!(m["sentAt"].as_str().map(str::len), Some(24));
        assert!(m["id"].as_str().is_some_and(|id| id.len() == 36));
    }
    other.say("only r2").await;
    assert_eq!(other.next_message().await["text"], "only r2");
    // ana's next message is bo's second one, never r2's.
    bo.say("second").await;
    assert_eq!(ana.next_message().await["text"], "second");
    s.stop().await;
}

#[tokio::test]
async fn history_keeps_the_last_fifty_oldest_first_and_since_resumes() {
    let s = TestServer::start(&[
        ("CHAT__LIMITS__MESSAGE_BURST", "100"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "100"),
    ])
    .await;
    let (mut w, _) = s.join("room=h").await;
    for i in 1..=60 {
        w.say(&format!("m{i}")).await;
        assert_eq!(w.next_message().await["seq"], i);
    }
    let (_, history) = s.join("room=h").await;
    let msgs = history["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 50);
    assert_eq!(msgs[0]["text"], "m11");
    assert_eq!(msgs[49]["text"], "m60");
    let epoch = history["epoch"].as_str().unwrap().to_string();

    let (_, since) = s.join(&format!("room=h&since=57&epoch={epoch}")).await;
    let texts: Vec<_> = since["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].clone())
        .collect();
    assert_eq!(texts, vec!["m58", "m59", "m60"]);
    let (_, stale) = s.join("room=h&since=57&epoch=not-this-one").await;
    assert_eq!(
        stale["messages"].as_array().unwrap().len(),
        50,
        "an old epoch gets full history"
    );
    assert_eq!(stale["epoch"], epoch.as_str());
    let (_, trusted) = s.join("room=h&since=59").await;
    assert_eq!(
        trusted["messages"].as_array().unwrap().len(),
        1,
        "since without epoch is trusted"
    );
    s.stop().await;
}

#[tokio::test]
async fn each_bad_message_gets_its_error_code_and_the_connection_stays_open() {
    let s = TestServer::start(&[]).await;
    let (mut c, _) = s.join("room=e").await;
    let cases: [(&str, &str); 6] = [
        ("not json", "bad_json"),
        (r#"{"type":"typing"}"#, "bad_type"),
        (r#"{"type":"join"}"#, "bad_room"),
        (r#"{"type":"message","text":"   "}"#, "empty"),
        (r#"{"type":"message"}"#, "empty"),
        (r#"{"type":"message","text":{"x":1}}"#, "bad_json"),
    ];
    for (input, code) in cases {
        c.send_text(input).await;
        let e = c.next_of("error").await;
        assert_eq!(e["code"], code, "{input}");
        assert!(
            !e["message"].as_str().unwrap().contains(input),
            "errors never echo input"
        );
    }
    let long = "가".repeat(501);
    c.say(&long).await;
    assert_eq!(c.next_of("error").await["code"], "too_large");
    let exactly = format!("  {}  ", "가".repeat(500));
    c.say(&exactly).await;
    assert_eq!(
        c.next_message().await["text"]
            .as_str()
            .unwrap()
            .chars()
            .count(),
        500
    );
    assert!(
        s.metric("wschat_messages_rejected_total{code=\"bad_json\"}")
            .await
            >= 2.0
    );
    s.stop().await;
}

#[tokio::test]
async fn a_burst_over_twenty_is_rate_limited_and_the_connection_stays_open() {
    let s = TestServer::start(&[]).await;
    let (mut c, _) = s.join("room=rl").await;
    for i in 0..25 {
        c.say(&format!("n{i}")).await;
    }
    let (mut ok, mut limited) = (0, 0);
    while ok + limited < 25 {
        let v = c.next().await;
        match v["type"].as_str() {
            Some("message") => ok += 1,
            Some("error") => {
                assert_eq!(v["code"], "rate_limited");
                limited += 1;
            }
            _ => {}
        }
    }
    assert_eq!((ok, limited), (20, 5));
    assert_eq!(
        s.metric("wschat_rate_limited_total{scope=\"connection\"}")
            .await,
        5.0
    );
    s.stop().await;
}

#[tokio::test]
async fn the_ip_message_budget_spans_all_connections_of_an_ip() {
    let s = TestServer::start(&[
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "6"),
        ("CHAT__LIMITS__IP_MESSAGE_REFILL", "1h"),
    ])
    .await;
    let (mut a, _) = s.join("room=ip").await;
    let (mut b, _) = s.join("room=ip").await;
    for _ in 0..4 {
        a.say("a").await;
    }
    for _ in 0..4 {
        assert_eq!(a.next_message().await["text"], "a");
    }
    for _ in 0..4 {
        b.say("b").await;
    }
    let (mut accepted, mut limited) = (0, 0);
    while accepted + limited < 4 {
        let v = b.next().await;
        if v["type"] == "message" && v["message"]["text"] == "b" {
            accepted += 1;
        }
        if v["type"] == "error" {
            assert_eq!(v["code"], "rate_limited");
            limited += 1;
        }
    }
    assert_eq!(
        (accepted, limited),
        (2, 2),
        "eight sends from one IP over a budget of six"
    );
    assert_eq!(
        s.metric("wschat_rate_limited_total{scope=\"ip\"}").await,
        2.0
    );
    s.stop().await;
}

#[tokio::test]
async fn presence_counts_joins_and_leaves() {
    let s = TestServer::start(&[("CHAT__ROOMS__PRESENCE_INTERVAL", "1ms")]).await;
    let (mut a, _) = s.join("name=a&room=p").await;
    assert_eq!(a.next_of("presence").await["online"], 1);
    let (b, _) = s.join("name=b&room=p").await;
    let joined = a.next_of("presence").await;
    assert_eq!(
        (joined["message"].as_str(), joined["online"].as_u64()),
        (Some("b joined"), Some(2))
    );
    b.bye().await;
    let left = a.next_of("presence").await;
    assert_eq!(
        (left["message"].as_str(), left["online"].as_u64()),
        (Some("b left"), Some(1))
    );
    s.stop().await;
}

#[tokio::test]
async fn a_join_storm_is_coalesced_into_few_presence_events_with_the_right_count() {
    let s = TestServer::start(&[
        ("CHAT__LIMITS__IP_CONNECT_BURST", "1000"),
        ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "1000"),
        ("CHAT__ROOMS__PRESENCE_INTERVAL", "100ms"),
    ])
    .await;
    let (mut watcher, _) = s.join("name=w&room=storm").await;
    let mut clients = Vec::new();
    for i in 0..200 {
        clients.push(s.connect(&format!("name=u{i}&room=storm")).await);
    }
    let mut events = 0;
    loop {
        let p = watcher.next_of("presence").await;
        events += 1;
        if p["online"] == 201 {
            break;
        }
    }
    assert!(events < 60, "200 joins took {events} presence events");
    s.stop().await;
}

#[tokio::test]
async fn names_and_rooms_are_cleaned_like_the_reference() {
    let s = TestServer::start(&[]).await;
    let (mut c, _) = s.join("name=%3Cb%3E&room=bad%20room").await;
    c.say("x").await;
    let m = c.next_message().await;
    assert_eq!(
        (m["from"].as_str(), m["room"].as_str()),
        (Some("guest"), Some("lobby"))
    );
    s.stop().await;
}

#[tokio::test]
async fn the_page_and_health_answer_with_security_headers() {
    let s = TestServer::start(&[]).await;
    let (status, head, body) = common::http_request(
        s.addr,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let head = head.to_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(head.contains("x-content-type-options: nosniff"));
    assert!(body.contains("<html"));
    let (status, body) = common::http_get(s.addr, "/healthz").await;
    assert_eq!(status, 200);
    assert!(body.contains(r#""ok":true"#));
    assert_eq!(common::http_get(s.addr, "/../Cargo.toml").await.0, 404);
    assert_eq!(common::http_get(s.addr, "/client/app.js").await.0, 404);
    let _ = ORIGIN;
    s.stop().await;
}

/// `/page-config.json` tells the page where to fetch a fresh token: null by
/// default, the configured path otherwise, and a reload changes it.
#[tokio::test]
async fn the_page_config_names_the_token_url_and_follows_a_reload() {
    let s = TestServer::start(&[]).await;
    let (status, head, body) = common::http_request(
        s.addr,
        "GET /page-config.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    let head = head.to_lowercase();
    for header in [
        "content-type: application/json",
        "cache-control: no-cache",
        "x-content-type-options: nosniff",
    ] {
        assert!(head.contains(header), "{header} in {head}");
    }
    assert_eq!(body, r#"{"tokenUrl":null}"#);
    s.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.toml");
    let s =
        common::jwt::start_with_config(&file, "[auth]\npage_token_url = \"/token\"\n", &[]).await;
    assert_eq!(
        common::http_get(s.addr, "/page-config.json").await,
        (200, r#"{"tokenUrl":"/token"}"#.to_string())
    );
    std::fs::write(&file, "[auth]\npage_token_url = \"/api/chat-token\"\n").unwrap();
    s.control.reload.notify_one();
    common::eventually(
        "the reloaded token URL",
        std::time::Duration::from_secs(5),
        async || {
            let (_, body) = common::http_get(s.addr, "/page-config.json").await;
            match body.contains("/api/chat-token") {
                true => Ok(()),
                false => Err(body),
            }
        },
    )
    .await;
    s.stop().await;
}

/// Many publishers at once, so that fan-outs overlap while frames keep
/// arriving: every member still gets every message once, in `seq` order.
#[tokio::test]
async fn overlapping_fan_outs_deliver_every_message_once_in_order() {
    let s = TestServer::start(&[
        ("CHAT__LIMITS__MESSAGE_BURST", "100"),
        ("CHAT__LIMITS__IP_MESSAGE_BURST", "1000"),
    ])
    .await;
    let (publishers, each, listeners) = (6usize, 15usize, 20usize);
    let mut members = Vec::new();
    for i in 0..listeners + publishers {
        members.push(s.join(&format!("name=m{i}&room=busy")).await.0);
    }
    let senders = members.split_off(listeners);
    let sending: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(p, mut c)| {
            tokio::spawn(async move {
                for n in 0..each {
                    c.say(&format!("p{p} n{n}")).await;
                }
                c
            })
        })
        .collect();
    let total = (publishers * each) as u64;
    for (i, m) in members.iter_mut().enumerate() {
        let mut last = 0;
        while last < total {
            let msg = m.next_message().await;
            let seq = msg["seq"].as_u64().expect("seq");
            assert_eq!(seq, last + 1, "member {i}");
            last = seq;
        }
    }
    for task in sending {
        task.await.expect("publisher");
    }
    s.stop().await;
}
