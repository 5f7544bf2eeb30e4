//! Several API servers on one etcd: cross-object validation and the write
//! are one atomic step, so two servers never both accept objects that
//! conflict with each other.

mod common;

use serde_json::json;

fn subnet(name: &str, cidr: &str) -> serde_json::Value {
    json!({"apiVersion": "weir/v1", "kind": "Subnet",
           "metadata": {"name": name}, "spec": {"vpc": "shared", "cidr": cidr}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_never_both_accept_conflicting_objects() {
    let etcd = weir_store::testing::EtcdServer::start();
    let loc = format!("etcd://{}", etcd.endpoint().trim_start_matches("http://"));
    let a = common::start(weir_store::open(&loc).await.unwrap()).await;
    let b = common::start(weir_store::open(&loc).await.unwrap()).await;
    let vpc =
        json!({"apiVersion": "weir/v1", "kind": "Vpc", "metadata": {"name": "shared"}, "spec": {}});
    assert_eq!(a.json("POST", "/v1/vpcs", &vpc).await.0, 201);
    let rounds = 40;
    let mut both = Vec::new();
    for i in 0..rounds {
        // Overlapping prefixes, different names: only one may be stored.
        let sa = subnet(&format!("a{i}"), &format!("10.{i}.0.0/24"));
        let sb = subnet(&format!("b{i}"), &format!("10.{i}.0.0/25"));
        let (ra, rb) = tokio::join!(
            a.json("POST", "/v1/subnets", &sa),
            b.json("POST", "/v1/subnets", &sb)
        );
        let codes = (ra.0, rb.0);
        match codes {
            (201, 422) | (422, 201) => {}
            (201, 201) => both.push(i),
            other => panic!("round {i}: {other:?}: {} / {}", ra.1, rb.1),
        }
        let refused = if ra.0 == 422 { &ra.1 } else { &rb.1 };
        if codes != (201, 201) {
            assert_eq!(refused["details"][0]["field"], "spec.cidr", "{refused}");
        }
    }
    assert!(
        both.is_empty(),
        "both servers accepted overlapping subnets in rounds {both:?}"
    );
    // What is stored agrees: one subnet per round.
    let (_, list) = a.req("GET", "/v1/subnets", None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), rounds);
    drop(etcd);
}
