//! Fuzz target: filter words: parse, compile to cBPF, run.
//! Never panics on any input (see sockscope_capture::fuzzing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sockscope_capture::fuzzing::filter_expr(data);
});
