//! A `refresh`: a new token for the connection's own user, checked like a
//! token at the upgrade. When it is accepted the connection's grant, its
//! expiry and its deadlines follow the new token, rooms it no longer allows
//! are left, and the socket stays open.

use std::sync::Arc;
use std::time::SystemTime;

use super::membership;
use crate::app::App;
use crate::auth::Grant;
use crate::fanout::rooms::Member;
use crate::limits::IpKey;
use crate::metrics::LeaveReason;

/// Applies `token` to `member`'s connection: `Some(when the new token
/// expires)` (`Some(None)`: it does not), or `None` when it is refused and
/// the connection keeps its old token and its old end. A refused token
/// counts as a failed token check of `ip`, like one refused at the upgrade.
pub async fn apply(
    app: &Arc<App>,
    member: &Arc<Member>,
    ip: IpKey,
    token: &str,
) -> Option<Option<SystemTime>> {
    let grant = check(app, member, ip, token)?;
    for room in member.rooms() {
        if !grant.admits(&room) {
            membership::leave(app, member, &room, LeaveReason::Forbidden).await;
        }
    }
    Some(grant.expires)
}

fn check(app: &App, member: &Arc<Member>, ip: IpKey, token: &str) -> Option<Arc<Grant>> {
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
    app.schedule_expiry(member, grant.expires);
    Some(grant)
}
