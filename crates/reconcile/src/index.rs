//! Who depends on what, indexed from the dependency's side so that a key
//! coming or going finds its dependents without scanning every value.

use std::collections::BTreeMap;

use crate::{Dependency, FastMap as HashMap, FastSet as HashSet};

#[derive(Default)]
pub(crate) struct DependencyIndex {
    /// Key -> values with `Dependency::Key(key)`.
    by_key: HashMap<String, HashSet<String>>,
    /// Prefix -> values with `Dependency::AnyOf(prefix)`.
    by_prefix: HashMap<String, HashSet<String>>,
    /// Lengths of the prefixes in `by_prefix` (with how many prefixes have
    /// each), so finding the prefixes of a key costs a lookup per distinct
    /// length rather than per character.
    prefix_lens: BTreeMap<usize, usize>,
}

impl DependencyIndex {
    pub(crate) fn add(&mut self, dependent: &str, dep: &Dependency) {
        match dep {
            Dependency::Key(key) => match self.by_key.get_mut(key.as_str()) {
                Some(set) => {
                    set.insert(dependent.to_string());
                }
                None => {
                    let set = HashSet::from_iter([dependent.to_string()]);
                    self.by_key.insert(key.clone(), set);
                }
            },
            Dependency::AnyOf(prefix) => match self.by_prefix.get_mut(prefix.as_str()) {
                Some(set) => {
                    set.insert(dependent.to_string());
                }
                None => {
                    *self.prefix_lens.entry(prefix.len()).or_default() += 1;
                    let set = HashSet::from_iter([dependent.to_string()]);
                    self.by_prefix.insert(prefix.clone(), set);
                }
            },
        }
    }

    pub(crate) fn remove(&mut self, dependent: &str, dep: &Dependency) {
        match dep {
            Dependency::Key(key) => {
                if let Some(set) = self.by_key.get_mut(key) {
                    set.remove(dependent);
                    if set.is_empty() {
                        self.by_key.remove(key);
                    }
                }
            }
            Dependency::AnyOf(prefix) => {
                if let Some(set) = self.by_prefix.get_mut(prefix) {
                    set.remove(dependent);
                    if set.is_empty() {
                        self.by_prefix.remove(prefix);
                        if let Some(n) = self.prefix_lens.get_mut(&prefix.len()) {
                            *n -= 1;
                            if *n == 0 {
                                self.prefix_lens.remove(&prefix.len());
                            }
                        }
                    }
                }
            }
        }
    }

    /// Values that depend on exactly `key`.
    pub(crate) fn on_key<'a>(&'a self, key: &str) -> impl Iterator<Item = &'a String> + 'a {
        self.by_key.get(key).into_iter().flatten()
    }

    /// `(prefix, values)` for every `AnyOf(prefix)` that `key` falls under.
    pub(crate) fn on_prefixes_of<'a>(
        &'a self,
        key: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a HashSet<String>)> + 'a {
        self.prefix_lens
            .keys()
            .take_while(move |&&len| len <= key.len())
            .filter(move |&&len| key.is_char_boundary(len))
            .filter_map(move |&len| {
                let prefix = &key[..len];
                self.by_prefix.get(prefix).map(|set| (prefix, set))
            })
    }
}
