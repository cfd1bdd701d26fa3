//! Where connections arrive: the HTTP listeners (TLS included) and the upgrade decision.

pub mod credentials;
pub mod gate;
pub mod http;
