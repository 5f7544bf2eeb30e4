//! The one error shape every endpoint answers with:
//! `{ "error": "...", "details": [{kind, name, field, reason}] }`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use weir_model::{ObjectRef, ValidationError, ValidationErrors};

/// One problem with one field of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Detail {
    /// Position of the object in an apply body (counting documents from 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    /// Dotted path of the field (`spec.prefix`), empty for the whole body.
    #[serde(default)]
    pub field: String,
    #[serde(default)]
    pub reason: String,
    /// For cross-object errors: the other object involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectRef>,
}

impl Detail {
    pub fn new(kind: &str, name: &str, field: &str, reason: impl Into<String>) -> Self {
        Detail {
            index: None,
            kind: kind.into(),
            name: name.into(),
            field: field.into(),
            reason: reason.into(),
            related: None,
        }
    }
}

impl From<ValidationError> for Detail {
    fn from(e: ValidationError) -> Self {
        Detail {
            index: None,
            kind: e.kind,
            name: e.name,
            field: e.field,
            reason: e.reason,
            related: e.related,
        }
    }
}

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(i) = self.index {
            write!(f, "[{i}] ")?;
        }
        match (self.kind.is_empty(), self.name.is_empty()) {
            (false, false) => write!(f, "{}/{}: ", self.kind.to_ascii_lowercase(), self.name)?,
            (false, true) => write!(f, "{}: ", self.kind.to_ascii_lowercase())?,
            (true, false) => write!(f, "{}: ", self.name)?,
            (true, true) => {}
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)?;
        if let Some(r) = &self.related {
            write!(
                f,
                " (conflicts with {}/{})",
                r.kind.to_ascii_lowercase(),
                r.name
            )?;
        }
        Ok(())
    }
}

/// The JSON body of every error answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
    /// A machine-readable reason where the status code alone is not one:
    /// `compacted` (410: relist, then watch from the list's revision + 1),
    /// `outcome_unknown` (504: the write may or may not have been applied;
    /// read it back before retrying).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default)]
    pub details: Vec<Detail>,
    /// On a 409: the revision the client expected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_revision: Option<u64>,
    /// On a 409: the object's current revision (0: it does not exist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<u64>,
}

/// An error answer: a status code and an [`ErrorBody`].
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                error: error.into(),
                ..Default::default()
            },
        }
    }
    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }
    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }
    pub fn conflict(error: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, error)
    }
    pub fn unavailable(error: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, error)
    }
    pub fn too_large(error: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, error)
    }
    /// 422 with one detail per validation error.
    pub fn invalid(error: impl Into<String>, details: Vec<Detail>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, error).with_details(details)
    }
    pub fn with_code(mut self, code: &str) -> Self {
        self.body.code = Some(code.into());
        self
    }
    pub fn with_details(mut self, details: Vec<Detail>) -> Self {
        self.body.details = details;
        self
    }
    pub fn with_detail(mut self, d: Detail) -> Self {
        self.body.details.push(d);
        self
    }
    /// 422 from validation errors.
    pub fn from_validation(errs: ValidationErrors) -> Self {
        let details: Vec<Detail> = errs.into_iter().map(Detail::from).collect();
        let summary = summary(&details);
        Self::invalid(summary, details)
    }
}

/// A one-line summary of details: the first one and how many more.
pub fn summary(details: &[Detail]) -> String {
    match details {
        [] => "invalid request".into(),
        [one] => format!("invalid: {one}"),
        [first, rest @ ..] => format!("invalid: {first} (and {} more)", rest.len()),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status.as_u16(), self.body.error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<weir_store::StoreError> for ApiError {
    fn from(e: weir_store::StoreError) -> Self {
        match e {
            weir_store::StoreError::FutureRevision { .. } => ApiError::bad_request(e.to_string()),
            weir_store::StoreError::Compacted { .. } => {
                ApiError::new(StatusCode::GONE, format!("compacted: {e}")).with_code("compacted")
            }
            weir_store::StoreError::OutcomeUnknown(_) => {
                ApiError::new(StatusCode::GATEWAY_TIMEOUT, format!("store: {e}"))
                    .with_code("outcome_unknown")
            }
            _ => ApiError::unavailable(format!("store: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_store::StoreError;

    #[test]
    fn store_errors_have_their_own_codes() {
        let e = ApiError::from(StoreError::OutcomeUnknown("etcd did not answer".into()));
        assert_eq!(e.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(e.body.code.as_deref(), Some("outcome_unknown"));
        assert!(e.body.error.contains("outcome unknown"), "{}", e.body.error);
        let e = ApiError::from(StoreError::Compacted {
            requested: 3,
            compact_revision: 9,
        });
        assert_eq!(e.status, StatusCode::GONE);
        assert_eq!(e.body.code.as_deref(), Some("compacted"));
        let e = ApiError::from(StoreError::Closed);
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.body.code, None);
        let json = serde_json::to_value(&e.body).unwrap();
        assert!(json.get("code").is_none(), "no code unless there is one");
    }
}
