//! The declarative `weir/v1` object model.
//!
//! Operators write objects in YAML; the API stores and serves them as
//! JSON. Every object has `apiVersion: weir/v1`, a `kind`, `metadata`, a
//! `spec` and a server-set `status`, and lives in the store under
//! `/weir/v1/<kind-lowercase>/<name>`.
//!
//! - [`Registry`] knows every kind: the built-in ones ([`Registry::builtin`])
//!   and kinds modules register at run time with only a JSON Schema
//!   ([`Registry::register_dynamic`]). [`Registry::parse`] turns a document
//!   into a validated [`Object`] or a list of field-level
//!   [`ValidationError`]s.
//! - [`Object::typed`] converts an object's spec to its Rust type
//!   ([`RouteSpec`], [`InterfaceSpec`], ...).
//! - [`Registry::conflicts`] checks a set of objects together (overlapping
//!   subnets, duplicate VNIs, ...): each kind's checks live in its folder
//!   (`kinds/<kind>/conflicts.rs`) with the kinds they read, and
//!   [`Registry::related`] derives from those which kinds a write is
//!   checked against.
//! - [`Registry::schema`] gives each kind's JSON Schema (draft 2020-12,
//!   self-contained) for the API's OpenAPI document.
//! - [`Registry::columns`] and [`Registry::row`] lay out `weir get` tables.

pub mod cross;
pub mod error;
pub mod kinds;
pub mod meta;
pub mod net;
pub mod registry;
pub mod yaml;

pub use error::{Errors, ValidationError, ValidationErrors};
pub use kinds::*;
pub use meta::{
    check_name, key, key_prefix, KindSpec, Object, ObjectMeta, ObjectRef, State, Status, Typed,
    API_VERSION,
};
pub use net::{ByteSize, Cidr, Family, PortRange, Rate};
pub use registry::{DynamicKind, Kind, Registry, RegistryError, Spec, TypedKind, BUILTIN_KINDS};

/// The built-in kinds, built once: making a `Registry` generates every
/// kind's JSON Schema (milliseconds), too slow for each request.
pub fn builtin() -> &'static Registry {
    static BUILTIN: std::sync::LazyLock<Registry> = std::sync::LazyLock::new(Registry::builtin);
    &BUILTIN
}
