//! Where connections arrive: the HTTP listeners (TLS included), the client's
//! address, and the upgrade decision.

pub mod address;
pub mod credentials;
pub mod gate;
pub mod http;
