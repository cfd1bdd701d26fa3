//! Several generator processes, one fan-out run: each joins its slice
//! (--shard), says so in a file, and waits for the publishing start that the
//! caller writes once all are joined (--sync-dir), on a shared clock.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::conn::Shared;
use crate::stats::Counters;

/// With --sync-dir: says this generator is joined (DIR/ready-K, its
/// counts) and waits for DIR/go, which holds the publishing start in µs on
/// the shared clock (--clock-base-ms). Without it: nothing to wait for.
pub async fn wait_for_go(shared: &Shared) -> Result<(), String> {
    let a = &shared.args;
    let Some(dir) = &a.sync_dir else {
        return Ok(());
    };
    let c = &shared.counters;
    let ready = json!({
        "joined": Counters::get(&c.joined),
        "connect_failed": Counters::get(&c.connect_failed),
        "closed_early": Counters::get(&c.closed_early),
    });
    let path = dir.join(format!("ready-{}", a.shard.0));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, ready.to_string())
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    let go = dir.join("go");
    let deadline = Instant::now() + a.timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(&go) {
            if let Ok(at) = text.trim().parse::<u64>() {
                shared.start_at.store(at, Relaxed);
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(format!("no {} within --timeout", go.display()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
