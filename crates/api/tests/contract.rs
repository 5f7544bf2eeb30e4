//! The API contract, run against the embedded store and against etcd.

mod common;

use std::sync::Arc;

use common::{fields, route, start, Server};
use serde_json::{json, Value};
use weir_model::Registry;
use weir_store::Store;

fn testdata() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../model/testdata/valid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        out.extend(weir_model::yaml::documents(&std::fs::read_to_string(f).unwrap()).unwrap());
    }
    out
}

async fn crud_per_kind(store: Arc<dyn Store>) {
    let s = start(store).await;
    let reg = Registry::builtin();
    let docs = testdata();
    for kind in weir_model::BUILTIN_KINDS {
        let doc = docs
            .iter()
            .find(|d| d["kind"] == *kind)
            .unwrap_or_else(|| panic!("no {kind} in testdata"));
        let plural = reg.get(kind).unwrap().plural().to_string();
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        let (st, created) = s.json("POST", &format!("/v1/{plural}"), doc).await;
        assert_eq!(st, 201, "{kind}: {created}");
        assert_eq!(created["metadata"]["generation"], 1);
        let rev = created["metadata"]["revision"].as_u64().unwrap();
        assert!(created["metadata"]["creationTimestamp"].is_string());
        let (st, got) = s.req("GET", &format!("/v1/{plural}/{name}"), None).await;
        assert_eq!(st, 200);
        assert_eq!(got, created, "{kind}: GET gives what POST answered");
        let (st, _) = s.json("POST", &format!("/v1/{plural}"), doc).await;
        assert_eq!(st, 409, "{kind}: create twice");
        // Same object again: a no-op, no new revision.
        let (st, same) = s.json("PUT", &format!("/v1/{plural}/{name}"), doc).await;
        assert_eq!(st, 200);
        assert_eq!(same["metadata"]["revision"].as_u64(), Some(rev));
        assert_eq!(s.rev().await, rev);
        // Labels only: new revision, same generation.
        let mut labelled = doc.clone();
        labelled["metadata"]["labels"] = json!({"crud": "yes"});
        let (st, upd) = s
            .json("PUT", &format!("/v1/{plural}/{name}"), &labelled)
            .await;
        assert_eq!(st, 200, "{upd}");
        assert_eq!(upd["metadata"]["generation"], 1);
        assert!(upd["metadata"]["revision"].as_u64().unwrap() > rev);
        let (st, list) = s.req("GET", &format!("/v1/{plural}"), None).await;
        assert_eq!(st, 200);
        assert_eq!(list["kind"], format!("{kind}List"));
        assert!(list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["metadata"]["name"] == name));
        let (st, del) = s.req("DELETE", &format!("/v1/{plural}/{name}"), None).await;
        assert_eq!(st, 200, "{del}");
        assert_eq!(del["action"], "deleted");
        assert_eq!(
            s.req("GET", &format!("/v1/{plural}/{name}"), None).await.0,
            404
        );
        assert_eq!(
            s.req("DELETE", &format!("/v1/{plural}/{name}"), None)
                .await
                .0,
            404
        );
    }
}

async fn generation_and_status(store: Arc<dyn Store>) {
    let s = start(store).await;
    let (st, _) = s
        .json("PUT", "/v1/routes/g1", &route("g1", "10.1.0.0/16"))
        .await;
    assert_eq!(st, 201);
    let (st, o) = s
        .json(
            "PUT",
            "/v1/routes/g1/status",
            &json!({"state": "pending", "reason": "waiting", "missing": [{"kind": "Vpc", "name": "blue"}], "attempts": 2}),
        )
        .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(o["status"]["state"], "pending");
    assert_eq!(o["metadata"]["generation"], 1);
    let r1 = o["metadata"]["revision"].as_u64().unwrap();
    // Status from clients on PUT is ignored; status kept across spec changes.
    let mut body = route("g1", "10.2.0.0/16");
    body["status"] = json!({"state": "configured"});
    let (st, o) = s.json("PUT", "/v1/routes/g1", &body).await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(o["metadata"]["generation"], 2);
    assert_eq!(o["status"]["state"], "pending");
    assert!(o["metadata"]["revision"].as_u64().unwrap() > r1);
    // Same status again: no new revision.
    let rev = s.rev().await;
    let (st, _) = s
        .json(
            "PUT",
            "/v1/routes/g1/status",
            &json!({"state": "pending", "reason": "waiting", "missing": [{"kind": "Vpc", "name": "blue"}], "attempts": 2}),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(s.rev().await, rev);
    assert_eq!(
        s.req(
            "PUT",
            "/v1/routes/nope/status",
            Some(("application/json", "{\"state\":\"configured\"}"))
        )
        .await
        .0,
        404
    );
    // The typed client.
    let st = weir_model::Status {
        state: weir_model::State::Configured,
        ..Default::default()
    };
    let o = s.client.put_status("Route", "g1", &st).await.unwrap();
    assert_eq!(o.state(), weir_model::State::Configured);
    let got = s.client.get("Route", "g1").await.unwrap();
    assert_eq!(got.state(), weir_model::State::Configured);
}

async fn optimistic_concurrency(store: Arc<dyn Store>) {
    let s = start(store).await;
    let (_, o) = s
        .json("PUT", "/v1/routes/oc", &route("oc", "10.3.0.0/16"))
        .await;
    let rev = o["metadata"]["revision"].as_u64().unwrap();
    let mut body = route("oc", "10.4.0.0/16");
    body["metadata"]["revision"] = json!(rev);
    let (st, o2) = s.json("PUT", "/v1/routes/oc", &body).await;
    assert_eq!(st, 200, "{o2}");
    let rev2 = o2["metadata"]["revision"].as_u64().unwrap();
    // Stale now.
    body["spec"]["prefix"] = json!("10.5.0.0/16");
    let (st, e) = s.json("PUT", "/v1/routes/oc", &body).await;
    assert_eq!(st, 409, "{e}");
    assert_eq!(e["givenRevision"].as_u64(), Some(rev));
    assert_eq!(e["currentRevision"].as_u64(), Some(rev2));
    assert!(fields(&e).contains(&"metadata.revision".to_string()));
    let (st, _) = s
        .req("DELETE", &format!("/v1/routes/oc?revision={rev}"), None)
        .await;
    assert_eq!(st, 409);
    let (st, _) = s
        .req("DELETE", &format!("/v1/routes/oc?revision={rev2}"), None)
        .await;
    assert_eq!(st, 200);
    // A revision on something absent.
    let mut ghost = route("ghost", "10.6.0.0/16");
    ghost["metadata"]["revision"] = json!(5);
    let (st, e) = s.json("PUT", "/v1/routes/ghost", &ghost).await;
    assert_eq!(st, 409);
    assert_eq!(e["currentRevision"].as_u64(), Some(0));
}

async fn bulk_all_or_nothing(store: Arc<dyn Store>) {
    let s = start(store).await;
    let before = s.rev().await;
    let mut objs = vec![
        route("b0", "10.10.0.0/16"),
        route("b1", "10.11.0.0/16"),
        route("b2", "10.12.0.0/33"),
        route("b3", "10.13.0.0/16"),
    ];
    let (st, e) = s.json("POST", "/v1/apply", &json!(objs)).await;
    assert_eq!(st, 422, "{e}");
    let d = &e["details"][0];
    assert_eq!(d["index"], 2);
    assert_eq!(d["kind"], "Route");
    assert_eq!(d["name"], "b2");
    assert_eq!(d["field"], "spec.prefix");
    assert_eq!(s.rev().await, before, "nothing stored");
    assert_eq!(s.req("GET", "/v1/routes/b0", None).await.0, 404);
    // A cross-object conflict inside the batch fails it too.
    objs[2] = route("b2", "10.10.0.0/16");
    let (st, e) = s.json("POST", "/v1/apply", &json!(objs)).await;
    assert_eq!(st, 422, "{e}");
    assert_eq!(e["details"][0]["field"], "spec.prefix");
    assert!(e["details"][0]["related"]["name"].is_string());
    assert_eq!(s.rev().await, before);
    // Good: one transaction, one revision.
    objs[2] = route("b2", "10.12.0.0/16");
    let (st, r) = s.json("POST", "/v1/apply", &json!(objs)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(s.rev().await, before + 1);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert!(results.iter().all(|x| x["action"] == "created"));
    // Again (as YAML): all unchanged, no revision.
    let yaml: String = objs
        .iter()
        .map(|o| serde_norway::to_string(o).unwrap())
        .collect::<Vec<_>>()
        .join("---\n");
    let (st, r) = s
        .req("POST", "/v1/apply", Some(("application/yaml", &yaml)))
        .await;
    assert_eq!(st, 200, "{r}");
    assert!(r["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["action"] == "unchanged"));
    assert_eq!(s.rev().await, before + 1);
    // Mixed.
    objs[0] = route("b0", "10.20.0.0/16");
    objs.push(route("b4", "10.14.0.0/16"));
    let r = s
        .client
        .apply(
            &objs
                .iter()
                .map(|o| Registry::builtin().parse(o).unwrap())
                .collect::<Vec<_>>(),
            false,
        )
        .await
        .unwrap();
    let actions: Vec<&str> = r.results.iter().map(|x| x.action.as_str()).collect();
    assert_eq!(
        actions,
        ["updated", "unchanged", "unchanged", "unchanged", "created"]
    );
}

async fn dry_run(store: Arc<dyn Store>) {
    let s = start(store).await;
    let (_, _) = s
        .json("PUT", "/v1/routes/dk", &route("dk", "10.30.0.0/16"))
        .await;
    let before = s.rev().await;
    let (st, r) = s
        .json(
            "POST",
            "/v1/apply?dryRun=true",
            &json!([route("d1", "10.31.0.0/16")]),
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["results"][0]["action"], "created");
    assert_eq!(r["dryRun"], true);
    let (st, _) = s
        .json(
            "POST",
            "/v1/routes?dryRun=true",
            &route("d2", "10.32.0.0/16"),
        )
        .await;
    assert_eq!(st, 201);
    let (st, _) = s
        .json(
            "PUT",
            "/v1/routes/dk?dryRun=true",
            &route("dk", "10.33.0.0/16"),
        )
        .await;
    assert_eq!(st, 200);
    let (st, _) = s.req("DELETE", "/v1/routes/dk?dryRun=true", None).await;
    assert_eq!(st, 200);
    // Dry runs still validate fully.
    let (st, _) = s
        .json(
            "POST",
            "/v1/apply?dryRun=true",
            &json!([route("d3", "10.30.0.0/16")]),
        )
        .await;
    assert_eq!(st, 422);
    assert_eq!(s.rev().await, before);
    assert_eq!(s.req("GET", "/v1/routes/d1", None).await.0, 404);
    let (_, dk) = s.req("GET", "/v1/routes/dk", None).await;
    assert_eq!(dk["spec"]["prefix"], "10.30.0.0/16");
}

async fn label_selectors(store: Arc<dyn Store>) {
    let s = start(store).await;
    let mut objs = Vec::new();
    for (i, l) in [
        json!({"tier": "web", "env": "prod"}),
        json!({"tier": "db", "env": "prod"}),
        json!({}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut o = route(&format!("sel{i}"), &format!("10.4{i}.0.0/16"));
        o["metadata"]["labels"] = l;
        objs.push(o);
    }
    assert_eq!(s.json("POST", "/v1/apply", &json!(objs)).await.0, 200);
    let names = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
            .filter(|n| n.starts_with("sel"))
            .collect()
    };
    let (_, v) = s
        .req("GET", "/v1/routes?labelSelector=tier%3Dweb", None)
        .await;
    assert_eq!(names(&v), ["sel0"]);
    let (_, v) = s
        .req(
            "GET",
            "/v1/routes?labelSelector=env%3Dprod,tier!%3Dweb",
            None,
        )
        .await;
    assert_eq!(names(&v), ["sel1"]);
    let (_, v) = s.req("GET", "/v1/routes?labelSelector=!tier", None).await;
    assert_eq!(names(&v), ["sel2"]);
    let l = s.client.list("routes", Some("env")).await.unwrap();
    assert_eq!(l.items.len(), 2);
    let (st, e) = s
        .req("GET", "/v1/routes?labelSelector=a%3Db%3Dc", None)
        .await;
    assert_eq!(st, 400);
    assert_eq!(fields(&e), ["labelSelector"]);
}

async fn watch_in_order_and_resume(store: Arc<dyn Store>) {
    let s = start(store).await;
    let start_rev = s.rev().await + 1;
    s.json("PUT", "/v1/routes/w1", &route("w1", "10.50.0.0/16"))
        .await;
    s.json("PUT", "/v1/routes/w1", &route("w1", "10.51.0.0/16"))
        .await;
    s.json(
        "PUT",
        "/v1/vpcs/wv",
        &json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "wv"}, "spec": {}}),
    )
    .await;
    s.req("DELETE", "/v1/routes/w1", None).await;
    let mut w = s.client.watch(&["Route"], start_rev).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let ev = tokio::time::timeout(std::time::Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push((
            ev.kind.clone(),
            ev.revision,
            ev.object.unwrap().metadata.name,
        ));
    }
    assert_eq!(
        got.iter().map(|g| g.0.as_str()).collect::<Vec<_>>(),
        ["ADDED", "MODIFIED", "DELETED"]
    );
    assert!(got.windows(2).all(|p| p[0].1 < p[1].1));
    assert!(got.iter().all(|g| g.2 == "w1"));
    // Live: a new change arrives.
    s.json("PUT", "/v1/routes/w2", &route("w2", "10.52.0.0/16"))
        .await;
    let ev = tokio::time::timeout(std::time::Duration::from_secs(10), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.kind.as_str(), ev.object.unwrap().metadata.name.as_str()),
        ("ADDED", "w2")
    );
    // Resume from the second event: starts at MODIFIED.
    let mut w = s.client.watch(&["routes"], got[1].1).await.unwrap();
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!((ev.kind.as_str(), ev.revision), ("MODIFIED", got[1].1));
    // Every kind when none is named: the Vpc shows up.
    let mut w = s.client.watch(&[], start_rev).await.unwrap();
    let mut kinds = Vec::new();
    for _ in 0..4 {
        kinds.push(w.next().await.unwrap().unwrap().object.unwrap().kind);
    }
    assert!(kinds.contains(&"Vpc".to_string()));
    // Compacted history: RELIST.
    let now = s.rev().await;
    s.store.compact(now).await.unwrap();
    let mut w = s.client.watch(&["Route"], start_rev).await.unwrap();
    let ev = w.next().await.unwrap().unwrap();
    assert_eq!(ev.kind, "RELIST");
    assert_eq!(ev.code.as_deref(), Some("compacted"));
    assert!(ev.error.unwrap().starts_with("compacted: "));
}

async fn cross_object_conflicts(store: Arc<dyn Store>) {
    let s = start(store).await;
    let subnet = |n: &str, cidr: &str| json!({"apiVersion": "weir/v1", "kind": "Subnet", "metadata": {"name": n}, "spec": {"vpc": "xv", "cidr": cidr}});
    assert_eq!(
        s.json("POST", "/v1/subnets", &subnet("sa", "10.60.0.0/16"))
            .await
            .0,
        201
    );
    let (st, e) = s
        .json("POST", "/v1/subnets", &subnet("sb", "10.60.1.0/24"))
        .await;
    assert_eq!(st, 422, "{e}");
    let d = &e["details"][0];
    assert_eq!(
        (d["kind"].as_str(), d["name"].as_str(), d["field"].as_str()),
        (Some("Subnet"), Some("sb"), Some("spec.cidr"))
    );
    assert_eq!(d["related"]["name"], "sa");
    assert!(e["error"].as_str().unwrap().contains("sa"));
    let vpc = |n: &str| json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": n}, "spec": {"vni": 7777}});
    assert_eq!(s.json("POST", "/v1/vpcs", &vpc("va")).await.0, 201);
    let (st, e) = s.json("POST", "/v1/apply", &json!([vpc("vb")])).await;
    assert_eq!(st, 422);
    assert_eq!(e["details"][0]["field"], "spec.vni");
    assert_eq!(e["details"][0]["index"], 0);
    assert_eq!(e["details"][0]["related"]["name"], "va");
}

async fn openapi_and_kinds(store: Arc<dyn Store>) {
    let s = start(store).await;
    let (st, doc) = s.req("GET", "/openapi.json", None).await;
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let reg = Registry::builtin();
    for k in reg.kinds() {
        let p = reg.get(k).unwrap().plural();
        for path in [
            format!("/v1/{p}"),
            format!("/v1/{p}/{{name}}"),
            format!("/v1/{p}/{{name}}/status"),
        ] {
            assert!(paths.contains_key(&path), "{path} missing");
        }
        assert_eq!(doc["components"]["schemas"][k]["title"], k);
    }
    for p in [
        "/v1/apply",
        "/v1/watch",
        "/v1/kinds",
        "/openapi.json",
        "/livez",
        "/readyz",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    // Every operation answers something; every $ref resolves.
    for (p, item) in paths {
        for (m, op) in item.as_object().unwrap() {
            if m == "parameters" {
                continue;
            }
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {p}"
            );
        }
    }
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let ptr = r.strip_prefix('#').unwrap();
        assert!(doc.pointer(ptr).is_some(), "dangling {r}");
    }
    let (st, k) = s.req("GET", "/v1/kinds", None).await;
    assert_eq!(st, 200);
    assert_eq!(
        k["kinds"].as_array().unwrap().len(),
        weir_model::BUILTIN_KINDS.len()
    );
    let kinds = s.client.kinds().await.unwrap();
    assert!(kinds
        .iter()
        .any(|k| k.kind == "Route" && k.plural == "routes"));
    assert_eq!(s.req("GET", "/livez", None).await.0, 200);
    let (st, r) = s.req("GET", "/readyz", None).await;
    assert_eq!(st, 200, "{r}");
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (store, _dir) = crate::common::embedded().await;
                    super::$name(store).await;
                }
            )*
        }
        mod etcd {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let etcd = weir_store::testing::EtcdServer::start();
                    let loc = format!("etcd://{}", etcd.endpoint().trim_start_matches("http://"));
                    let store = weir_store::open(&loc).await.unwrap();
                    super::$name(store).await;
                    drop(etcd);
                }
            )*
        }
    };
}

suite!(
    crud_per_kind,
    generation_and_status,
    optimistic_concurrency,
    bulk_all_or_nothing,
    dry_run,
    label_selectors,
    watch_in_order_and_resume,
    cross_object_conflicts,
    openapi_and_kinds,
);

#[allow(dead_code)]
fn _unused(_: Server) {}
