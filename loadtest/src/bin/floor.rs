//! floor: the least a fastwebsockets chat can do, for the benchmark's "floor"
//! column. hyper 1 upgrade on /chat, rooms from `?room=`, every text frame
//! broadcast as is to the room. No auth, validation, limits, history or
//! metrics. Not part of the service.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fastwebsockets::{upgrade, FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError};
use http_body_util::Empty;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::BufWriter;
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

/// What a connection's writer sends: a broadcast payload, or a control frame
/// (pong, close echo) the reader owes the peer.
enum Out {
    Text(Bytes),
    Control(OpCode, Vec<u8>),
}

#[derive(Default)]
struct Rooms {
    next_id: AtomicU64,
    // A std Mutex: nothing awaits while it is held.
    rooms: Mutex<HashMap<String, HashMap<u64, UnboundedSender<Out>>>>,
}

impl Rooms {
    /// Adds a member and returns (id, members now in the room).
    fn join(&self, room: &str, tx: UnboundedSender<Out>) -> (u64, usize) {
        let id = self.next_id.fetch_add(1, Relaxed);
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        let members = rooms.entry(room.to_string()).or_default();
        members.insert(id, tx);
        (id, members.len())
    }

    fn leave(&self, room: &str, id: u64) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(members) = rooms.get_mut(room) {
            members.remove(&id);
            if members.is_empty() {
                rooms.remove(room);
            }
        }
    }

    fn broadcast(&self, room: &str, payload: &Bytes) {
        let rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(members) = rooms.get(room) {
            for tx in members.values() {
                let _ = tx.send(Out::Text(payload.clone()));
            }
        }
    }
}

fn room_of(req: &Request<hyper::body::Incoming>) -> String {
    req.uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("room=")))
        .filter(|r| !r.is_empty() && r.len() <= 32)
        .unwrap_or("lobby")
        .to_string()
}

async fn handle(
    rooms: Arc<Rooms>,
    mut req: Request<hyper::body::Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let status = |code| {
        let mut r = Response::new(Empty::new());
        *r.status_mut() = code;
        Ok(r)
    };
    if req.uri().path() != "/chat" {
        return status(StatusCode::NOT_FOUND);
    }
    let room = room_of(&req);
    let Ok((response, fut)) = upgrade::upgrade(&mut req) else {
        return status(StatusCode::BAD_REQUEST);
    };
    tokio::spawn(async move {
        match fut.await {
            Ok(ws) => session(rooms, room, ws).await,
            Err(e) => eprintln!("floor: upgrade failed: {e}"),
        }
    });
    Ok(response)
}

async fn session(
    rooms: Arc<Rooms>,
    room: String,
    ws: fastwebsockets::WebSocket<TokioIo<hyper::upgrade::Upgraded>>,
) {
    let (read, mut write) = ws.split(|s| {
        let (r, w) = tokio::io::split(s);
        (r, BufWriter::with_capacity(16 * 1024, w))
    });
    let mut read = FragmentCollectorRead::new(read);
    let (tx, mut rx) = unbounded_channel::<Out>();
    let (id, online) = rooms.join(&room, tx.clone());
    // The events loadgen (and any ws-chat client) waits for on connect.
    let hello = format!(r#"{{"type":"system","message":"connected as floor","clientId":"{id}"}}"#);
    let _ = tx.send(Out::Text(Bytes::from(hello)));
    let _ = tx.send(Out::Text(Bytes::from_static(
        br#"{"type":"history","messages":[]}"#,
    )));
    let presence = format!(r#"{{"type":"presence","message":"floor joined","online":{online}}}"#);
    rooms.broadcast(&room, &Bytes::from(presence));

    // Writer: drain whatever is queued, then one flush (one write syscall).
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(out) = next {
                let frame = match &out {
                    Out::Text(b) => Frame::text(Payload::Borrowed(b)),
                    Out::Control(op, data) => Frame::new(true, *op, None, Payload::Borrowed(data)),
                };
                write.write_frame(frame).await?;
                next = rx.try_recv().ok();
            }
            write.flush().await?;
        }
        Ok::<(), WebSocketError>(())
    });

    let control = tx.clone();
    let mut owed = move |frame: Frame<'_>| {
        let sent = control.send(Out::Control(frame.opcode, frame.payload.to_vec()));
        async move { sent.map_err(|_| "writer gone") }
    };
    loop {
        match read.read_frame(&mut owed).await {
            Ok(frame) if frame.opcode == OpCode::Text => {
                rooms.broadcast(&room, &Bytes::copy_from_slice(&frame.payload));
            }
            Ok(frame) if frame.opcode == OpCode::Close => break,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    rooms.leave(&room, id);
    drop(owed);
    drop(tx);
    // The writer ends once every sender (ours and the room's) is gone.
    let _ = writer.await;
}

fn main() -> std::process::ExitCode {
    let mut addr = SocketAddr::from(([127, 0, 0, 1], 8092));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let parsed = match (flag.as_str(), args.next()) {
            ("--listen", Some(v)) => v.parse().map(|a| addr = a).map_err(|e| format!("{e}")),
            _ => Err("usage: floor [--listen 127.0.0.1:8092]".to_string()),
        };
        if let Err(e) = parsed {
            eprintln!("floor: {e}");
            return std::process::ExitCode::from(2);
        }
    }
    if let Err(e) = rlimit::increase_nofile_limit(1 << 20) {
        eprintln!("floor: could not raise RLIMIT_NOFILE: {e}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("floor: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(addr)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(addr: SocketAddr) -> Result<(), String> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    println!("floor listening on {addr}");
    let rooms = Arc::new(Rooms::default());
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("floor: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let rooms = rooms.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(rooms.clone(), req));
            let conn = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let _ = conn.await;
        });
    }
}
