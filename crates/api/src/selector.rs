//! Label selectors: `a=b,c!=d,e,!f` (all must hold).

use std::collections::BTreeMap;

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

fn check_key(k: &str) -> Result<String, String> {
    let k = k.trim();
    if k.is_empty() || k.len() > 253 || k.chars().any(|c| c.is_whitespace() || "=!,".contains(c)) {
        return Err(format!("invalid label key {k:?}"));
    }
    Ok(k.to_string())
}

impl Selector {
    /// Parses `a=b,c==d,e!=f,g,!h`.
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut out = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(check_key(k)?, v.trim().to_string())
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                let v = v.trim();
                if v.contains('=') || v.contains('!') {
                    return Err(format!("invalid requirement {part:?}"));
                }
                Requirement::Equals(check_key(k)?, v.to_string())
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(check_key(k)?)
            } else {
                Requirement::Exists(check_key(part)?)
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
        assert!(!Selector::parse("a=x").unwrap().matches(&l));
        assert!(!Selector::parse("!a").unwrap().matches(&l));
        assert!(Selector::parse("!z").unwrap().matches(&l));
        assert!(Selector::parse("").unwrap().matches(&l));
        assert!(Selector::parse("a=b=c").is_err());
        assert!(Selector::parse("=b").is_err());
    }
}
