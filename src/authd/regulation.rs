//! Login regulation: per user and per client IP, `max_failures` failed
//! attempts within the window ban that key for `ban_secs`. In memory: a
//! restart forgets bans (sessions, not bans, are what must survive).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::settings::AuthdSettings;

#[derive(Debug, Default)]
pub struct Regulator {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    failures: HashMap<String, VecDeque<i64>>,
    bans: HashMap<String, i64>,
}

fn keys(user: &str, ip: &str) -> [String; 2] {
    [format!("user:{user}"), format!("ip:{ip}")]
}

impl Regulator {
    /// True while `user` or `ip` is banned at `now` (unix seconds).
    pub fn banned(&self, user: &str, ip: &str, now: i64) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.bans.retain(|_, until| *until > now);
        keys(user, ip).iter().any(|k| inner.bans.contains_key(k))
    }

    /// Bans (per user and per client IP) still running at `now`.
    pub fn active_bans(&self, now: i64) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.bans.retain(|_, until| *until > now);
        inner.bans.len()
    }

    /// Records a failure; returns true when it started a ban.
    pub fn fail(&self, user: &str, ip: &str, now: i64, s: &AuthdSettings) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.failures.len() > 100_000 {
            inner.failures.clear();
        }
        let mut banned = false;
        for key in keys(user, ip) {
            let list = inner.failures.entry(key.clone()).or_default();
            list.push_back(now);
            while list.front().is_some_and(|t| *t <= now - i64::from(s.failure_window_secs)) {
                list.pop_front();
            }
            if list.len() >= s.max_failures as usize {
                list.clear();
                inner.bans.insert(key, now + i64::from(s.ban_secs));
                banned = true;
            }
        }
        banned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_ban_and_the_ban_expires() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        for i in 0..4 {
            assert!(!r.fail("alice", "1.1.1.1", 1000 + i, &s));
        }
        assert!(!r.banned("alice", "1.1.1.1", 1004));
        assert!(r.fail("alice", "1.1.1.1", 1004, &s));
        assert!(r.banned("alice", "2.2.2.2", 1005), "user banned from any IP");
        assert!(r.banned("bob", "1.1.1.1", 1005), "IP banned for any user");
        assert!(r.banned("alice", "2.2.2.2", 1004 + 299));
        assert!(!r.banned("alice", "2.2.2.2", 1004 + 300));
    }

    #[test]
    fn failures_outside_the_window_do_not_count() {
        let s = AuthdSettings::default();
        let r = Regulator::default();
        for i in 0..10 {
            assert!(!r.fail("alice", "1.1.1.1", i * 60, &s));
        }
    }
}
