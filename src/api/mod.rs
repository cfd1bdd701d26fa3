//! The server API for backends, on the admin listener under `/api/v1/`
//! (docs/api.md): keys → scopes → the same broker path as client messages.
//!
//! Every request is checked in one order: the API is on, the path and
//! method exist, the key is known, it has the scope, the body is JSON within
//! `api.max_body_bytes`, its fields are valid; then the action runs
//! ([`publish`], [`moderate`], [`read`]). Each answer is JSON (`error` and a
//! fixed `message` when refused), counted by endpoint and status, and every
//! change is written to the audit log.

pub mod error;
pub mod input;
mod moderate;
mod publish;
mod read;
pub mod route;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use tracing::Instrument;

use crate::app::App;
use crate::auth::api_keys::{ApiKey, Scope};
use crate::telemetry::spans;
use error::ApiError;
use route::{Endpoint, Route, Unrouted};

pub use crate::auth::api_keys::{problems, ApiKeys};

type Reply = Response<Full<Bytes>>;

/// How long a request's body may take to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// What an endpoint answered: a status and a JSON body (none for 204).
pub(crate) struct Answer {
    status: StatusCode,
    body: Option<String>,
}

impl Answer {
    fn json(status: StatusCode, value: serde_json::Value) -> Answer {
        Answer {
            status,
            body: Some(value.to_string()),
        }
    }

    fn ok(value: serde_json::Value) -> Answer {
        Answer::json(StatusCode::OK, value)
    }

    fn no_content() -> Answer {
        Answer {
            status: StatusCode::NO_CONTENT,
            body: None,
        }
    }
}

/// What a handler gets: the route, the caller's key and the request.
pub(crate) struct Call {
    pub route: Route,
    pub key: Arc<ApiKey>,
    pub query: Option<String>,
    pub body: Bytes,
}

impl Call {
    /// The path's room, checked.
    fn room(&self) -> Result<&str, ApiError> {
        input::room(self.route.room.as_deref().unwrap_or_default())
    }
}

/// Whether `path` belongs to the API (the admin listener sends it here).
pub fn owns(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Answers one API request.
pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Reply {
    let started = Instant::now();
    let traceparent = (req.headers().get("traceparent"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let routed = route::route(req.method(), req.uri().path());
    let endpoint = routed.as_ref().map_or(Endpoint::Other, |r| r.endpoint);
    let span = spans::api_span(endpoint.as_str(), traceparent.as_deref());
    let result = serve(&app, req, routed).instrument(span.clone()).await;
    let reply = match result {
        Ok(answer) => {
            let mut r = Response::new(Full::new(Bytes::from(answer.body.unwrap_or_default())));
            *r.status_mut() = answer.status;
            if answer.status != StatusCode::NO_CONTENT {
                json_type(&mut r);
            }
            r
        }
        Err((e, allow)) => refusal(e, allow),
    };
    spans::api_outcome(&span, reply.status().as_u16());
    let seconds = started.elapsed().as_secs_f64();
    app.metrics
        .api
        .request(endpoint, reply.status().as_u16(), seconds);
    reply
}

type Refused = (ApiError, Option<&'static str>);

async fn serve(
    app: &Arc<App>,
    req: Request<Incoming>,
    routed: Result<Route, Unrouted>,
) -> Result<Answer, Refused> {
    if !app.api_keys.any() {
        return Err((ApiError::ApiOff, None));
    }
    let route = match routed {
        Ok(route) => route,
        Err(Unrouted::NotFound) => return Err((ApiError::NotFound, None)),
        Err(Unrouted::Method(allowed)) => return Err((ApiError::MethodNotAllowed, Some(allowed))),
    };
    let authorization = req.headers().get(hyper::header::AUTHORIZATION);
    let key = (app.api_keys)
        .check(authorization.map(HeaderValue::as_bytes))
        .ok_or((ApiError::Unauthorized, None))?;
    if !key.may(scope(route.endpoint)) {
        return Err((ApiError::Forbidden, None));
    }
    let query = req.uri().query().map(str::to_owned);
    let body = body(app, req).await.map_err(|e| (e, None))?;
    let call = Call {
        route,
        key,
        query,
        body,
    };
    let answered = match call.route.endpoint {
        Endpoint::Publish => publish::one(app, &call).await,
        Endpoint::PublishMany => publish::many(app, &call).await,
        Endpoint::History => read::history(app, &call).await,
        Endpoint::Members => read::members(app, &call).await,
        Endpoint::Rooms => read::rooms(app, &call).await,
        Endpoint::Delete => moderate::delete(app, &call).await,
        Endpoint::Kick => moderate::kick(app, &call).await,
        Endpoint::Disconnect => moderate::disconnect(app, &call).await,
        Endpoint::Other => Err(ApiError::NotFound),
    };
    answered.map_err(|e| (e, None))
}

/// The scope an endpoint needs.
fn scope(endpoint: Endpoint) -> Scope {
    match endpoint {
        Endpoint::Publish | Endpoint::PublishMany => Scope::Publish,
        Endpoint::Delete | Endpoint::Kick | Endpoint::Disconnect => Scope::Moderate,
        Endpoint::History | Endpoint::Members | Endpoint::Rooms | Endpoint::Other => Scope::Read,
    }
}

/// Reads the body: JSON only (when there is one), within the size cap and
/// the time limit.
async fn body(app: &App, req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let max = usize::try_from(app.settings.api.max_body_bytes).unwrap_or(usize::MAX);
    let headers = req.headers();
    let declared = (headers.get(CONTENT_LENGTH))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let is_json = (headers.get(CONTENT_TYPE))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"));
    // A type that is not JSON is refused only with a body: a GET, or a
    // disconnect without a reason, may carry any Content-Type.
    if declared.is_some_and(|n| n > 0) && !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::BodyTooLarge);
    }
    let collected =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.into_body(), max).collect());
    let bytes = match collected.await {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError::BodyTooLarge)
        }
        Ok(Err(_)) | Err(_) => return Err(ApiError::BadJson),
    };
    if !bytes.is_empty() && !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(bytes)
}

fn refusal(e: ApiError, allow: Option<&'static str>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(e.body())));
    *r.status_mut() = e.status();
    json_type(&mut r);
    if e == ApiError::Unauthorized {
        (r.headers_mut()).insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    if let Some(allow) = allow {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    r
}

fn json_type(r: &mut Reply) {
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
}
