//! Per-user limits: an identified user's open connections and its message
//! budget, shared by all of its connections wherever they come from.
//!
//! A user is the grant's `user` (a JWT's `sub`, a tokens-file `user`);
//! guests have none and only meet the per-connection and per-IP limits. The
//! maps are keyed by the user id and bounded like the per-IP ones: a user's
//! count of open connections exists only while it has one open, and its
//! message budget is forgotten by [`UserLimits::prune`] once it is full again.

use std::sync::Arc;

use super::open::{OpenPerKey, OpenSlot};
use super::{keyed, KeyedLimiter};
use crate::config::LimitSettings;

/// A user id, as the per-user limits count it (the grant's `Arc<str>`).
pub(crate) type UserKey = Arc<str>;

/// The per-user caps and budgets.
pub(crate) struct UserLimits {
    open: Arc<OpenPerKey<UserKey>>,
    messages: KeyedLimiter<UserKey>,
}

impl UserLimits {
    pub(crate) fn new(settings: &LimitSettings) -> UserLimits {
        UserLimits {
            open: OpenPerKey::new(settings.user_max_connections),
            messages: keyed(settings.user_message_burst, settings.user_message_refill),
        }
    }

    /// One more open connection for `user`, or `None` at its cap.
    pub(crate) fn try_open(&self, user: &UserKey) -> Option<OpenSlot<UserKey>> {
        self.open.try_open(user)
    }

    /// Counts one message against `user`'s budget; false when over it.
    pub(crate) fn message(&self, user: &UserKey) -> bool {
        self.messages.check_key(user).is_ok()
    }

    /// Forgets users whose budget is back to full, and frees the space.
    pub(crate) fn prune(&self) {
        self.messages.retain_recent();
        self.messages.shrink_to_fit();
    }

    /// Users held by the budget map and the open-connection counts.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.messages.len() + self.open.keys()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(burst: u32, refill: Duration, max: u32) -> UserLimits {
        let mut s = crate::load_settings(&crate::Sources::from_env([("CHAT_TOKEN", "t")]))
            .expect("default settings")
            .limits;
        (
            s.user_message_burst,
            s.user_message_refill,
            s.user_max_connections,
        ) = (burst, refill, max);
        UserLimits::new(&s)
    }

    fn user(id: &str) -> UserKey {
        Arc::from(id)
    }

    #[test]
    fn the_budget_is_per_user_whatever_arc_holds_the_id() {
        let l = limits(3, Duration::from_secs(60), 2);
        // Two connections of one user hold two different Arcs of the same id.
        let (a1, a2, b) = (user("ana"), user("ana"), user("bo"));
        assert_eq!((0..2).filter(|_| l.message(&a1)).count(), 2);
        assert_eq!((0..2).filter(|_| l.message(&a2)).count(), 1);
        assert_eq!((0..5).filter(|_| l.message(&b)).count(), 3);
    }

    #[test]
    fn the_connection_cap_is_per_user_and_released_on_drop() {
        let l = limits(3, Duration::from_secs(60), 2);
        let first = l.try_open(&user("ana")).expect("first");
        let _second = l.try_open(&user("ana")).expect("second");
        assert!(l.try_open(&user("ana")).is_none());
        let _other = l.try_open(&user("bo")).expect("another user");
        drop(first);
        let _third = l.try_open(&user("ana")).expect("a place was given back");
        assert!(l.try_open(&user("ana")).is_none());
    }

    #[test]
    fn users_are_forgotten_once_idle_and_their_connections_closed() {
        let l = limits(2, Duration::from_millis(200), 5);
        let held = l.try_open(&user("ana")).expect("open");
        for id in ["ana", "bo", "cy"] {
            assert!(l.message(&user(id)));
        }
        assert_eq!(l.tracked(), 4, "three budgets and one open count");
        l.prune();
        assert_eq!(l.tracked(), 4, "budgets not yet full again are kept");
        // governor forgets a key one refill after it is full again.
        std::thread::sleep(Duration::from_millis(600));
        l.prune();
        assert_eq!(l.tracked(), 1, "refilled budgets are pruned");
        drop(held);
        assert_eq!(l.tracked(), 0, "a user without connections has no count");
    }
}
