//! Each kind's cross-object checks read only the kinds it declares, and the
//! kinds a write is checked against follow from those declarations.

use std::collections::BTreeSet;

use weir_model::*;

/// A check that reads an undeclared kind trips the debug assertion in
/// `ObjectSet::of`, which every check calls whatever the objects.
#[test]
fn every_kind_reads_only_what_it_declares() {
    let reg = Registry::builtin();
    let objects: Vec<Object> = Vec::new();
    for name in reg.kinds() {
        let kind = reg.get(name).unwrap();
        let mut errs = Vec::new();
        kind.conflicts(&objects, &mut errs);
        assert!(errs.is_empty());
        for read in kind.reads() {
            assert!(reg.get(read).is_some(), "{name} reads unknown kind {read}");
        }
    }
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "without declaring it in READS")]
fn an_undeclared_read_is_caught() {
    let set = cross::ObjectSet::new(&[], "Route", &[]);
    let _ = set.of::<SubnetSpec>();
}

fn related(reg: &Registry, kind: &str) -> BTreeSet<String> {
    reg.related(kind)
        .unwrap()
        .into_iter()
        .map(String::from)
        .collect()
}

#[test]
fn related_kinds_come_from_what_checks_read() {
    let reg = Registry::builtin();
    let set = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<BTreeSet<_>>();
    // A Subnet's check reads Interfaces: a changed Interface is checked
    // against Subnets too (and a Subnet against Peerings, which read it).
    assert_eq!(
        related(&reg, "Subnet"),
        set(&["Interface", "Peering", "Subnet"])
    );
    assert_eq!(related(&reg, "Interface"), set(&["Interface", "Subnet"]));
    // A Peering reads Vpcs, Subnets and Routes; each of them is checked
    // against Peerings.
    assert_eq!(
        related(&reg, "Peering"),
        set(&["Peering", "Route", "Subnet", "Vpc"])
    );
    assert_eq!(related(&reg, "Vpc"), set(&["Peering", "Vpc"]));
    assert_eq!(related(&reg, "Route"), set(&["Peering", "Route"]));
    // Every registered kind has an answer (NatRule's checks read only
    // NatRules).
    assert_eq!(related(&reg, "NatRule"), set(&["NatRule"]));
    for k in reg.kinds() {
        assert!(related(&reg, k).contains(k));
    }
    assert!(reg.related("Nope").is_none());
}

/// The list of built-in kinds is the registry's, in registration order.
#[test]
fn builtin_kinds_are_the_registered_ones() {
    let reg = Registry::builtin();
    assert_eq!(reg.in_order().collect::<Vec<_>>(), BUILTIN_KINDS);
}
