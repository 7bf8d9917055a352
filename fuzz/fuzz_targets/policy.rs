//! The policy loader (YAML): load from a file beside the example hierarchies, then build and
//! run every field's kernel on sample arrays (fuzzed parameters reach the kernels).
#![no_main]

mod common;

use cloakline::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = common::scratch().join("policy.yaml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let Ok(policy) = Policy::load(&path) else {
        return;
    };
    common::exercise_kernels(&policy);
});
