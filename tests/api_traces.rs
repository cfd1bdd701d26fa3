//! A server API publish in a trace: the caller's W3C `traceparent` is the
//! parent of `api.request`, and the message's `broker.publish` is its child,
//! exported by the real binary to a collector run by the test. The API key
//! and the message text are in no exported span.

mod common;

use std::time::Duration;

use common::api::{call_with, config, ALL};
use common::otlp::{assert_not_exported, collector, decode, hex};
use common::Process;

const TEXT: &str = "deploy-Qw7Zt";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_publish_continues_the_callers_trace() {
    let (collector_port, received) = collector().await;
    let endpoint = format!("http://127.0.0.1:{collector_port}");
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path());
    let server = Process::start(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            // No local sampling: only the caller's sampled flag records it.
            ("CHAT__TELEMETRY__SAMPLE_RATIO", "0.0"),
        ],
        &["--config", &file],
    );
    let traceparent = format!("00-{TRACE}-{CALLER_SPAN}-01");
    let body = serde_json::json!({ "text": TEXT }).to_string();
    let a = call_with(
        server.admin_addr(),
        "POST",
        "/api/v1/rooms/ops/messages",
        Some(ALL),
        Some(&body),
        &[("traceparent", &traceparent)],
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);

    server.signal("TERM");
    let (code, logs) =
        tokio::task::spawn_blocking(move || server.wait_exit(Duration::from_secs(20)))
            .await
            .expect("wait");
    assert_eq!(code, Some(0), "{logs}");
    let bodies = received.0.lock().unwrap().clone();
    let (spans, _) = decode(&bodies);
    let request = (spans.iter())
        .find(|s| s.name == "api.request")
        .unwrap_or_else(|| panic!("no api.request span in {spans:?}"));
    assert_eq!(hex(&request.trace), TRACE);
    assert_eq!(hex(&request.parent), CALLER_SPAN);
    assert_eq!(request.attrs["api.endpoint"], "publish");
    assert_eq!(request.attrs["http.response.status_code"], "201");
    let publish = (spans.iter())
        .find(|s| s.name == "broker.publish")
        .unwrap_or_else(|| panic!("no broker.publish span in {spans:?}"));
    assert_eq!(
        publish.parent, request.id,
        "broker.publish is the request's child"
    );
    assert_eq!(publish.attrs["messaging.message.seq"], "1");
    assert_not_exported(&bodies, &[ALL, TEXT]);
}
