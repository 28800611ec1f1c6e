#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico_fuzz::site_upload::run(data));
