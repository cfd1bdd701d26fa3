//! RFC 6455 on a socket: frames, message assembly, reads and vectored writes.

pub mod frame;
pub mod inbound;
pub mod transport;
