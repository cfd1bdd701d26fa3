//! A `refresh`: a new token for the connection's own user, checked like a
//! token at the upgrade. When it is accepted the connection's grant, its
//! expiry and its deadlines follow the new token, and the socket stays open.

use std::sync::Arc;
use std::time::SystemTime;

use crate::app::App;
use crate::fanout::deadlines::Expiry;
use crate::fanout::rooms::Member;
use crate::limits::IpKey;

/// An accepted refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// When the new token expires (`None`: it does not).
    pub expires: Option<SystemTime>,
    /// The new token no longer allows the connection's room.
    pub room_lost: bool,
}

/// Applies `token` to `member`'s connection, or refuses it (`None`: the
/// connection keeps its old token and its old end). A refused token counts
/// as a failed token check of `ip`, like one refused at the upgrade.
pub fn apply(app: &App, member: &Arc<Member>, ip: IpKey, token: &str) -> Option<Refreshed> {
    // A guest has no user to refresh, and a locked-out address's tokens
    // are not looked at (as at the upgrade).
    let user = member.user.as_deref()?;
    if app.limits.auth_locked_out(ip).is_some() {
        return None;
    }
    let Some((credential, grant)) = app.authenticate(token) else {
        app.limits.auth_failed(ip);
        return None;
    };
    // Another user's valid token is not a guess, but it is not this
    // connection's either: refused, without counting against the address.
    if grant.user.as_deref() != Some(user) {
        return None;
    }
    member.set_credential(credential);
    match grant.expires {
        Some(expires) => app.deadlines.schedule(
            member,
            Expiry::new(
                expires,
                app.settings.auth.expiry_warning,
                app.auth.jwt.leeway(),
            ),
        ),
        None => app.deadlines.cancel(member.id),
    }
    Some(Refreshed {
        expires: grant.expires,
        room_lost: !grant.admits(&member.room),
    })
}
