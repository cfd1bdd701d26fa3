//! The server API's errors: each a status, a stable code and a fixed
//! sentence. Nothing a caller sent is ever echoed back.

use hyper::StatusCode;

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("the body is not JSON of the expected shape")]
    BadJson,
    #[error("a room name must be 1 to 32 of A-Z a-z 0-9 _ -")]
    BadRoom,
    #[error("rooms must list 1 to 100 distinct rooms")]
    BadRooms,
    #[error("text is empty")]
    Empty,
    #[error("text is longer than limits.max_text_chars")]
    TextTooLong,
    #[error("user must be 1 to 64 characters without control characters")]
    BadUser,
    #[error("from is not a usable display name")]
    BadFrom,
    #[error("idempotencyKey must be 1 to 128 printable ASCII characters")]
    BadIdempotencyKey,
    #[error("reason must be at most 120 characters")]
    BadReason,
    #[error("a query parameter is unknown or invalid")]
    BadQuery,
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("this API key does not have the scope this endpoint needs")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("the server API is off: no API key is configured")]
    ApiOff,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("the body is larger than api.max_body_bytes")]
    BodyTooLarge,
    #[error("the body must be application/json")]
    UnsupportedMediaType,
    #[error("the broker is unavailable; try again")]
    Unavailable,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::ApiOff => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The `error` code.
    pub fn code(self) -> &'static str {
        match self {
            ApiError::BadJson => "bad_json",
            ApiError::BadRoom => "bad_room",
            ApiError::BadRooms => "bad_rooms",
            ApiError::Empty => "empty",
            ApiError::TextTooLong => "text_too_long",
            ApiError::BadUser => "bad_user",
            ApiError::BadFrom => "bad_from",
            ApiError::BadIdempotencyKey => "bad_idempotency_key",
            ApiError::BadReason => "bad_reason",
            ApiError::BadQuery => "bad_query",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::ApiOff => "api_off",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::BodyTooLarge => "body_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Unavailable => "unavailable",
        }
    }

    /// The JSON body.
    pub fn body(self) -> String {
        serde_json::json!({ "error": self.code(), "message": self.to_string() }).to_string()
    }
}
