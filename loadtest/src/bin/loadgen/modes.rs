//! The scenarios (fanout, idle, join-storm, connect-storm; api-publish is in
//! api.rs): who connects where, the timeline, and the report each produces.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::args::{Args, Mode};
use crate::conn::{self, Role, Shared};
use crate::rooms;
use crate::stats::{anon_rss_kib, rss_kib, sockstat, Counters, CpuMark};

pub(crate) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

pub(crate) fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// Waits, polling, until `done()` or the deadline; true if `done()`.
async fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// `n` members spread over `rooms` rooms named `<prefix>-<k>`, none publishing.
fn spread(n: usize, rooms: usize, prefix: &str) -> Vec<Role> {
    (0..n)
        .map(|index| Role {
            index,
            room: format!("{prefix}-{}", index % rooms),
            joins: Vec::new(),
            publish: None,
        })
        .collect()
}

pub(crate) fn spawn_all(shared: &Arc<Shared>, roles: Vec<Role>) -> Vec<JoinHandle<()>> {
    roles
        .into_iter()
        .map(|role| tokio::spawn(conn::run(shared.clone(), role)))
        .collect()
}

/// Tells every task to stop and waits (bounded) for them to hand in counts.
pub(crate) async fn stop_all(shared: &Shared, tasks: Vec<JoinHandle<()>>) {
    shared.stop.cancel();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    for task in tasks {
        let abort = task.abort_handle();
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            abort.abort();
        }
    }
}

/// Waits until every connection has joined (received `history`) or failed.
pub(crate) async fn wait_joined(shared: &Shared, n: u64, deadline: Instant) -> bool {
    let c = &shared.counters;
    wait_until(deadline, || {
        Counters::get(&c.joined) + Counters::get(&c.connect_failed) + Counters::get(&c.closed_early)
            >= n
    })
    .await
}

pub(crate) fn common(shared: &Shared) -> Value {
    let a = &shared.args;
    let c = &shared.counters;
    let failures = c.failures.lock().map(|m| m.clone()).unwrap_or_default();
    json!({
        "mode": a.mode.name(),
        "label": a.label,
        "url": a.url,
        "per_ip": a.per_ip,
        "connected": Counters::get(&c.connected),
        "connect_failed": Counters::get(&c.connect_failed),
        "joined": Counters::get(&c.joined),
        "closed_early": Counters::get(&c.closed_early),
        "rate_limited": Counters::get(&c.rate_limited),
        "other_errors": Counters::get(&c.other_errors),
        "failures": failures,
    })
}

pub(crate) fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

pub async fn run(args: Args) -> Result<Value, String> {
    let shared = Arc::new(Shared::new(args.clone())?);
    match args.mode {
        Mode::Fanout => fanout(shared).await,
        Mode::Idle => idle(shared).await,
        Mode::JoinStorm => join_storm(shared).await,
        Mode::ConnectStorm => connect_storm(shared).await,
        Mode::ApiPublish => crate::api::api_publish(shared).await,
    }
}

/// The server's CPU at the edges of the measured window, and its RSS at the end.
pub(crate) struct Window {
    pub cpu_from: CpuMark,
    pub cpu_until: CpuMark,
    pub rss_loaded: Option<u64>,
}

/// Lets publishing start 200 ms from now, then waits out the warm-up and
/// the measured `--duration`, reading the server's CPU at both edges.
pub(crate) async fn measure(shared: &Shared) -> Window {
    let a = &shared.args;
    let pid = a.server_pid;
    let start = match shared.start_at.load(Relaxed) {
        u64::MAX => shared.now_us() + 200_000,
        chosen => chosen,
    };
    let from = start + a.warmup.as_micros() as u64;
    let until = from + a.duration.as_micros() as u64;
    shared.publish_from.store(start, Relaxed);
    shared.measure_from.store(from, Relaxed);
    shared.measure_until.store(until, Relaxed);
    shared.go.cancel();
    tokio::time::sleep_until(shared.instant_at(from)).await;
    let cpu_from = CpuMark::now_with(pid, &a.extra_pids);
    tokio::time::sleep_until(shared.instant_at(until)).await;
    let cpu_until = CpuMark::now_with(pid, &a.extra_pids);
    let rss_loaded = pid.and_then(|p| rss_kib(Some(p)));
    Window {
        cpu_from,
        cpu_until,
        rss_loaded,
    }
}

async fn fanout(shared: Arc<Shared>) -> Result<Value, String> {
    let a = shared.args.clone();
    let pid = a.server_pid;
    // R × M / N connections, each room exactly M members (see rooms.rs);
    // with --shard K/N only the K-th slice of them, by index.
    let all = rooms::connections(&a);
    let (k, n) = a.shard;
    let slice = k * all / n..(k + 1) * all / n;
    let roles: Vec<Role> = rooms::fanout_roles(&a)
        .into_iter()
        .filter(|r| slice.contains(&r.index))
        .collect();
    let total = roles.len();
    let publishing = roles.iter().filter(|r| r.publish.is_some()).count();
    let rss_before = pid.and_then(|p| rss_kib(Some(p)));
    let t0 = Instant::now();
    let tasks = spawn_all(&shared, roles);
    let all_joined = wait_joined(&shared, total as u64, t0 + a.timeout).await;
    let connect_s = secs(t0.elapsed());
    let rss_connected = pid.and_then(|p| rss_kib(Some(p)));
    if let Err(e) = crate::sync::wait_for_go(&shared).await {
        stop_all(&shared, tasks).await;
        return Err(e);
    }

    let Window {
        cpu_from,
        cpu_until,
        rss_loaded,
    } = measure(&shared).await;
    // Stragglers: anything later than --late-ms counts as not delivered anyway.
    tokio::time::sleep(a.late + Duration::from_millis(300)).await;
    stop_all(&shared, tasks).await;

    let c = &shared.counters;
    let sent = Counters::get(&c.sent_measured);
    // What the schedule asked for: a starved generator sends less, and then
    // deliveries per second say more about the generator than the server.
    let scheduled = publishing as f64 * a.rate * a.duration.as_secs_f64();
    let expected = sent * a.members as u64;
    let delivered = Counters::get(&c.delivered_measured);
    let late = Counters::get(&c.delivered_late);
    let used = cpu_until.since(&cpu_from);
    let (server_cpu, own_cpu) = (used.server, used.own);
    let measured = a.duration.as_secs_f64();
    let per_delivery = server_cpu
        .filter(|_| delivered > 0)
        .map(|s| round(s * 1e6 / delivered as f64, 3));
    let lat = shared.latency.summary();
    let connected = Counters::get(&c.connected);
    // What holding the connections and their rooms costs, before publishing.
    let rss_per_conn = match (rss_before, rss_connected) {
        (Some(b), Some(after)) if connected > 0 => {
            Some(round(after.saturating_sub(b) as f64 / connected as f64, 2))
        }
        _ => None,
    };
    Ok(merge(
        common(&shared),
        json!({
            "rooms": a.rooms, "members": a.members, "publishers": a.publishers,
            "rooms_per_conn": a.rooms_per_conn, "connections": total,
            "shard": [k, n], "connections_all_shards": all,
            "publishing_connections": publishing,
            "rate": a.rate, "warmup_s": secs(a.warmup), "duration_s": secs(a.duration),
            "all_joined": all_joined, "connect_s": connect_s,
            "sent": sent, "scheduled": scheduled.round() as u64,
            "sent_ratio": round(sent as f64 / scheduled.max(1.0), 4),
            "expected": expected, "delivered": delivered,
            "delivered_ratio": if expected > 0 { round(delivered as f64 / expected as f64, 5) } else { 0.0 },
            "not_delivered_in_time": expected.saturating_sub(delivered),
            "late": late,
            "deliveries_per_s": round(delivered as f64 / measured, 1),
            "latency_ms": lat,
            "server_cpu_s": server_cpu.map(|s| round(s, 2)),
            "server_cpu_cores": server_cpu.map(|s| round(s / measured, 3)),
            "server_cpu_us_per_delivery": per_delivery,
            "server_rss_before_kib": rss_before,
            "server_rss_connected_kib": rss_connected,
            "server_rss_loaded_kib": rss_loaded,
            "server_rss_per_conn_kib": rss_per_conn,
            "loadgen_cpu_s": own_cpu.map(|s| round(s, 2)),
            "loadgen_cpu_cores": own_cpu.map(|s| round(s / measured, 3)),
            "other_cpu_cores": used.others.map(|s| round(s / measured, 3)),
            // Several generators: their histograms, merged by the caller.
            "latency_hist_us": a.sync_dir.as_ref().map(|_| shared.latency.buckets()),
        }),
    ))
}

async fn idle(shared: Arc<Shared>) -> Result<Value, String> {
    let a = shared.args.clone();
    let pid = a.server_pid;
    let n = a.connections;
    let roles = spread(n, a.rooms, "idle");
    let rss_before = pid.and_then(|p| rss_kib(Some(p)));
    let anon_before = pid.and_then(|p| anon_rss_kib(Some(p)));
    let sockets_before = sockstat();
    let connect_from = CpuMark::now(pid);
    let t0 = Instant::now();
    let tasks = spawn_all(&shared, roles);
    let all_joined = wait_joined(&shared, n as u64, t0 + a.timeout).await;
    let connect_s = secs(t0.elapsed());
    let connect_cpu = CpuMark::now(pid).since(&connect_from);
    // Let presence fan-out and allocator caches settle before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = pid.and_then(|p| rss_kib(Some(p)));
    let anon_after = pid.and_then(|p| anon_rss_kib(Some(p)));
    let sockets_after = sockstat();
    // The idle window: from here, --duration (hold it over heartbeats to
    // see what they cost), the connect phase left out.
    let cpu_from = CpuMark::now(pid);
    tokio::time::sleep(a.duration).await;
    let idle_used = CpuMark::now(pid).since(&cpu_from);
    let idle_cpu = idle_used.server;
    let still_open = Counters::get(&shared.counters.connected)
        .saturating_sub(Counters::get(&shared.counters.closed_early));
    stop_all(&shared, tasks).await;
    let connected = Counters::get(&shared.counters.connected);
    let per_conn = |before: Option<u64>, after: Option<u64>| match (before, after) {
        (Some(b), Some(a)) if connected > 0 => {
            Some(round(a.saturating_sub(b) as f64 / connected as f64, 2))
        }
        _ => None,
    };
    Ok(merge(
        common(&shared),
        json!({
            "rooms": a.rooms, "connections": n, "all_joined": all_joined,
            "connect_s": connect_s,
            // Who used the cores while connecting: both share the same two.
            "connect_server_cpu_s": connect_cpu.server.map(|s| round(s, 2)),
            "connect_loadgen_cpu_s": connect_cpu.own.map(|s| round(s, 2)),
            "still_open_after_hold": still_open, "hold_s": secs(a.duration),
            "server_rss_before_kib": rss_before, "server_rss_after_kib": rss_after,
            "server_rss_per_conn_kib": per_conn(rss_before, rss_after),
            "server_anon_per_conn_kib": per_conn(anon_before, anon_after),
            "server_idle_cpu_s": idle_cpu.map(|s| round(s, 2)),
            "server_idle_cpu_cores": idle_cpu.map(|s| round(s / a.duration.as_secs_f64().max(1e-3), 4)),
            "loadgen_idle_cpu_cores": idle_used.own.map(|s| round(s / a.duration.as_secs_f64().max(1e-3), 4)),
            // The machine's sockets (both ends of every loopback connection).
            "sockstat_before": sockets_before, "sockstat_after": sockets_after,
        }),
    ))
}

async fn join_storm(shared: Arc<Shared>) -> Result<Value, String> {
    let a = shared.args.clone();
    let n = a.clients;
    let roles = (0..n)
        .map(|index| Role {
            index,
            room: "storm".into(),
            joins: Vec::new(),
            publish: None,
        })
        .collect();
    let start = shared.now_us();
    let cpu_from = CpuMark::now(a.server_pid);
    // One time limit for joining and getting in, from the start.
    let deadline = Instant::now() + a.timeout;
    let tasks = spawn_all(&shared, roles);
    let c = &shared.counters;
    let all_joined = wait_joined(&shared, n as u64, deadline).await;
    let all_in = wait_until(deadline, || {
        shared.in_room.load(Relaxed)
            + Counters::get(&c.connect_failed)
            + Counters::get(&c.closed_early)
            >= n as u64
    })
    .await;
    let used = CpuMark::now(a.server_pid).since(&cpu_from);
    // Presence events still on their way are counted for two more seconds.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_all(&shared, tasks).await;
    let ms = |us: u64| round(us.saturating_sub(start) as f64 / 1e6, 3);
    Ok(merge(
        common(&shared),
        json!({
            "clients": n,
            "all_joined": all_joined,
            "all_in": all_in,
            "in_room": shared.in_room.load(Relaxed),
            "all_joined_s": ms(shared.last_joined_us.load(Relaxed)),
            "all_in_s": ms(shared.last_in_us.load(Relaxed)),
            "presence_events": Counters::get(&c.presence),
            "server_cpu_s": used.server.map(|s| round(s, 2)),
            "loadgen_cpu_s": used.own.map(|s| round(s, 2)),
            "other_cpu_s": used.others.map(|s| round(s, 2)),
        }),
    ))
}

/// Every client connects as fast as `--connect-concurrency` allows, into
/// `--rooms` rooms, and leaves once all are in: connections per second,
/// each one's handshake and join time, and the server's CPU per connection.
/// With `--tokens-file` each client sends its own token (a JWT per user).
async fn connect_storm(shared: Arc<Shared>) -> Result<Value, String> {
    let a = shared.args.clone();
    let n = a.clients;
    let roles = spread(n, a.rooms, "storm");
    let rss_before = rss_kib(a.server_pid);
    let start = shared.now_us();
    let cpu_from = CpuMark::now(a.server_pid);
    let tasks = spawn_all(&shared, roles);
    let all_joined = wait_joined(&shared, n as u64, Instant::now() + a.timeout).await;
    let used = CpuMark::now(a.server_pid).since(&cpu_from);
    let rss_after = rss_kib(a.server_pid);
    stop_all(&shared, tasks).await;
    let joined = Counters::get(&shared.counters.joined);
    let joined_s = shared.last_joined_us.load(Relaxed).saturating_sub(start) as f64 / 1e6;
    let per_connection = used
        .server
        .filter(|_| joined > 0)
        .map(|s| round(s * 1e6 / joined as f64, 1));
    Ok(merge(
        common(&shared),
        json!({
            "clients": n,
            "rooms": a.rooms,
            "distinct_tokens": a.tokens.len().max(1),
            "all_joined": all_joined,
            "all_joined_s": round(joined_s, 3),
            "joined_per_s": if joined_s > 0.0 { round(joined as f64 / joined_s, 1) } else { 0.0 },
            "handshake_ms": shared.handshakes_us.summary(),
            "join_ms": shared.joins_us.summary(),
            "server_cpu_s": used.server.map(|s| round(s, 2)),
            "server_cpu_us_per_connection": per_connection,
            "loadgen_cpu_s": used.own.map(|s| round(s, 2)),
            "other_cpu_s": used.others.map(|s| round(s, 2)),
            "server_rss_before_kib": rss_before,
            "server_rss_after_kib": rss_after,
        }),
    ))
}
