//! One token must not fill the server's memory (issue 16, part 2), against
//! the real binary with the memory broker: a flood of new rooms through real
//! WebSocket clients, each writing messages and leaving. The histories stay
//! within `rooms.history_bytes` (the metrics, and the process's RSS), and
//! rooms that were only joined leave nothing behind.

mod common;

use common::{connect, metric_at, wait_for_metric, Process, ORIGIN};

/// Limits high enough that one address can flood (the point of the test).
const FLOOD_LIMITS: [(&str, &str); 6] = [
    ("CHAT__LIMITS__MESSAGE_BURST", "1000000"),
    ("CHAT__LIMITS__IP_MESSAGE_BURST", "1000000"),
    ("CHAT__LIMITS__IP_CONNECT_BURST", "1000000"),
    ("CHAT__LIMITS__IP_CONNECT_REFILL", "1ms"),
    ("CHAT__LIMITS__IP_MAX_CONNECTIONS", "10000"),
    ("CHAT__TELEMETRY__LOG_LEVEL", "warn"),
];

fn start(budget: &str) -> Process {
    let mut env = FLOOD_LIMITS.to_vec();
    env.push(("CHAT__ROOMS__HISTORY_BYTES", budget));
    Process::start(&env, &[])
}

/// `rooms` new rooms, `per_room` messages of `text` each, `parallel` clients
/// at a time: each joins its own room, writes, waits for its last echo, leaves.
async fn flood(p: &Process, prefix: &str, rooms: usize, per_room: usize, text: &str) {
    let parallel = 16;
    for chunk in (0..rooms).collect::<Vec<_>>().chunks(parallel) {
        let clients = chunk.iter().map(|i| async move {
            let url = p.url(&format!("room={prefix}{i}&name=flood"));
            let mut c = connect(&url, Some(ORIGIN))
                .await
                .expect("flood client connects");
            c.next_of("history").await;
            for n in 0..per_room {
                c.say(&format!("{n:04} {text}")).await;
            }
            let last = format!("{:04} {text}", per_room - 1);
            while c.next_message().await["text"] != last.as_str() {}
            c.bye().await;
        });
        futures_util::future::join_all(clients).await;
    }
}

async fn metric(p: &Process, series: &str) -> f64 {
    metric_at(p.admin_addr(), series).await
}

/// The process's resident set, from /proc.
fn rss_bytes(p: &Process) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", p.child.id())).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

#[tokio::test]
async fn a_flood_of_new_rooms_plateaus_at_the_history_budget_and_evictions_are_counted() {
    let budget = 256u64 << 10;
    let p = start("256KiB");
    let text = "x".repeat(300);
    let (rooms, per_room) = (300, 20);
    let mut samples = Vec::new();
    for wave in 0..5 {
        flood(&p, &format!("w{wave}r"), rooms / 5, per_room, &text).await;
        // Messages alone (no bookkeeping counted) cannot exceed the budget.
        let kept = metric(&p, "wschat_history_messages").await;
        assert!(
            kept * (text.len() as f64) <= budget as f64,
            "wave {wave}: {kept} messages of {} bytes kept, over a {budget}-byte budget",
            text.len()
        );
        let bytes = metric(&p, "wschat_history_bytes").await;
        assert!(
            bytes <= budget as f64,
            "wave {wave}: {bytes} bytes over the budget"
        );
        samples.push((kept, bytes));
    }
    wait_for_metric(p.admin_addr(), "wschat_rooms_active", "to be 0", |v| {
        v == 0.0
    })
    .await;
    let (kept, bytes) = samples[samples.len() - 1];
    let evictions = metric(&p, "wschat_history_evictions_total").await;
    println!(
        "{} messages into {rooms} rooms, 256 KiB budget: (messages, bytes) after each wave {samples:?}; \
         {evictions} rooms evicted",
        rooms * per_room
    );
    // Full to the budget (within one room's worth), not emptied.
    let one_room = (per_room * (text.len() + 200 + 96) + 768) as f64;
    assert!(
        bytes > budget as f64 - one_room,
        "{bytes} bytes: not at the budget"
    );
    assert!(kept > 0.0);
    // Every room that is gone was counted (rooms with members: none left).
    let kept_rooms = kept / per_room as f64;
    assert!(
        (evictions - (rooms as f64 - kept_rooms)).abs() <= 1.0,
        "{evictions} evictions, {kept_rooms} rooms kept of {rooms}"
    );
    assert_eq!(metric(&p, "wschat_history_trimmed_total").await, 0.0);
}

/// RSS with a 4 MiB budget: a first wave fills the budget (and the
/// allocator), then four more waves of the same size each replace it. Before
/// the budget every wave added its messages to RSS for `history_ttl`.
#[tokio::test]
async fn rss_plateaus_near_the_history_budget_instead_of_growing() {
    let budget = 4u64 << 20;
    let p = start("4MiB");
    // 480 three-byte characters: about 1.6 KB of JSON per message.
    let text = "가".repeat(480);
    let (rooms, per_room) = (120, 20);
    let mut rss = vec![rss_bytes(&p)];
    for wave in 0..5 {
        flood(&p, &format!("w{wave}r"), rooms, per_room, &text).await;
        rss.push(rss_bytes(&p));
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    let written = 5 * rooms * per_room * (text.len() + 200);
    println!(
        "RSS (MiB) at start and after each wave of {rooms} rooms × {per_room} messages \
         (about {:.1} MiB written in all, 4 MiB budget): {:?}",
        mib(written as u64),
        rss.iter()
            .map(|&b| (mib(b) * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
    );
    // After the first wave, the next four (16 MiB more of history) must not
    // add more than the budget again: allocator slack, not kept messages.
    let growth = rss[5].saturating_sub(rss[1]);
    assert!(
        growth < budget,
        "RSS grew {:.1} MiB after the budget was full: {rss:?}",
        mib(growth)
    );
    let bytes = metric(&p, "wschat_history_bytes").await;
    assert!(
        bytes <= budget as f64 && bytes > budget as f64 * 0.9,
        "{bytes}"
    );
}

/// A room that was joined and left without a message keeps nothing.
#[tokio::test]
async fn rooms_joined_but_never_written_leave_nothing_behind() {
    let p = start("1MiB");
    for i in 0..50 {
        let url = p.url(&format!("room=quiet{i}&name=q"));
        let mut c = connect(&url, Some(ORIGIN)).await.expect("connects");
        c.next_of("history").await;
        c.bye().await;
    }
    wait_for_metric(p.admin_addr(), "wschat_rooms_active", "to be 0", |v| {
        v == 0.0
    })
    .await;
    wait_for_metric(p.admin_addr(), "wschat_history_bytes", "to be 0", |v| {
        v == 0.0
    })
    .await;
    // A room that was written keeps its history (until the TTL or the budget).
    let url = p.url("room=loud&name=l");
    let mut c = connect(&url, Some(ORIGIN)).await.expect("connects");
    c.say("kept").await;
    c.next_message().await;
    c.bye().await;
    let mut again = connect(&url, Some(ORIGIN)).await.expect("connects");
    let history = again.next_of("history").await;
    assert_eq!(history["messages"][0]["text"], "kept");
    again.bye().await;
}
