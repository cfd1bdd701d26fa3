//! Kicks and disconnects on this replica's connections, asked through the
//! server API and carried here by the broker (from any replica).
//!
//! A kick makes each of the user's connections in the room leave it
//! (`left`, reason `kicked`); a version 1 connection, which knows no `left`,
//! is closed with 4003 instead. A disconnect closes every connection of the
//! user with 4003 and the given reason. Nothing stops the user from coming
//! back while its grant allows it: take the grant away to keep it out.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::membership;
use crate::app::App;
use crate::broker::{Control, ControlRequest};
use crate::metrics::LeaveReason;
use crate::protocol::close::CloseCode;

/// Most bytes of a close reason (a close frame's payload is at most 125
/// bytes, two of them the code).
const MAX_REASON_BYTES: usize = 123;

/// Applies control requests until the channel closes (the server stops).
pub async fn run(app: Arc<App>, mut requests: mpsc::UnboundedReceiver<ControlRequest>) {
    while let Some(request) = requests.recv().await {
        let n = apply(&app, &request.control);
        let _ = request.done.send(n);
    }
}

/// Applies `control` to the local connections it names; returns how many.
pub fn apply(app: &Arc<App>, control: &Control) -> u64 {
    let mut reached = 0;
    match control {
        Control::Kick { room, user } => {
            for m in app.connections.all() {
                if m.user.as_deref() != Some(&**user) || !m.holds(room) {
                    continue;
                }
                reached += 1;
                if !m.speaks_v2() {
                    app.connections
                        .set_close_reason(m.id, "removed from the room".into());
                    m.outbox.request_close(CloseCode::Disconnected);
                    continue;
                }
                let (app, room) = (app.clone(), room.clone());
                app.tasks.clone().spawn(async move {
                    membership::leave(&app, &m, &room, LeaveReason::Kicked).await;
                });
            }
        }
        Control::Disconnect { user, reason } => {
            let reason: Arc<str> = truncate(reason, MAX_REASON_BYTES).into();
            for m in app.connections.all() {
                if m.user.as_deref() != Some(&**user) {
                    continue;
                }
                reached += 1;
                if !reason.is_empty() {
                    app.connections.set_close_reason(m.id, reason.clone());
                }
                m.outbox.request_close(CloseCode::Disconnected);
            }
        }
    }
    reached
}

/// The longest prefix of `text` of at most `max` bytes, cut on a character
/// boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn reasons_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("abc", 123), "abc");
        let long = "é".repeat(100);
        let cut = truncate(&long, 123);
        assert_eq!(cut.len(), 122);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
