//! `?labelSelector=` values through `Selector::parse`: no panic, a reason
//! for every refusal, and what parses can be matched against labels.

#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use weir_api::selector::Selector;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Selector::parse(text) {
        Err(reason) => assert!(!reason.is_empty()),
        Ok(sel) => {
            let labels: BTreeMap<String, String> =
                [("app".to_string(), "web".to_string())].into_iter().collect();
            let _ = sel.matches(&labels);
        }
    }
});
