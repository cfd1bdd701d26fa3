//! The tracing calls of one message's path (session → broker → fan-out),
//! in a loop, with telemetry set up as the real binary does: prints the
//! process CPU (exporter thread included, after the final flush) per message.
//!
//! `trace_cost off|0|0.01|1 [MESSAGES]`; spans go to `OTEL_EXPORTER_OTLP_ENDPOINT`.
//! Run by `scripts/trace-cost.py --micro`.

use std::collections::HashMap;

use tracing::Instrument;
use ws_chat::telemetry::{self, spans};
use ws_chat::Sources;

/// Process CPU seconds (all threads) from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<f64> = after
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of stat; 12 and 13 after the name.
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

async fn one_message(seq: u64) {
    let span = spans::message_span(48);
    spans::step(&span, "limit");
    spans::step(&span, "validate");
    async {
        let publish = spans::publish_span("memory");
        async { spans::fan_out_here(seq, 5) }
            .instrument(publish)
            .await
    }
    .instrument(span.clone())
    .await;
    spans::message_outcome(&span, None);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("off");
    let messages: u64 = args
        .get(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000_000);
    let mut vars = vec![("CHAT__TELEMETRY__LOG_FORMAT", "json".to_string())];
    match mode {
        "off" => vars.push(("CHAT__TELEMETRY__TRACES", "off".into())),
        ratio => {
            vars.push(("CHAT__TELEMETRY__TRACES", "otlp".into()));
            vars.push(("CHAT__TELEMETRY__SAMPLE_RATIO", ratio.into()));
        }
    }
    let settings = match ws_chat::load_settings(&Sources::from_env(vars)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let env: HashMap<String, String> = std::env::vars().collect();
    if let Err(e) = telemetry::init(&settings.telemetry, &env) {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let start = cpu_seconds();
    rt.block_on(async {
        for seq in 0..messages {
            one_message(seq).await;
        }
    });
    telemetry::shutdown();
    let used = cpu_seconds() - start;
    println!(
        "{mode} {messages} {:.1}",
        used * 1e9 / messages as f64 // ns of CPU per message
    );
}
