#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico_fuzz::client_dn::run(data));
