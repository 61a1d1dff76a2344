#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| vimana_fuzz::agent_frames(data));
