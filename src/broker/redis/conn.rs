//! The broker's one connection to Redis, whatever the topology: one server,
//! a Redis Cluster, or the master that the Sentinels name.
//!
//! Commands and scripts go through [`Conn`] as through any redis-rs
//! connection (it is a `ConnectionLike`): on a cluster each is routed to the
//! node that owns its keys' slot, and every key of a room carries the room's
//! `{hash tag}`, so a room's script runs on one node. Pub/sub goes through
//! [`Conn::subscribe`] and [`Conn::unsubscribe`], which use sharded pub/sub
//! (SSUBSCRIBE) on a cluster: a room's messages then reach only the replicas
//! that carry the room, through the node that owns it, instead of every node.

use std::sync::Arc;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, RedisResult, Value};

use super::follow::Follower;

/// A connection to the broker's Redis; cloning it is cheap.
#[derive(Clone)]
pub(super) enum Conn {
    /// One server (`redis_mode = "standalone"`).
    Single(ConnectionManager),
    /// A Redis Cluster, connected on first use.
    Cluster(Arc<Lazy>),
    /// The current master, as the Sentinels name it.
    Sentinel(Arc<Follower>),
}

/// A cluster connection made on first use: the broker starts (and reports
/// not ready) while no seed node answers. Once made, redis-rs follows
/// MOVED/ASK and refreshes the slot map by itself; [`Lazy::reset`] starts
/// over from the seed nodes when it stays stuck (see [`super::link`]).
pub(super) struct Lazy {
    client: redis::cluster::ClusterClient,
    /// Read on every command: a clone of the connection (a channel handle).
    conn: std::sync::RwLock<Option<ClusterConnection>>,
    /// Held while a connection is being made, so only one is.
    making: tokio::sync::Mutex<()>,
}

impl Lazy {
    pub(super) fn new(client: redis::cluster::ClusterClient) -> Lazy {
        Lazy {
            client,
            conn: std::sync::RwLock::new(None),
            making: tokio::sync::Mutex::new(()),
        }
    }

    fn current(&self) -> Option<ClusterConnection> {
        let conn = self.conn.read().unwrap_or_else(|e| e.into_inner());
        conn.clone()
    }

    async fn get(&self) -> RedisResult<ClusterConnection> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let _making = self.making.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        let made = self.client.get_async_connection().await?;
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(made.clone());
        Ok(made)
    }

    /// Drops the connection: the next command makes a new one from the
    /// seed nodes (with nothing subscribed on it).
    pub(super) fn reset(&self) {
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A failed command's error, for a connection that is not there yet.
pub(super) fn not_connected(what: &'static str) -> redis::RedisError {
    std::io::Error::new(std::io::ErrorKind::NotConnected, what).into()
}

impl Conn {
    /// Whether room channels are sharded (SPUBLISH/SSUBSCRIBE).
    pub(super) fn sharded(&self) -> bool {
        matches!(self, Conn::Cluster(_))
    }

    /// Subscribes to `channel` (sharded on a cluster). The connection
    /// subscribes again by itself after a reconnect, a failover or a slot
    /// move.
    pub(super) async fn subscribe(&self, channel: &str) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.clone().subscribe(channel).await,
            Conn::Cluster(lazy) => lazy.get().await?.ssubscribe(channel).await,
            Conn::Sentinel(f) => f.subscribe(channel).await,
        }
    }

    /// Unsubscribes from `channel`.
    pub(super) async fn unsubscribe(&self, channel: &str) -> RedisResult<()> {
        match self {
            Conn::Single(c) => c.clone().unsubscribe(channel).await,
            Conn::Cluster(lazy) => lazy.get().await?.sunsubscribe(channel).await,
            Conn::Sentinel(f) => f.unsubscribe(channel).await,
        }
    }

    /// Publishes `payload` on `channel` (SPUBLISH on a cluster); returns how
    /// many subscribers received it (on a cluster: those of the channel's
    /// shard, which are all of them, since they subscribe there).
    pub(super) async fn publish(&self, channel: &str, payload: &str) -> RedisResult<u64> {
        let mut cmd = redis::cmd(if self.sharded() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        });
        cmd.arg(channel).arg(payload);
        cmd.query_async(&mut self.clone()).await
    }

    /// PING on every master (one server: the server), and on a cluster
    /// `cluster_state:ok`. Fails if any master does not answer or some slot
    /// has none: some rooms cannot be served then.
    pub(super) async fn ping(&self) -> RedisResult<()> {
        let cmd = redis::cmd("PING");
        match self {
            Conn::Cluster(lazy) => {
                let mut conn = lazy.get().await?;
                // Every master the cluster names, each by its address: a
                // master that just died is still named (its replica is not
                // promoted yet) and does not answer, so its rooms are known
                // to be unservable until the failover ends.
                for (host, port) in masters(&mut conn).await? {
                    let at =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    conn.route_command(cmd.clone(), at).await?;
                }
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query_async(&mut conn)
                    .await?;
                if info.lines().any(|l| l.trim_end() == "cluster_state:ok") {
                    Ok(())
                } else {
                    Err(not_connected("cluster_state is not ok"))
                }
            }
            _ => cmd.query_async::<Value>(&mut self.clone()).await.map(drop),
        }
    }

    /// The nodes that hold keys: every master of a cluster, or the one
    /// server. For commands that see one node's keys only (SCAN).
    pub(super) async fn key_nodes(&self) -> RedisResult<Vec<Node>> {
        match self {
            Conn::Cluster(lazy) => Ok(masters(&mut lazy.get().await?)
                .await?
                .into_iter()
                .map(|(host, port)| Node::At { host, port })
                .collect()),
            _ => Ok(vec![Node::Any]),
        }
    }

    /// Runs `cmd` on `node`.
    pub(super) async fn query_on<T: FromRedisValue>(
        &self,
        node: &Node,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        match (self, node) {
            (Conn::Cluster(lazy), Node::At { host, port }) => {
                let at = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let reply = lazy.get().await?.route_command(cmd.clone(), at).await?;
                redis::from_redis_value(reply).map_err(Into::into)
            }
            _ => cmd.query_async(&mut self.clone()).await,
        }
    }
}

/// A node to run a command on.
pub(super) enum Node {
    /// The one server (or wherever the connection routes it).
    Any,
    /// A cluster node.
    At { host: String, port: u16 },
}

/// The masters' addresses, from CLUSTER SLOTS (one entry per slot range:
/// start, end, then the master's host and port first).
async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let ranges: Vec<Vec<Value>> = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    let mut out: Vec<(String, u16)> = ranges
        .into_iter()
        .filter_map(|range| {
            let master: Vec<Value> = redis::from_redis_value(range.into_iter().nth(2)?).ok()?;
            let mut it = master.into_iter();
            let host: String = redis::from_redis_value(it.next()?).ok()?;
            let port: u16 = redis::from_redis_value(it.next()?).ok()?;
            Some((host, port))
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(lazy) => {
                let lazy = lazy.clone();
                Box::pin(async move { lazy.get().await?.req_packed_command(cmd).await })
            }
            Conn::Sentinel(f) => match f.current() {
                Some(mut c) => Box::pin(async move { c.req_packed_command(cmd).await }),
                None => Box::pin(async { Err(not_connected("no master known yet")) }),
            },
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(lazy) => {
                let lazy = lazy.clone();
                Box::pin(async move {
                    let mut conn = lazy.get().await?;
                    conn.req_packed_commands(pipeline, offset, count).await
                })
            }
            Conn::Sentinel(f) => match f.current() {
                Some(mut c) => {
                    Box::pin(async move { c.req_packed_commands(pipeline, offset, count).await })
                }
                None => Box::pin(async { Err(not_connected("no master known yet")) }),
            },
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(_) => 0,
            Conn::Sentinel(_) => 0,
        }
    }
}
