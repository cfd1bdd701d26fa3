//! Log lines: the stock `tracing_subscriber` JSON (or text) line, plus
//! `trace_id` and `span_id` when it is written inside a recorded span.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps an event formatter; adds the current OpenTelemetry ids to a line.
pub struct WithTraceIds<F> {
    pub inner: F,
    /// JSON lines get two more members; text lines get ` trace_id=… span_id=…`.
    pub json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = current_ids() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        match (self.json, body.strip_suffix('}')) {
            (true, Some(open)) => writeln!(
                writer,
                r#"{open},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
            ),
            _ => writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}"),
        }
    }
}

/// The ids of the recorded span that is current on this thread, if any.
fn current_ids() -> Option<(String, String)> {
    if !super::traces::enabled() {
        return None;
    }
    let cx = opentelemetry::Context::current();
    let span = cx.span();
    let sc = span.span_context();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_absent_outside_spans() {
        assert_eq!(super::current_ids(), None);
    }
}
