//! Where a client's token comes from (protocol §7): `Authorization: Bearer`,
//! then the `ws-chat.token.<token>` WebSocket subprotocol, then `?token=`.
//! The first place that has one decides; the others are not looked at.
//!
//! The subprotocol token is only taken next to `ws-chat.v2`, which the
//! server then selects: a browser fails a connection whose answer selects
//! none of the protocols it offered, and the token itself is never echoed.
//! A client that offers other subprotocols without `ws-chat.v2` is answered
//! as in version 1: no subprotocol selected.

use hyper::header::{HeaderMap, AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL};

/// The subprotocol the server selects.
pub const SUBPROTOCOL: &str = "ws-chat.v2";
/// The prefix of the subprotocol that carries a token.
pub const TOKEN_PREFIX: &str = "ws-chat.token.";

/// The token a request presents, and whether to answer with `ws-chat.v2`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Presented {
    /// `None` or empty: no token at all.
    pub token: Option<String>,
    pub subprotocol: bool,
}

/// The request offered a token subprotocol without `ws-chat.v2` (a 400:
/// the server could only accept it by echoing the token).
#[derive(Debug, PartialEq, Eq)]
pub struct TokenWithoutV2;

/// Finds the token by the precedence above. `query_token` is `?token=`.
pub fn presented(
    headers: &HeaderMap,
    query_token: Option<String>,
) -> Result<Presented, TokenWithoutV2> {
    let offered = offered(headers);
    let v2 = offered.contains(&SUBPROTOCOL);
    let in_subprotocol = offered
        .iter()
        .find_map(|p| p.strip_prefix(TOKEN_PREFIX))
        .map(str::to_string);
    if in_subprotocol.is_some() && !v2 {
        return Err(TokenWithoutV2);
    }
    let token = bearer(headers).or(in_subprotocol).or(query_token);
    Ok(Presented {
        token,
        subprotocol: v2,
    })
}

/// Every subprotocol offered, over all `Sec-WebSocket-Protocol` headers.
fn offered(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn authorization_then_subprotocol_then_query() {
        let q = || Some("q".to_string());
        let all = headers(&[
            ("authorization", "Bearer a"),
            ("sec-websocket-protocol", "ws-chat.v2, ws-chat.token.s"),
        ]);
        assert_eq!(presented(&all, q()).unwrap().token.as_deref(), Some("a"));
        let sub = headers(&[
            ("sec-websocket-protocol", "ws-chat.v2"),
            ("sec-websocket-protocol", "ws-chat.token.s.t.u"),
        ]);
        let p = presented(&sub, q()).unwrap();
        assert_eq!((p.token.as_deref(), p.subprotocol), (Some("s.t.u"), true));
        let p = presented(&HeaderMap::new(), q()).unwrap();
        assert_eq!((p.token.as_deref(), p.subprotocol), (Some("q"), false));
        // ws-chat.v2 alone is selected; the query token still counts.
        let v2 = headers(&[("sec-websocket-protocol", "chat, ws-chat.v2")]);
        assert_eq!(
            presented(&v2, q()).unwrap(),
            Presented {
                token: q(),
                subprotocol: true
            }
        );
        // Other protocols only: version 1 behaviour.
        let other = headers(&[("sec-websocket-protocol", "graphql-ws")]);
        assert!(!presented(&other, q()).unwrap().subprotocol);
        let bare = headers(&[("sec-websocket-protocol", "ws-chat.token.s")]);
        assert_eq!(presented(&bare, q()), Err(TokenWithoutV2));
    }
}
