//! The server API (docs/api.md) on one server with the memory broker, over
//! real HTTP and real WebSocket clients: publish (with idempotency), the
//! many-rooms publish, history, delete, members, rooms, kick, disconnect.
//! Refusals are in `api_errors.rs`.

mod common;

use common::api::{call, publish, server, ALL, PUBLISHER, READER};
use common::{connect, Client, TestServer, ORIGIN};
use serde_json::{json, Value};

/// Joins `room` with `token`, reading `system` and `history`; `v2` makes
/// it a version 2 connection (it sends `who` first).
async fn join(s: &TestServer, token: &str, room: &str, v2: bool) -> Client {
    let url = format!("ws://{}/chat?token={token}&room={room}&name=x", s.addr);
    let mut c = connect(&url, Some(ORIGIN)).await.expect("connect");
    c.next_of("system").await;
    c.next_of("history").await;
    if v2 {
        c.send_text(&json!({"type": "who", "room": room}).to_string())
            .await;
        c.next_of("members").await;
    }
    c
}

#[tokio::test]
async fn a_published_message_reaches_members_enters_history_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[]).await;
    let mut c = join(&s, "t-u1", "ops", false).await;
    let a = call(
        s.admin,
        "POST",
        "/api/v1/rooms/ops/messages",
        Some(ALL),
        Some(&publish(" build 1 green ")),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.json["seq"], 1);
    assert!(
        a.json["id"].is_string() && a.json["epoch"].is_string(),
        "{}",
        a.text
    );
    let m = c.next_message().await;
    assert_eq!(
        (&m["text"], &m["from"], &m["user"], &m["id"], &m["seq"]),
        (
            &json!("build 1 green"),
            &json!("build-bot"),
            &json!("svc:ci"),
            &a.json["id"],
            &json!(1)
        )
    );
    // Client messages and API messages share one seq.
    c.say("hi").await;
    assert_eq!(c.next_message().await["seq"], 2);

    let h = call(
        s.admin,
        "GET",
        "/api/v1/rooms/ops/messages?since=1",
        Some(READER),
        None,
    )
    .await;
    assert_eq!(h.status, 200, "{}", h.text);
    assert_eq!(h.json["epoch"], a.json["epoch"]);
    let texts: Vec<&Value> = h.json["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["text"])
        .collect();
    assert_eq!(texts, [&json!("hi")]);
    let all = call(
        s.admin,
        "GET",
        "/api/v1/rooms/ops/messages?limit=1",
        Some(READER),
        None,
    )
    .await;
    assert_eq!(all.json["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        all.json["messages"][0]["seq"], 2,
        "the newest, oldest first"
    );

    s.wait_for_metric(
        r#"wschat_api_requests_total{code="201",endpoint="publish"}"#,
        "one publish",
        |v| v == 1.0,
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn the_same_idempotency_key_answers_the_first_result_and_sends_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[]).await;
    let mut c = join(&s, "t-u1", "ops", false).await;
    let body = json!({ "text": "deploy 7", "idempotencyKey": "deploy-7" }).to_string();
    let path = "/api/v1/rooms/ops/messages";
    let first = call(s.admin, "POST", path, Some(ALL), Some(&body)).await;
    let again = call(s.admin, "POST", path, Some(ALL), Some(&body)).await;
    assert_eq!((first.status, again.status), (201, 200));
    assert_eq!(first.json, again.json);
    // `from` defaults to the key's name.
    assert_eq!(c.next_message().await["from"], "ops");
    // Another key's same idempotencyKey is its own.
    let other = call(s.admin, "POST", path, Some(PUBLISHER), Some(&body)).await;
    assert_eq!((other.status, &other.json["seq"]), (201, &json!(2)));
    let next = c.next_message().await;
    assert_eq!(
        (&next["seq"], &next["from"]),
        (&json!(2), &json!("bot")),
        "no second copy of seq 1"
    );
    assert_eq!(s.metric("wschat_api_idempotent_replays_total").await, 1.0);
    s.stop().await;
}

#[tokio::test]
async fn publishing_into_many_rooms_answers_per_room() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[]).await;
    let mut b = join(&s, "t-u2", "b", false).await;
    let body = json!({ "rooms": ["a", "b"], "text": "payment 42 settled" }).to_string();
    let r = call(s.admin, "POST", "/api/v1/publish", Some(ALL), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json["results"].as_array().unwrap();
    assert_eq!(
        (results[0]["room"].as_str(), results[1]["room"].as_str()),
        (Some("a"), Some("b"))
    );
    assert!(results.iter().all(|x| x["seq"] == 1 && x["id"].is_string()));
    assert_eq!(b.next_message().await["text"], "payment 42 settled");
    for bad in [
        json!({"rooms": [], "text": "x"}),
        json!({"rooms": ["a", "a"], "text": "x"}),
    ] {
        let r = call(
            s.admin,
            "POST",
            "/api/v1/publish",
            Some(ALL),
            Some(&bad.to_string()),
        )
        .await;
        assert_eq!((r.status, &r.json["error"]), (400, &json!("bad_rooms")));
    }
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_message_leaves_history_and_members_are_told() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[]).await;
    let mut c = join(&s, "t-u1", "ops", true).await;
    let a = call(
        s.admin,
        "POST",
        "/api/v1/rooms/ops/messages",
        Some(ALL),
        Some(&publish("oops")),
    )
    .await;
    c.next_message().await;
    let id = a.json["id"].as_str().unwrap();
    let path = format!("/api/v1/rooms/ops/messages/{id}");
    let reader = call(s.admin, "DELETE", &path, Some(READER), None).await;
    assert_eq!(
        (reader.status, &reader.json["error"]),
        (403, &json!("forbidden"))
    );
    let d = call(s.admin, "DELETE", &path, Some(ALL), None).await;
    assert_eq!((d.status, d.text.as_str()), (204, ""));
    let ev = c.next_of("deleted").await;
    assert_eq!((&ev["id"], &ev["seq"]), (&json!(id), &json!(1)));
    let again = call(s.admin, "DELETE", &path, Some(ALL), None).await;
    assert_eq!(
        (again.status, &again.json["error"]),
        (404, &json!("not_found"))
    );
    let h = call(
        s.admin,
        "GET",
        "/api/v1/rooms/ops/messages",
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(h.json["messages"], json!([]));
    s.stop().await;
}

#[tokio::test]
async fn members_and_rooms_list_who_is_here() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[]).await;
    let _a = join(&s, "t-u1", "ops", false).await;
    let _a2 = join(&s, "t-u1", "ops", false).await;
    let _b = join(&s, "t-u2", "desk", false).await;
    let m = call(
        s.admin,
        "GET",
        "/api/v1/rooms/ops/members",
        Some(READER),
        None,
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text);
    assert_eq!(
        m.json,
        json!({"online": 2, "members": [{"user": "u1", "name": "Ana", "connections": 2}], "truncated": false})
    );
    let page = call(s.admin, "GET", "/api/v1/rooms?limit=1", Some(READER), None).await;
    assert_eq!(
        page.json,
        json!({"rooms": [{"room": "desk", "online": 1}], "next": "desk"})
    );
    let rest = call(
        s.admin,
        "GET",
        "/api/v1/rooms?limit=1&cursor=desk",
        Some(READER),
        None,
    )
    .await;
    assert_eq!(
        rest.json,
        json!({"rooms": [{"room": "ops", "online": 2}], "next": null})
    );
    s.stop().await;
}

#[tokio::test]
async fn kick_makes_the_user_leave_and_disconnect_closes_with_4003() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[]).await;
    let mut v2 = join(&s, "t-u1", "ops", true).await;
    let mut v1 = join(&s, "t-u1", "ops", false).await;
    let mut other = join(&s, "t-u2", "ops", true).await;
    let k = call(
        s.admin,
        "POST",
        "/api/v1/rooms/ops/kick",
        Some(ALL),
        Some(r#"{"user":"u1"}"#),
    )
    .await;
    assert_eq!((k.status, &k.json), (200, &json!({"removed": 2})));
    let left = v2.next_of("left").await;
    assert_eq!(
        (&left["room"], &left["reason"]),
        (&json!("ops"), &json!("kicked"))
    );
    // A version 1 connection knows no `left`: it is closed.
    assert_eq!(v1.closed().await, Some(4003));

    let reason = "é".repeat(120);
    let body = json!({ "reason": reason }).to_string();
    let d = call(
        s.admin,
        "POST",
        "/api/v1/users/u2/disconnect",
        Some(ALL),
        Some(&body),
    )
    .await;
    assert_eq!((d.status, &d.json), (200, &json!({"disconnected": 1})));
    let (code, text) = other.close_frame().await.expect("a close frame");
    assert_eq!(code, 4003);
    assert!(
        text.len() <= 123 && reason.starts_with(&text) && !text.is_empty(),
        "{text}"
    );
    let none = call(
        s.admin,
        "POST",
        "/api/v1/users/nobody/disconnect",
        Some(ALL),
        None,
    )
    .await;
    assert_eq!(
        (none.status, &none.json),
        (200, &json!({"disconnected": 0}))
    );
    s.stop().await;
}
