//! Fuzz target `gossip`: its body is [`ringkv_node::fuzzing::gossip`], which the
//! corpus replay test (node/tests/fuzz_corpus.rs) also runs.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ringkv_node::fuzzing::gossip(data));
