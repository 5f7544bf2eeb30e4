//! The `weir` client commands against a real `weir api-server`.

mod api_common;

use api_common::{stderr, stdout, weir, weir_env, ApiServer, TempDir, WEIR};

const OBJECTS: &str = "\
apiVersion: weir/v1
kind: Vpc
metadata:
  name: blue
spec:
  vni: 100
---
apiVersion: weir/v1
kind: Route
metadata:
  name: r1
  labels: {tier: web}
spec:
  vpc: blue
  prefix: 10.1.0.0/16
  nextHop: {address: 192.0.2.1}
---
apiVersion: weir/v1
kind: Route
metadata:
  name: r2
spec:
  vpc: blue
  prefix: 10.2.0.0/16
  blackhole: true
";

#[test]
fn apply_get_describe_diff_delete() {
    let dir = TempDir::new("cli");
    let srv = ApiServer::start(&dir.path().join("s.redb"), "127.0.0.1:0", &[]);
    let u = srv.url.as_str();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, OBJECTS).unwrap();
    let f = file.to_str().unwrap();

    let o = weir(u, &["apply", "-f", f]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    for line in ["vpc/blue created", "route/r1 created", "route/r2 created"] {
        assert!(out.contains(line), "{out}");
    }
    let o = weir(u, &["apply", "-f", f]);
    assert!(stdout(&o).contains("route/r1 unchanged"), "{}", stdout(&o));

    // Tables, YAML, JSON, selectors.
    let o = weir(u, &["get", "routes"]);
    assert_eq!(o.status.code(), Some(0));
    let t = stdout(&o);
    let header: Vec<&str> = t.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header.first(), Some(&"NAME"));
    assert_eq!(&header[header.len() - 2..], ["STATE", "AGE"]);
    assert!(
        t.lines()
            .any(|l| l.starts_with("r1 ") && l.contains("10.1.0.0/16")),
        "{t}"
    );
    assert_eq!(t.lines().count(), 3);
    let o = weir(u, &["get", "route", "r1", "-o", "yaml"]);
    let y = stdout(&o);
    assert!(
        y.contains("kind: Route") && y.contains("name: r1") && y.contains("generation: 1"),
        "{y}"
    );
    let o = weir(u, &["get", "Route", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    let o = weir(u, &["get", "routes", "-l", "tier=web", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["items"][0]["metadata"]["name"], "r1");
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    let o = weir(u, &["get", "vpcs"]);
    assert!(stdout(&o).contains("blue"));

    let o = weir(u, &["describe", "route", "r1"]);
    let d = stdout(&o);
    for s in [
        "Name:",
        "r1",
        "Labels:",
        "tier=web",
        "Revision:",
        "Spec:",
        "prefix: 10.1.0.0/16",
        "Status:",
        "State:",
    ] {
        assert!(d.contains(s), "{s} missing in\n{d}");
    }

    // Dry run and diff show a change without making it.
    let changed = OBJECTS.replace("10.2.0.0/16", "10.3.0.0/16");
    let file2 = dir.path().join("changed.yaml");
    std::fs::write(&file2, &changed).unwrap();
    let f2 = file2.to_str().unwrap();
    let o = weir(u, &["apply", "-f", f2, "--dry-run"]);
    assert!(
        stdout(&o).contains("route/r2 updated (dry run)"),
        "{}",
        stdout(&o)
    );
    let o = weir(u, &["diff", "-f", f2]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let diff = stdout(&o);
    assert!(
        diff.contains("-  prefix: 10.2.0.0/16") && diff.contains("+  prefix: 10.3.0.0/16"),
        "{diff}"
    );
    assert!(!diff.contains("route/r1"), "{diff}");
    let o = weir(u, &["get", "route", "r2", "-o", "json"]);
    assert!(stdout(&o).contains("10.2.0.0/16"));

    // Apply from a directory and from stdin.
    let sub = dir.path().join("d");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("a.yaml"), &changed).unwrap();
    let o = weir(u, &["apply", "-f", sub.to_str().unwrap()]);
    assert!(stdout(&o).contains("route/r2 updated"), "{}", stdout(&o));
    let mut c = std::process::Command::new(WEIR)
        .args(["apply", "-f", "-", "--server", u])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    c.stdin
        .take()
        .unwrap()
        .write_all(changed.as_bytes())
        .unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(stdout(&o).contains("route/r2 unchanged"));

    // Delete by name and by file.
    let o = weir(u, &["delete", "route", "r2"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("route/r2 deleted"));
    let o = weir(u, &["delete", "route", "r2"]);
    assert_eq!(o.status.code(), Some(3), "not found");
    let o = weir(u, &["delete", "-f", f]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "r2 is gone already: {}",
        stderr(&o)
    );
    assert!(stdout(&o).contains("route/r1 deleted"));
    let o = weir(u, &["get", "routes", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert!(v["items"].as_array().unwrap().is_empty());
}

#[test]
fn exit_codes() {
    let dir = TempDir::new("cli-exit");
    let srv = ApiServer::start(&dir.path().join("s.redb"), "127.0.0.1:0", &[]);
    let u = srv.url.as_str();
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, OBJECTS).unwrap();
    assert_eq!(
        weir(u, &["apply", "-f", good.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );

    // Validation: 2, naming the object and the field.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, OBJECTS.replace("10.2.0.0/16", "10.2.0.0/99")).unwrap();
    let o = weir(u, &["apply", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("route/r2") && e.contains("spec.prefix"), "{e}");
    // Cross-object: 2, naming both.
    let dup = dir.path().join("dup.yaml");
    std::fs::write(
        &dup,
        "apiVersion: weir/v1\nkind: Vpc\nmetadata: {name: red}\nspec: {vni: 100}\n",
    )
    .unwrap();
    let o = weir(u, &["apply", "-f", dup.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("vpc/red") && stderr(&o).contains("blue"),
        "{}",
        stderr(&o)
    );
    // Not found: 3.
    assert_eq!(weir(u, &["get", "route", "nope"]).status.code(), Some(3));
    assert_eq!(weir(u, &["describe", "vpc", "nope"]).status.code(), Some(3));
    assert_eq!(weir(u, &["get", "widgets"]).status.code(), Some(3));
    // Conflict: 4 (a stale revision).
    let stale = dir.path().join("stale.yaml");
    std::fs::write(
        &stale,
        OBJECTS.replace("name: r2\n", "name: r2\n  revision: 999999\n"),
    )
    .unwrap();
    let o = weir(u, &["apply", "-f", stale.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    // Usage: 2.
    assert_eq!(weir(u, &["get"]).status.code(), Some(2));
    assert_eq!(weir(u, &["delete", "route"]).status.code(), Some(2));
    assert_eq!(
        weir(u, &["apply", "-f", "/nonexistent.yaml"]).status.code(),
        Some(2)
    );
    // Server unreachable: 1.
    let o = weir("http://127.0.0.1:1", &["get", "routes"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot reach"), "{}", stderr(&o));
}

#[test]
fn server_from_env_unix_socket_and_token() {
    let dir = TempDir::new("cli-unix");
    let sock = dir.path().join("api.sock");
    let token = dir.path().join("token");
    std::fs::write(&token, "t0ps3cret\n").unwrap();
    let listen = format!("unix:{}", sock.display());
    let srv = ApiServer::start(
        &dir.path().join("s.redb"),
        &listen,
        &["--token-file", token.to_str().unwrap()],
    );
    assert_eq!(srv.url, listen);
    let file = dir.path().join("o.yaml");
    std::fs::write(&file, OBJECTS).unwrap();
    let f = file.to_str().unwrap();
    // No token: 401, exit 1.
    let o = weir(&listen, &["get", "routes"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("token"));
    // Token from a file.
    let o = weir(
        &listen,
        &["apply", "-f", f, "--token-file", token.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Server and token from the environment.
    let o = std::process::Command::new(WEIR)
        .args(["get", "routes"])
        .env("WEIR_SERVER", &listen)
        .env("WEIR_TOKEN", "t0ps3cret")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("r1"));
    let o = weir_env(
        &listen,
        &["get", "vpc", "blue", "-o", "yaml"],
        &[("WEIR_TOKEN", "t0ps3cret")],
    );
    assert!(stdout(&o).contains("vni: 100"));
}

#[test]
fn watch_prints_changes() {
    let dir = TempDir::new("cli-watch");
    let srv = ApiServer::start(&dir.path().join("s.redb"), "127.0.0.1:0", &[]);
    let file = dir.path().join("o.yaml");
    std::fs::write(&file, OBJECTS).unwrap();
    assert_eq!(
        weir(&srv.url, &["apply", "-f", file.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        weir(&srv.url, &["delete", "route", "r2"]).status.code(),
        Some(0)
    );
    let mut child = std::process::Command::new(WEIR)
        .args([
            "watch",
            "route",
            "--from-revision",
            "1",
            "--server",
            &srv.url,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let got: Vec<String> = (0..3).map(|_| lines.next().unwrap().unwrap()).collect();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        got[0].starts_with("ADDED") && got[0].contains("route/r1"),
        "{got:?}"
    );
    assert!(
        got[1].starts_with("ADDED") && got[1].contains("route/r2"),
        "{got:?}"
    );
    assert!(
        got[2].starts_with("DELETED") && got[2].contains("route/r2"),
        "{got:?}"
    );
}

#[test]
fn completion_scripts() {
    for shell in ["bash", "zsh", "fish"] {
        let o = std::process::Command::new(WEIR)
            .args(["completion", shell])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        let s = stdout(&o);
        assert!(
            s.contains("weir") && s.contains("apply") && s.contains("describe"),
            "{shell}"
        );
    }
    let o = std::process::Command::new(WEIR)
        .args(["completion", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
