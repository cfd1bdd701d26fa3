//! The session's read path on arbitrary bytes: decode every frame in the
//! buffer and feed it to the assembler, as `session::Conn::parse` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ws_chat::frame::decode;
use ws_chat::inbound::{Assembler, Inbound};

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let mut assembler = Assembler::new(2048);
    let mut at = 0;
    while at < buf.len() {
        match decode(&mut buf[at..], assembler.budget()) {
            Ok(Some((frame, used))) => {
                assert!(used >= 6 && at + used <= data.len(), "frame past the buffer");
                assert!(frame.payload.len() <= 2048);
                at += used;
                match assembler.push(frame) {
                    Ok(Some(Inbound::Text(t))) => assert!(t.len() <= 2048),
                    Ok(Some(Inbound::Ping(p))) => assert!(p.len() <= 125),
                    Ok(Some(Inbound::Close(_))) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
