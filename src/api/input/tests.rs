use super::*;

#[test]
fn a_message_body_is_cleaned_and_checked() {
    let m = publish_body(
        br#"{"text":" hi\u0007 ","from":" Bot ","idempotencyKey":"k-1"}"#,
        500,
    )
    .expect("valid");
    assert_eq!(m.text, "hi");
    assert_eq!(m.from.as_deref(), Some("Bot"));
    assert_eq!(m.idempotency_key.as_deref(), Some("k-1"));
    for (body, e) in [
        (&br#"{"text":"x","extra":1}"#[..], ApiError::BadJson),
        (br#"{"text":["x"]}"#, ApiError::BadJson),
        (br#"{}"#, ApiError::BadJson),
        (b"\xff", ApiError::BadJson),
        (br#"{"text":" "}"#, ApiError::Empty),
        (br#"{"text":"xx"}"#, ApiError::TextTooLong),
        (br#"{"text":"x","user":""}"#, ApiError::BadUser),
        (
            br#"{"text":"x","idempotencyKey":"a\u0001"}"#,
            ApiError::BadIdempotencyKey,
        ),
    ] {
        assert_eq!(
            publish_body(body, 1),
            Err(e),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn queries_are_strict() {
    assert_eq!(
        history_query(Some("since=3&epoch=e&limit=10")),
        Ok(HistoryQuery {
            since: Some(3),
            epoch: Some("e".into()),
            limit: Some(10)
        })
    );
    assert_eq!(history_query(None), Ok(HistoryQuery::default()));
    for bad in [
        "since=x",
        "limit=0",
        "limit=1001",
        "since=1&since=2",
        "other=1",
        "since=%zz",
    ] {
        assert_eq!(history_query(Some(bad)), Err(ApiError::BadQuery), "{bad}");
    }
    assert_eq!(
        rooms_query(Some("cursor=a-b")).map(|q| q.cursor),
        Ok(Some("a-b".into()))
    );
    assert_eq!(rooms_query(Some("cursor=a%20b")), Err(ApiError::BadQuery));
}

#[test]
fn disconnect_bodies_may_be_empty() {
    assert_eq!(disconnect_body(b""), Ok(String::new()));
    assert_eq!(disconnect_body(b"{}"), Ok(String::new()));
    assert_eq!(disconnect_body(br#"{"reason":" bye "}"#), Ok("bye".into()));
    assert_eq!(disconnect_body(b"[]"), Err(ApiError::BadJson));
}
