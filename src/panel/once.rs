//! What a form post shows once (a new enrollment token, an API key, the
//! admin certificate's password, an invitation link): the post keeps it
//! here and answers `303` to its page with `?shown=<id>`; that GET takes it
//! out. A reload then shows the page without it and never posts the form
//! again. Entries live in memory only, for a few minutes, and a bounded
//! number of them: a restart or an unread entry loses nothing but the
//! display of something the operator can create again.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a result waits for its page to be loaded.
const TTL: Duration = Duration::from_secs(600);
/// How many unread results are kept; the oldest goes first.
const CAPACITY: usize = 32;

struct Entry {
    id: String,
    at: Instant,
    value: Box<dyn Any + Send>,
}

#[derive(Default)]
pub struct ShownOnce {
    entries: Mutex<VecDeque<Entry>>,
}

impl ShownOnce {
    /// Keeps `value` for one GET; returns the id for `?shown=`.
    pub fn put<T: Send + 'static>(&self, value: T) -> String {
        let id = crate::token::random_token(16);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| e.at.elapsed() < TTL);
        while entries.len() >= CAPACITY {
            entries.pop_front();
        }
        entries.push_back(Entry { id: id.clone(), at: Instant::now(), value: Box::new(value) });
        id
    }

    /// Takes the value kept under `id`, if it is of type `T` and still fresh.
    /// A value of another type stays (another page's result).
    pub fn take<T: 'static>(&self, id: &str) -> Option<T> {
        self.take_if(id, |_: &T| true)
    }

    /// [`ShownOnce::take`], only when `wanted` says the value belongs to the
    /// page asking (the user whose page it is); otherwise it stays.
    pub fn take_if<T: 'static>(&self, id: &str, wanted: impl Fn(&T) -> bool) -> Option<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| e.at.elapsed() < TTL);
        let i = entries.iter().position(|e| {
            crate::token::constant_time_eq(e.id.as_bytes(), id.as_bytes())
                && e.value.as_ref().downcast_ref::<T>().is_some_and(&wanted)
        })?;
        let entry = entries.remove(i)?;
        entry.value.downcast::<T>().ok().map(|b| *b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_taken_once_and_only_as_its_own_type() {
        let once = ShownOnce::default();
        let id = once.put(String::from("secret"));
        assert_eq!(once.take::<u32>(&id), None, "another page's type leaves it");
        assert_eq!(once.take::<String>("not-the-id"), None);
        assert_eq!(once.take::<String>(&id).as_deref(), Some("secret"));
        assert_eq!(once.take::<String>(&id), None, "a reload shows nothing");

        let id = once.put(String::from("alice's"));
        assert_eq!(once.take_if(&id, |v: &String| v.starts_with("bob")), None, "not bob's page");
        assert_eq!(once.take_if(&id, |v: &String| v.starts_with("alice")).as_deref(), Some("alice's"));
    }

    #[test]
    fn the_oldest_unread_value_goes_when_full() {
        let once = ShownOnce::default();
        let first = once.put(0usize);
        let ids: Vec<String> = (1..CAPACITY).map(|n| once.put(n)).collect();
        let newest = once.put(CAPACITY);
        assert_eq!(once.take::<usize>(&first), None);
        assert_eq!(once.take::<usize>(&ids[0]), Some(1));
        assert_eq!(once.take::<usize>(&newest), Some(CAPACITY));
    }
}
