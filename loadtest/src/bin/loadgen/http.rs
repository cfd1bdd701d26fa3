//! api-publish's callers: each POSTs messages into the room through the
//! server API over one keep-alive HTTP/1.1 connection (hyper 1), paced or
//! closed-loop, and counts statuses and call latencies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::{interval_at, Interval, MissedTickBehavior};

use crate::conn::Shared;
use crate::stats::{Counters, Latency};

/// What the callers count together.
pub struct ApiStats {
    /// Call latency (request written to response body read), measured window.
    pub latency: Latency,
    /// Every answer by status ("201", ...; "transport" for a failed call),
    /// warm-up included: any answer but 201 is an error.
    pub statuses: Mutex<BTreeMap<String, u64>>,
    /// Calls started inside the measured window, and those answered 201.
    pub requests_measured: AtomicU64,
    pub created_measured: AtomicU64,
    /// New connections after the first, one per caller.
    pub reconnects: AtomicU64,
}

impl ApiStats {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            latency: Latency::new()?,
            statuses: Mutex::new(BTreeMap::new()),
            requests_measured: AtomicU64::new(0),
            created_measured: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
        })
    }

    /// Answers other than 201, failed calls included.
    pub fn errors(&self) -> u64 {
        let map = self.statuses.lock().map(|m| m.clone()).unwrap_or_default();
        map.iter()
            .filter(|(k, _)| *k != "201")
            .map(|(_, n)| n)
            .sum()
    }
}

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("api connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("nodelay: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("api handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The message body: the send time (µs since `Shared::base`) last, where
/// the watchers read it (`events::stamp_us`).
pub fn body(caller: usize, seq: u64, stamp: u64) -> String {
    format!(r#"{{"text":"lg|api|{caller}|{seq}|{stamp}"}}"#)
}

/// One call; the status, or why there was none.
async fn call(sender: &mut Sender, request: Request<Full<Bytes>>) -> Result<u16, String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("api connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("api request: {e}"))?;
    let status = response.status().as_u16();
    response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("api response body: {e}"))?;
    Ok(status)
}

async fn tick(ticker: &mut Option<Interval>) {
    if let Some(t) = ticker {
        t.tick().await;
    }
}

/// Caller `index` of `--callers`: from `publish_from` until `measure_until`,
/// one call at a time, every `callers / rate` seconds (open loop: late ticks
/// are made up at once) or, with `--rate 0`, back to back.
pub async fn caller(shared: Arc<Shared>, stats: Arc<ApiStats>, index: usize, room: String) {
    let a = &shared.args;
    let Some(addr) = a.api else { return };
    let path = format!("/api/v1/rooms/{room}/messages");
    let host = addr.to_string();
    let auth = format!("Bearer {}", a.api_key);
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut batch: Vec<u64> = Vec::with_capacity(256);
    let (mut requests, mut created) = (0u64, 0u64);
    let mut sender = match connect(addr).await {
        Ok(s) => Some(s),
        Err(e) => {
            shared.counters.failure(e);
            None
        }
    };
    tokio::select! {
        _ = shared.stop.cancelled() => return,
        _ = shared.go.cancelled() => {}
    }
    let start = shared.instant_at(shared.publish_from.load(Relaxed));
    let mut ticker = (a.rate > 0.0).then(|| {
        let period = Duration::from_secs_f64(a.callers as f64 / a.rate);
        let phase = period.mul_f64(index as f64 / a.callers as f64);
        let mut t = interval_at(start + phase, period);
        t.set_missed_tick_behavior(MissedTickBehavior::Burst);
        t
    });
    if ticker.is_none() {
        tokio::time::sleep_until(start).await;
    }
    let (from, until) = (
        shared.measure_from.load(Relaxed),
        shared.measure_until.load(Relaxed),
    );
    let mut seq = 0u64;
    loop {
        tokio::select! {
            biased;
            _ = shared.stop.cancelled() => break,
            _ = tick(&mut ticker) => {}
        }
        if shared.now_us() >= until {
            break;
        }
        let s = match sender.take() {
            Some(s) if !s.is_closed() => Some(s),
            _ => {
                stats.reconnects.fetch_add(1, Relaxed);
                connect(addr)
                    .await
                    .map_err(|e| shared.counters.failure(e))
                    .ok()
            }
        };
        let Some(mut s) = s else {
            *statuses.entry("transport".into()).or_insert(0) += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        seq += 1;
        // The send time: in the text for the watchers, and the call's start.
        let stamp = shared.now_us();
        let request = Request::post(path.as_str())
            .header(HOST, host.as_str())
            .header(AUTHORIZATION, auth.as_str())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body(index, seq, stamp))));
        let Ok(request) = request else {
            shared.counters.failure("api: building the request".into());
            break;
        };
        let result = call(&mut s, request).await;
        let took = shared.now_us().saturating_sub(stamp);
        let measured = (from..until).contains(&stamp);
        match result {
            Ok(status) => {
                *statuses.entry(status.to_string()).or_insert(0) += 1;
                if measured && status == 201 {
                    created += 1;
                }
                sender = Some(s);
            }
            Err(e) => {
                *statuses.entry("transport".into()).or_insert(0) += 1;
                shared.counters.failure(e);
            }
        }
        if measured {
            requests += 1;
            batch.push(took);
            if batch.len() == batch.capacity() {
                stats.latency.record_batch(&mut batch);
            }
        }
    }
    stats.latency.record_batch(&mut batch);
    Counters::add(&stats.requests_measured, requests);
    Counters::add(&stats.created_measured, created);
    if let Ok(mut all) = stats.statuses.lock() {
        for (k, n) in statuses {
            *all.entry(k).or_insert(0) += n;
        }
    }
}
