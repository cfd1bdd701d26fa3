//! One connection's life: admitted by the gate, it joins its room, runs the
//! connection loop ([`conn`]) and leaves; client messages are handled in
//! [`message`] (token refreshes in [`refresh`]), presence announcements in
//! [`presence`].

mod conn;
pub mod message;
pub mod presence;
pub mod refresh;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::net::TcpStream;

use self::conn::Conn;
use self::presence::Change;
use crate::app::App;
use crate::auth::Credential;
use crate::broker::{Broker, Since};
use crate::fanout::deadlines::Expiry;
use crate::fanout::outbox::Outbox;
use crate::fanout::rooms::{Joined, Member};
use crate::limits::{ConnectionSlot, IpKey};
use crate::metrics::BrokerOp;
use crate::protocol::close::CloseCode;
use crate::protocol::event;
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
        ip,
        slot,
        ..
    } = admission;
    let member = Arc::new(Member::new(
        app.rooms.next_id(),
        name.into(),
        room.into(),
        credential,
        user,
        Outbox::new(
            app.settings.session.outbound_queue,
            app.settings.session.slow_consumer_drops,
        ),
    ));
    if let Some(at) = expires {
        // The warning and the 4001 close come from the shared deadline
        // queue, not from a timer in this task.
        let expiry = Expiry::new(at, app.settings.auth.expiry_warning, app.auth.jwt.leeway());
        app.deadlines.schedule(&member, expiry);
    }
    app.metrics.accepted.inc();
    app.metrics.connections.inc();
    let mut conn = Conn::new(stream, tls, leftover, app.settings.limits.max_message_bytes);
    let client_id = uuid::Uuid::new_v4().to_string();
    let who = event::Identity {
        user: member.user.as_deref(),
        expires,
    };
    conn.send(frame::text(&event::system(&member.name, &client_id, who)));
    let joined = app.rooms.join(&member);
    let limiter = app.limits.connection_limiter();
    // Boxed: needed only until the join is done, so it costs the idle
    // connection a pointer, not the whole resume position.
    let since = Box::new(since);

    async move {
        Box::pin(enter(&app, &member, &joined, since, &mut conn)).await;
        let outcome = conn.serve(&app, &member, &limiter, ip).await;
        app.metrics.closed(outcome);
        app.metrics.connections.dec();
        app.deadlines.cancel(member.id);
        drop(conn);

        let last = app.rooms.leave(&member);
        Box::pin(presence::announce(
            &app,
            &joined.room,
            Change::Left(member.name.clone()),
        ))
        .await;
        if last {
            app.broker.unwatch(&member.room);
        }
        drop(slot);
    }
}

/// The join: carry the room here, queue its history, make the member live,
/// announce it. A broker failure closes the connection with 1013 (retry).
///
/// Every joiner waits for the room to be carried before it reads history,
/// not only the room's first local member: a history read before that could
/// end before messages this replica will never deliver.
async fn enter(
    app: &Arc<App>,
    member: &Arc<Member>,
    joined: &Joined,
    since: Box<Since>,
    conn: &mut Conn,
) {
    let mut ended = None;
    if let Err(e) = app.broker.watch(&member.room).await {
        // Counted once per failed subscription, by the broker.
        tracing::warn!(error = %e, "room not carried; closing with 1013");
        ended = Some(CloseCode::TryAgainLater);
    } else {
        match app.broker.history(&member.room, &since).await {
            Ok(history) => {
                let json = event::history(history.messages.iter().map(|m| &**m), &history.epoch);
                conn.send(frame::text(&json));
                app.rooms.activate(&joined.room, member, history.last_seq);
            }
            Err(e) => {
                app.metrics.broker_error(BrokerOp::History);
                tracing::warn!(error = %e, "history unavailable");
                ended = Some(CloseCode::TryAgainLater);
            }
        }
    }
    presence::announce(app, &joined.room, Change::Joined(member.name.clone())).await;
    if app.is_draining() {
        member.outbox.request_close(CloseCode::GoingAway);
    }
    if let Some(code) = ended {
        member.outbox.request_close(code);
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
        let mut conn = Conn::new(s1, None, Bytes::new(), 2048);
        let serve = std::mem::size_of_val(&conn.serve(&app, &member, &limiter, ip));
        let admission = Admission {
            name: "a".into(),
            room: "r".into(),
            since: Since::default(),
            credential,
            user: None,
            expires: None,
            subprotocol: false,
            ip,
            slot: app.limits.admit(ip).expect("slot"),
        };
        let run = std::mem::size_of_val(&run(app.clone(), s2, None, Bytes::new(), admission));
        assert!(
            serve <= 512,
            "the connection loop's future is {serve} bytes"
        );
        assert!(run <= 896, "a connection's future is {run} bytes");
    }
}
