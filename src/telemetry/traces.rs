//! Trace export: when spans are on, how roots are sampled, the OTLP/HTTP
//! pipeline, and the W3C `traceparent` carried between replicas.
//!
//! Sampling of new traces happens *before* a `tracing` span exists: a root
//! span (`ws.upgrade`, `chat.message`) is created only when [`sample_root`]
//! says so, so an unsampled message costs one atomic load and one xorshift
//! step, not a span. The SDK sampler is then `ParentBased(AlwaysOn)`: what we
//! created is recorded, children follow their parent, and a trace continued
//! from another replica keeps that replica's decision.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{TelemetrySettings, TracesMode};

/// Target of every span and step event meant for traces only (never logged).
pub const TARGET: &str = "ws_chat::otel";

/// `P(root is sampled) * 2^64`, saturating; 0 when traces are off.
static ROOT_THRESHOLD: AtomicU64 = AtomicU64::new(0);
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// How traces are exported, resolved from settings and `OTEL_*` variables.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// `service.name` on every span.
    pub service_name: String,
    /// Share of new traces that are recorded.
    pub root_ratio: f64,
}

/// Why trace export could not start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("OTEL_TRACES_SAMPLER_ARG `{0}` is not a number between 0 and 1")]
    SamplerArg(String),
    #[error("OTEL_TRACES_SAMPLER `{0}` is not supported (use always_on, always_off, traceidratio or their parentbased_ forms)")]
    Sampler(String),
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL `{0}` is not supported; ws-chat exports http/protobuf")]
    Protocol(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
}

impl TraceConfig {
    /// `None` when traces are off; else the sampler and service name.
    pub fn resolve(
        settings: &TelemetrySettings,
        env: &HashMap<String, String>,
    ) -> Result<Option<TraceConfig>, TraceError> {
        let var = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        let endpoint = var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
            || var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some();
        let on = match settings.traces {
            TracesMode::Off => false,
            TracesMode::Otlp => !disabled,
            TracesMode::Auto => endpoint && !disabled,
        };
        if !on {
            return Ok(None);
        }
        for key in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            match var(key) {
                Some("http/protobuf") => break,
                Some(other) => return Err(TraceError::Protocol(other.to_string())),
                None => {}
            }
        }
        let arg = || match var("OTEL_TRACES_SAMPLER_ARG") {
            None => Ok(1.0),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| TraceError::SamplerArg(text.to_string())),
        };
        let root_ratio = match var("OTEL_TRACES_SAMPLER") {
            None => settings.sample_ratio,
            Some("always_on" | "parentbased_always_on") => 1.0,
            Some("always_off" | "parentbased_always_off") => 0.0,
            Some("traceidratio" | "parentbased_traceidratio") => arg()?,
            Some(other) => return Err(TraceError::Sampler(other.to_string())),
        };
        Ok(Some(TraceConfig {
            service_name: var("OTEL_SERVICE_NAME").unwrap_or("ws-chat").to_string(),
            root_ratio,
        }))
    }
}

/// Builds the OTLP/HTTP pipeline (the exporter reads the standard
/// `OTEL_EXPORTER_OTLP_*` variables itself) and returns its tracer.
pub(super) fn start(config: &TraceConfig) -> Result<opentelemetry_sdk::trace::Tracer, TraceError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| TraceError::Exporter(e.to_string()))?;
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)))
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("ws-chat");
    let _ = PROVIDER.set(provider);
    ROOT_THRESHOLD.store(threshold(config.root_ratio), Ordering::Relaxed);
    Ok(tracer)
}

fn threshold(ratio: f64) -> u64 {
    if ratio >= 1.0 {
        u64::MAX
    } else if ratio > 0.0 {
        // 2^64 * ratio; the cast saturates.
        (ratio * 18_446_744_073_709_551_616.0) as u64
    } else {
        0
    }
}

/// Sends what is buffered and stops the exporter (from `main`, at exit).
pub fn shutdown() {
    ROOT_THRESHOLD.store(0, Ordering::Relaxed);
    if let Some(provider) = PROVIDER.get() {
        if let Err(e) = provider.force_flush() {
            eprintln!("ws-chat: flushing spans failed: {e}");
        }
        if let Err(e) = provider.shutdown() {
            eprintln!("ws-chat: stopping the span exporter failed: {e}");
        }
    }
}

/// Whether spans are exported at all.
pub fn enabled() -> bool {
    PROVIDER.get().is_some()
}

/// Decides whether a new root span is recorded. Cheap: one atomic load when
/// off, one xorshift step when on.
#[inline]
pub fn sample_root() -> bool {
    match ROOT_THRESHOLD.load(Ordering::Relaxed) {
        0 => false,
        u64::MAX => true,
        t => next_random() < t,
    }
}

fn next_random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(RandomState::new().hash_one(0u64) | 1);
    }
    STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// The current span's W3C `traceparent`, for a broker envelope's `trace`
/// field; `None` when no recorded span is current.
pub fn current_traceparent() -> Option<String> {
    if !enabled() {
        return None;
    }
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(1);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `span` a child of the remote span in `traceparent` (the receiving
/// side of a broker envelope). Malformed input is ignored.
pub fn set_parent_from(traceparent: &str, span: &tracing::Span) {
    if span.is_none() {
        return;
    }
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Whether a `traceparent` carries the sampled flag (`00-<32>-<16>-<flags>`).
pub fn traceparent_sampled(traceparent: &str) -> bool {
    let t = traceparent.as_bytes();
    t.len() == 55
        && t[52] == b'-'
        && std::str::from_utf8(&t[53..55])
            .ok()
            .and_then(|f| u8::from_str_radix(f, 16).ok())
            .is_some_and(|f| f & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogFormat;

    fn settings(traces: TracesMode) -> TelemetrySettings {
        TelemetrySettings {
            log_format: LogFormat::Json,
            log_level: "info".into(),
            traces,
            sample_ratio: 0.01,
        }
    }

    fn env(vars: &[(&str, &str)]) -> HashMap<String, String> {
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn traces_are_off_unless_configured_or_an_endpoint_is_set() {
        let resolve = |mode, vars: &[(&str, &str)]| {
            TraceConfig::resolve(&settings(mode), &env(vars)).expect("resolves")
        };
        assert_eq!(resolve(TracesMode::Auto, &[]), None);
        let on = resolve(
            TracesMode::Auto,
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
        )
        .expect("on");
        assert_eq!((on.service_name.as_str(), on.root_ratio), ("ws-chat", 0.01));
        assert!(resolve(TracesMode::Otlp, &[]).is_some());
        let endpoint = (
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces",
        );
        assert_eq!(resolve(TracesMode::Off, &[endpoint]), None);
        assert_eq!(
            resolve(TracesMode::Otlp, &[("OTEL_SDK_DISABLED", "true")]),
            None
        );
        assert_eq!(
            resolve(
                TracesMode::Auto,
                &[endpoint, ("OTEL_TRACES_EXPORTER", "none")]
            ),
            None
        );
    }

    #[test]
    fn otel_sampler_variables_override_the_ratio() {
        let ratio = |vars: &[(&str, &str)]| {
            TraceConfig::resolve(&settings(TracesMode::Otlp), &env(vars))
                .map(|c| c.map(|c| c.root_ratio))
        };
        assert_eq!(ratio(&[]).ok().flatten(), Some(0.01));
        assert_eq!(
            ratio(&[("OTEL_TRACES_SAMPLER", "always_on")])
                .ok()
                .flatten(),
            Some(1.0)
        );
        assert_eq!(
            ratio(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")])
                .ok()
                .flatten(),
            Some(0.0)
        );
        assert_eq!(
            ratio(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.25")
            ])
            .ok()
            .flatten(),
            Some(0.25)
        );
        assert!(ratio(&[
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "2")
        ])
        .is_err());
        assert!(ratio(&[("OTEL_TRACES_SAMPLER", "xray")]).is_err());
        assert!(ratio(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")]).is_err());
    }

    #[test]
    fn thresholds_and_traceparent_flags() {
        assert_eq!(threshold(0.0), 0);
        assert_eq!(threshold(1.0), u64::MAX);
        assert_eq!(threshold(0.5), 1 << 63);
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert!(traceparent_sampled(tp));
        assert!(!traceparent_sampled(&tp.replace("-01", "-00")));
        assert!(!traceparent_sampled("garbage"));
    }
}
