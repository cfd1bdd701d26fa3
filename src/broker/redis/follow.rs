//! Following the master that the Sentinels name (`redis_mode = "sentinel"`):
//! asking them where it is, moving every command and subscription there when
//! they name another one, and having the receiver backfill what the move
//! may have skipped.
//!
//! The Sentinels are asked every [`POLL`] (one command on a kept
//! connection). A failover is seen within that time of the Sentinels'
//! decision; meanwhile commands to the old master fail, each within the
//! broker's deadline, and `/readyz` says 503.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::RedisResult;
use tokio_util::sync::CancellationToken;

use super::conn::not_connected;
use super::receiver::Event;
use super::Shared;

/// How often the Sentinels are asked where the master is.
const POLL: Duration = Duration::from_millis(250);
/// Longest wait for one Sentinel's answer before the next one is asked.
const ASK_TIMEOUT: Duration = Duration::from_millis(500);

/// Builds a connection manager for a master at (host, port), with the
/// broker's TLS, password and push settings.
pub(super) type MakeManager =
    Box<dyn Fn(&str, u16) -> RedisResult<ConnectionManager> + Send + Sync>;

/// The master in use, and what to redo on the next one.
pub(super) struct Follower {
    sentinels: Vec<redis::Client>,
    master_name: String,
    make: MakeManager,
    current: RwLock<Option<Master>>,
    /// Every channel subscribed through this follower: a new master gets
    /// them all before it takes any command.
    channels: Mutex<BTreeSet<String>>,
    /// The Sentinel that answered last, kept connected.
    asking: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

struct Master {
    host: String,
    port: u16,
    conn: ConnectionManager,
}

impl Follower {
    pub(super) fn new(
        sentinels: Vec<redis::Client>,
        master_name: String,
        make: MakeManager,
    ) -> Follower {
        Follower {
            sentinels,
            master_name,
            make,
            current: RwLock::new(None),
            channels: Mutex::new(BTreeSet::new()),
            asking: tokio::sync::Mutex::new(None),
        }
    }

    /// The current master's connection, once the Sentinels have named one.
    pub(super) fn current(&self) -> Option<ConnectionManager> {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current.as_ref().map(|m| m.conn.clone())
    }

    fn channels(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Subscribes on the current master, and on every later one. Before the
    /// Sentinels have named a master this records the channel (the first
    /// master gets it before it takes any command) and fails.
    pub(super) async fn subscribe(&self, channel: &str) -> RedisResult<()> {
        self.channels().insert(channel.to_owned());
        match self.current() {
            Some(mut c) => c.subscribe(channel).await,
            // Recorded all the same. Not Ok: a success would mark the broker
            // up (and /readyz 200) before any master is known.
            None => Err(not_connected("no master known yet")),
        }
    }

    /// Unsubscribes here and forgets the channel.
    pub(super) async fn unsubscribe(&self, channel: &str) -> RedisResult<()> {
        self.channels().remove(channel);
        match self.current() {
            Some(mut c) => c.unsubscribe(channel).await,
            None => Ok(()),
        }
    }

    /// Where the Sentinels say the master is; `None` if none answers.
    async fn ask(&self) -> Option<(String, u16)> {
        let mut asking = self.asking.lock().await;
        let mut cmd = redis::cmd("SENTINEL");
        cmd.arg("get-master-addr-by-name").arg(&self.master_name);
        if let Some(conn) = asking.as_mut() {
            let reply = tokio::time::timeout(ASK_TIMEOUT, cmd.query_async(conn)).await;
            if let Ok(Ok(Some((host, port)))) = reply {
                return Some((host, port));
            }
            *asking = None;
        }
        for sentinel in &self.sentinels {
            let conn = sentinel.get_multiplexed_async_connection();
            let Ok(Ok(mut conn)) = tokio::time::timeout(ASK_TIMEOUT, conn).await else {
                continue;
            };
            let reply = tokio::time::timeout(ASK_TIMEOUT, cmd.query_async(&mut conn)).await;
            match reply {
                Ok(Ok(Some((host, port)))) => {
                    *asking = Some(conn);
                    return Some((host, port));
                }
                Ok(Ok(None)) => tracing::warn!(
                    master = %self.master_name,
                    "a sentinel does not know this master (broker.sentinel_master)"
                ),
                _ => {}
            }
        }
        None
    }

    /// Moves to the master at (host, port): a new connection, every
    /// channel subscribed on it, then it takes the commands.
    async fn switch(&self, host: String, port: u16) -> RedisResult<()> {
        let mut conn = (self.make)(&host, port)?;
        let mut done: BTreeSet<String> = BTreeSet::new();
        let all = self.channels().clone();
        subscribe_new(&mut conn, &all, &mut done).await?;
        {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            *current = Some(Master {
                host,
                port,
                conn: conn.clone(),
            });
        }
        // A channel subscribed while this ran went to the old master (or
        // was only recorded); from now on every subscribe finds this one.
        let all = self.channels().clone();
        subscribe_new(&mut conn, &all, &mut done).await
    }

    fn is_current(&self, host: &str, port: u16) -> bool {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .as_ref()
            .is_some_and(|m| m.host == host && m.port == port)
    }
}

/// Subscribes `conn` to each channel of `all` not in `done` yet.
async fn subscribe_new(
    conn: &mut ConnectionManager,
    all: &BTreeSet<String>,
    done: &mut BTreeSet<String>,
) -> RedisResult<()> {
    let new: Vec<String> = all.difference(done).cloned().collect();
    for channel in new {
        conn.subscribe(&channel).await?;
        done.insert(channel);
    }
    Ok(())
}

/// Asks the Sentinels every [`POLL`] and moves to the master they name.
pub(super) async fn run(shared: Arc<Shared>, follower: Arc<Follower>, stop: CancellationToken) {
    let mut said_none = false;
    loop {
        match follower.ask().await {
            Some((host, port)) if !follower.is_current(&host, port) => {
                let first = follower.current().is_none();
                match follower.switch(host.clone(), port).await {
                    Ok(()) if first => tracing::info!(%host, port, "sentinels name the master"),
                    Ok(()) => {
                        tracing::warn!(%host, port, "sentinels name a new master; moved to it");
                        shared.metrics.broker_master_changes.inc();
                        // What the old master took but never passed on is
                        // lost; what it did pass on is in the new master's
                        // logs: every room reads its log again.
                        let _ = shared.status.events.send(Event::Lost);
                        let _ = shared.status.events.send(Event::Resync);
                    }
                    Err(e) => {
                        tracing::warn!(%host, port, error = %e, "cannot use the named master yet")
                    }
                }
                said_none = false;
            }
            Some(_) => said_none = false,
            None if !said_none => {
                said_none = true;
                tracing::warn!(
                    "no sentinel answers (broker.redis_urls); /readyz stays 503 without a master"
                );
            }
            None => {}
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POLL) => {}
        }
    }
}
