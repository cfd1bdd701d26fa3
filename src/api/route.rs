//! Which endpoint a request is for: its path and method, with the path's
//! room, message id or user taken out (not yet validated).

pub use hyper::Method;

pub use crate::metrics::ApiEndpoint as Endpoint;

/// The API's path prefix.
pub const PREFIX: &str = "/api/v1/";

/// A request's endpoint and the parts of its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: Endpoint,
    /// The `{room}` of the path, percent-decoded.
    pub room: Option<String>,
    /// The `{id}` of a message path, percent-decoded.
    pub id: Option<String>,
    /// The `{user}` of a user path, percent-decoded.
    pub user: Option<String>,
}

/// Why a path is not routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// No such path.
    NotFound,
    /// The path exists; these methods are allowed there.
    Method(&'static str),
}

/// Routes `method path`.
pub fn route(method: &Method, path: &str) -> Result<Route, Unrouted> {
    let rest = path.strip_prefix(PREFIX).ok_or(Unrouted::NotFound)?;
    let parts: Vec<&str> = rest.split('/').collect();
    let decode = |s: &str| percent_decode(s).ok_or(Unrouted::NotFound);
    let mut route = Route {
        endpoint: Endpoint::Other,
        room: None,
        id: None,
        user: None,
    };
    let (endpoint, allowed) = match parts.as_slice() {
        ["publish"] => (Some((Method::POST, Endpoint::PublishMany)), "POST"),
        ["rooms"] => (Some((Method::GET, Endpoint::Rooms)), "GET"),
        ["rooms", room, "messages"] => {
            route.room = Some(decode(room)?);
            match *method {
                Method::POST => (Some((Method::POST, Endpoint::Publish)), ""),
                Method::GET => (Some((Method::GET, Endpoint::History)), ""),
                _ => (None, "GET, POST"),
            }
        }
        ["rooms", room, "messages", id] => {
            route.room = Some(decode(room)?);
            route.id = Some(decode(id)?);
            (Some((Method::DELETE, Endpoint::Delete)), "DELETE")
        }
        ["rooms", room, "members"] => {
            route.room = Some(decode(room)?);
            (Some((Method::GET, Endpoint::Members)), "GET")
        }
        ["rooms", room, "kick"] => {
            route.room = Some(decode(room)?);
            (Some((Method::POST, Endpoint::Kick)), "POST")
        }
        ["users", user, "disconnect"] => {
            route.user = Some(decode(user)?);
            (Some((Method::POST, Endpoint::Disconnect)), "POST")
        }
        _ => return Err(Unrouted::NotFound),
    };
    match endpoint {
        Some((m, endpoint)) if m == *method => {
            route.endpoint = endpoint;
            Ok(route)
        }
        _ => Err(Unrouted::Method(allowed)),
    }
}

/// Decodes `%XX` escapes; `None` when they are malformed or not UTF-8.
/// Stricter than the gate's query decoding, which must read what browsers
/// send as leniently as `URLSearchParams` does: an API caller gets a 400.
pub(super) fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_their_endpoint_and_parts() {
        let r = route(&Method::POST, "/api/v1/rooms/ops/messages").expect("route");
        assert_eq!(
            (r.endpoint, r.room.as_deref()),
            (Endpoint::Publish, Some("ops"))
        );
        let r = route(&Method::DELETE, "/api/v1/rooms/ops/messages/a%2Fb").expect("route");
        assert_eq!(
            (r.endpoint, r.id.as_deref()),
            (Endpoint::Delete, Some("a/b"))
        );
        let r = route(&Method::POST, "/api/v1/users/u%C3%A9/disconnect").expect("route");
        assert_eq!(r.user.as_deref(), Some("ué"));
        assert_eq!(
            route(&Method::PUT, "/api/v1/rooms/ops/messages"),
            Err(Unrouted::Method("GET, POST"))
        );
        assert_eq!(
            route(&Method::GET, "/api/v1/publish"),
            Err(Unrouted::Method("POST"))
        );
        for missing in [
            "/api/v1/",
            "/api/v1/rooms/",
            "/api/v2/rooms",
            "/api/v1/rooms/%zz/members",
        ] {
            assert_eq!(
                route(&Method::GET, missing),
                Err(Unrouted::NotFound),
                "{missing}"
            );
        }
    }
}
