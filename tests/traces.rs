//! Traces end to end: the real binary exports OTLP/HTTP protobuf to a
//! collector run by the test; the span tree, its attributes and the logs'
//! trace ids are checked, and no token may appear in anything exported. Two
//! binaries on one real `redis-server` show one message as one trace across
//! both replicas.

mod common;

use std::time::Duration;

use common::otlp::{assert_not_exported, collector, decode, hex, Span};
use common::redis::RedisServer;
use common::{connect, wait_readyz, Process, ORIGIN};

const TOKEN: &str = "tok-Zq8xRw3vN5pL1mK";
/// A near miss: the real token with its last character changed.
const BAD_TOKEN: &str = "tok-Zq8xRw3vN5pL1mQ";
const ROOM: &str = "room-7Hq2pW9";
const TEXT: &str = "hello-Xy4Kp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_collector_without_tokens() {
    let (collector_port, received) = collector().await;
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let server = Process::start(
        &[
            ("CHAT_TOKEN", TOKEN),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "ws-chat-test"),
            ("CHAT__TELEMETRY__SAMPLE_RATIO", "1.0"),
            ("RUST_LOG", "info,ws_chat=debug"),
        ],
        &[],
    );
    let url = |token: &str| {
        format!(
            "ws://127.0.0.1:{}/chat?token={token}&room={ROOM}&name=ana",
            server.port
        )
    };
    let mut ana = connect(&url(TOKEN), Some(ORIGIN)).await.expect("ana joins");
    let mut bob = connect(&url(TOKEN), Some(ORIGIN)).await.expect("bob joins");
    ana.next_of("history").await;
    bob.next_of("history").await;
    for i in 0..3 {
        ana.say(&format!("{TEXT}-{i}")).await;
        assert_eq!(bob.next_message().await["text"], format!("{TEXT}-{i}"));
    }
    ana.say("   ").await;
    assert_eq!(ana.next_of("error").await["code"], "empty");
    assert_eq!(
        connect(&url(TOKEN), Some("http://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        connect(&url(BAD_TOKEN), Some(ORIGIN)).await.err(),
        Some(401)
    );
    ana.bye().await;
    bob.bye().await;

    server.signal("TERM");
    let (code, logs) =
        tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(20)))
            .await
            .expect("wait");
    assert_eq!(code, Some(0), "{logs}");
    // The exit flushed the spans: they are at the collector before exit returns.
    let bodies = received.0.lock().unwrap().clone();
    assert!(!bodies.is_empty(), "nothing exported; logs:\n{logs}");

    // Nothing secret or user-written anywhere in the exported bytes or the logs.
    assert_not_exported(&bodies, &[TOKEN, BAD_TOKEN, ROOM, TEXT, "token="]);
    for needle in [TOKEN, BAD_TOKEN, TEXT, "token="] {
        assert!(!logs.contains(needle), "`{needle}` was logged:\n{logs}");
    }

    let (spans, resources) = decode(&bodies);
    assert!(resources
        .iter()
        .all(|r| r.get("service.name").map(String::as_str) == Some("ws-chat-test")));
    let named = |name: &'static str| spans.iter().filter(move |s| s.name == name);

    // Upgrades: two accepted, one refused for its origin, one for its token.
    let upgrades: Vec<_> = named("ws.upgrade")
        .map(|s| {
            let a = |k: &str| s.attrs.get(k).cloned().unwrap_or_default();
            (a("outcome"), a("reason"), a("status"))
        })
        .collect();
    let count = |o: &str, r: &str, st: &str| {
        upgrades
            .iter()
            .filter(|u| (u.0.as_str(), u.1.as_str(), u.2.as_str()) == (o, r, st))
            .count()
    };
    assert_eq!(count("accepted", "", "101"), 2, "{upgrades:?}");
    assert_eq!(count("rejected", "origin", "403"), 1, "{upgrades:?}");
    assert_eq!(count("rejected", "token", "401"), 1, "{upgrades:?}");
    assert!(
        named("ws.upgrade").all(|s| s.parent.is_empty()),
        "upgrades are roots"
    );

    // Messages: each a root, limit → validate → broker.publish child with fan-out.
    let messages: Vec<&Span> = named("chat.message").collect();
    assert_eq!(messages.len(), 4, "{messages:?}");
    let rejected: Vec<_> = messages
        .iter()
        .filter(|m| m.attrs.get("outcome").map(String::as_str) == Some("rejected"))
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].attrs["reason"], "empty");
    for m in messages.iter().filter(|m| m.attrs["outcome"] == "accepted") {
        assert!(m.parent.is_empty(), "a message starts its own trace");
        let steps: Vec<&str> = m.events.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(steps, ["limit", "validate"], "{m:?}");
        let publish: Vec<&Span> = named("broker.publish")
            .filter(|p| p.parent == m.id)
            .collect();
        assert_eq!(publish.len(), 1, "one publish under {m:?}");
        let p = publish[0];
        assert_eq!(p.trace, m.trace);
        assert_eq!(p.attrs["messaging.system"], "memory");
        assert_eq!(p.attrs["recipients"], "2");
        assert!(p.attrs["messaging.message.seq"].parse::<u64>().is_ok());
        let fan_out = p
            .events
            .iter()
            .find(|e| e.0 == "fan-out")
            .expect("fan-out event");
        assert_eq!(fan_out.1["recipients"], "2");
    }
    assert_eq!(named("broker.publish").count(), 3);

    // Logs are JSON lines; one written inside an upgrade span carries its ids.
    let upgrade_ids: Vec<(String, String)> = named("ws.upgrade")
        .map(|s| (hex(&s.trace), hex(&s.id)))
        .collect();
    let refused: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "upgrade refused")
        .collect();
    assert_eq!(refused.len(), 2, "{logs}");
    for line in refused {
        let ids = (
            line["trace_id"].as_str().unwrap_or_default().to_string(),
            line["span_id"].as_str().unwrap_or_default().to_string(),
        );
        assert!(upgrade_ids.contains(&ids), "{line} not in {upgrade_ids:?}");
    }
}

/// A message published on replica A and fanned out on replica B is one
/// trace: B's `broker.receive` continues A's `broker.publish` through the
/// traceparent carried in the Redis envelope.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_is_one_trace_across_two_replicas_over_redis() {
    let (collector_port, received) = collector().await;
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let redis = RedisServer::start();
    let replica = |service: &str| {
        let mut env = redis.env();
        env.extend([
            ("CHAT_TOKEN", TOKEN.to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_SERVICE_NAME", service.to_string()),
            ("CHAT__TELEMETRY__SAMPLE_RATIO", "1.0".to_string()),
        ]);
        let vars = common::redis::as_vars(&env);
        Process::start(&vars, &[])
    };
    let (a, b) = (replica("replica-a"), replica("replica-b"));
    wait_readyz(a.admin_addr(), 200, Duration::from_secs(10)).await;
    wait_readyz(b.admin_addr(), 200, Duration::from_secs(10)).await;
    let url = |p: &Process, name: &str| {
        format!(
            "ws://127.0.0.1:{}/chat?token={TOKEN}&room={ROOM}&name={name}",
            p.port
        )
    };
    let mut ana = connect(&url(&a, "ana"), Some(ORIGIN))
        .await
        .expect("ana on A");
    let mut bob = connect(&url(&b, "bob"), Some(ORIGIN))
        .await
        .expect("bob on B");
    ana.next_of("history").await;
    bob.next_of("history").await;
    for i in 0..3 {
        ana.say(&format!("{TEXT}-{i}")).await;
        assert_eq!(bob.next_message().await["text"], format!("{TEXT}-{i}"));
    }
    ana.bye().await;
    bob.bye().await;
    for p in [&a, &b] {
        p.signal("TERM");
    }
    let exits =
        tokio::task::spawn_blocking(move || [a, b].map(|p| p.wait_exit(Duration::from_secs(20))))
            .await
            .expect("wait");
    for (code, logs) in &exits {
        assert_eq!(*code, Some(0), "{logs}");
    }
    let bodies = received.0.lock().unwrap().clone();
    assert_not_exported(&bodies, &[TOKEN, ROOM, TEXT]);

    let (spans, _) = decode(&bodies);
    let on = |service: &'static str, name: &'static str| {
        spans
            .iter()
            .filter(move |s| s.service == service && s.name == name)
    };
    let messages: Vec<&Span> = on("replica-a", "chat.message").collect();
    assert_eq!(messages.len(), 3, "{spans:#?}");
    for m in messages {
        let publish: Vec<&Span> = on("replica-a", "broker.publish")
            .filter(|p| p.parent == m.id)
            .collect();
        assert_eq!(publish.len(), 1, "one publish under {m:?}");
        let p = publish[0];
        assert_eq!(p.attrs["messaging.system"], "redis");
        let receive: Vec<&Span> = on("replica-b", "broker.receive")
            .filter(|r| r.trace == m.trace)
            .collect();
        assert_eq!(receive.len(), 1, "B continues {m:?}: {spans:#?}");
        let r = receive[0];
        assert_eq!(r.parent, p.id, "B's receive is a child of A's publish");
        assert_eq!(r.attrs["messaging.system"], "redis");
        assert_eq!(
            r.attrs["messaging.message.seq"],
            p.attrs["messaging.message.seq"]
        );
        assert_eq!(r.attrs["recipients"], "1", "bob, B's only member");
    }
}

#[test]
fn no_spans_and_no_trace_ids_when_traces_are_off() {
    // An endpoint is configured but traces are switched off in the settings.
    let server = Process::start(
        &[
            ("CHAT_TOKEN", TOKEN),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
            ("CHAT__TELEMETRY__TRACES", "off"),
            ("RUST_LOG", "info,ws_chat=debug"),
        ],
        &[],
    );
    let port = server.port;
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let status = rt.block_on(async {
        let url = format!("ws://127.0.0.1:{port}/chat?token={BAD_TOKEN}");
        connect(&url, Some(ORIGIN)).await.err()
    });
    assert_eq!(status, Some(401));
    server.signal("TERM");
    let (code, logs) = server.wait_exit(Duration::from_secs(20));
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("upgrade refused"), "{logs}");
    assert!(!logs.contains("trace_id"), "{logs}");
    assert!(!logs.contains(BAD_TOKEN) && !logs.contains(TOKEN), "{logs}");
}
