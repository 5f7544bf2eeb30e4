//! Reading YAML and JSON bodies into JSON values, strictly: a key given
//! twice in one mapping is an error naming it (rather than the last one
//! silently winning), nesting deeper than [`MAX_DEPTH`] is refused before
//! the parser sees it, and whole numbers written as floats (`245.0`) read
//! as integers, as JSON Schema's `integer` allows.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{ValidationError, ValidationErrors};

/// Deepest nesting of flow collections (`[`, `{`) accepted in a body.
/// weir's objects need about 6; the YAML parser takes time quadratic in
/// the depth, so it is bounded before parsing.
pub const MAX_DEPTH: usize = 64;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadError {
    /// Dotted path of the offending field, empty for the body as a whole.
    pub field: String,
    pub reason: String,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}

/// Refuses text nested deeper than `max` in `[` and `{`, in one pass over
/// the bytes. Quoted strings (starting where a token starts, ending on
/// their line at the latest) and comments are skipped; anything the scan
/// cannot tell apart is counted, so it errs towards counting too deep,
/// never too shallow. Block (indented) YAML nesting costs its depth in
/// bytes per line and is bounded by the body size.
pub fn check_depth(text: &[u8], max: usize) -> Result<(), ReadError> {
    #[derive(PartialEq)]
    enum S {
        Plain,
        Double,
        Single,
        Comment,
    }
    let mut s = S::Plain;
    let mut depth = 0usize;
    let mut prev = b'\n';
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        match s {
            S::Plain => match b {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        let line = 1 + text[..i].iter().filter(|c| **c == b'\n').count();
                        return Err(ReadError {
                            field: String::new(),
                            reason: format!(
                                "nested deeper than {max} levels (line {line}); weir objects need far fewer"
                            ),
                        });
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'"' | b'\''
                    if matches!(
                        prev,
                        b' ' | b'\t' | b'\n' | b'\r' | b'[' | b'{' | b',' | b':'
                    ) =>
                {
                    s = if b == b'"' { S::Double } else { S::Single };
                }
                b'#' if matches!(prev, b' ' | b'\t' | b'\n' | b'\r') => s = S::Comment,
                _ => {}
            },
            S::Double => match b {
                b'\\' => i += 1,
                b'"' | b'\n' => s = S::Plain,
                _ => {}
            },
            S::Single => match b {
                b'\'' if text.get(i + 1) == Some(&b'\'') => i += 1,
                b'\'' | b'\n' => s = S::Plain,
                _ => {}
            },
            S::Comment => {
                if b == b'\n' {
                    s = S::Plain
                }
            }
        }
        prev = b;
        i += 1;
    }
    Ok(())
}

/// Where the reader is, for errors: `spec.nextHops[1]`.
#[derive(Default)]
struct Path {
    segs: RefCell<Vec<Seg>>,
    /// The path of a key given twice, once found.
    duplicate: RefCell<Option<ReadError>>,
}

enum Seg {
    Key(String),
    Index(usize),
}

impl Path {
    fn render(&self, last: Option<&str>) -> String {
        let mut out = String::new();
        for s in self.segs.borrow().iter() {
            match s {
                Seg::Key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if let Some(k) = last {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(k);
        }
        out
    }
}

/// A JSON value read strictly (see the module documentation).
struct Strict<'p> {
    path: &'p Path,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        match (i64::try_from(v), u64::try_from(v)) {
            (Ok(i), _) => Ok(Value::Number(i.into())),
            (_, Ok(u)) => Ok(Value::Number(u.into())),
            _ => Err(E::custom(format!("number {v} is out of range"))),
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        u64::try_from(v)
            .map(|u| Value::Number(u.into()))
            .map_err(|_| E::custom(format!("number {v} is out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        if !v.is_finite() {
            return Err(E::custom("infinity and NaN are not numbers here"));
        }
        // A whole number written with a fraction (245.0) is an integer.
        if v.fract() == 0.0 {
            if (0.0..18_446_744_073_709_551_616.0).contains(&v) {
                return Ok(Value::Number((v as u64).into()));
            }
            if (-9_223_372_036_854_775_808.0..0.0).contains(&v) {
                return Ok(Value::Number((v as i64).into()));
            }
        }
        Ok(Number::from_f64(v)
            .map(Value::Number)
            .unwrap_or(Value::Null))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth = self.deeper::<A::Error>()?;
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        loop {
            self.path.segs.borrow_mut().push(Seg::Index(out.len()));
            let item = seq.next_element_seed(Strict {
                path: self.path,
                depth,
            });
            self.path.segs.borrow_mut().pop();
            match item? {
                Some(v) => out.push(v),
                None => return Ok(Value::Array(out)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth = self.deeper::<A::Error>()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let e = ReadError {
                    field: self.path.render(Some(&key)),
                    reason: format!("duplicate key {key:?}: each key may appear once"),
                };
                let msg = e.to_string();
                *self.path.duplicate.borrow_mut() = Some(e);
                return Err(de::Error::custom(msg));
            }
            self.path.segs.borrow_mut().push(Seg::Key(key.clone()));
            let v = map.next_value_seed(Strict {
                path: self.path,
                depth,
            });
            self.path.segs.borrow_mut().pop();
            out.insert(key, v?);
        }
        Ok(Value::Object(out))
    }
}

impl Strict<'_> {
    fn deeper<E: de::Error>(&self) -> Result<usize, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(self.depth + 1)
    }
}

fn read_error(path: &Path, what: &str, e: impl fmt::Display) -> ReadError {
    path.duplicate.borrow_mut().take().unwrap_or(ReadError {
        field: String::new(),
        reason: format!("{what}: {e}"),
    })
}

/// Reads one JSON text strictly.
pub fn json_value(text: &[u8]) -> Result<Value, ReadError> {
    check_depth(text, MAX_DEPTH)?;
    let path = Path::default();
    let mut de = serde_json::Deserializer::from_slice(text);
    let v = Strict {
        path: &path,
        depth: 0,
    }
    .deserialize(&mut de)
    .map_err(|e| read_error(&path, "malformed JSON", e))?;
    de.end()
        .map_err(|e| read_error(&path, "malformed JSON", e))?;
    Ok(v)
}

/// Reads every document of a YAML text strictly, as JSON values. Empty
/// documents are skipped; a document that is a sequence contributes its
/// items (so a JSON array of objects works too).
pub fn yaml_values(text: &str) -> Result<Vec<Value>, ReadError> {
    check_depth(text.as_bytes(), MAX_DEPTH)?;
    let mut out = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(text).enumerate() {
        let path = Path::default();
        let v = Strict {
            path: &path,
            depth: 0,
        }
        .deserialize(doc)
        .map_err(|e| {
            let mut r = read_error(&path, "invalid YAML", e);
            r.reason = format!("document {}: {}", i + 1, r.reason);
            r
        })?;
        match v {
            Value::Null => {}
            Value::Array(items) => out.extend(items),
            v => out.push(v),
        }
    }
    Ok(out)
}

/// [`yaml_values`] with its error as a validation error.
pub fn documents(text: &str) -> Result<Vec<Value>, ValidationErrors> {
    yaml_values(text)
        .map_err(|e| ValidationErrors::from(ValidationError::new("", "", e.field, e.reason)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_named() {
        let e = json_value(br#"{"kind": "Route", "spec": {"prefix": "a", "prefix": "b"}}"#)
            .unwrap_err();
        assert_eq!(e.field, "spec.prefix");
        assert!(e.reason.contains("duplicate key \"prefix\""), "{e}");
        let e = json_value(br#"[{"kind": "a"}, {"kind": "a", "kind": "b"}]"#).unwrap_err();
        assert_eq!(e.field, "[1].kind");
        let e = yaml_values("kind: Route\nmetadata: {name: a}\nkind: Vpc\n").unwrap_err();
        assert_eq!(e.field, "kind");
        assert!(e.reason.contains("document 1"), "{e}");
        let e = yaml_values("a: 1\n---\nspec:\n  hops:\n  - {x: 1, x: 2}\n").unwrap_err();
        assert_eq!(e.field, "spec.hops[0].x");
        assert!(e.reason.contains("document 2"), "{e}");
        // The same key in different mappings is fine.
        assert!(yaml_values("a: {k: 1}\nb: {k: 2}\n").is_ok());
    }

    #[test]
    fn whole_floats_are_integers() {
        let v = json_value(br#"{"mtu": 245.0, "x": 1.5, "n": -3.0}"#).unwrap();
        assert_eq!(v["mtu"], serde_json::json!(245));
        assert!(v["mtu"].is_u64());
        assert_eq!(v["n"], serde_json::json!(-3));
        assert_eq!(v["x"], serde_json::json!(1.5));
        let v = yaml_values("mtu: 1500.0\n").unwrap();
        assert!(v[0]["mtu"].is_u64());
        assert!(yaml_values("x: .nan\n").is_err());
    }

    #[test]
    fn depth_is_bounded_before_parsing() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_depth(deep(64).as_bytes(), 64).is_ok());
        assert!(check_depth(deep(65).as_bytes(), 64).is_err());
        let t = std::time::Instant::now();
        let big = format!("a: {}", "{b: ".repeat(2_000_000));
        let e = yaml_values(&big).unwrap_err();
        assert!(e.reason.contains("nested deeper than 64"), "{e}");
        assert!(t.elapsed() < std::time::Duration::from_millis(500));
        // Brackets in strings and comments do not count, and closing
        // brackets in strings do not hide real nesting.
        let s = format!(
            "a: \"{}\"\nb: '{}' # {}\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(check_depth(s.as_bytes(), 64).is_ok());
        let hidden = format!("a: [\"{}\", {}]", "]".repeat(100), deep(70));
        assert!(check_depth(hidden.as_bytes(), 64).is_err());
        assert!(json_value(deep(200).as_bytes()).is_err());
    }
}
