//! The heartbeat: every connection is pinged once per interval, one that
//! answers stays, one that never does is cut.

mod common;

use std::time::{Duration, Instant};

use common::{Raw, TestServer};

#[tokio::test]
async fn a_client_that_never_answers_pings_is_terminated_by_the_heartbeat() {
    let s = TestServer::start(&[("CHAT__SESSION__HEARTBEAT_INTERVAL", "200ms")]).await;
    let mut silent = Raw::connect(s.addr, "room=hb").await; // never reads, never pongs
    let (mut alive, _) = s.join("room=hb").await;
    // tungstenite answers pings while it reads: keep this one reading meanwhile.
    let reader = tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(1500);
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut alive.ws)).await
        {
        }
        alive
    });
    let started = Instant::now();
    // The silent one gets a ping, then is cut without a close frame by the next tick.
    let mut saw_ping = false;
    loop {
        match silent.read_frame().await {
            Some((9, _)) => saw_ping = true,
            Some(_) => {}
            None => break,
        }
    }
    assert!(saw_ping);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut alive = reader.await.unwrap();
    assert_eq!(s.metric("wschat_heartbeat_timeouts_total").await, 1.0);
    alive.say("still here").await;
    assert_eq!(alive.next_message().await["text"], "still here");
    s.stop().await;
}

#[tokio::test]
async fn every_connection_is_pinged_each_interval_and_those_that_answer_stay() {
    let s = TestServer::start(&[("CHAT__SESSION__HEARTBEAT_INTERVAL", "300ms")]).await;
    let mut clients = Vec::new();
    for i in 0..40 {
        clients.push(Raw::connect(s.addr, &format!("room=hb{}", i % 4)).await);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_millis(1600);
    let readers = clients.into_iter().map(|mut raw| {
        tokio::spawn(async move {
            let mut pings = 0;
            loop {
                match tokio::time::timeout_at(deadline, raw.read_frame()).await {
                    Ok(Some((9, payload))) => {
                        pings += 1;
                        raw.frame(true, 0xA, &payload).await;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => return (pings, false),
                    Err(_) => return (pings, true),
                }
            }
        })
    });
    for reader in readers.collect::<Vec<_>>() {
        let (pings, open) = reader.await.unwrap();
        assert!(open, "an answering connection was cut");
        // 1.6 s at 300 ms: the first within 300 ms, then one per interval.
        assert!((3..=7).contains(&pings), "{pings} pings in 1.6 s");
    }
    assert_eq!(s.metric("wschat_heartbeat_timeouts_total").await, 0.0);
    assert!(s.metric("wschat_heartbeat_pongs_total").await >= 120.0);
    s.stop().await;
}
