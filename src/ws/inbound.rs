//! Client bytes → client messages: frame decoding across reads, fragment
//! reassembly under the message size cap, UTF-8 checks, and the control
//! frames a session must answer.

use crate::protocol::close::CloseCode;
use crate::ws::frame::{self, Frame, Opcode};

/// What a client sent, one complete unit at a time.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A complete, valid UTF-8 text message.
    Text(String),
    /// A ping; the payload is owed back in a pong.
    Ping(Vec<u8>),
    Pong,
    /// The client is closing, with this code (none if it sent none).
    Close(Option<u16>),
}

/// Reassembles fragmented messages, capped on their total size.
pub struct Assembler {
    limit: usize,
    fragments: Option<Vec<u8>>,
}

impl Assembler {
    /// `limit` is the largest message in bytes, however it is fragmented.
    pub fn new(limit: usize) -> Assembler {
        Assembler {
            limit,
            fragments: None,
        }
    }

    /// What a data frame may still carry before the message is too big.
    pub fn budget(&self) -> usize {
        self.limit - self.fragments.as_ref().map_or(0, Vec::len)
    }

    /// Takes one frame; returns a complete unit, or the close code owed.
    pub fn push(&mut self, f: Frame<'_>) -> Result<Option<Inbound>, CloseCode> {
        match f.opcode {
            Opcode::Ping => Ok(Some(Inbound::Ping(f.payload.to_vec()))),
            Opcode::Pong => Ok(Some(Inbound::Pong)),
            Opcode::Close => Ok(Some(Inbound::Close(frame::parse_close(f.payload)?))),
            Opcode::Binary => Err(CloseCode::Unsupported),
            Opcode::Text if self.fragments.is_some() => Err(CloseCode::Protocol),
            Opcode::Text if f.fin => text(f.payload.to_vec()).map(Some),
            Opcode::Text => {
                self.fragments = Some(f.payload.to_vec());
                Ok(None)
            }
            Opcode::Continuation => {
                let Some(buf) = self.fragments.as_mut() else {
                    return Err(CloseCode::Protocol);
                };
                if buf.len() + f.payload.len() > self.limit {
                    return Err(CloseCode::TooBig);
                }
                buf.extend_from_slice(f.payload);
                if !f.fin {
                    return Ok(None);
                }
                let whole = self.fragments.take().unwrap_or_default();
                text(whole).map(Some)
            }
        }
    }
}

/// Everything a read produced: complete units, then the close code owed if
/// the bytes broke a rule (units before the violation still count).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Decoded {
    pub units: Vec<Inbound>,
    pub violation: Option<CloseCode>,
}

/// The read side of one connection: bytes in, [`Inbound`] units out. Keeps
/// only the bytes of a frame that has not fully arrived between reads.
pub struct Decoder {
    partial: Vec<u8>,
    assembler: Assembler,
}

impl Decoder {
    /// `limit` is the largest message in bytes; `early` are bytes that
    /// arrived before the session started (with the upgrade request).
    pub fn new(limit: usize, early: Vec<u8>) -> Decoder {
        Decoder {
            partial: early,
            assembler: Assembler::new(limit),
        }
    }

    /// Whether bytes are waiting to be decoded (or completed by a read).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty()
    }

    /// Decodes every complete frame in what was kept plus `fresh`
    /// (unmasking in place, so a read that holds whole frames is never
    /// copied), and keeps the rest. Stops after a close frame.
    pub fn feed(&mut self, fresh: &mut [u8]) -> Decoded {
        let mut out = Decoded::default();
        let mut partial = std::mem::take(&mut self.partial);
        let buf: &mut [u8] = if partial.is_empty() {
            fresh
        } else {
            partial.extend_from_slice(fresh);
            &mut partial
        };
        let mut at = 0;
        out.violation = loop {
            match frame::decode(&mut buf[at..], self.assembler.budget()) {
                Ok(Some((f, used))) => {
                    at += used;
                    match self.assembler.push(f) {
                        Ok(Some(unit)) => {
                            let closing = matches!(unit, Inbound::Close(_));
                            out.units.push(unit);
                            if closing {
                                break None;
                            }
                        }
                        Ok(None) => {}
                        Err(code) => break Some(code),
                    }
                }
                Ok(None) => break None,
                Err(code) => break Some(code),
            }
        };
        self.partial = buf[at..].to_vec();
        out
    }
}

fn text(bytes: Vec<u8>) -> Result<Inbound, CloseCode> {
    String::from_utf8(bytes)
        .map(Inbound::Text)
        .map_err(|_| CloseCode::InvalidPayload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(fin: bool, opcode: Opcode, payload: &[u8]) -> Frame<'_> {
        Frame {
            fin,
            opcode,
            payload,
        }
    }

    #[test]
    fn fragments_are_joined_and_capped_on_their_total() {
        let mut a = Assembler::new(10);
        assert_eq!(a.push(f(false, Opcode::Text, b"hel")), Ok(None));
        assert_eq!(
            a.push(f(false, Opcode::Ping, b"p")),
            Ok(Some(Inbound::Ping(b"p".to_vec())))
        );
        assert_eq!(
            a.push(f(true, Opcode::Continuation, b"lo")),
            Ok(Some(Inbound::Text("hello".into())))
        );
        assert_eq!(a.push(f(false, Opcode::Text, b"123456")), Ok(None));
        assert_eq!(a.budget(), 4);
        assert_eq!(
            a.push(f(false, Opcode::Continuation, b"12345")),
            Err(CloseCode::TooBig)
        );
    }

    #[test]
    fn sequence_errors_and_bad_utf8_close_the_connection() {
        let mut a = Assembler::new(100);
        assert_eq!(
            a.push(f(true, Opcode::Continuation, b"x")),
            Err(CloseCode::Protocol)
        );
        a.push(f(false, Opcode::Text, b"x")).unwrap();
        assert_eq!(
            a.push(f(true, Opcode::Text, b"y")),
            Err(CloseCode::Protocol)
        );
        let mut a = Assembler::new(100);
        a.push(f(false, Opcode::Text, &[0xE2, 0x82])).unwrap();
        assert_eq!(
            a.push(f(true, Opcode::Continuation, &[0xAC])),
            Ok(Some(Inbound::Text("€".into())))
        );
        assert_eq!(
            a.push(f(true, Opcode::Text, &[0xFF])),
            Err(CloseCode::InvalidPayload)
        );
        assert_eq!(
            a.push(f(true, Opcode::Binary, b"b")),
            Err(CloseCode::Unsupported)
        );
    }

    #[test]
    fn frames_split_across_reads_decode_once_whole() {
        let mut bytes = frame::client_frame(true, 0x1, b"hello", [1, 2, 3, 4]);
        bytes.extend(frame::client_frame(true, 0x9, b"p", [5, 6, 7, 8]));
        let mut d = Decoder::new(2048, bytes[..3].to_vec());
        assert!(d.has_partial());
        assert_eq!(d.feed(&mut bytes[3..8].to_vec()), Decoded::default());
        let got = d.feed(&mut bytes[8..].to_vec());
        assert_eq!(
            got.units,
            [Inbound::Text("hello".into()), Inbound::Ping(b"p".to_vec())]
        );
        assert_eq!(got.violation, None);
        assert!(!d.has_partial());
    }

    #[test]
    fn units_before_a_violation_are_kept() {
        let mut bytes = frame::client_frame(true, 0x1, b"ok", [1, 2, 3, 4]);
        bytes.extend(frame::client_frame(true, 0x2, b"bin", [1, 2, 3, 4]));
        let got = Decoder::new(2048, Vec::new()).feed(&mut bytes);
        assert_eq!(got.units, [Inbound::Text("ok".into())]);
        assert_eq!(got.violation, Some(CloseCode::Unsupported));
    }
}
