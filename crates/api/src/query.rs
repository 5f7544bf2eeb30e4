//! Query parameters, with errors in the API's JSON shape.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Detail};

/// The query string as `T`. A parameter that does not parse is a 400 in
/// the JSON error shape, its name in the detail's `field`:
/// `?limit=abc` gives `{"error": "bad ?limit=abc: invalid digit found in
/// string", "details": [{"field": "limit", ...}]}`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> Query<T> {
    /// Parses a query string (without the `?`).
    pub fn parse(query: &str) -> Result<Self, ApiError> {
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let name = e.path().to_string();
                let reason = e.inner().to_string();
                let named = !name.is_empty() && name != ".";
                let given = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.into_owned());
                let error = match (named, given) {
                    (true, Some(v)) => format!("bad ?{name}={v}: {reason}"),
                    (true, None) => format!("bad ?{name}=: {reason}"),
                    (false, _) => format!("bad query string: {reason}"),
                };
                let field = if named { name.as_str() } else { "" };
                ApiError::bad_request(error).with_detail(Detail::new("", "", field, reason))
            })
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Self::parse(parts.uri.query().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Limit {
        limit: Option<usize>,
    }

    #[test]
    fn names_the_parameter() {
        assert_eq!(Query::<Limit>::parse("limit=5").unwrap().0.limit, Some(5));
        assert_eq!(Query::<Limit>::parse("").unwrap().0.limit, None);
        for bad in ["limit=abc", "limit=-1", "x=1&limit=1.5"] {
            let e = Query::<Limit>::parse(bad).unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
            assert_eq!(e.body.details[0].field, "limit", "{bad}: {e}");
            assert!(e.body.error.starts_with("bad ?limit="), "{bad}: {e}");
        }
    }
}
