//! Server-wide tasks: settings reload, the shutdown drain, the heap trim.

pub mod heap;
pub mod reload;
pub mod shutdown;
