//! The W3C trace context a broker envelope carries: `current_traceparent`
//! on the publishing side, `receive_span`/`set_parent_from` on the other.
//! Its own test binary, because it installs the process-wide subscriber.

use std::collections::HashMap;

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use ws_chat::telemetry::{self, spans};
use ws_chat::Sources;

#[test]
fn traceparent_goes_out_and_continues_the_trace() {
    assert_eq!(telemetry::current_traceparent(), None, "off before init");
    let settings = ws_chat::load_settings(&Sources::from_env([
        ("CHAT__TELEMETRY__TRACES", "otlp"),
        ("CHAT__TELEMETRY__SAMPLE_RATIO", "1"),
    ]))
    .expect("settings");
    let on = telemetry::init(&settings.telemetry, &HashMap::new()).expect("init");
    assert_eq!(on.map(|c| c.root_ratio), Some(1.0));

    let message = spans::message_span(5);
    let tp = message
        .in_scope(telemetry::current_traceparent)
        .expect("a traceparent inside a recorded span");
    assert!(telemetry::traceparent_sampled(&tp), "{tp}");
    let trace_id = message.context().span().span_context().trace_id();
    assert_eq!(tp.split('-').nth(1), Some(trace_id.to_string().as_str()));
    assert_eq!(telemetry::current_traceparent(), None, "none outside spans");

    // The receiving replica continues the same trace under the sender's span.
    let received = spans::receive_span("redis", Some(&tp));
    assert!(!received.is_none());
    let cx = received.context();
    assert_eq!(cx.span().span_context().trace_id(), trace_id);
    spans::fan_out(&received, 7, 3);

    // An unsampled or missing parent starts nothing.
    let unsampled = format!("{}00", &tp[..tp.len() - 2]);
    assert!(spans::receive_span("redis", Some(&unsampled)).is_none());
    assert!(spans::receive_span("redis", None).is_none());
    assert!(spans::receive_span("redis", Some("00-garbage")).is_none());
}
