//! Field-level validation errors.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::meta::ObjectRef;

/// One problem with one field of one object.
///
/// `field` is a dotted path from the object's root, with list indexes in
/// brackets: `spec.nextHops[1].address`, `metadata.name`. It is empty when
/// the problem is with the document as a whole (e.g. YAML syntax).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// The object's kind as written (may be empty if unknown).
    pub kind: String,
    /// The object's name as written (may be empty if unknown).
    pub name: String,
    /// Dotted path to the offending field.
    pub field: String,
    /// What is wrong, in words an operator understands.
    pub reason: String,
    /// For cross-object errors: the other object involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related: Option<ObjectRef>,
}

impl ValidationError {
    pub fn new(
        kind: impl Into<String>,
        name: impl Into<String>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        ValidationError {
            kind: kind.into(),
            name: name.into(),
            field: field.into(),
            reason: reason.into(),
            related: None,
        }
    }

    /// Names the other object in a cross-object error.
    pub fn with_related(mut self, related: ObjectRef) -> Self {
        self.related = Some(related);
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind.is_empty(), self.name.is_empty()) {
            (false, false) => write!(f, "{}/{}: ", self.kind, self.name)?,
            (false, true) => write!(f, "{}: ", self.kind)?,
            (true, false) => write!(f, "{}: ", self.name)?,
            (true, true) => {}
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.reason)?;
        if let Some(r) = &self.related {
            write!(f, " (conflicts with {}/{})", r.kind, r.name)?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationError {}

/// Every problem found in one or more objects. Never empty when returned
/// as an `Err`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn push(&mut self, e: ValidationError) {
        self.0.push(e);
    }
    pub fn extend(&mut self, other: impl IntoIterator<Item = ValidationError>) {
        self.0.extend(other);
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn iter(&self) -> std::slice::Iter<'_, ValidationError> {
        self.0.iter()
    }
    /// `Ok(())` when empty, else `Err(self)`.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self)
        }
    }
    /// The first error on exactly this field, if any (handy in tests).
    pub fn on_field(&self, field: &str) -> Option<&ValidationError> {
        self.0.iter().find(|e| e.field == field)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}

impl IntoIterator for ValidationErrors {
    type Item = ValidationError;
    type IntoIter = std::vec::IntoIter<ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a ValidationError;
    type IntoIter = std::slice::Iter<'a, ValidationError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<ValidationError> for ValidationErrors {
    fn from(e: ValidationError) -> Self {
        ValidationErrors(vec![e])
    }
}

/// Collects field errors for one object's spec while a validator walks it.
/// Paths given to [`Errors::at`] are relative to the spec (`nextHop.address`);
/// the registry prefixes `spec.` and fills in kind and name.
#[derive(Debug, Default)]
pub struct Errors {
    pub(crate) list: Vec<(String, String)>,
}

impl Errors {
    pub fn new() -> Self {
        Self::default()
    }
    /// Records a problem with the field at `path` (relative to the spec).
    pub fn at(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.list.push((path.into(), reason.into()));
    }
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
    /// The recorded `(path, reason)` pairs.
    pub fn entries(&self) -> &[(String, String)] {
        &self.list
    }
}
