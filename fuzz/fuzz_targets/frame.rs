//! The session's read path on arbitrary bytes, through the real decoder the
//! connection uses (`ws::inbound::Decoder`), fed in reads of varying size:
//! what a client can make a connection hold or produce.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_chat::ws::inbound::{Decoder, Inbound};

const LIMIT: usize = 2048;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    // Reads of 1..=256 bytes: frames arrive whole, split, or many at once.
    let chunk = usize::from(split) + 1;
    let mut decoder = Decoder::new(LIMIT, Vec::new());
    for piece in bytes.chunks(chunk) {
        let got = decoder.feed(&mut piece.to_vec());
        for unit in &got.units {
            match unit {
                Inbound::Text(t) => assert!(t.len() <= LIMIT),
                Inbound::Ping(p) => assert!(p.len() <= 125),
                Inbound::Pong | Inbound::Close(_) => {}
            }
        }
        let closed = got.units.iter().any(|u| matches!(u, Inbound::Close(_)));
        if got.violation.is_some() || closed {
            return;
        }
    }
});
