//! Label selectors: `a=b,c!=d,e,!f` (all must hold).
//!
//! Keys and values follow the label syntax (`metadata.labels`); spaces
//! are allowed around requirements and operators, nothing else.
//! [`pattern`] is the same grammar as a regular expression, for the
//! OpenAPI document.

use std::collections::BTreeMap;

use weir_model::meta::{check_label, LABEL_KEY, LABEL_VALUE};

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(pub Vec<Requirement>);

/// The selector grammar as a JSON Schema (ECMA-262) pattern.
pub fn pattern() -> String {
    let req = format!(" *(! *{LABEL_KEY}|{LABEL_KEY}( *(==?|!=) *{LABEL_VALUE})?) *");
    format!("^({req}(,{req})*)?$")
}

fn key(part: &str, k: &str) -> Result<String, String> {
    let k = k.trim_matches(' ');
    check_label(k, "").map_err(|_| {
        format!(
            "invalid label key {k:?} in {part:?}: 1 to 253 letters, digits and -_./, starting and ending with a letter or digit"
        )
    })?;
    Ok(k.to_string())
}

fn value(part: &str, k: &str, v: &str) -> Result<String, String> {
    let v = v.trim_matches(' ');
    check_label(k, v).map_err(|_| {
        format!(
            "invalid label value {v:?} in {part:?}: at most 63 letters, digits and -_., starting and ending with a letter or digit, or empty"
        )
    })?;
    Ok(v.to_string())
}

impl Selector {
    /// Parses `a=b,c==d,e!=f,g,!h`; the reason when it is not one.
    pub fn parse(text: &str) -> Result<Selector, String> {
        if text.is_empty() {
            return Ok(Selector::default());
        }
        let mut out = Vec::new();
        for raw in text.split(',') {
            let part = raw.trim_matches(' ');
            if part.is_empty() {
                return Err(format!(
                    "empty requirement in {text:?}: requirements are separated by single commas"
                ));
            }
            let req = if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(key(part, k)?)
            } else if let Some(at) = part.find(['=', '!']) {
                let (k, rest) = part.split_at(at);
                let k = key(part, k)?;
                if let Some(v) = rest.strip_prefix("!=") {
                    Requirement::NotEquals(k.clone(), value(part, &k, v)?)
                } else if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
                    Requirement::Equals(k.clone(), value(part, &k, v)?)
                } else {
                    return Err(format!(
                        "invalid requirement {part:?}: operators are =, == and !="
                    ));
                }
            } else {
                Requirement::Exists(key(part, part)?)
            };
            out.push(req);
        }
        Ok(Selector(out))
    }

    /// Whether labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let l: BTreeMap<String, String> = [("a", "b"), ("c", "d")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(Selector::parse("a=b,c!=x").unwrap().matches(&l));
        assert!(Selector::parse("a==b,c").unwrap().matches(&l));
        assert!(Selector::parse(" a = b , c ").unwrap().matches(&l));
        assert!(!Selector::parse("a=x").unwrap().matches(&l));
        assert!(!Selector::parse("!a").unwrap().matches(&l));
        assert!(Selector::parse("!z").unwrap().matches(&l));
        assert!(Selector::parse("").unwrap().matches(&l));
        assert!(!Selector::parse("c=").unwrap().matches(&l));
        for bad in [
            "a=b=c", "=b", "a,,b", "a,", " ", "a=é", "a!b", "-a", "a\t=b", "a=b!",
        ] {
            assert!(Selector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }
}
