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
pub async fn run(
    app: Arc<App>,
    stream: TcpStream,
    tls: Option<Box<rustls::ServerConnection>>,
    leftover: Bytes,
    admission: Admission,
) {
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
    {
        // Scoped so that it is not kept in the future across the awaits.
        let client_id = uuid::Uuid::new_v4().to_string();
        let who = event::Identity {
            user: member.user.as_deref(),
            expires,
        };
        conn.send(frame::text(&event::system(&member.name, &client_id, who)));
    }

    let joined = app.rooms.join(&member);
    Box::pin(enter(&app, &member, &joined, &since, &mut conn)).await;

    let limiter = app.limits.connection_limiter();
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
    since: &Since,
    conn: &mut Conn,
) {
    let mut ended = None;
    if let Err(e) = app.broker.watch(&member.room).await {
        // Counted once per failed subscription, by the broker.
        tracing::warn!(error = %e, "room not carried; closing with 1013");
        ended = Some(CloseCode::TryAgainLater);
    } else {
        match app.broker.history(&member.room, since).await {
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
