//! Actions on connections wherever they are: a kick or a disconnect asked
//! through the server API reaches every replica. The broker only carries
//! them; each replica's session layer applies them to its own connections
//! (it reads [`ControlRequest`]s from the channel the broker was given) and
//! answers how many it reached.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use super::BrokerError;

/// How long a replica's answer to a control request is waited for.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// What to do to connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Control {
    /// `user`'s connections leave `room` (`left`, reason `kicked`).
    Kick { room: Arc<str>, user: Arc<str> },
    /// `user`'s connections close with 4003 and `reason`.
    Disconnect { user: Arc<str>, reason: Arc<str> },
}

/// A control action for this replica, and where to say how many
/// connections it reached.
pub struct ControlRequest {
    pub control: Control,
    pub done: oneshot::Sender<u64>,
}

/// Where a broker hands control actions to this replica's sessions.
pub type ControlSender = mpsc::UnboundedSender<ControlRequest>;

/// Applies `control` on this replica: hands it to the sessions and waits
/// (bounded) for their count.
pub async fn apply_here(tx: &ControlSender, control: Control) -> Result<u64, BrokerError> {
    let (done, answer) = oneshot::channel();
    tx.send(ControlRequest { control, done })
        .map_err(|_| BrokerError::Stopped)?;
    match tokio::time::timeout(ANSWER_TIMEOUT, answer).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(_)) => Err(BrokerError::Stopped),
        Err(_) => Err(BrokerError::Timeout),
    }
}
