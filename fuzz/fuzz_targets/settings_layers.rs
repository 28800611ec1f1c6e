#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico_fuzz::settings_layers::run(data));
