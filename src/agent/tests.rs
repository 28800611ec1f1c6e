//! The agent's reconnect backoff; enrollment against the real panel in
//! [`enroll`].

use std::time::Duration;

use super::backoff;

pub(crate) mod enroll;

#[test]
fn backoff_stays_short_then_caps_at_five_seconds() {
    for n in 0..20 {
        let d = backoff(n);
        assert!(d >= Duration::from_millis(125) && d <= Duration::from_millis(250), "{n}: {d:?}");
    }
    for n in 20..200 {
        assert!(backoff(n) <= Duration::from_secs(5));
    }
    assert!(backoff(40) >= Duration::from_millis(2500));
}
