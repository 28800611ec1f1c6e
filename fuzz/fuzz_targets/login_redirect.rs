#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| portico_fuzz::login_redirect::run(data));
