//! What the generator counts: shared counters, the latency histogram (fed in
//! batches from each connection), and /proc readings of CPU time and RSS.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;

/// Counters shared by every connection task. Relaxed atomics: they are only
/// read after the tasks that write them have been told to stop.
#[derive(Default)]
pub struct Counters {
    pub connected: AtomicU64,
    pub joined: AtomicU64,
    pub connect_failed: AtomicU64,
    pub closed_early: AtomicU64,
    pub sent: AtomicU64,
    pub sent_measured: AtomicU64,
    pub received_frames: AtomicU64,
    pub delivered_measured: AtomicU64,
    pub delivered_late: AtomicU64,
    pub presence: AtomicU64,
    pub rate_limited: AtomicU64,
    pub other_errors: AtomicU64,
    /// Why connections failed or closed early: a few examples with counts.
    pub failures: Mutex<BTreeMap<String, u64>>,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }

    pub fn failure(&self, why: String) {
        if let Ok(mut map) = self.failures.lock() {
            // Keep the map small: distinct reasons past 20 are lumped together.
            let key = if map.len() >= 20 && !map.contains_key(&why) {
                "other".to_string()
            } else {
                why
            };
            *map.entry(key).or_insert(0) += 1;
        }
    }
}

/// Latency histogram in microseconds, 1 µs .. 10 min, 3 significant digits.
pub struct Latency {
    hist: Mutex<Histogram<u64>>,
}

impl Latency {
    pub fn new() -> Result<Self, String> {
        let hist = Histogram::new_with_bounds(1, 600_000_000, 3)
            .map_err(|e| format!("creating the latency histogram: {e}"))?;
        Ok(Self {
            hist: Mutex::new(hist),
        })
    }

    /// Records a batch collected by one connection; values are saturated into
    /// the histogram's range.
    pub fn record_batch(&self, batch: &mut Vec<u64>) {
        if batch.is_empty() {
            return;
        }
        if let Ok(mut h) = self.hist.lock() {
            for &v in batch.iter() {
                h.saturating_record(v.max(1));
            }
        }
        batch.clear();
    }

    /// Records one value (µs), saturated into the histogram's range.
    pub fn record(&self, us: u64) {
        if let Ok(mut h) = self.hist.lock() {
            h.saturating_record(us.max(1));
        }
    }

    pub fn summary(&self) -> LatencySummary {
        let Ok(h) = self.hist.lock() else {
            return LatencySummary::default();
        };
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

impl Latency {
    /// Every recorded value (µs, the highest equivalent of its bucket) with
    /// its count: what another process needs to merge histograms.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        let Ok(h) = self.hist.lock() else {
            return Vec::new();
        };
        h.iter_recorded()
            .map(|v| {
                (
                    h.highest_equivalent(v.value_iterated_to()),
                    v.count_at_value(),
                )
            })
            .collect()
    }
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

/// USER_HZ: the unit of utime/stime in /proc/<pid>/stat, 100 on Linux.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) a process has used so far.
pub fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // The command name may contain spaces; fields are counted after its ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After ')': state is field 3 of the full line, utime 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_SEC)
}

/// Resident set size in KiB (VmRSS).
pub fn rss_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The anonymous part of a process's RSS (its heap and stacks, without the
/// binary's and libraries' code pages, which a process faults in as it first
/// runs a path and which depend on the page cache), in KiB.
pub fn anon_rss_kib(pid: Option<u32>) -> Option<u64> {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: Option<u32>, field: &str) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_string(),
    };
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// /proc/net/sockstat: `sockets used` and the TCP line (inuse, orphan, tw,
/// alloc, mem in pages), all sockets of the machine; and from /proc/meminfo
/// the kernel's slab (`slab_kib`, `sunreclaim_kib`), where socket structures
/// live (sockstat's `mem` counts only buffer pages).
pub fn sockstat() -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string("/proc/net/sockstat").unwrap_or_default();
    let mut found = BTreeMap::new();
    for line in text.lines() {
        let (prefix, key) = match line.split_once(':') {
            Some(("sockets", rest)) => ("sockets_", rest),
            Some(("TCP", rest)) => ("tcp_", rest),
            _ => continue,
        };
        let words: Vec<&str> = key.split_whitespace().collect();
        for pair in words.chunks(2) {
            if let [name, value] = pair {
                if let Ok(v) = value.parse() {
                    found.insert(format!("{prefix}{name}"), v);
                }
            }
        }
    }
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    for (key, name) in [("Slab:", "slab_kib"), ("SUnreclaim:", "sunreclaim_kib")] {
        let kib = meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok());
        if let Some(kib) = kib {
            found.insert(name.to_string(), kib);
        }
    }
    found
}

/// Busy CPU seconds of the whole machine (all cores): the first line of
/// /proc/stat, everything but idle and iowait.
pub fn machine_busy_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: f64 = fields.iter().take(8).sum();
    let idle = fields.get(3)? + fields.get(4)?;
    Some((total - idle) / CLOCK_TICKS_PER_SEC)
}

/// CPU time of the server, the generator itself and the whole machine.
#[derive(Clone, Copy, Debug)]
pub struct CpuMark {
    server: Option<f64>,
    own: Option<f64>,
    machine: Option<f64>,
}

/// CPU seconds used between two marks.
#[derive(Clone, Copy, Debug)]
pub struct CpuUsed {
    pub server: Option<f64>,
    pub own: Option<f64>,
    /// Everything else on the machine: other processes compete for the cores.
    pub others: Option<f64>,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> Self {
        Self {
            server: server_pid.and_then(|pid| cpu_seconds(Some(pid))),
            own: cpu_seconds(None),
            machine: machine_busy_seconds(),
        }
    }

    /// Like [`CpuMark::now`], with the CPU of `extra` processes added to the server's.
    pub fn now_with(server_pid: Option<u32>, extra: &[u32]) -> Self {
        let mut mark = Self::now(server_pid);
        for pid in extra {
            mark.server = mark.server.zip(cpu_seconds(Some(*pid))).map(|(a, b)| a + b);
        }
        mark
    }

    pub fn since(&self, earlier: &CpuMark) -> CpuUsed {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        let server = diff(self.server, earlier.server);
        let own = diff(self.own, earlier.own);
        let machine = diff(self.machine, earlier.machine);
        let others = machine
            .zip(own)
            .map(|(m, o)| (m - server.unwrap_or(0.0) - o).max(0.0));
        CpuUsed {
            server,
            own,
            others,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_proc_files() {
        assert!(cpu_seconds(None).is_some());
        assert!(rss_kib(None).is_some_and(|kib| kib > 0));
        assert!(machine_busy_seconds().is_some_and(|s| s > 0.0));
        assert!(sockstat().contains_key("tcp_mem"));
        assert!(sockstat().contains_key("slab_kib"));
    }

    #[test]
    fn histogram_summary() {
        let lat = Latency::new().expect("histogram");
        let mut batch: Vec<u64> = (1..=1000).map(|i| i * 1000).collect();
        lat.record_batch(&mut batch);
        assert!(batch.is_empty());
        let s = lat.summary();
        assert_eq!(s.count, 1000);
        assert!((s.p50_ms - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.max_ms - 1000.0).abs() < 1.0, "{s:?}");
        let buckets = lat.buckets();
        assert_eq!(buckets.iter().map(|b| b.1).sum::<u64>(), 1000);
    }
}
