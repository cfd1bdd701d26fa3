//! One connection's life: admitted by the gate, it joins the room of its
//! query string, runs the connection loop ([`conn`]) and leaves every room
//! it is in. Client messages are handled in [`message`], joins and leaves
//! in [`membership`], deletes in [`delete`], token refreshes in
//! [`refresh`], presence announcements in [`presence`],
//! the heartbeat's schedule in [`heartbeat`], `who` in [`who`],
//! and kicks and disconnects from the server API in [`control`].

mod conn;
pub mod control;
pub mod delete;
pub(crate) mod heartbeat;
pub mod membership;
pub mod message;
pub mod presence;
pub mod refresh;
pub mod who;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::net::TcpStream;

use self::conn::Conn;
use self::membership::Refused;
use crate::app::App;
use crate::auth::Credential;
use crate::auth::Lapsed;
use crate::broker::Since;
use crate::fanout::outbox::Outbox;
use crate::fanout::rooms::Member;
use crate::limits::{ConnectionSlot, IpKey};
use crate::protocol::close::CloseCode;
use crate::protocol::{event, ErrorCode};
use crate::ws::frame;

/// A request that may upgrade, with everything the session needs.
pub struct Admission {
    pub name: String,
    pub room: String,
    pub since: Since,
    pub credential: Credential,
    /// The identified user (`None` for guests) and when its token expires.
    pub user: Option<Arc<str>>,
    pub expires: Option<SystemTime>,
    /// The client offered `ws-chat.v2`: the answer selects it.
    pub subprotocol: bool,
    /// The client as the per-IP limits count it.
    pub ip: IpKey,
    /// Holds the connection's places under the caps until dropped.
    pub slot: ConnectionSlot,
}

/// Serves one upgraded connection until it closes.
///
/// Not an `async fn`: an async function keeps its arguments in its future
/// for the connection's whole life even once they are moved out, and the
/// future is what an idle connection costs. The setup runs here, before
/// the task exists, and the returned future holds only what the
/// connection needs while it lives.
pub fn run(
    app: Arc<App>,
    stream: TcpStream,
    tls: Option<Box<rustls::ServerConnection>>,
    leftover: Bytes,
    admission: Admission,
) -> impl std::future::Future<Output = ()> + Send {
    let Admission {
        name,
        room,
        since,
        credential,
        user,
        expires,
        subprotocol,
        ip,
        slot,
    } = admission;
    let member = Arc::new(Member::new(
        app.rooms.next_id(),
        name.into(),
        app.rooms.intern(&room),
        credential,
        user,
        Outbox::new(
            app.settings.session.outbound_queue,
            app.settings.session.slow_consumer_drops,
        ),
    ));
    if expires.is_some() {
        // The warning and the 4001 close come from the shared deadline
        // queue, not from a timer in this task.
        app.schedule_expiry(&member, expires);
    }
    app.metrics.accepted.inc();
    app.metrics.connections.inc();
    let limit = app.settings.limits.max_message_bytes;
    let session = &app.settings.session;
    let direct = session
        .direct_writes
        .then_some(session.direct_write_buffer as usize);
    let mut conn = Conn::new(&member, stream, tls, leftover, limit, direct);
    let client_id = uuid::Uuid::new_v4().to_string();
    let who = event::Identity {
        user: member.user.as_deref(),
        expires,
    };
    conn.send(frame::text(&event::system(&member.name, &client_id, who)));
    if subprotocol {
        member.mark_v2();
    }
    app.connections.register(&member);
    let limiter = app.limits.connection_limiter();
    // Boxed: needed only until the join is done, so it costs the idle
    // connection a pointer, not the whole resume position.
    let since = Box::new(since);

    async move {
        let home = member.home.clone();
        match Box::pin(membership::join(&app, &member, home.clone(), &since)).await {
            Ok(()) => {}
            // A version 2 client hears why and may join another room.
            Err(Refused::RoomFull) if member.speaks_v2() => {
                let max = app.settings.limits.max_text_chars;
                let error = event::error(Some(&home), ErrorCode::RoomFull, max);
                conn.send(frame::text(&error));
            }
            Err(refused) => member.outbox.request_close(match refused {
                Refused::Lapsed(Lapsed::Expired) => CloseCode::TokenExpired,
                // A reload took the room or the token away since the gate.
                Refused::Lapsed(Lapsed::Revoked) | Refused::Forbidden => CloseCode::Policy,
                _ => CloseCode::TryAgainLater,
            }),
        }
        drop(since);
        if app.is_draining() {
            member.outbox.request_close(CloseCode::GoingAway);
        }
        let outcome = conn.serve(&app, &member, &limiter, &ip).await;
        app.metrics.closed(outcome);
        app.metrics.connections.dec();
        app.deadlines.cancel(member.id);
        app.connections.unregister(member.id);
        drop(conn);
        Box::pin(membership::leave_all(&app, &member)).await;
        drop(slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credential;

    /// The connection's future is most of what an idle connection costs
    /// (docs/performance.md): an `await` that is not boxed, or an async fn
    /// argument kept for the whole life, shows here first. The bounds are
    /// the sizes measured when they were set, with a little room; the
    /// benchmark's idle-10000 scenario measures the whole cost.
    #[tokio::test]
    async fn an_idle_connection_future_stays_small() {
        let sources = crate::Sources::from_env([("CHAT_TOKEN", "t")]);
        let settings = crate::load_settings(&sources).expect("settings");
        let app = App::new(settings, sources).expect("app");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut sockets = Vec::new();
        for _ in 0..2 {
            let client = TcpStream::connect(addr).await.expect("connect");
            sockets.push((client, listener.accept().await.expect("accept").0));
        }
        let ((_c1, s1), (_c2, s2)) = (sockets.remove(0), sockets.remove(0));
        let ip = IpKey::new(std::net::Ipv4Addr::LOCALHOST.into(), 64);
        let credential = Credential::Static(crate::auth::digest("t"));
        let member = Arc::new(Member::new(
            1,
            "a".into(),
            "r".into(),
            credential.clone(),
            None,
            Outbox::new(8, 8),
        ));
        let limiter = app.limits.connection_limiter();
        let mut conn = Conn::new(&member, s1, None, Bytes::new(), 2048, Some(65536));
        let serve = std::mem::size_of_val(&conn.serve(&app, &member, &limiter, &ip));
        let admission = Admission {
            name: "a".into(),
            room: "r".into(),
            since: Since::default(),
            credential,
            user: None,
            expires: None,
            subprotocol: false,
            ip,
            slot: app.limits.admit(ip, None).expect("slot"),
        };
        let run = std::mem::size_of_val(&run(app.clone(), s2, None, Bytes::new(), admission));
        assert!(
            serve <= 384,
            "the connection loop's future is {serve} bytes"
        );
        // Up to 664 bytes tokio's task for it is a 768-byte allocation; past
        // that, 896 (measured for tokio 1.54 on x86_64).
        assert!(run <= 664, "a connection's future is {run} bytes");
    }
}
