//! loadgen: a compiled WebSocket load generator for ws-chat's benchmark
//! (tokio-tungstenite clients spread over loopback source addresses).

mod api;
mod args;
mod conn;
mod events;
mod http;
mod modes;
mod rooms;
mod stats;
mod sync;

use std::process::ExitCode;

use serde_json::Value;

fn print_summary(report: &Value) {
    let Some(map) = report.as_object() else {
        return;
    };
    for (key, value) in map {
        match value {
            Value::Object(inner) if inner.is_empty() => {}
            Value::Object(inner) => {
                let parts: Vec<String> = inner.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{key:>28}: {}", parts.join(" "));
            }
            Value::Null => {}
            other => println!("{key:>28}: {other}"),
        }
    }
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    // 10k+ sockets: raise the soft limit on open files as far as allowed.
    match rlimit::increase_nofile_limit(1 << 20) {
        Ok(n) if n < 16_384 => eprintln!("warning: only {n} open files allowed"),
        Ok(_) => {}
        Err(e) => eprintln!("warning: could not raise RLIMIT_NOFILE: {e}"),
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("building the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json_path = args.json.clone();
    let report = match runtime.block_on(modes::run(args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    print_summary(&report);
    if let Some(path) = json_path {
        let text = match serde_json::to_string_pretty(&report) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("serializing the report: {e}");
                return ExitCode::FAILURE;
            }
        };
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    // Nothing connected is a failed run, not a report of zeros.
    if report["connected"].as_u64().unwrap_or(0) == 0 {
        eprintln!("loadgen: no connection succeeded");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
