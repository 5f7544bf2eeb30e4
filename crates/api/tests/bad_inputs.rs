//! Bad inputs: each answered with the right 4xx naming the field, and
//! nothing stored. Also the token check and the size limits.

mod common;

use common::{fields, route, start, start_with};
use serde_json::json;
use weir_api::{ApiState, Limits};

/// (what, method, path, content-type, body, status, field)
type Case<'a> = (
    &'a str,
    &'a str,
    String,
    Option<&'a str>,
    String,
    u16,
    &'a str,
);

const J: &str = "application/json";
const Y: &str = "application/yaml";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_table() {
    let (store, _dir) = common::embedded().await;
    let s = start(store).await;
    // Setup: one route, one subnet, one VPC with a VNI.
    assert_eq!(
        s.json("PUT", "/v1/routes/r1", &route("r1", "10.0.0.0/16"))
            .await
            .0,
        201
    );
    let subnet = json!({"apiVersion": "weir/v1", "kind": "Subnet", "metadata": {"name": "s1"}, "spec": {"vpc": "blue", "cidr": "10.1.0.0/16"}});
    assert_eq!(s.json("POST", "/v1/subnets", &subnet).await.0, 201);
    let vpc = json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "blue"}, "spec": {"vni": 100}});
    assert_eq!(s.json("POST", "/v1/vpcs", &vpc).await.0, 201);
    let before = s.rev().await;

    let r = |n: &str, prefix: serde_json::Value| {
        json!({"apiVersion": "weir/v1", "kind": "Route", "metadata": {"name": n}, "spec": {"prefix": prefix, "blackhole": true}}).to_string()
    };
    let huge = format!(
        "[{}]",
        vec![route("h", "10.9.0.0/16").to_string(); 60_000].join(",")
    );
    let cases: Vec<Case> = vec![
        // (what, method, path, content-type, body, status, field)
        ("wrong type", "POST", "/v1/routes".into(), Some(J), r("x1", json!(42)), 422, "spec.prefix"),
        ("bad CIDR", "POST", "/v1/routes".into(), Some(J), r("x2", json!("10.0.0.0/33")), 422, "spec.prefix"),
        ("host bits", "PUT", "/v1/routes/x3".into(), Some(J), r("x3", json!("10.0.0.1/16")), 422, "spec.prefix"),
        ("not an IP", "POST", "/v1/apply".into(), Some(J), format!("[{}]", r("x4", json!("banana"))), 422, "spec.prefix"),
        ("unknown spec field", "POST", "/v1/routes".into(), Some(Y),
            "apiVersion: weir/v1\nkind: Route\nmetadata: {name: x5}\nspec: {prefix: 10.7.0.0/16, blackhole: true, colour: red}\n".into(), 422, "spec.colour"),
        ("overlapping subnet", "POST", "/v1/subnets".into(), Some(J),
            json!({"apiVersion": "weir/v1", "kind": "Subnet", "metadata": {"name": "s2"}, "spec": {"vpc": "blue", "cidr": "10.1.2.0/24"}}).to_string(), 422, "spec.cidr"),
        ("duplicate VNI", "POST", "/v1/apply".into(), Some(Y),
            "apiVersion: weir/v1\nkind: Vpc\nmetadata: {name: red}\nspec: {vni: 100}\n".into(), 422, "spec.vni"),
        ("duplicate route", "PUT", "/v1/routes/x6".into(), Some(J), r("x6", json!("10.0.0.0/16")), 422, "spec.prefix"),
        ("unknown kind path", "GET", "/v1/widgets".into(), None, String::new(), 404, ""),
        ("unknown kind path (POST)", "POST", "/v1/widgets".into(), Some(J), r("x7", json!("10.8.0.0/16")), 404, ""),
        ("unknown kind in apply", "POST", "/v1/apply".into(), Some(Y),
            "apiVersion: weir/v1\nkind: Widget\nmetadata: {name: w}\nspec: {}\n".into(), 422, "kind"),
        ("wrong apiVersion", "POST", "/v1/apply".into(), Some(Y),
            "apiVersion: weir/v2\nkind: Route\nmetadata: {name: x8}\nspec: {prefix: 10.8.0.0/16, blackhole: true}\n".into(), 422, "apiVersion"),
        ("bad name in body", "POST", "/v1/routes".into(), Some(J), r("Bad_Name", json!("10.8.0.0/16")), 422, "metadata.name"),
        ("bad name in path", "GET", "/v1/routes/Bad_Name".into(), None, String::new(), 400, "metadata.name"),
        ("bad name in path (PUT)", "PUT", "/v1/routes/UPPER".into(), Some(J), r("UPPER", json!("10.8.0.0/16")), 400, "metadata.name"),
        ("name differs from path", "PUT", "/v1/routes/x9".into(), Some(J), r("x10", json!("10.8.0.0/16")), 400, "metadata.name"),
        ("kind differs from path", "POST", "/v1/vpcs".into(), Some(J), r("x11", json!("10.8.0.0/16")), 400, "kind"),
        ("stale revision", "PUT", "/v1/routes/r1".into(), Some(J),
            json!({"apiVersion": "weir/v1", "kind": "Route", "metadata": {"name": "r1", "revision": 999_999}, "spec": {"prefix": "10.0.0.0/16", "reject": "prohibit"}}).to_string(), 409, "metadata.revision"),
        ("stale revision on delete", "DELETE", "/v1/routes/r1?revision=999999".into(), None, String::new(), 409, "metadata.revision"),
        ("malformed YAML", "POST", "/v1/apply".into(), Some(Y), "kind: [Route\nmetadata: {".into(), 400, ""),
        ("malformed JSON", "POST", "/v1/routes".into(), Some(J), "{\"kind\": ".into(), 400, ""),
        ("a string, not an object", "POST", "/v1/apply".into(), Some(J), "\"route\"".into(), 422, ""),
        ("wrong metadata type", "POST", "/v1/routes".into(), Some(J),
            json!({"apiVersion": "weir/v1", "kind": "Route", "metadata": {"name": "x12", "labels": "a=b"}, "spec": {"prefix": "10.8.0.0/16", "blackhole": true}}).to_string(), 422, "metadata.labels"),
        ("huge body", "POST", "/v1/apply".into(), Some(J), "x".repeat(9 << 20), 413, ""),
        ("over 50k objects", "POST", "/v1/apply".into(), Some(J), huge, 413, ""),
        ("unsupported content type", "POST", "/v1/apply".into(), Some("text/html"), "<html/>".into(), 415, ""),
        ("bad dryRun", "POST", "/v1/apply?dryRun=maybe".into(), Some(J), format!("[{}]", r("x13", json!("10.8.0.0/16"))), 400, "dryRun"),
        ("duplicate in apply", "POST", "/v1/apply".into(), Some(J),
            format!("[{},{}]", r("x14", json!("10.8.0.0/16")), r("x14", json!("10.9.0.0/16"))), 422, "metadata.name"),
        ("empty apply", "POST", "/v1/apply".into(), Some(Y), "---\n".into(), 400, ""),
        ("two objects on PUT", "PUT", "/v1/routes/x15".into(), Some(J),
            format!("[{},{}]", r("x15", json!("10.8.0.0/16")), r("x16", json!("10.9.0.0/16"))), 400, ""),
        ("bad revision param", "DELETE", "/v1/routes/r1?revision=abc".into(), None, String::new(), 400, "revision"),
        ("bad status", "PUT", "/v1/routes/r1/status".into(), Some(J), "{\"state\": \"sleeping\"}".into(), 422, "status.state"),
        ("bad watch kind", "GET", "/v1/watch?kinds=widgets".into(), None, String::new(), 404, "kinds"),
        ("no such path", "GET", "/v2/routes".into(), None, String::new(), 404, ""),
        ("wrong method", "PATCH", "/v1/routes/r1".into(), Some(J), "{}".into(), 405, ""),
    ];
    let mut failures = Vec::new();
    for (what, method, path, ct, body, want, field) in &cases {
        let b = ct.map(|c| (c, body.as_str()));
        let (st, v) = s.req(method, path, b).await;
        let ok_shape = v["error"].is_string() && v["details"].is_array();
        let named = field.is_empty() || fields(&v).iter().any(|f| f == field);
        if st != *want || !ok_shape || !named {
            failures.push(format!(
                "{what}: got {st} {v}, want {want} naming {field:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(s.rev().await, before, "a bad input stored something");
    // A bad object in a batch names its index, kind, name and field.
    let body = format!(
        "[{},{}]",
        r("ok1", json!("10.20.0.0/16")),
        r("bad1", json!("300.0.0.0/8"))
    );
    let (st, v) = s.req("POST", "/v1/apply", Some((J, &body))).await;
    assert_eq!(st, 422);
    let d = &v["details"][0];
    assert_eq!(
        (
            d["index"].as_u64(),
            d["kind"].as_str(),
            d["name"].as_str(),
            d["field"].as_str()
        ),
        (Some(1), Some("Route"), Some("bad1"), Some("spec.prefix"))
    );
    assert_eq!(s.rev().await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token() {
    let (store, _dir) = common::embedded().await;
    let mut state = ApiState::new(store);
    state.token = Some("s3cret".into());
    let s = start_with(state).await;
    assert_eq!(s.req("GET", "/livez", None).await.0, 200);
    let (st, v) = s.req("GET", "/v1/routes", None).await;
    assert_eq!(st, 401);
    assert!(v["error"].is_string());
    assert_eq!(s.req("GET", "/readyz", None).await.0, 401);
    assert_eq!(s.req("GET", "/openapi.json", None).await.0, 401);
    let wrong = weir_api::client::Client::new(&s.url)
        .unwrap()
        .with_token(Some("nope".into()));
    assert_eq!(
        wrong.list("routes", None).await.unwrap_err().status(),
        Some(401)
    );
    let right = weir_api::client::Client::new(&s.url)
        .unwrap()
        .with_token(Some("s3cret".into()));
    assert!(right.list("routes", None).await.unwrap().items.is_empty());
    let o = weir_model::Registry::builtin()
        .parse(&route("t1", "10.0.0.0/8"))
        .unwrap();
    right.put(&o).await.unwrap();
    assert_eq!(
        right.get("Route", "t1").await.unwrap().metadata.generation,
        Some(1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_configurable() {
    let (store, _dir) = common::embedded().await;
    let mut state = ApiState::new(store);
    state.limits = Limits {
        max_body_bytes: 4096,
        max_objects: 2,
        ..Limits::default()
    };
    let s = start_with(state).await;
    let three = serde_json::Value::Array(vec![
        route("a", "10.1.0.0/16"),
        route("b", "10.2.0.0/16"),
        route("c", "10.3.0.0/16"),
    ]);
    assert_eq!(s.json("POST", "/v1/apply", &three).await.0, 413);
    let big = route("d", "10.4.0.0/16").to_string() + &" ".repeat(5000);
    assert_eq!(s.req("POST", "/v1/routes", Some((J, &big))).await.0, 413);
    assert_eq!(s.rev().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket() {
    let (store, dir) = common::embedded().await;
    let path = dir.path().join("api.sock");
    let listen: weir_api::Listen = format!("unix:{}", path.display()).parse().unwrap();
    let listener = weir_api::bind(&listen).await.unwrap();
    let url = listener.url();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(weir_api::serve(listener, ApiState::new(store), async {
        let _ = rx.await;
    }));
    let c = weir_api::client::Client::new(&url).unwrap();
    let o = weir_model::Registry::builtin()
        .parse(&route("u1", "10.0.0.0/8"))
        .unwrap();
    c.create(&o).await.unwrap();
    assert_eq!(c.list("Route", None).await.unwrap().items.len(), 1);
    let _ = tx.send(());
    drop(c);
    task.await.unwrap().unwrap();
    assert!(!path.exists());
}

#[test]
fn meant_for_node() {
    let reg = weir_model::Registry::builtin();
    let mut o = reg.parse(&route("n1", "10.0.0.0/8")).unwrap();
    assert!(weir_api::meant_for(&o, "gw1"));
    o.metadata.node = Some("gw2".into());
    assert!(!weir_api::meant_for(&o, "gw1"));
    assert!(weir_api::meant_for(&o, "gw2"));
}

#[test]
fn bench_helper_runs() {
    let bulk = weir_api::bench::run("api-bulk-10k", None).unwrap();
    assert_eq!(bulk["objects"], 10_000);
    let single = weir_api::bench::run("api-single-1k", None).unwrap();
    assert_eq!(single["puts"], 1000);
    eprintln!("{bulk}\n{single}");
}
