//! Tables, YAML, JSON, `describe`, `diff`, and the daemon's `status`,
//! `history` and `stats`: what people read, so aligned columns, whole
//! lines, and no internal representations.

use std::time::SystemTime;

use serde_json::Value;
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

/// Pads columns (all left-aligned).
pub fn table(rows: &[Vec<String>]) -> String {
    table_aligned(rows, &[])
}

/// Pads columns; column `i` is right-aligned when `right[i]` (numbers).
/// Columns are three spaces apart; no line has trailing spaces.
pub fn table_aligned(rows: &[Vec<String>], right: &[bool]) -> String {
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
            if i > 0 {
                line.push_str("   ");
            }
            let w = width[i];
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&format!("{c:>w$}"));
            } else if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}"));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The reconciler's summary in words: `2 configured, 1 pending, ...`.
pub fn summary_line(s: &weir_reconcile::Summary) -> String {
    format!(
        "{} configured, {} pending, {} retrying, {} failed, {} invalid",
        s.configured, s.pending, s.retrying, s.failed, s.invalid
    )
}

const SUMMARY_STATES: [&str; 5] = ["configured", "pending", "retrying", "failed", "invalid"];

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `weir status`: objects per state, then one row per object.
pub fn status(v: &Value) -> String {
    let objects: &[Value] = v["objects"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    // Counts from the API's summary; from the objects when it has none.
    let counts: Vec<String> = SUMMARY_STATES
        .iter()
        .map(|k| match &v["summary"][k] {
            Value::Number(n) => n.to_string(),
            _ => objects
                .iter()
                .filter(|o| o["state"].as_str() == Some(k))
                .count()
                .to_string(),
        })
        .collect();
    let header = SUMMARY_STATES.iter().map(|s| s.to_uppercase()).collect();
    let mut s = table_aligned(&[header, counts], &[true; 5]);
    s.push('\n');
    if objects.is_empty() {
        s.push_str("No objects.\n");
        return s;
    }
    let mut rows = vec![vec![
        "KEY".to_string(),
        "STATE".into(),
        "ATTEMPTS".into(),
        "LAST TRANSITION".into(),
        "REASON".into(),
    ]];
    for o in objects {
        rows.push(vec![
            text(&o["key"]),
            text(&o["state"]),
            count(&o["attempts"]).to_string(),
            text(&o["lastTransition"]),
            text(&o["reason"]),
        ]);
    }
    s.push_str(&table_aligned(&rows, &[false, false, true]));
    s
}

/// What started a reconciler transaction, in words.
fn txn_kind(k: &str) -> &str {
    match k {
        "SetDesired" => "change",
        "ResyncFull" => "full resync",
        "ResyncDownstream" => "resync of the dataplane",
        "Retry" => "retry",
        other => other,
    }
}

/// `weir history`: each transaction, then its operations indented.
pub fn history(v: &Value) -> String {
    let items: &[Value] = v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if items.is_empty() {
        return "No transactions yet.\n".into();
    }
    let mut s = String::new();
    for h in items {
        s.push_str(&format!(
            "#{}  {}  {}\n",
            count(&h["seq"]),
            text(&h["at"]),
            txn_kind(h["kind"].as_str().unwrap_or("-"))
        ));
        let ops: &[Value] = h["operations"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if ops.is_empty() {
            s.push_str("    (no operations)\n");
        }
        for op in ops {
            s.push_str(&format!("    {}\n", text(op)));
        }
        for n in h["notes"].as_array().into_iter().flatten() {
            s.push_str(&format!("    note: {}\n", text(n)));
        }
    }
    s
}

/// Per-node counters and drop reasons, the shape of `GET /v1/stats`:
/// `{rxPackets, txPackets, nodes: [{node, calls, packets, cycles}],
/// reasons: {name: count}, nat: {capacity, active, rules}}`.
pub fn stats(v: &Value) -> String {
    let mut s = format!(
        "rx {} packets, tx {} packets\n\n",
        count(&v["rxPackets"]),
        count(&v["txPackets"])
    );
    let workers = v["workers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if workers.len() > 1 {
        let mut rows = vec![vec![
            "WORKER".to_string(),
            "RX PACKETS".into(),
            "TX PACKETS".into(),
        ]];
        for (i, w) in workers.iter().enumerate() {
            rows.push(vec![
                i.to_string(),
                count(&w["rxPackets"]).to_string(),
                count(&w["txPackets"]).to_string(),
            ]);
        }
        s.push_str(&table_aligned(&rows, &[false, true, true]));
        s.push('\n');
    }
    let mut rows = vec![vec![
        "NODE".to_string(),
        "CALLS".into(),
        "PACKETS".into(),
        "PKTS/CALL".into(),
        "CYCLES/PKT".into(),
    ]];
    for n in v["nodes"].as_array().into_iter().flatten() {
        let (c, p, cy) = (
            count(&n["calls"]),
            count(&n["packets"]),
            count(&n["cycles"]),
        );
        if c == 0 {
            continue;
        }
        rows.push(vec![
            text(&n["node"]),
            c.to_string(),
            p.to_string(),
            format!("{:.1}", p as f64 / c as f64),
            format!("{:.1}", cy as f64 / p.max(1) as f64),
        ]);
    }
    if rows.len() == 1 {
        s.push_str("No packets through any node yet.\n");
    } else {
        s.push_str(&table_aligned(&rows, &[false, true, true, true, true]));
    }
    s.push('\n');
    let mut rows = vec![vec!["DROP REASON".to_string(), "COUNT".into()]];
    for (k, n) in v["reasons"].as_object().into_iter().flatten() {
        rows.push(vec![k.clone(), count(n).to_string()]);
    }
    if rows.len() == 1 {
        s.push_str("No drops.\n");
    } else {
        s.push_str(&table_aligned(&rows, &[false, true]));
    }
    s.push_str(&nat_stats(&v["nat"]));
    s
}

/// Seconds as `42s`, `5m`, `3h`, `2d`.
fn duration(s: u64) -> String {
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `weir get sessions`, the shape of `GET /v1/sessions`: `{total,
/// items: [{vpc, rule, protocol, inside, outside, remote, state, idle}]}`.
pub fn sessions(v: &Value) -> String {
    let items = v["items"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let mut s = String::new();
    if !items.is_empty() {
        let mut rows = vec![[
            "PROTO", "INSIDE", "OUTSIDE", "REMOTE", "STATE", "IDLE", "RULE", "VPC",
        ]
        .map(String::from)
        .to_vec()];
        for i in items {
            rows.push(vec![
                text(&i["protocol"]),
                text(&i["inside"]),
                text(&i["outside"]),
                text(&i["remote"]),
                text(&i["state"]),
                duration(count(&i["idle"])),
                text(&i["rule"]),
                text(&i["vpc"]),
            ]);
        }
        let mut right = [false; 8];
        right[5] = true;
        s.push_str(&table_aligned(&rows, &right));
    }
    let total = count(&v["total"]);
    s.push_str(&format!(
        "{total} session{} (showing {})\n",
        if total == 1 { "" } else { "s" },
        items.len()
    ));
    s
}

/// The NAT part of `weir stats`: `{capacity, active, rules: [{name,
/// active, created, expired}]}`; nothing when no rule is in place.
fn nat_stats(v: &Value) -> String {
    let rules = v["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    if rules.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "\nNAT: {} of {} sessions in use\n",
        count(&v["active"]),
        count(&v["capacity"])
    );
    let mut rows = vec![vec![
        "NAT RULE".to_string(),
        "ACTIVE".into(),
        "CREATED".into(),
        "EXPIRED".into(),
    ]];
    for r in rules {
        rows.push(vec![
            text(&r["name"]),
            count(&r["active"]).to_string(),
            count(&r["created"]).to_string(),
            count(&r["expired"]).to_string(),
        ]);
    }
    s.push_str(&table_aligned(&rows, &[false, true, true, true]));
    s
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

/// `weir describe`: `Key:` then the value, values in one column.
pub fn describe(o: &Object) -> String {
    let m = &o.metadata;
    let opt = |x: Option<u64>| x.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let labels = if m.labels.is_empty() {
        "<none>".to_string()
    } else {
        m.labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let head = [
        ("Name", m.name.clone()),
        ("Kind", o.kind.clone()),
        ("Labels", labels),
        ("Node", m.node.clone().unwrap_or_else(|| "<all>".into())),
        ("Revision", opt(m.revision)),
        ("Generation", opt(m.generation)),
        (
            "Created",
            format!(
                "{} ({} ago)",
                m.creation_timestamp.as_deref().unwrap_or("-"),
                age(m.creation_timestamp.as_deref())
            ),
        ),
    ];
    let status: Vec<(&str, String)> = match &o.status {
        None => vec![(
            "State",
            "unknown (not yet seen by the reconciler)".to_string(),
        )],
        Some(st) => {
            let missing = if st.missing.is_empty() {
                "-".to_string()
            } else {
                st.missing
                    .iter()
                    .map(|r| format!("{}/{}", r.kind.to_ascii_lowercase(), r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                ("State", st.state.as_str().to_string()),
                ("Reason", st.reason.clone().unwrap_or_else(|| "-".into())),
                ("Missing", missing),
                ("Attempts", st.attempts.to_string()),
                (
                    "Last transition",
                    st.last_transition.clone().unwrap_or_else(|| "-".into()),
                ),
                ("Observed generation", opt(st.observed_generation)),
            ]
        }
    };
    // One value column for the whole page: the widest key, its colon, and
    // at least two spaces (status keys are indented by two).
    let width = head
        .iter()
        .map(|(k, _)| k.len())
        .chain(status.iter().map(|(k, _)| k.len() + 2))
        .max()
        .unwrap_or(0)
        + 3;
    let mut s = String::new();
    let field = |s: &mut String, indent: &str, k: &str, v: &str| {
        let key = format!("{indent}{k}:");
        s.push_str(&format!("{key:<width$}{v}\n"));
    };
    for (k, v) in &head {
        field(&mut s, "", k, v);
    }
    s.push_str("Spec:\n");
    let spec = serde_norway::to_string(&o.spec).unwrap_or_default();
    let spec = spec.trim_end();
    if spec.is_empty() || spec == "{}" || spec == "null" {
        s.push_str("  <empty>\n");
    } else {
        s.push_str(&indent(spec, "  "));
    }
    s.push_str("Status:\n");
    for (k, v) in &status {
        field(&mut s, "  ", k, v);
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Where each of `words` starts in `line`.
    fn starts(line: &str, words: &[&str]) -> Vec<usize> {
        words.iter().map(|w| line.find(w).unwrap()).collect()
    }

    fn whole_lines(s: &str) {
        assert!(s.ends_with('\n'), "no final newline: {s:?}");
        for l in s.lines() {
            assert_eq!(l, l.trim_end(), "trailing spaces: {l:?}");
        }
    }

    #[test]
    fn status_is_a_table_with_counts_and_aligned_rows() {
        let v = json!({
            "summary": {"configured": 12, "pending": 1, "retrying": 0, "failed": 0, "invalid": 0},
            "objects": [
                {"key": "/weir/v1/route/a", "state": "configured", "attempts": 1,
                 "reason": null, "lastTransition": "2026-12-02T04:00:00Z"},
                {"key": "/weir/v1/route/a-much-longer-name", "state": "pending", "attempts": 12,
                 "reason": "waiting for /weir/v1/vpc/blue", "lastTransition": "2026-12-02T04:00:01Z"},
            ]
        });
        let s = status(&v);
        whole_lines(&s);
        assert!(!s.contains("Summary") && !s.contains('{'), "{s}");
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["CONFIGURED", "PENDING", "RETRYING", "FAILED", "INVALID"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["12", "1", "0", "0", "0"]
        );
        // Counts end where their headings end.
        assert_eq!(
            lines[0].find("PENDING").unwrap() + "PENDING".len(),
            lines[1].find(" 1 ").unwrap() + 2
        );
        assert_eq!(lines[2], "");
        let head = starts(lines[3], &["STATE", "LAST TRANSITION", "REASON"]);
        assert_eq!(starts(lines[4], &["configured", "2026"]), head[..2]);
        // No reason: a dash in the REASON column.
        assert_eq!(lines[4].rfind('-'), Some(head[2]), "{s}");
        assert_eq!(starts(lines[5], &["pending", "2026", "waiting"]), head);
        // Attempts right-aligned under their heading.
        let end = lines[3].find("ATTEMPTS").unwrap() + "ATTEMPTS".len();
        assert_eq!(lines[4][..end].trim_end().len(), end);
        assert!(lines[4][..end].ends_with(" 1") && lines[5][..end].ends_with("12"));
    }

    #[test]
    fn status_counts_objects_when_the_summary_is_missing_and_says_when_empty() {
        let v = json!({"summary": "opaque", "objects": [
            {"key": "k1", "state": "failed", "attempts": 3, "reason": "boom"},
            {"key": "k2", "state": "failed", "attempts": 1, "reason": "boom"},
        ]});
        let s = status(&v);
        assert_eq!(
            s.lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["0", "0", "0", "2", "0"]
        );
        let s = status(&json!({"summary": {"configured": 0}, "objects": []}));
        whole_lines(&s);
        assert!(s.ends_with("No objects.\n"), "{s}");
    }

    #[test]
    fn stats_align_every_column_whatever_the_name_lengths() {
        let v = json!({
            "rxPackets": 1000, "txPackets": 990,
            "nodes": [
                {"node": "eth-input", "calls": 10, "packets": 1000, "cycles": 50_000},
                {"node": "a-node-with-a-long-name", "calls": 1, "packets": 5, "cycles": 10},
                {"node": "idle", "calls": 0, "packets": 0, "cycles": 0},
            ],
            "reasons": {"local-traffic-without-kernel-mirror": 7, "ttl-exceeded": 1234567},
        });
        let s = stats(&v);
        whole_lines(&s);
        assert!(s.starts_with("rx 1000 packets, tx 990 packets\n"), "{s}");
        assert!(!s.contains("idle"), "nodes without calls are left out: {s}");
        let l: Vec<&str> = s.lines().collect();
        let node_rows: Vec<&str> = l
            .iter()
            .copied()
            .filter(|x| x.contains("-n") || x.starts_with("eth"))
            .collect();
        // Right-aligned numbers: every row of a table has the same length
        // up to its last column, which ends in the same place.
        let header = l.iter().find(|x| x.starts_with("NODE")).unwrap();
        for r in &node_rows {
            assert_eq!(r.len(), header.len(), "{s}");
        }
        assert!(
            s.contains("eth-input") && s.contains("100.0") && s.contains("50.0"),
            "{s}"
        );
        let reasons: Vec<&str> = l
            .iter()
            .copied()
            .skip_while(|x| !x.starts_with("DROP REASON"))
            .collect();
        assert_eq!(reasons.len(), 3, "{s}");
        assert!(reasons.iter().all(|r| r.len() == reasons[0].len()), "{s}");
        let empty = stats(&json!({"rxPackets": 0, "txPackets": 0, "nodes": [], "reasons": {}}));
        whole_lines(&empty);
        assert!(empty.contains("No drops."), "{empty}");
    }

    #[test]
    fn sessions_are_a_table_and_a_count() {
        let v = json!({"total": 5, "items": [
            {"vpc": "blue", "rule": "out", "protocol": "udp", "inside": "10.0.0.2:40000",
             "outside": "203.0.113.5:1024", "remote": "192.0.2.5:53", "state": "active", "idle": 3},
            {"vpc": "blue", "rule": "web", "protocol": "tcp", "inside": "10.0.0.80:8443",
             "outside": "192.0.2.10:443", "remote": "198.51.100.1:50000", "state": "established", "idle": 300},
        ]});
        let s = sessions(&v);
        whole_lines(&s);
        let l: Vec<&str> = s.lines().collect();
        assert_eq!(
            starts(
                l[0],
                &["PROTO", "INSIDE", "OUTSIDE", "REMOTE", "STATE", "RULE", "VPC"]
            ),
            starts(
                l[2],
                &[
                    "tcp",
                    "10.0.0.80:8443",
                    "192.0.2.10:443",
                    "198.51.100.1:50000",
                    "established",
                    "web",
                    "blue"
                ]
            ),
            "{s}"
        );
        // IDLE is right-aligned.
        assert!(
            l[0].contains("IDLE   RULE") && l[1].contains("  3s   out    blue"),
            "{s}"
        );
        assert_eq!(l[3], "5 sessions (showing 2)");
        assert_eq!(
            sessions(&json!({"total": 0, "items": []})),
            "0 sessions (showing 0)\n"
        );
        assert_eq!(
            sessions(&json!({"total": 1, "items": []})),
            "1 session (showing 0)\n"
        );
    }

    #[test]
    fn stats_show_nat_rules_when_there_are_some() {
        let base = json!({"rxPackets": 0, "txPackets": 0, "nodes": [], "reasons": {}});
        let mut v = base.clone();
        v["nat"] = json!({"capacity": 1024, "active": 3, "rules": [
            {"name": "out", "active": 2, "created": 10, "expired": 8},
            {"name": "a-long-rule-name", "active": 1, "created": 1, "expired": 0},
        ]});
        let s = stats(&v);
        whole_lines(&s);
        assert!(s.contains("NAT: 3 of 1024 sessions in use\n"), "{s}");
        let l: Vec<&str> = s
            .lines()
            .skip_while(|x| !x.starts_with("NAT RULE"))
            .collect();
        assert_eq!(l.len(), 3, "{s}");
        assert!(l.iter().all(|r| r.len() == l[0].len()), "{s}");
        assert!(l[0].ends_with("ACTIVE   CREATED   EXPIRED"), "{s}");
        assert!(
            l[1].starts_with("out ") && l[1].ends_with("2        10         8"),
            "{s}"
        );
        let mut none = base;
        none["nat"] = json!({"capacity": 1024, "active": 0, "rules": []});
        assert!(!stats(&none).contains("NAT"), "no rules, no NAT section");
    }

    #[test]
    fn history_names_what_started_each_transaction() {
        let v = json!({"items": [
            {"seq": 3, "at": "2026-12-02T04:00:00.000Z", "kind": "SetDesired",
             "operations": ["create /weir/v1/route/r1 ok"], "notes": []},
            {"seq": 4, "at": "2026-12-02T04:00:01.000Z", "kind": "ResyncFull",
             "operations": [], "notes": ["retrieve failed"]},
        ]});
        let s = history(&v);
        whole_lines(&s);
        assert_eq!(
            s,
            "#3  2026-12-02T04:00:00.000Z  change\n    create /weir/v1/route/r1 ok\n\
             #4  2026-12-02T04:00:01.000Z  full resync\n    (no operations)\n    note: retrieve failed\n"
        );
        assert_eq!(history(&json!({"items": []})), "No transactions yet.\n");
    }

    #[test]
    fn describe_keeps_keys_and_values_apart_in_one_column() {
        let o: Object = serde_json::from_value(json!({
            "apiVersion": "weir/v1", "kind": "Route",
            "metadata": {"name": "r1", "labels": {"tier": "web"}, "revision": 8, "generation": 3,
                         "creationTimestamp": "2026-12-02T04:00:00Z"},
            "spec": {"vpc": "blue", "prefix": "10.1.0.0/16", "blackhole": true},
            "status": {"state": "configured", "attempts": 1, "observedGeneration": 3,
                       "lastTransition": "2026-12-02T04:00:01Z"}
        }))
        .unwrap();
        let s = describe(&o);
        whole_lines(&s);
        let col = s.lines().next().unwrap().find("r1").unwrap();
        for l in s.lines().filter(|l| l.contains(": ") || l.ends_with(':')) {
            if let Some(i) = l.find(':') {
                let k = &l[..i];
                if ["Spec", "Status"].contains(&k) || k.starts_with("    ") {
                    continue;
                }
                if ["  vpc", "  prefix", "  blackhole"].contains(&k) {
                    continue;
                }
                assert!(
                    l.len() > col && l[i + 1..col].trim().is_empty(),
                    "{l:?}\n{s}"
                );
                assert_ne!(&l[col..col + 1], " ", "{l:?}\n{s}");
            }
        }
        assert!(s.contains("  Observed generation:  3\n"), "{s}");
        assert!(s.contains("Generation:") && s.contains("Labels:") && s.contains("tier=web"));
    }

    #[test]
    fn describe_without_status_still_ends_its_last_line() {
        let o: Object = serde_json::from_value(json!({
            "apiVersion": "weir/v1", "kind": "Vpc",
            "metadata": {"name": "blue"}, "spec": {"vni": 100}
        }))
        .unwrap();
        let s = describe(&o);
        whole_lines(&s);
        let last = s.lines().last().unwrap();
        assert!(last.starts_with("  State:"), "{s}");
        assert_eq!(
            last.find("unknown (not yet seen by the reconciler)"),
            s.lines().next().unwrap().find("blue"),
            "{s}"
        );
    }
}
