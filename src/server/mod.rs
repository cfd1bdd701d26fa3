//! Server-wide tasks: settings reload, JWKS refresh, the shutdown drain,
//! the heap trim.

pub mod heap;
pub mod jwks;
pub mod reload;
pub mod shutdown;
