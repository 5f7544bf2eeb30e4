//! Tables, YAML, JSON, `describe` and `diff` output.

use std::time::SystemTime;

use weir_model::{Object, Registry};

use super::Output;

/// Age of an RFC 3339 timestamp: `42s`, `5m`, `3h`, `2d`.
pub fn age(ts: Option<&str>) -> String {
    let Some(t) = ts.and_then(|t| humantime::parse_rfc3339_weak(t).ok()) else {
        return "-".into();
    };
    let s = SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Pads columns.
pub fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut width = vec![0; cols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}   ", w = width[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn render(reg: &Registry, kind: &str, objects: &[Object], output: Output, one: bool) -> String {
    match output {
        Output::Table => {
            if objects.is_empty() {
                return String::new();
            }
            let mut header = reg.columns(kind);
            header.push("AGE".into());
            let mut rows = vec![header];
            for o in objects {
                let mut r = reg.row(o);
                r.push(age(o.metadata.creation_timestamp.as_deref()));
                rows.push(r);
            }
            table(&rows)
        }
        Output::Yaml => objects
            .iter()
            .map(Object::to_yaml)
            .collect::<Vec<_>>()
            .join("---\n"),
        Output::Json => {
            let v = if one && objects.len() == 1 {
                serde_json::to_value(&objects[0]).expect("JSON")
            } else {
                serde_json::json!({"apiVersion": "weir/v1", "kind": "List", "items": objects})
            };
            let mut s = serde_json::to_string_pretty(&v).expect("JSON");
            s.push('\n');
            s
        }
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}\n"))
        .collect::<String>()
}

/// `weir describe`.
pub fn describe(o: &Object) -> String {
    let m = &o.metadata;
    let mut s = String::new();
    let field =
        |s: &mut String, k: &str, v: &str| s.push_str(&format!("{:<21}{v}\n", format!("{k}:")));
    field(&mut s, "Name", &m.name);
    field(&mut s, "Kind", &o.kind);
    let labels = if m.labels.is_empty() {
        "<none>".to_string()
    } else {
        m.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    field(&mut s, "Labels", &labels);
    field(&mut s, "Node", m.node.as_deref().unwrap_or("<all>"));
    let opt = |x: Option<u64>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    field(&mut s, "Revision", &opt(m.revision));
    field(&mut s, "Generation", &opt(m.generation));
    field(
        &mut s,
        "Created",
        &format!(
            "{} ({} ago)",
            m.creation_timestamp.as_deref().unwrap_or("-"),
            age(m.creation_timestamp.as_deref())
        ),
    );
    s.push_str("Spec:\n");
    let spec = serde_norway::to_string(&o.spec).unwrap_or_default();
    s.push_str(&indent(spec.trim_end(), "  "));
    s.push_str("Status:\n");
    match &o.status {
        None => s.push_str("  State:             unknown (not yet seen by the reconciler)\n"),
        Some(st) => {
            let f = |s: &mut String, k: &str, v: &str| {
                s.push_str(&format!("  {:<19}{v}\n", format!("{k}:")))
            };
            f(&mut s, "State", st.state.as_str());
            f(&mut s, "Reason", st.reason.as_deref().unwrap_or("-"));
            let missing = if st.missing.is_empty() {
                "-".to_string()
            } else {
                st.missing
                    .iter()
                    .map(|r| format!("{}/{}", r.kind.to_ascii_lowercase(), r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            f(&mut s, "Missing", &missing);
            f(&mut s, "Attempts", &st.attempts.to_string());
            f(
                &mut s,
                "Last transition",
                st.last_transition.as_deref().unwrap_or("-"),
            );
            f(&mut s, "Observed generation", &opt(st.observed_generation));
        }
    }
    s
}

/// The YAML `diff` compares: no server-set fields.
fn comparable(o: &Object) -> String {
    let mut o = o.clone();
    o.status = None;
    o.metadata.revision = None;
    o.metadata.generation = None;
    o.metadata.creation_timestamp = None;
    o.to_yaml()
}

/// A unified-style diff of two texts (whole objects as context).
pub fn diff(label: &str, live: Option<&Object>, new: Option<&Object>) -> String {
    let a = live.map(comparable).unwrap_or_default();
    let b = new.map(comparable).unwrap_or_default();
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // Longest common subsequence table.
    let mut l = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            l[i][j] = if a[i] == b[j] {
                l[i + 1][j + 1] + 1
            } else {
                l[i + 1][j].max(l[i][j + 1])
            };
        }
    }
    let mut out = format!(
        "--- {label} ({})\n+++ {label} (after apply)\n",
        if live.is_some() { "live" } else { "absent" }
    );
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!(" {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || l[i][j + 1] >= l[i + 1][j]) {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        }
    }
    out
}
