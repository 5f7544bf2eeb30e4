//! Request bodies through the server's own decoding: `decode_body` (JSON
//! or YAML by Content-Type, read strictly) and then `Registry::parse` on
//! each document, as the write endpoints do. Input: one byte choosing the
//! Content-Type, then the body. Fails on a panic or on a refusal that
//! says nothing.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use weir_model::Registry;

/// One registry for the run, as the server has: its validators are
/// compiled on first use.
static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::builtin);

const CONTENT_TYPES: [Option<&str>; 4] = [
    None,
    Some("application/json"),
    Some("application/yaml"),
    Some("text/plain"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ct = CONTENT_TYPES[pick as usize % CONTENT_TYPES.len()];
    match weir_api::decode_body(ct, body) {
        Err(e) => {
            assert!(e.status.is_client_error(), "{e}");
            assert!(!e.body.error.is_empty());
        }
        Ok(docs) => {
            for d in docs {
                if let Err(errs) = REGISTRY.parse(&d) {
                    assert!(errs.iter().all(|e| !e.reason.is_empty()), "{errs:?}");
                }
            }
        }
    }
});
