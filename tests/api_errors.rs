//! Every refusal of the server API with its documented status, code and
//! headers, never echoing what was sent; and the API off without keys.

mod common;

use common::api::{call, call_with, publish, server, ALL, READER};
use common::TestServer;
use serde_json::json;

/// method, path, key, body, status, code.
type Case<'a> = (
    &'a str,
    String,
    Option<&'a str>,
    Option<String>,
    u16,
    &'a str,
);

#[tokio::test]
async fn every_refusal_has_its_status_and_code_and_never_echoes_input() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(dir.path(), &[("CHAT__API__MAX_BODY_BYTES", "1024")]).await;
    let marker = "ZZ-MARKER-ZZ";
    let msgs = "/api/v1/rooms/ops/messages";
    let cases: Vec<Case> = vec![
        (
            "POST",
            msgs.into(),
            None,
            Some(publish("x")),
            401,
            "unauthorized",
        ),
        (
            "POST",
            msgs.into(),
            Some(marker),
            Some(publish("x")),
            401,
            "unauthorized",
        ),
        (
            "POST",
            msgs.into(),
            Some(READER),
            Some(publish("x")),
            403,
            "forbidden",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(format!("{{\"text\": {marker}")),
            400,
            "bad_json",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": 5}).to_string()),
            400,
            "bad_json",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": "x", marker: 1}).to_string()),
            400,
            "bad_json",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": "  "}).to_string()),
            400,
            "empty",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": "x".repeat(501)}).to_string()),
            400,
            "text_too_long",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": "x", "user": ""}).to_string()),
            400,
            "bad_user",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": "x", "idempotencyKey": "k".repeat(129)}).to_string()),
            400,
            "bad_idempotency_key",
        ),
        (
            "POST",
            format!("/api/v1/rooms/{marker}!/messages"),
            Some(ALL),
            Some(publish("x")),
            400,
            "bad_room",
        ),
        (
            "POST",
            msgs.into(),
            Some(ALL),
            Some(json!({"text": "y".repeat(2000)}).to_string()),
            413,
            "body_too_large",
        ),
        (
            "GET",
            format!("{msgs}?since=-1"),
            Some(ALL),
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            format!("{msgs}?{marker}=1"),
            Some(ALL),
            None,
            400,
            "bad_query",
        ),
        (
            "GET",
            "/api/v1/rooms?limit=0".into(),
            Some(ALL),
            None,
            400,
            "bad_query",
        ),
        (
            "PUT",
            msgs.into(),
            Some(ALL),
            None,
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            format!("/api/v1/{marker}"),
            Some(ALL),
            None,
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/rooms/ops/kick".into(),
            Some(ALL),
            Some("{}".into()),
            400,
            "bad_json",
        ),
        (
            "POST",
            "/api/v1/users/u1/disconnect".into(),
            Some(ALL),
            Some(json!({"reason": "r".repeat(121)}).to_string()),
            400,
            "bad_reason",
        ),
    ];
    for (method, path, key, body, status, code) in cases {
        let a = call(s.admin, method, &path, key, body.as_deref()).await;
        assert_eq!(
            (a.status, a.json["error"].as_str()),
            (status, Some(code)),
            "{method} {path}: {}",
            a.text
        );
        assert!(a.json["message"].is_string(), "{}", a.text);
        assert!(!a.text.contains(marker), "echoed input: {}", a.text);
        assert_eq!(a.headers["content-type"], "application/json");
        if status == 401 {
            assert_eq!(a.headers["www-authenticate"], "Bearer");
        }
        if status == 405 {
            assert_eq!(a.headers["allow"], "GET, POST");
        }
    }
    let typed = call_with(
        s.admin,
        "POST",
        msgs,
        Some(ALL),
        Some("text=x"),
        &[("content-type", "text/plain")],
    )
    .await;
    assert_eq!(
        (typed.status, typed.json["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    // The probes and metrics are where they were.
    assert_eq!(s.admin_get("/healthz").await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn without_keys_the_api_is_off() {
    let s = TestServer::start(&[]).await;
    let a = call(s.admin, "GET", "/api/v1/rooms", Some(ALL), None).await;
    assert_eq!((a.status, a.json["error"].as_str()), (404, Some("api_off")));
    s.stop().await;
}
