//! Joiners of one room on one replica share its latest-history read: a
//! reconnect storm costs Redis a couple of reads, not one per member, and
//! every joiner still gets the whole history and each later message once.

mod common;

use std::time::Duration;

use common::redis::RedisServer;
use common::{wait_readyz, TestServer};

/// Joiners that arrive while Redis is stalled.
const JOINERS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_during_a_read_share_the_next_one_and_lose_nothing() {
    let r = RedisServer::start();
    let env = r.env();
    let s = TestServer::start(&common::redis::as_vars(&env)).await;
    wait_readyz(s.admin, 200, Duration::from_secs(5)).await;
    let (mut speaker, _) = s.join("name=speaker&room=storm").await;
    for i in 0..5 {
        speaker.say(&format!("before {i}")).await;
        speaker.next_message().await;
    }
    // Redis stalls (under the 1 s deadline of each call) while the joiners
    // arrive: the first one's read waits on it, the rest queue behind it.
    let stall = r.stall(0.5);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let joins = (0..JOINERS).map(|i| {
        let s = &s;
        async move { s.join(&format!("name=j{i}&room=storm")).await }
    });
    let mut joiners = futures_util::future::join_all(joins).await;
    stall.await.expect("the stall");
    for (i, (_, history)) in joiners.iter().enumerate() {
        let texts: Vec<&str> = history["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("j{i}: {history}"))
            .iter()
            .filter_map(|m| m["text"].as_str())
            .collect();
        let want: Vec<String> = (0..5).map(|k| format!("before {k}")).collect();
        assert_eq!(texts, want, "j{i}'s history");
    }
    let shared = s.metric("wschat_history_reads_shared_total").await;
    assert!(
        shared >= (JOINERS / 2) as f64,
        "{JOINERS} joiners during one stalled read shared only {shared} reads"
    );
    // Live from there on, once each: a message doubled would come before
    // "final".
    speaker.say("after").await;
    speaker.say("final").await;
    for (i, (c, _)) in joiners.iter_mut().enumerate() {
        for want in ["after", "final"] {
            let m = c.next_message().await;
            assert_eq!(m["text"], want, "j{i}: {m}");
        }
    }
}
