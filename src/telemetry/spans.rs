//! The spans ws-chat records. Each constructor returns `Span::none()` unless
//! a trace is being recorded, so callers pay an atomic load when tracing is
//! off and for unsampled work. No span carries a token, a query string, a
//! room name or message text.

use tracing::field::Empty;
use tracing::Span;

use super::traces::{enabled, sample_root, set_parent_from, traceparent_sampled};
use super::TARGET;

/// `ws.upgrade`: one per upgrade request, a new trace (when sampled).
/// Fields recorded by [`upgrade_outcome`]: `outcome`, `reason`, `status`.
#[inline]
pub fn upgrade_span() -> Span {
    if !sample_root() {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, parent: None, "ws.upgrade",
        outcome = Empty, reason = Empty, status = Empty)
}

/// Records the gate's decision on a `ws.upgrade` span.
pub fn upgrade_outcome(span: &Span, accepted: bool, reason: Option<&'static str>, status: u16) {
    if span.is_none() {
        return;
    }
    span.record("outcome", if accepted { "accepted" } else { "rejected" });
    span.record("status", status);
    if let Some(reason) = reason {
        span.record("reason", reason);
    }
}

/// `chat.message`: one per client text message, a new trace (when
/// sampled). Its steps are events ([`step`]); the publish is a child span.
#[inline]
pub fn message_span(bytes: usize) -> Span {
    if !sample_root() {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, parent: None, "chat.message",
        "messaging.message.body.size" = bytes, outcome = Empty, reason = Empty)
}

/// An event named `name` on `span` (a step such as `limit` or `validate`).
#[inline]
pub fn step(span: &Span, name: &'static str) {
    if !span.is_none() {
        tracing::info!(target: TARGET, parent: span, message = name);
    }
}

/// Ends a `chat.message` span's story: `accepted`, or `rejected` with the
/// error code sent to the client.
#[inline]
pub fn message_outcome(span: &Span, reason: Option<&'static str>) {
    if span.is_none() {
        return;
    }
    match reason {
        None => span.record("outcome", "accepted"),
        Some(code) => span.record("outcome", "rejected").record("reason", code),
    };
}

/// `broker.publish`, a child of the current span when a recorded trace is
/// current. `system` is `memory` or `redis`.
#[inline]
pub fn publish_span(system: &'static str) -> Span {
    // `enabled`, not `sampling`: an API request may carry a caller's sampled
    // trace while this process samples nothing itself.
    if !enabled() {
        return Span::none();
    }
    let parent = Span::current();
    if parent.is_none() {
        return Span::none();
    }
    tracing::info_span!(target: TARGET, parent: &parent, "broker.publish",
        "messaging.system" = system, "messaging.operation.type" = "publish",
        "messaging.message.seq" = Empty, recipients = Empty)
}

/// `broker.receive` for a message that came from another replica with the
/// publisher's `traceparent`: continues that trace when it was sampled.
/// For the Redis broker: create it when an envelope arrives, deliver inside
/// it, then call [`fan_out`] with the recipient count.
pub fn receive_span(system: &'static str, traceparent: Option<&str>) -> Span {
    let Some(tp) = traceparent.filter(|tp| enabled() && traceparent_sampled(tp)) else {
        return Span::none();
    };
    let span = tracing::info_span!(target: TARGET, parent: None, "broker.receive",
        "messaging.system" = system, "messaging.operation.type" = "receive",
        "messaging.message.seq" = Empty, recipients = Empty);
    set_parent_from(tp, &span);
    span
}

/// Records a delivery on `span` (a publish or receive span): the room seq,
/// and a `fan-out` event with the local recipient count.
#[inline]
pub fn fan_out(span: &Span, seq: u64, recipients: usize) {
    if span.is_none() {
        return;
    }
    span.record("messaging.message.seq", seq);
    span.record("recipients", recipients);
    tracing::info!(target: TARGET, parent: span, recipients, message = "fan-out");
}

/// Records the seq the broker assigned on a `broker.publish` span: with
/// Redis the fan-out (and its [`fan_out`]) happens later, on `broker.receive`.
pub fn published(span: &Span, seq: u64) {
    if !span.is_none() {
        span.record("messaging.message.seq", seq);
    }
}

/// [`fan_out`] on the current span, for code running inside a publish.
#[inline]
pub fn fan_out_here(seq: u64, recipients: usize) {
    if enabled() {
        fan_out(&Span::current(), seq, recipients);
    }
}

/// `api.request`: one per server API request. It continues the caller's
/// trace when the request's W3C `traceparent` is sampled, else starts one
/// when sampled here; a publish's `broker.publish` is its child.
pub fn api_span(endpoint: &'static str, traceparent: Option<&str>) -> Span {
    let remote = traceparent.filter(|tp| enabled() && traceparent_sampled(tp));
    if remote.is_none() && !sample_root() {
        return Span::none();
    }
    let span = tracing::info_span!(target: TARGET, parent: None, "api.request",
        "api.endpoint" = endpoint, "http.response.status_code" = Empty);
    if let Some(tp) = remote {
        set_parent_from(tp, &span);
    }
    span
}

/// Records an `api.request`'s HTTP status.
pub fn api_outcome(span: &Span, status: u16) {
    if !span.is_none() {
        span.record("http.response.status_code", status);
    }
}
