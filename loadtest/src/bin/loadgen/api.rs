//! The api-publish scenario: watchers in one room on `--url`, callers
//! publishing into it through the server API on `--api-url`; calls per
//! second, statuses, call latency, and delivery latency from each call's
//! start to each watcher's receipt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::conn::{Role, Shared};
use crate::http::{self, ApiStats};
use crate::modes::{common, measure, merge, round, secs, spawn_all, stop_all, wait_joined, Window};
use crate::stats::Counters;

const ROOM: &str = "api-bench";

pub async fn api_publish(shared: Arc<Shared>) -> Result<Value, String> {
    let a = shared.args.clone();
    let roles = (0..a.watchers)
        .map(|index| Role {
            index,
            room: ROOM.into(),
            joins: Vec::new(),
            publish: None,
        })
        .collect();
    let t0 = Instant::now();
    let watchers = spawn_all(&shared, roles);
    let all_joined = wait_joined(&shared, a.watchers as u64, t0 + a.timeout).await;
    let connect_s = secs(t0.elapsed());
    let stats = Arc::new(ApiStats::new()?);
    let callers: Vec<_> = (0..a.callers)
        .map(|i| tokio::spawn(http::caller(shared.clone(), stats.clone(), i, ROOM.into())))
        .collect();

    let Window {
        cpu_from,
        cpu_until,
        rss_loaded,
    } = measure(&shared).await;
    // Calls in flight at the end finish (bounded), then stragglers arrive.
    let deadline = tokio::time::Instant::now() + a.late;
    for task in callers {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            abort.abort();
        }
    }
    tokio::time::sleep(a.late + Duration::from_millis(300)).await;
    stop_all(&shared, watchers).await;

    let c = &shared.counters;
    let measured = a.duration.as_secs_f64();
    let requests = Counters::get(&stats.requests_measured);
    let created = Counters::get(&stats.created_measured);
    let joined = Counters::get(&c.joined);
    let expected = created * joined;
    let delivered = Counters::get(&c.delivered_measured);
    let used = cpu_until.since(&cpu_from);
    let per = |n: u64| {
        used.server
            .filter(|_| n > 0)
            .map(|s| round(s * 1e6 / n as f64, 2))
    };
    let scheduled = a.rate * measured;
    let statuses = stats.statuses.lock().map(|m| m.clone()).unwrap_or_default();
    Ok(merge(
        common(&shared),
        json!({
            "watchers": a.watchers, "callers": a.callers,
            "rate": a.rate, "closed_loop": a.rate == 0.0,
            "warmup_s": secs(a.warmup), "duration_s": secs(a.duration),
            "all_joined": all_joined, "connect_s": connect_s,
            "requests": requests,
            "requests_per_s": round(requests as f64 / measured, 1),
            "scheduled": (a.rate > 0.0).then(|| scheduled.round() as u64),
            "sent_ratio": (a.rate > 0.0).then(|| round(requests as f64 / scheduled.max(1.0), 4)),
            "created": created,
            "status_counts": statuses,
            "errors": stats.errors(),
            "reconnects": Counters::get(&stats.reconnects),
            "api_latency_ms": stats.latency.summary(),
            "expected": expected, "delivered": delivered,
            "delivered_ratio": if expected > 0 { round(delivered as f64 / expected as f64, 5) } else { 0.0 },
            "not_delivered_in_time": expected.saturating_sub(delivered),
            "late": Counters::get(&c.delivered_late),
            "deliveries_per_s": round(delivered as f64 / measured, 1),
            "delivery_latency_ms": shared.latency.summary(),
            "server_cpu_s": used.server.map(|s| round(s, 2)),
            "server_cpu_cores": used.server.map(|s| round(s / measured, 3)),
            "server_cpu_us_per_request": per(created),
            "server_cpu_us_per_delivery": per(delivered),
            "server_rss_loaded_kib": rss_loaded,
            "loadgen_cpu_cores": used.own.map(|s| round(s / measured, 3)),
            "other_cpu_cores": used.others.map(|s| round(s / measured, 3)),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::events::{event_type, stamp_us};

    #[test]
    fn watchers_read_the_send_time_of_an_api_message() {
        let sent = crate::http::body(3, 9, 123_456);
        assert_eq!(sent, r#"{"text":"lg|api|3|9|123456"}"#);
        let delivered = r#"{"type":"message","message":{"id":"m","room":"api-bench","from":"bench","text":"lg|api|3|9|123456","sentAt":"t","seq":4}}"#;
        assert_eq!(event_type(delivered), "message");
        assert_eq!(stamp_us(delivered), Some(123_456));
    }
}
