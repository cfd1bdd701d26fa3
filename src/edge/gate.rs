//! The upgrade decision: every check that runs before a request may become a
//! WebSocket. Order: path → draining → valid upgrade → Origin → token (unless
//! the IP is locked out for failed token checks; where it comes from is
//! [`credentials`], static or JWT is `auth`'s) → per-IP limits → the
//! identified user's connection cap → global capacity. A refused request
//! never upgrades.

use std::net::SocketAddr;

use hyper::header::{HeaderMap, ORIGIN};
use hyper::{Method, Request, StatusCode};

use crate::app::App;
use crate::broker::Since;
use crate::edge::{address, credentials};
use crate::limits::LimitRefusal;
use crate::metrics::{AddressSource, RejectReason};
use crate::protocol::clean_room;
use crate::session::Admission;

/// A refused request: the status, the metric reason, and what to tell the client.
#[derive(Debug)]
pub struct Rejection {
    pub status: StatusCode,
    pub reason: RejectReason,
    pub retry_after: Option<u64>,
    pub message: &'static str,
}

fn reject(status: StatusCode, reason: RejectReason, message: &'static str) -> Rejection {
    Rejection {
        status,
        reason,
        retry_after: None,
        message,
    }
}

/// Decides whether `req` from `peer` may upgrade.
pub fn check<B>(app: &App, req: &Request<B>, peer: SocketAddr) -> Result<Admission, Rejection> {
    if req.uri().path() != "/chat" {
        return Err(reject(
            StatusCode::NOT_FOUND,
            RejectReason::NotFound,
            "not found",
        ));
    }
    if app.is_draining() {
        let mut r = reject(
            StatusCode::SERVICE_UNAVAILABLE,
            RejectReason::Draining,
            "server is shutting down",
        );
        r.retry_after = Some(1);
        return Err(r);
    }
    let headers = req.headers();
    if req.method() != Method::GET
        || !fastwebsockets::upgrade::is_upgrade_request(req)
        || headers.get("sec-websocket-key").is_none()
    {
        return Err(reject(
            StatusCode::BAD_REQUEST,
            RejectReason::BadRequest,
            "expected a WebSocket upgrade",
        ));
    }
    if headers.get("sec-websocket-version").map(|v| v.as_bytes()) != Some(b"13") {
        return Err(reject(
            StatusCode::UPGRADE_REQUIRED,
            RejectReason::BadRequest,
            "unsupported WebSocket version; use 13",
        ));
    }
    let origin = match headers.get_all(ORIGIN).iter().count() {
        0 => None,
        1 => match headers.get(ORIGIN).map(|o| o.to_str()) {
            Some(Ok(o)) => Some(o),
            _ => {
                return Err(reject(
                    StatusCode::FORBIDDEN,
                    RejectReason::Origin,
                    "origin not allowed",
                ))
            }
        },
        _ => {
            return Err(reject(
                StatusCode::FORBIDDEN,
                RejectReason::Origin,
                "origin not allowed",
            ))
        }
    };
    if !app.auth.origins().allows(origin) {
        return Err(reject(
            StatusCode::FORBIDDEN,
            RejectReason::Origin,
            "origin not allowed",
        ));
    }

    // Guessing is bounded per address: a locked-out IP's token is not
    // looked at, so its answer says nothing about the token either.
    let client = client_ip(app, headers, peer);
    let ip = app.limits.key(client);
    if let Some(retry_after) = app.limits.auth_locked_out(ip) {
        return Err(Rejection {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: RejectReason::AuthFailures,
            retry_after: Some(retry_after),
            message: "too many failed token checks from your address; try again later",
        });
    }
    let query = Query::parse(req.uri().query().unwrap_or(""));
    let room = clean_room(query.room.as_deref());
    let presented = credentials::presented(headers, query.token.clone()).map_err(|_| {
        reject(
            StatusCode::BAD_REQUEST,
            RejectReason::BadRequest,
            "offer ws-chat.v2 together with ws-chat.token.<token>",
        )
    })?;
    let unauthorized = || {
        app.limits.auth_failed(ip);
        reject(
            StatusCode::UNAUTHORIZED,
            RejectReason::Token,
            "unauthorized",
        )
    };
    let Some(token) = presented.token.filter(|t| !t.is_empty()) else {
        return Err(unauthorized());
    };
    let Some((credential, grant)) = app.authenticate(&token) else {
        return Err(unauthorized());
    };
    if !grant.admits(&room) || !grant.allows_client(client) {
        return Err(unauthorized());
    }

    // The user is known only now, from the verified grant: a guest's `None`
    // meets no per-user cap.
    let admitted = app.limits.admit(ip, grant.user.as_ref());
    let slot = admitted.map_err(|refusal| match refusal {
        LimitRefusal::IpRate { retry_after } => Rejection {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: RejectReason::IpRate,
            retry_after: Some(retry_after),
            message: "too many connections from your address; slow down",
        },
        LimitRefusal::IpCap => Rejection {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: RejectReason::IpCap,
            retry_after: Some(5),
            message: "too many open connections from your address",
        },
        LimitRefusal::UserCap => Rejection {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: RejectReason::UserCap,
            retry_after: Some(5),
            message: "too many open connections for this user",
        },
        LimitRefusal::Capacity => Rejection {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: RejectReason::Capacity,
            retry_after: Some(5),
            message: "server is at capacity",
        },
    })?;

    Ok(Admission {
        // A name the credential fixes wins over the one the client asks
        // for; a client's own choice may not be a reserved name.
        name: match &grant.name {
            Some(name) => name.clone(),
            None => app.auth.guest_name(query.name.as_deref()),
        },
        room,
        since: Since {
            seq: query.since.as_deref().and_then(|s| s.trim().parse().ok()),
            epoch: query.epoch.filter(|e| !e.is_empty() && e.len() <= 64),
        },
        credential,
        user: grant.user.clone(),
        expires: grant.expires,
        subprotocol: presented.subprotocol,
        ip,
        slot,
    })
}

/// The client's address (see [`address`]), counted by where it came from.
fn client_ip(app: &App, headers: &HeaderMap, peer: SocketAddr) -> std::net::IpAddr {
    let forwarded = headers.get_all("x-forwarded-for");
    let client = address::client_addr(
        &app.trusted_proxies,
        peer.ip(),
        forwarded.iter().map(|v| v.as_bytes()),
    );
    if client.source == AddressSource::Peer && forwarded.iter().next().is_some() {
        app.forwarding_ignored(client.ip);
    }
    app.metrics.edge.client_address(client.source);
    client.ip
}

/// The query parameters the gate reads, percent-decoded.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub token: Option<String>,
    pub name: Option<String>,
    pub room: Option<String>,
    pub since: Option<String>,
    pub epoch: Option<String>,
}

impl Query {
    /// Parses `a=1&b=2` form encoding; the first occurrence of a key wins,
    /// like `URLSearchParams.get`.
    pub fn parse(query: &str) -> Query {
        let mut q = Query::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match decode(key).as_str() {
                "token" => &mut q.token,
                "name" => &mut q.name,
                "room" => &mut q.room,
                "since" => &mut q.since,
                "epoch" => &mut q.epoch,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(decode(value));
            }
        }
        q
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_first_wins() {
        let q = Query::parse("token=a%2Bb%3D&name=J+D&room=r1&room=r2&since=7&x=%zz");
        assert_eq!(q.token.as_deref(), Some("a+b="));
        assert_eq!(q.name.as_deref(), Some("J D"));
        assert_eq!(q.room.as_deref(), Some("r1"));
        assert_eq!(q.since.as_deref(), Some("7"));
        assert_eq!(decode("%"), "%");
        assert_eq!(decode("%4"), "%4");
        assert_eq!(decode("%41"), "A");
        assert_eq!(decode("%ff"), "\u{FFFD}");
    }
}
