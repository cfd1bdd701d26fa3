//! A real Redis Cluster per test: six `redis-server` nodes (three masters,
//! one replica each) on free loopback ports, formed with `redis-cli --cluster
//! create`, with short timeouts so that a killed master's replica takes over
//! within a second or two. Missing binaries fail the test, never skip it.

use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::redis::{data_node_args, info_field, poll_blocking, RedisNode};

/// Nodes in a cluster: three masters, each with one replica.
pub const NODES: usize = 6;
/// Hash slots in a Redis Cluster.
const SLOTS: u32 = 16384;
/// How long formation and a failover may take before the test fails.
const FORM_WAIT: Duration = Duration::from_secs(30);
const FAILOVER_WAIT: Duration = Duration::from_secs(15);

/// Six cluster nodes; `node` arguments are indexes into [`RedisCluster::urls`].
pub struct RedisCluster {
    nodes: Vec<RedisNode>,
    dir: tempfile::TempDir,
    /// Every node's `requirepass` (and `masterauth`), if any.
    password: Option<String>,
    /// How long `start` took, for the tests to print.
    pub formed_in: Duration,
}

/// One line of `CLUSTER SLOTS`: a slot range and the port of its master.
#[derive(Debug, Clone, Copy)]
struct SlotRange {
    start: u32,
    end: u32,
    master_port: u16,
}

impl RedisCluster {
    /// Starts six nodes, forms the cluster (`--cluster-replicas 1`) and waits
    /// until every node has `cluster_state:ok`, all 16384 slots, every other
    /// node connected, and every replica its master link up.
    pub fn start() -> RedisCluster {
        Self::start_with(None)
    }

    /// Like [`RedisCluster::start`], every node asking for `password`
    /// (`requirepass`, and `masterauth` for its replica).
    pub fn start_with_password(password: &str) -> RedisCluster {
        Self::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> RedisCluster {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir for the cluster");
        // Each node gets its cluster bus port explicitly: the default, port +
        // 10000, is past 65535 for many ephemeral ports.
        let nodes: Vec<RedisNode> = (0..NODES)
            .map(|_| {
                RedisNode::start_on_free_ports_with(2, password, |p| {
                    let mut args = node_args(dir.path(), p[0], p[1]);
                    if let Some(pw) = password {
                        args.extend(["--requirepass", pw, "--masterauth", pw].map(OsString::from));
                    }
                    args
                })
            })
            .collect();
        let mut cluster = RedisCluster {
            nodes,
            dir,
            password: password.map(str::to_owned),
            formed_in: Duration::ZERO,
        };
        cluster.create();
        poll_blocking(
            "the cluster to form (seen: the first node not ready)",
            FORM_WAIT,
            || cluster.check_healthy(),
        );
        cluster.formed_in = started.elapsed();
        cluster
    }

    /// `redis-cli --cluster create` over all nodes, bounded.
    fn create(&self) {
        let mut cmd = Command::new("redis-cli");
        if let Some(pw) = &self.password {
            cmd.args(["--no-auth-warning", "-a", pw]);
        }
        cmd.args(["--cluster", "create"])
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(cmd.output());
        });
        let out = match rx.recv_timeout(FORM_WAIT) {
            Ok(Ok(out)) => out,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-cli is not installed: the cluster tests need it \
                 (Debian package redis-tools; run scripts/install-deps.sh)"
            ),
            Ok(Err(e)) => panic!("cannot run redis-cli: {e}"),
            Err(_) => panic!("redis-cli --cluster create did not finish in {FORM_WAIT:?}"),
        };
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `redis://127.0.0.1:<port>` of every node, killed ones included.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisNode::url).collect()
    }

    /// The port of node `node`.
    pub fn port(&self, node: usize) -> u16 {
        self.nodes[node].port
    }

    /// The `CHAT__BROKER__*` settings for cluster mode, every node a seed.
    /// With a password, it is in a file named by `redis_password_file`.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("CHAT__BROKER__KIND", "redis".to_string()),
            ("CHAT__BROKER__REDIS_MODE", "cluster".to_string()),
            ("CHAT__BROKER__REDIS_URLS", self.urls().join(",")),
        ];
        if let Some(pw) = &self.password {
            let file = self.dir.path().join("redis-password");
            std::fs::write(&file, format!("{pw}\n")).expect("write the password file");
            env.push((
                "CHAT__BROKER__REDIS_PASSWORD_FILE",
                file.to_string_lossy().into_owned(),
            ));
        }
        env
    }

    /// Runs one command on node `node` (no redirects followed); panics on
    /// failure.
    pub fn query(&self, node: usize, args: &[&str]) -> redis::Value {
        self.nodes[node].query(args)
    }

    /// Runs commands in turn on one connection to node `node` (a write and
    /// its `WAIT`); panics on failure.
    pub fn query_all(&self, node: usize, cmds: &[&[&str]]) -> Vec<redis::Value> {
        self.nodes[node].query_all(cmds)
    }

    /// Like [`RedisCluster::query`], without panicking.
    pub fn try_query(&self, node: usize, args: &[&str]) -> redis::RedisResult<redis::Value> {
        self.nodes[node].try_query(args)
    }

    /// The index of the node that serves `key`'s slot as master, as the first
    /// live node sees it (`CLUSTER KEYSLOT`, then `CLUSTER SLOTS`).
    pub fn master_for_key(&self, key: &str) -> usize {
        let node = self.live().next().expect("a live node");
        let slot: u32 = redis::from_redis_value(self.query(node, &["CLUSTER", "KEYSLOT", key]))
            .expect("CLUSTER KEYSLOT answers a number");
        let ranges = self
            .slots(node)
            .unwrap_or_else(|e| panic!("CLUSTER SLOTS on node {node}: {e}"));
        let range = ranges
            .iter()
            .find(|r| (r.start..=r.end).contains(&slot))
            .unwrap_or_else(|| panic!("no master for slot {slot} ({key}): {ranges:?}"));
        self.index_of(range.master_port)
    }

    /// The node indexes that serve slots, as the first live node sees it.
    pub fn masters(&self) -> Vec<usize> {
        let node = self.live().next().expect("a live node");
        let mut ports: Vec<u16> = self
            .slots(node)
            .unwrap_or_else(|e| panic!("CLUSTER SLOTS on node {node}: {e}"))
            .iter()
            .map(|r| r.master_port)
            .collect();
        ports.sort_unstable();
        ports.dedup();
        ports.into_iter().map(|p| self.index_of(p)).collect()
    }

    /// SIGKILL node `node`.
    pub fn kill(&mut self, node: usize) {
        self.nodes[node].kill();
    }

    /// Starts node `node` again (same port, same `nodes-<port>.conf`) and
    /// waits for PING; [`RedisCluster::wait_healthy`] waits for it to rejoin.
    pub fn restart(&mut self, node: usize) {
        self.nodes[node].restart();
    }

    /// Waits (bounded) until `killed`'s slots are served by live nodes: on
    /// every live node `cluster_state:ok`, all 16384 slots covered, none by
    /// `killed`. Returns how long the wait took.
    pub async fn wait_promoted(&self, killed: usize) -> Duration {
        let started = Instant::now();
        let port = self.nodes[killed].port;
        super::eventually(
            &format!("node {killed} (port {port})'s slots to move to a live node"),
            FAILOVER_WAIT,
            async || self.check_promoted(port),
        )
        .await;
        started.elapsed()
    }

    /// Waits (bounded) until the cluster is as [`RedisCluster::start`] left
    /// it (counting live nodes only): for after a restart.
    pub async fn wait_healthy(&self) -> Duration {
        let started = Instant::now();
        super::eventually(
            "the cluster to be healthy (seen: the first node not ready)",
            FORM_WAIT,
            async || self.check_healthy(),
        )
        .await;
        started.elapsed()
    }

    fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..NODES).filter(|&i| self.nodes[i].is_up())
    }

    fn index_of(&self, port: u16) -> usize {
        self.nodes
            .iter()
            .position(|n| n.port == port)
            .unwrap_or_else(|| panic!("port {port} is not one of the cluster's nodes"))
    }

    fn check_promoted(&self, killed_port: u16) -> Result<(), String> {
        for i in self.live() {
            let info = self.nodes[i].try_text(&["CLUSTER", "INFO"])?;
            let state = info_field(&info, "cluster_state");
            if state != Some("ok") {
                return Err(format!("node {i}: cluster_state {state:?}"));
            }
            let ranges = self.slots(i)?;
            covers_all(&ranges).map_err(|e| format!("node {i}: {e}"))?;
            if let Some(r) = ranges.iter().find(|r| r.master_port == killed_port) {
                return Err(format!("node {i}: slots {r:?} still on the killed node"));
            }
        }
        Ok(())
    }

    /// `Ok` when every live node is ready; else what the first one lacks.
    fn check_healthy(&self) -> Result<(), String> {
        let live: Vec<u16> = self.live().map(|i| self.nodes[i].port).collect();
        let mut masters = 0;
        for i in self.live() {
            let node = &self.nodes[i];
            let info = node.try_text(&["CLUSTER", "INFO"])?;
            for (field, want) in [
                ("cluster_state", "ok"),
                ("cluster_slots_assigned", "16384"),
                ("cluster_slots_ok", "16384"),
                ("cluster_known_nodes", "6"),
            ] {
                let got = info_field(&info, field);
                if got != Some(want) {
                    return Err(format!("node {i}: {field} {got:?}, not {want}"));
                }
            }
            let nodes = node.try_text(&["CLUSTER", "NODES"])?;
            for line in nodes.lines() {
                let f: Vec<&str> = line.split(' ').collect();
                let port = f.get(1).and_then(|a| node_port(a));
                if port.is_some_and(|p| live.contains(&p))
                    && (f.get(2).is_none_or(|flags| flags.contains("fail"))
                        || f.get(7) != Some(&"connected"))
                {
                    return Err(format!("node {i} sees: {line}"));
                }
            }
            let repl = node.try_text(&["INFO", "replication"])?;
            match info_field(&repl, "role") {
                // A master streams to its replica only once the replica acked
                // the first sync (`state=online`); until then nothing it
                // accepts would survive a kill.
                Some("master") => {
                    masters += 1;
                    let slave = info_field(&repl, "slave0").unwrap_or_default();
                    if !slave.contains("state=online") {
                        return Err(format!("master {i}: replica {slave:?}"));
                    }
                }
                _ => {
                    let link = info_field(&repl, "master_link_status");
                    if link != Some("up") {
                        return Err(format!("replica {i}: master_link_status {link:?}"));
                    }
                }
            }
        }
        if masters != 3 {
            return Err(format!("{masters} masters among the live nodes, not 3"));
        }
        Ok(())
    }

    /// `CLUSTER SLOTS` as node `node` sees it.
    fn slots(&self, node: usize) -> Result<Vec<SlotRange>, String> {
        let v = self.nodes[node]
            .try_query(&["CLUSTER", "SLOTS"])
            .map_err(|e| e.to_string())?;
        let bad = || format!("unexpected CLUSTER SLOTS reply: {v:?}");
        let redis::Value::Array(ranges) = &v else {
            return Err(bad());
        };
        ranges
            .iter()
            .map(|r| {
                let redis::Value::Array(f) = r else {
                    return Err(bad());
                };
                let num = |v: Option<&redis::Value>| match v {
                    Some(redis::Value::Int(n)) => Ok(*n),
                    _ => Err(bad()),
                };
                let Some(redis::Value::Array(master)) = f.get(2) else {
                    return Err(bad());
                };
                Ok(SlotRange {
                    start: num(f.first())? as u32,
                    end: num(f.get(1))? as u32,
                    master_port: num(master.get(1))? as u16,
                })
            })
            .collect()
    }

    /// The directory holding the nodes' files (`nodes-<port>.conf`, logs).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// The port of a `CLUSTER NODES` address, `127.0.0.1:6379@16379`.
fn node_port(addr: &str) -> Option<u16> {
    addr.split('@').next()?.rsplit(':').next()?.parse().ok()
}

/// `Ok` when `ranges` cover slots 0..16384 exactly once.
fn covers_all(ranges: &[SlotRange]) -> Result<(), String> {
    let mut sorted = ranges.to_vec();
    sorted.sort_by_key(|r| r.start);
    let mut next = 0;
    for r in &sorted {
        if r.start != next {
            return Err(format!("slots from {next} not covered: {sorted:?}"));
        }
        next = r.end + 1;
    }
    if next != SLOTS {
        return Err(format!("slots from {next} not covered: {sorted:?}"));
    }
    Ok(())
}

/// A cluster node: no persistence, its cluster config and log in `dir`, a
/// short node timeout, and a replica that may always take over (no data-age
/// limit, no migration between masters).
fn node_args(dir: &std::path::Path, port: u16, bus: u16) -> Vec<OsString> {
    let mut args = data_node_args(dir, port);
    let d = dir.to_string_lossy();
    args.extend(
        [
            "--cluster-port".to_string(),
            bus.to_string(),
            "--cluster-enabled".into(),
            "yes".into(),
            "--cluster-config-file".into(),
            format!("{d}/nodes-{port}.conf"),
            "--cluster-node-timeout".into(),
            "1000".into(),
            "--cluster-replica-validity-factor".into(),
            "0".into(),
            "--cluster-allow-replica-migration".into(),
            "no".into(),
        ]
        .map(OsString::from),
    );
    args
}
