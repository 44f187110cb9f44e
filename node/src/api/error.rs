//! The RPC API's error type and its wire form: Kubo's `{"Message","Code":0,"Type":"error"}`
//! body with the status Kubo would send (400 bad request, 401 no valid token, 404 unknown
//! command or missing content, 405 not POST, 413 body too large, 500 otherwise).

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;

use crate::ops::{ErrorClass, OpError};

/// Why a request failed; the message is what the client reads.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "unauthorized: send `Authorization: Bearer <token>` with a token from the node's token file"
    )]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0} is not allowed; the RPC API takes POST")]
    MethodNotAllowed(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A failure inside the node (a task that died, a broken channel).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    /// The HTTP answer: status and Kubo's error body.
    pub fn into_response(self) -> Response {
        let status = self.status();
        let mut response = super::body::json(&ErrorBody::new(&self));
        *response.status_mut() = status;
        response
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        let message = e.to_string();
        match e.class() {
            ErrorClass::Request => Self::BadRequest(message),
            ErrorClass::Missing => Self::NotFound(message),
            ErrorClass::Node => Self::Internal(message),
        }
    }
}

/// Kubo's error body. Also what [`crate::cli`] decodes from a failed call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    pub message: String,
    pub code: i32,
    #[serde(rename = "Type")]
    pub kind: String,
}

impl ErrorBody {
    pub fn new(e: &ApiError) -> Self {
        Self {
            message: e.to_string(),
            code: 0,
            kind: "error".to_owned(),
        }
    }
}
