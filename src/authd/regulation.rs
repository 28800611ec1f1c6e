//! Login regulation, in memory (a restart forgets it; sessions, not bans,
//! are what must survive).
//!
//! A *client* is an IPv4 address or an IPv6 /64 (one subscriber gets a whole
//! /64, so per-address counting would give an attacker 2^64 buckets). Within
//! `failure_window_secs`:
//! - `max_failures` failures of one (user, client) pair ban that pair for
//!   `ban_secs`;
//! - twice as many failures of one client, over any users, ban that client;
//! - `max_failures` wrong TOTP codes for a user (only someone holding the
//!   password gets that far) ban that user's TOTP step from every client;
//! - `max_failures` failures for a user from anywhere slow every attempt
//!   for that user down (up to `slowdown_max_ms`) but never refuse one, so
//!   nobody can lock a user out of their own browser by spraying wrong
//!   passwords from other addresses.
//!
//! A refused attempt is answered before any password check runs.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use crate::settings::AuthdSettings;

/// Keys kept before stale ones are dropped (memory bound under a flood).
const MAX_KEYS: usize = 100_000;
/// Slow-down for the first attempt past the threshold, milliseconds; doubles
/// with every further failure up to `slowdown_max_ms`.
const SLOWDOWN_BASE_MS: u64 = 250;

/// The regulation bucket of a client address: the IPv4 address itself
/// (IPv4-mapped IPv6 included), or the IPv6 /64 it belongs to.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & (u128::MAX << 64);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The step of the portal an attempt belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Password,
    Totp,
}

/// What to do with an attempt before checking its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead after waiting `delay` (zero unless the user is under attack).
    Allow { delay: Duration },
    /// Refused without a check; the ban ends in `retry_after` seconds.
    Refuse { retry_after: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Pair(String, String),
    Client(String),
    User(String),
    Totp(String),
}

#[derive(Debug, Default)]
pub struct Regulator {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Failure times (unix seconds) within the window, per key.
    failures: HashMap<Key, VecDeque<i64>>,
    /// Ban end (unix seconds), per key.
    bans: HashMap<Key, i64>,
}

impl Inner {
    fn count(&mut self, key: &Key, now: i64, window: i64) -> usize {
        match self.failures.get_mut(key) {
            Some(list) => {
                while list.front().is_some_and(|t| *t <= now - window) {
                    list.pop_front();
                }
                list.len()
            }
            None => 0,
        }
    }

    fn prune(&mut self, now: i64, window: i64) {
        self.bans.retain(|_, until| *until > now);
        if self.failures.len() > MAX_KEYS {
            self.failures.retain(|_, list| list.back().is_some_and(|t| *t > now - window));
        }
        if self.failures.len() > MAX_KEYS {
            // Still full of fresh keys: forget the counts, keep the bans.
            self.failures.clear();
        }
        if self.bans.len() > MAX_KEYS {
            self.bans.clear();
        }
    }
}

impl Regulator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides about an attempt by `client` for `user` at `now` (unix seconds).
    pub fn check(&self, user: &str, client: &str, step: Step, now: i64, s: &AuthdSettings) -> Verdict {
        let mut inner = self.lock();
        inner.bans.retain(|_, until| *until > now);
        let mut keys = vec![Key::Client(client.into()), Key::Pair(user.into(), client.into())];
        if step == Step::Totp {
            keys.push(Key::Totp(user.into()));
        }
        if let Some(until) = keys.iter().filter_map(|k| inner.bans.get(k)).max() {
            return Verdict::Refuse { retry_after: (*until - now).max(1) as u64 };
        }
        let window = i64::from(s.failure_window_secs);
        let failures = inner.count(&Key::User(user.into()), now, window);
        let past = failures.saturating_sub(s.max_failures as usize - 1);
        let delay = if past == 0 {
            0
        } else {
            SLOWDOWN_BASE_MS.saturating_mul(1 << (past - 1).min(16)).min(u64::from(s.slowdown_max_ms))
        };
        Verdict::Allow { delay: Duration::from_millis(delay) }
    }

    /// Records a failed attempt; returns true when it started a ban.
    pub fn fail(&self, user: &str, client: &str, step: Step, now: i64, s: &AuthdSettings) -> bool {
        let mut inner = self.lock();
        let window = i64::from(s.failure_window_secs);
        inner.prune(now, window);
        let max = s.max_failures as usize;
        let mut keys = vec![
            (Key::Pair(user.into(), client.into()), Some(max)),
            (Key::Client(client.into()), Some(2 * max)),
            (Key::User(user.into()), None),
        ];
        if step == Step::Totp {
            keys.push((Key::Totp(user.into()), Some(max)));
        }
        let mut banned = false;
        for (key, limit) in keys {
            inner.failures.entry(key.clone()).or_default().push_back(now);
            let n = inner.count(&key, now, window);
            if limit.is_some_and(|limit| n >= limit) {
                inner.failures.remove(&key);
                inner.bans.insert(key, now + i64::from(s.ban_secs));
                banned = true;
            }
        }
        banned
    }

    /// True when `client` failed at least once within the window, or is banned.
    pub fn has_failed(&self, client: &str, now: i64, s: &AuthdSettings) -> bool {
        let key = Key::Client(client.into());
        let mut inner = self.lock();
        inner.bans.get(&key).is_some_and(|until| *until > now)
            || inner.count(&key, now, i64::from(s.failure_window_secs)) > 0
    }

    /// A full sign-in by `user` from `client`: that pair starts afresh.
    pub fn succeeded(&self, user: &str, client: &str) {
        self.lock().failures.remove(&Key::Pair(user.into(), client.into()));
    }

    /// Bans (per pair, per client, per user's TOTP step) still running at `now`.
    pub fn active_bans(&self, now: i64) -> usize {
        let mut inner = self.lock();
        inner.bans.retain(|_, until| *until > now);
        inner.bans.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: Step = Step::Password;

    fn allowed(v: Verdict) -> bool {
        matches!(v, Verdict::Allow { .. })
    }

    #[test]
    fn five_failures_ban_the_pair_and_the_ban_expires() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        for i in 0..4 {
            assert!(!r.fail("alice", "1.1.1.1", PW, 1000 + i, &s));
        }
        assert!(allowed(r.check("alice", "1.1.1.1", PW, 1004, &s)));
        assert!(r.fail("alice", "1.1.1.1", PW, 1004, &s));
        assert_eq!(r.check("alice", "1.1.1.1", PW, 1005, &s), Verdict::Refuse { retry_after: 299 });
        assert!(allowed(r.check("alice", "2.2.2.2", PW, 1005, &s)), "alice from elsewhere is not refused");
        assert!(allowed(r.check("bob", "1.1.1.1", PW, 1005, &s)), "bob from the same address is not refused");
        assert!(!allowed(r.check("alice", "1.1.1.1", PW, 1004 + 299, &s)));
        assert!(allowed(r.check("alice", "1.1.1.1", PW, 1004 + 300, &s)));
    }

    #[test]
    fn ten_failures_over_any_users_ban_the_client() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        for i in 0..10 {
            r.fail(&format!("u{i}"), "1.1.1.1", PW, 1000, &s);
        }
        assert!(!allowed(r.check("carol", "1.1.1.1", PW, 1001, &s)));
        assert!(allowed(r.check("carol", "1.1.1.2", PW, 1001, &s)));
        assert!(r.has_failed("1.1.1.1", 1001, &s) && !r.has_failed("1.1.1.2", 1001, &s));
        assert!(!r.has_failed("1.1.1.1", 1000 + 300, &s), "the ban ends");
        r.fail("carol", "1.1.1.3", PW, 1000, &s);
        assert!(r.has_failed("1.1.1.3", 1000 + 119, &s));
        assert!(!r.has_failed("1.1.1.3", 1000 + 120, &s), "the window passes");
    }

    #[test]
    fn a_sprayed_user_is_slowed_down_never_refused() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        let delay = |v: Verdict| match v {
            Verdict::Allow { delay } => delay.as_millis(),
            Verdict::Refuse { .. } => panic!("refused"),
        };
        for i in 0..4 {
            r.fail("alice", &format!("10.0.0.{i}"), PW, 1000, &s);
        }
        assert_eq!(delay(r.check("alice", "192.0.2.1", PW, 1000, &s)), 0);
        let mut last = 0;
        for i in 4..200 {
            r.fail("alice", &format!("10.0.{}.{}", i / 256, i % 256), PW, 1000, &s);
            let d = delay(r.check("alice", "192.0.2.1", PW, 1000, &s));
            assert!(d >= last && d <= 2000, "{d}");
            last = d;
        }
        assert_eq!(last, 2000);
        assert_eq!(delay(r.check("bob", "192.0.2.1", PW, 1000, &s)), 0, "other users are not slowed");
        assert_eq!(delay(r.check("alice", "192.0.2.1", PW, 1000 + 120, &s)), 0, "the window passes");
    }

    #[test]
    fn wrong_totp_codes_ban_the_users_totp_step() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        for i in 0..5 {
            r.fail("bob", &format!("10.0.0.{i}"), Step::Totp, 1000, &s);
        }
        assert!(!allowed(r.check("bob", "192.0.2.1", Step::Totp, 1001, &s)));
        assert!(allowed(r.check("bob", "192.0.2.1", PW, 1001, &s)), "the password step is not a lockout");
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        for i in 0..10 {
            assert!(!r.fail("alice", "1.1.1.1", PW, i * 60, &s));
        }
    }

    #[test]
    fn clients_are_ipv4_addresses_and_ipv6_64s() {
        let key = |s: &str| client_key(s.parse().unwrap());
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
    }
}
