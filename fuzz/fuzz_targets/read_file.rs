//! Fuzz target: a whole capture file: read, decode, analyse, conversation table.
//! Never panics on any input (see sockscope_capture::fuzzing).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sockscope_capture::fuzzing::read_file(data);
});
