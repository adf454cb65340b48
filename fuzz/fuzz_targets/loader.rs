//! Fuzz target: any bytes, read as an ELF object file, must give the loader's `Object` or a
//! typed `LoadError` — never a panic, never a hang. Seed it with the example objects:
//! `cargo fuzz run loader fuzz/corpus/loader examples/*/`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = bpfkit::loader::Object::parse(data);
});
