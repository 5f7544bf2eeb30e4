//! `cargo run --release -p weir-fib --example lpm [v4_prefixes] [v6_prefixes]`
use std::time::Instant;

use weir_fib::{bench, gen, Lpm4, Lpm6};

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let n4 = args.first().copied().unwrap_or(1_000_000);
    let n6 = args.get(1).copied().unwrap_or(100_000);
    let lookups = 2_000_000;

    let p4 = gen::ipv4_prefixes(n4, 1);
    let a4 = gen::random_addrs_v4(lookups, 2);
    let c = bench::lpm4_compare(&p4, &a4);
    println!("IPv4 {n4} prefixes, random addrs: {c:#?}");
    let a4h = gen::addrs_in_prefixes_v4(&p4, lookups, 3);
    let c = bench::lpm4_compare(&p4, &a4h);
    println!(
        "IPv4 in-prefix addrs: {:.2} ns ({:.1} M/s), ref {:.2} ns, ratio {:.1}, agree {}",
        c.ns_per_lookup, c.mlookups, c.reference_ns_per_lookup, c.ratio, c.agree
    );

    // single-route updates on the full table
    let mut t4 = Lpm4::new();
    for (i, &(a, l)) in p4.iter().enumerate() {
        t4.insert(a, l, i as u32).unwrap();
    }
    let extra = gen::ipv4_prefixes(n4 + 2000, 1);
    let mut ins = Vec::new();
    let mut rem = Vec::new();
    for &(a, l) in &extra[n4..] {
        let t = Instant::now();
        t4.insert(a, l, 7).unwrap();
        ins.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        t4.remove(a, l);
        rem.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "IPv4 single insert us p50 {:.2} p99 {:.2} max {:.2}; remove p50 {:.2} p99 {:.2} max {:.2}; groups {}",
        pct(&mut ins, 0.5), pct(&mut ins, 0.99), pct(&mut ins, 1.0),
        pct(&mut rem, 0.5), pct(&mut rem, 0.99), pct(&mut rem, 1.0),
        t4.tbl8_groups_in_use()
    );
    let t = Instant::now();
    let t4b = t4.clone();
    println!(
        "IPv4 clone {:.1} ms, len {}",
        t.elapsed().as_secs_f64() * 1e3,
        t4b.len()
    );

    let p6 = gen::ipv6_prefixes(n6, 1);
    let a6 = gen::random_addrs_v6(lookups, 2);
    let c = bench::lpm6_compare(&p6, &a6);
    println!("IPv6 {n6} prefixes, random addrs: {c:#?}");
    let a6h = gen::addrs_in_prefixes_v6(&p6, lookups, 3);
    let c = bench::lpm6_compare(&p6, &a6h);
    println!(
        "IPv6 in-prefix addrs: {:.2} ns ({:.1} M/s), ref {:.2} ns, ratio {:.1}, agree {}",
        c.ns_per_lookup, c.mlookups, c.reference_ns_per_lookup, c.ratio, c.agree
    );
    let mut t6 = Lpm6::new();
    for (i, &(a, l)) in p6.iter().enumerate() {
        t6.insert(a, l, i as u32).unwrap();
    }
    println!(
        "IPv6 nodes {} leaves {} dataplane {:.1} MiB total {:.1} MiB",
        t6.node_count(),
        t6.leaf_count(),
        t6.dataplane_bytes() as f64 / 1048576.0,
        t6.memory_bytes() as f64 / 1048576.0
    );
    let extra = gen::ipv6_prefixes(n6 + 2000, 1);
    let mut ins = Vec::new();
    let mut rem = Vec::new();
    for &(a, l) in &extra[n6..] {
        let t = Instant::now();
        t6.insert(a, l, 7).unwrap();
        ins.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        t6.remove(a, l);
        rem.push(t.elapsed().as_secs_f64() * 1e6);
    }
    println!(
        "IPv6 single insert us p50 {:.2} p99 {:.2} max {:.2}; remove p50 {:.2} p99 {:.2} max {:.2}",
        pct(&mut ins, 0.5),
        pct(&mut ins, 0.99),
        pct(&mut ins, 1.0),
        pct(&mut rem, 0.5),
        pct(&mut rem, 0.99),
        pct(&mut rem, 1.0)
    );
}
