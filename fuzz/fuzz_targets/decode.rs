//! Fuzz target: one frame of every link type: decode, analyse, render.
//! Never panics on any input (see sockscope_capture::fuzzing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sockscope_capture::fuzzing::decode_frame(data);
});
