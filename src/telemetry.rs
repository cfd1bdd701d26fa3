//! Logs and traces. Logs: JSON lines on stdout by default, text on a
//! terminal; the level comes from `RUST_LOG`, else `telemetry.log_level`.
//! Traces: OpenTelemetry over OTLP/HTTP, off unless configured (see
//! `config/default.toml`); span constructors live in [`spans`].
//!
//! Only `main` initialises telemetry, once, and calls [`shutdown`] at exit.

use std::collections::HashMap;
use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetrySettings};

pub mod audit;
mod logs;
pub mod spans;
mod traces;

pub use traces::{
    current_traceparent, sample_root, set_parent_from, shutdown, traceparent_sampled, TraceConfig,
    TraceError, TARGET,
};

/// Installs the global subscriber: the log layer, and the trace layer when
/// traces are on. `env` supplies the `OTEL_*` variables (the process
/// environment in `main`). Returns what tracing was set up as, for the
/// start-up log line, or why it could not be.
pub fn init(
    settings: &TelemetrySettings,
    env: &HashMap<String, String>,
) -> Result<Option<TraceConfig>, TraceError> {
    let trace_config = TraceConfig::resolve(settings, env)?;
    let otel = match &trace_config {
        Some(config) => {
            let tracer = traces::start(config)?;
            // Our spans and step events, and warnings raised inside them.
            let only_ours = Targets::new()
                .with_target("ws_chat", Level::WARN)
                .with_target(TARGET, LevelFilter::TRACE);
            Some(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_location(false)
                    .with_threads(false)
                    .with_target(false)
                    .with_level(false)
                    .with_tracked_inactivity(false)
                    .with_filter(only_ours),
            )
        }
        None => None,
    };
    let result = tracing_subscriber::registry()
        .with(otel)
        .with(log_layer(settings))
        .try_init();
    if let Err(e) = result {
        eprintln!("ws-chat: logging already initialised: {e}");
    }
    Ok(trace_config)
}

fn log_layer<S>(settings: &TelemetrySettings) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let level = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Spans and step events meant for traces are never log lines.
    let filter = level.and(
        Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target(TARGET, LevelFilter::OFF),
    );
    let json = match settings.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    if json {
        let inner = tracing_subscriber::fmt::format()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false);
        tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(logs::WithTraceIds { inner, json })
            .with_filter(filter)
            .boxed()
    } else {
        let inner = tracing_subscriber::fmt::format();
        tracing_subscriber::fmt::layer()
            .event_format(logs::WithTraceIds { inner, json })
            .with_filter(filter)
            .boxed()
    }
}
