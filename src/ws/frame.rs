//! RFC 6455 frames: decoding client frames with every server-side check,
//! encoding server frames.
//!
//! fastwebsockets does the upgrade handshake; frames are ours because its
//! reader skips duties RFC 6455 gives a server (unmasked frames, fragmented
//! message size) and holds a fixed read buffer per connection, while an idle
//! connection here holds none. Server frames are unmasked, so one encoded
//! frame is shared by every recipient.

use bytes::{BufMut, Bytes, BytesMut};

use crate::protocol::close::{is_valid_peer_code, CloseCode};

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    /// Control frames: close, ping, pong.
    pub fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// One decoded, unmasked client frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: &'a [u8],
}

/// Decodes the first frame in `buf`, unmasking its payload in place.
///
/// Returns `Ok(None)` when more bytes are needed, or the frame and the number
/// of bytes it used. A data frame whose declared length is over `max_payload`
/// fails at once with 1009, before its body arrives (control frames are
/// bounded at 125 bytes by the RFC instead).
pub fn decode(buf: &mut [u8], max_payload: usize) -> Result<Option<(Frame<'_>, usize)>, CloseCode> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    let fin = b0 & 0x80 != 0;
    if b0 & 0x70 != 0 {
        return Err(CloseCode::Protocol); // RSV bits without a negotiated extension
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(CloseCode::Protocol)?;
    if b1 & 0x80 == 0 {
        return Err(CloseCode::Protocol); // clients must mask (§5.1)
    }
    let (len, mut at) = match b1 & 0x7F {
        126 => {
            if buf.len() < 4 {
                return Ok(None);
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4)
        }
        127 => {
            if buf.len() < 10 {
                return Ok(None);
            }
            let mut eight = [0u8; 8];
            eight.copy_from_slice(&buf[2..10]);
            let len = u64::from_be_bytes(eight);
            if len >> 63 != 0 {
                return Err(CloseCode::Protocol); // the most significant bit must be 0
            }
            (len, 10)
        }
        short => (short as u64, 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(CloseCode::Protocol);
    }
    if !opcode.is_control() && len > max_payload as u64 {
        return Err(CloseCode::TooBig);
    }
    let len = len as usize;
    if buf.len() < at + 4 + len {
        return Ok(None);
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buf[at..at + 4]);
    at += 4;
    let payload = &mut buf[at..at + len];
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at + len,
    )))
}

/// Encodes one unmasked, final server frame.
pub fn encode(opcode: Opcode, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(0x80 | opcode.bits());
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= u16::MAX as usize => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
    out.freeze()
}

/// A text frame.
pub fn text(payload: &[u8]) -> Bytes {
    encode(Opcode::Text, payload)
}

/// A close frame with our code and fixed reason.
pub fn close(code: CloseCode) -> Bytes {
    close_raw(code.code(), code.reason().as_bytes())
}

/// A close frame with any code and reason (for echoing a peer's close).
pub fn close_raw(code: u16, reason: &[u8]) -> Bytes {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason);
    encode(Opcode::Close, &payload)
}

/// Checks a peer's close payload: empty, or a valid code plus UTF-8 reason.
/// Returns the code to echo (none for an empty payload).
pub fn parse_close(payload: &[u8]) -> Result<Option<u16>, CloseCode> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(CloseCode::Protocol),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !is_valid_peer_code(code) {
                return Err(CloseCode::Protocol);
            }
            std::str::from_utf8(&payload[2..]).map_err(|_| CloseCode::InvalidPayload)?;
            Ok(Some(code))
        }
    }
}

/// Builds a masked client frame (tests and the smoke client's peers).
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | (opcode & 0x0F)];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: [u8; 4] = [1, 2, 3, 4];

    #[test]
    fn decodes_a_masked_text_frame_and_reports_its_length() {
        let mut raw = client_frame(true, 1, b"hello", M);
        raw.extend_from_slice(b"next");
        let (frame, used) = decode(&mut raw, 2048).unwrap().unwrap();
        assert_eq!(frame.payload, b"hello");
        assert_eq!(frame.opcode, Opcode::Text);
        assert!(frame.fin);
        assert_eq!(used, 11);
    }

    #[test]
    fn waits_for_the_whole_frame() {
        let raw = client_frame(true, 1, &[b'x'; 300], M);
        for cut in 0..raw.len() {
            let mut part = raw[..cut].to_vec();
            assert_eq!(decode(&mut part, 2048), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn rejects_what_a_server_must_reject() {
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(decode(&mut unmasked, 2048), Err(CloseCode::Protocol));
        let mut rsv = client_frame(true, 1, b"x", M);
        rsv[0] |= 0x40;
        assert_eq!(decode(&mut rsv, 2048), Err(CloseCode::Protocol));
        let mut opcode = client_frame(true, 3, b"x", M);
        assert_eq!(decode(&mut opcode, 2048), Err(CloseCode::Protocol));
        let mut big_ping = client_frame(true, 9, &[0; 126], M);
        assert_eq!(decode(&mut big_ping, 2048), Err(CloseCode::Protocol));
        let mut fragmented_ping = client_frame(false, 9, b"x", M);
        assert_eq!(decode(&mut fragmented_ping, 2048), Err(CloseCode::Protocol));
        let mut top_bit = vec![0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(decode(&mut top_bit, 2048), Err(CloseCode::Protocol));
        let mut too_big = client_frame(true, 1, &[b'a'; 2049], M);
        assert_eq!(decode(&mut too_big[..8], 2048), Err(CloseCode::TooBig));
        let mut exact = client_frame(true, 1, &[b'a'; 2048], M);
        assert!(decode(&mut exact, 2048).unwrap().is_some());
    }

    #[test]
    fn encodes_all_length_forms() {
        assert_eq!(&text(b"hi")[..], &[0x81, 2, b'h', b'i']);
        let mid = text(&[0; 300]);
        assert_eq!(&mid[..4], &[0x81, 126, 1, 44]);
        let long = text(&vec![0; 70_000]);
        assert_eq!(long[1], 127);
        assert_eq!(long.len(), 70_010);
    }

    #[test]
    fn close_payloads_are_checked() {
        assert_eq!(parse_close(b""), Ok(None));
        assert_eq!(parse_close(&[3]), Err(CloseCode::Protocol));
        assert_eq!(parse_close(&1000u16.to_be_bytes()), Ok(Some(1000)));
        assert_eq!(
            parse_close(&1005u16.to_be_bytes()),
            Err(CloseCode::Protocol)
        );
        let mut bad_utf8 = 1000u16.to_be_bytes().to_vec();
        bad_utf8.extend_from_slice(&[0xC3, 0x28]);
        assert_eq!(parse_close(&bad_utf8), Err(CloseCode::InvalidPayload));
    }
}
