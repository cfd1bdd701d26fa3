//! A real Redis Sentinel setup per test: one master, one replica and three
//! sentinels (`redis-server --sentinel`, quorum 2) on free loopback ports,
//! with short timeouts so that a killed master is replaced within a second or
//! two. Missing binaries fail the test, never skip it.

use std::ffi::OsString;
use std::time::{Duration, Instant};

use super::redis::{data_node_args, info_field, poll_blocking, RedisNode};

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "wschat";
const SENTINELS: usize = 3;
/// How long formation and a failover may take before the test fails.
const FORM_WAIT: Duration = Duration::from_secs(30);
const FAILOVER_WAIT: Duration = Duration::from_secs(15);

/// Two data nodes (the first starts as master) and three sentinels.
pub struct RedisSentinel {
    data: Vec<RedisNode>,
    sentinels: Vec<RedisNode>,
    _dir: tempfile::TempDir,
    /// How long `start` took, for the tests to print.
    pub formed_in: Duration,
}

impl RedisSentinel {
    /// Starts the master, its replica (`--replicaof`) and three sentinels
    /// monitoring it (quorum 2, down after 1 s, failover timeout 5 s); waits
    /// until the replica is in sync and every sentinel knows the master, the
    /// replica and the two other sentinels.
    pub fn start() -> RedisSentinel {
        let started = Instant::now();
        let dir = tempfile::tempdir().expect("temp dir for sentinel");
        let d = dir.path();
        let master = RedisNode::start_on_free_ports(1, |p| data_args(d, p[0], None));
        let m = master.port;
        let replica = RedisNode::start_on_free_ports(1, |p| data_args(d, p[0], Some(m)));
        let sentinels = (0..SENTINELS)
            .map(|_| {
                RedisNode::start_on_free_ports(1, |p| {
                    // A sentinel rewrites its config file: one writable file each.
                    let conf = d.join(format!("sentinel-{}.conf", p[0]));
                    std::fs::write(&conf, sentinel_conf(d, p[0], m))
                        .expect("write sentinel config");
                    let log = d.join(format!("sentinel-{}.log", p[0]));
                    vec![
                        conf.into_os_string(),
                        "--sentinel".into(),
                        "--logfile".into(),
                        log.into_os_string(),
                    ]
                })
            })
            .collect();
        let mut s = RedisSentinel {
            data: vec![master, replica],
            sentinels,
            _dir: dir,
            formed_in: Duration::ZERO,
        };
        poll_blocking(
            "the sentinels to know the master, the replica and each other",
            FORM_WAIT,
            || s.check_formed(),
        );
        s.formed_in = started.elapsed();
        s
    }

    /// The sentinels' URLs.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisNode::url).collect()
    }

    /// The `CHAT__BROKER__*` settings for sentinel mode.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CHAT__BROKER__KIND", "redis".to_string()),
            ("CHAT__BROKER__REDIS_MODE", "sentinel".to_string()),
            ("CHAT__BROKER__REDIS_URLS", self.urls().join(",")),
            ("CHAT__BROKER__SENTINEL_MASTER", MASTER_NAME.to_string()),
        ]
    }

    /// The master's port as the first live sentinel answers
    /// `SENTINEL get-master-addr-by-name`.
    pub fn master_addr(&self) -> u16 {
        let sentinel = self
            .sentinels
            .iter()
            .find(|s| s.is_up())
            .expect("a live sentinel");
        master_addr_of(sentinel).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs one command on the data node listening on `port`; panics on
    /// failure.
    pub fn query(&self, port: u16, args: &[&str]) -> redis::Value {
        self.data_node(port).query(args)
    }

    /// Runs commands in turn on one connection to the data node on `port` (a
    /// write and its `WAIT`); panics on failure.
    pub fn query_all(&self, port: u16, cmds: &[&[&str]]) -> Vec<redis::Value> {
        self.data_node(port).query_all(cmds)
    }

    /// SIGKILLs the current master; returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_addr();
        self.data_node_mut(port).kill();
        port
    }

    /// Waits (bounded) until every sentinel names a master other than `old`
    /// and that node says `role:master`; returns its port and how long the
    /// wait took.
    pub async fn wait_failover(&self, old: u16) -> (u16, Duration) {
        let started = Instant::now();
        let new = super::eventually(
            &format!("the sentinels to replace the master on port {old}"),
            FAILOVER_WAIT,
            async || self.check_failover(old),
        )
        .await;
        (new, started.elapsed())
    }

    fn check_failover(&self, old: u16) -> Result<u16, String> {
        let mut named = None;
        for s in &self.sentinels {
            let port = master_addr_of(s)?;
            if port == old {
                return Err(format!("sentinel {} still names {old}", s.port));
            }
            if named.is_some_and(|n| n != port) {
                return Err(format!("sentinels disagree: {named:?} and {port}"));
            }
            named = Some(port);
        }
        let port = named.expect("sentinels");
        let info = self.data_node(port).try_text(&["INFO", "replication"])?;
        match info_field(&info, "role") {
            Some("master") => Ok(port),
            role => Err(format!("the new master on {port} says role {role:?}")),
        }
    }

    fn check_formed(&self) -> Result<(), String> {
        let info = self.data[1].try_text(&["INFO", "replication"])?;
        let link = info_field(&info, "master_link_status");
        if link != Some("up") {
            return Err(format!("replica: master_link_status {link:?}"));
        }
        for s in &self.sentinels {
            let v = s
                .try_query(&["SENTINEL", "MASTER", MASTER_NAME])
                .map_err(|e| format!("sentinel {}: {e}", s.port))?;
            let fields: Vec<String> = redis::from_redis_value(v).map_err(|e| e.to_string())?;
            let get = |name: &str| {
                fields
                    .chunks(2)
                    .find(|kv| kv[0] == name)
                    .and_then(|kv| kv.get(1))
                    .map(String::as_str)
            };
            for (field, want) in [
                ("flags", "master"),
                ("num-slaves", "1"),
                ("num-other-sentinels", "2"),
            ] {
                if get(field) != Some(want) {
                    return Err(format!(
                        "sentinel {}: {field} {:?}, not {want}",
                        s.port,
                        get(field)
                    ));
                }
            }
        }
        Ok(())
    }

    fn data_node(&self, port: u16) -> &RedisNode {
        self.data
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"))
    }

    fn data_node_mut(&mut self, port: u16) -> &mut RedisNode {
        self.data
            .iter_mut()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no data node on port {port}"))
    }
}

/// The master's port as `sentinel` answers `SENTINEL get-master-addr-by-name`.
fn master_addr_of(sentinel: &RedisNode) -> Result<u16, String> {
    let v = sentinel
        .try_query(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME])
        .map_err(|e| format!("sentinel {}: {e}", sentinel.port))?;
    let (host, port): (String, u16) = redis::from_redis_value(v)
        .map_err(|e| format!("sentinel {}: get-master-addr-by-name: {e}", sentinel.port))?;
    assert_eq!(host, "127.0.0.1", "sentinel {}", sentinel.port);
    Ok(port)
}

/// A data node: no persistence, its log in `dir`, a replica of `master`.
fn data_args(dir: &std::path::Path, port: u16, master: Option<u16>) -> Vec<OsString> {
    let mut args = data_node_args(dir, port);
    if let Some(m) = master {
        args.extend([
            "--replicaof".into(),
            "127.0.0.1".into(),
            m.to_string().into(),
        ]);
    }
    args
}

fn sentinel_conf(dir: &std::path::Path, port: u16, master: u16) -> String {
    format!(
        "port {port}\nbind 127.0.0.1\ndir {}\n\
         sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 2\n\
         sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
         sentinel failover-timeout {MASTER_NAME} 5000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        dir.display()
    )
}
