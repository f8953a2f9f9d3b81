//! Fuzz target `resp`: its body is [`ringkv_node::fuzzing::resp`], which the
//! corpus replay test (node/tests/fuzz_corpus.rs) also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringkv_node::fuzzing::resp(data));
