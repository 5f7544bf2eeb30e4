//! The dataplane's layers, checked from its sources: every `crate::` path a
//! file names must point to its own layer or a lower one, the graph names
//! nothing but buffers, a feature module never names a sibling (only `l3`),
//! and the parts depend on each other without a cycle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer of a part of the crate; a part may use its own layer and lower.
fn layer(part: &str) -> u8 {
    match part {
        "buffer" | "prefetch" => 0,
        "graph" => 1,
        "snapshot" | "tables" | "worker" | "driver" | "registry" => 2,
        p if p.starts_with("modules") => 3,
        "control" => 4,
        // lib.rs (Builder, Dataplane), test helpers.
        _ => 5,
    }
}

/// The part a source file belongs to: `graph`, `modules/ip4`, `lib`, ...
fn part_of(rel: &Path) -> String {
    let comps: Vec<String> = rel
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .collect();
    match comps.as_slice() {
        [m, f, ..] if m == "modules" && comps.len() > 2 => format!("modules/{f}"),
        [m, f] if m == "modules" && f == "mod" => "modules".into(),
        [first, ..] => first.clone(),
        [] => unreachable!(),
    }
}

/// Parts named by `crate::a::b` paths in `src`.
fn named_parts(src: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in src.match_indices("crate::") {
        // `$crate::` in macros names the graph, like `crate::graph`.
        let rest = &src[i + "crate::".len()..];
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let first = ident(rest);
        if first.is_empty() {
            // `use crate::{A, B}`: only lib.rs items, layer 5.
            out.insert("lib".to_string());
            continue;
        }
        if first.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            out.insert("lib".to_string());
            continue;
        }
        if first == "modules" {
            let second = ident(rest.trim_start_matches("modules::"));
            if rest.starts_with("modules::")
                && !second.is_empty()
                && second != "register"
                && second != "registry"
            {
                out.insert(format!("modules/{second}"));
            } else {
                out.insert("modules".into());
            }
            continue;
        }
        out.insert(first);
    }
    out
}

fn sources(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, root, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            out.push((rel, std::fs::read_to_string(&p).unwrap()));
        }
    }
}

fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert!(files.len() > 20, "found the sources");
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, src) in files {
        let me = part_of(&rel);
        let named = named_parts(&src);
        let e = deps.entry(me.clone()).or_default();
        for n in named {
            if n != me {
                e.insert(n);
            }
        }
    }
    deps
}

#[test]
fn every_part_uses_only_its_own_layer_or_lower() {
    let mut bad = Vec::new();
    for (part, uses) in dependencies() {
        for u in uses {
            if layer(&u) > layer(&part) {
                bad.push(format!("{part} uses {u}"));
            }
        }
    }
    assert!(bad.is_empty(), "layering broken: {bad:#?}");
}

#[test]
fn the_graph_names_only_buffers() {
    let deps = dependencies();
    let uses = &deps["graph"];
    let extra: Vec<_> = uses
        .iter()
        .filter(|u| !matches!(u.as_str(), "buffer" | "prefetch"))
        .collect();
    assert!(extra.is_empty(), "graph uses {extra:?}");
}

#[test]
fn a_feature_module_never_uses_a_sibling() {
    let mut bad = Vec::new();
    for (part, uses) in dependencies() {
        let Some(me) = part.strip_prefix("modules/") else {
            continue;
        };
        for u in uses {
            if let Some(other) = u.strip_prefix("modules/") {
                if other != "l3" || me == "l3" {
                    bad.push(format!("{part} uses {u}"));
                }
            } else if u == "modules" {
                bad.push(format!("{part} uses the module list"));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn no_cycle_between_parts() {
    let deps = dependencies();
    // Depth-first search for a back edge.
    fn visit<'a>(
        n: &'a str,
        deps: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        path: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let at = path.iter().position(|p| *p == n).unwrap();
                let mut c: Vec<String> = path[at..].iter().map(|s| s.to_string()).collect();
                c.push(n.to_string());
                return Some(c);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n, 1);
        path.push(n);
        if let Some(next) = deps.get(n) {
            for m in next {
                if let Some(c) = visit(m, deps, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state.insert(n, 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in deps.keys() {
        if let Some(c) = visit(n, &deps, &mut state, &mut Vec::new()) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_check_sees_known_dependencies() {
    let deps = dependencies();
    let has = |a: &str, b: &str| deps.get(a).is_some_and(|u| u.contains(b));
    assert!(has("worker", "graph"), "{deps:#?}");
    assert!(has("modules/ip4", "modules/l3"), "{deps:#?}");
    assert!(has("modules/ip4", "worker"), "{deps:#?}");
    assert!(has("control", "modules/icmp"), "{deps:#?}");
    assert!(has("registry", "graph"), "{deps:#?}");
}
