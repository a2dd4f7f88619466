//! One lock per key, made when first wanted and dropped when nobody holds or waits for it: the
//! steps of one transfer run one at a time, those of different transfers at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

type Map = Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>;

/// The locks, by key.
#[derive(Debug, Default)]
pub(crate) struct KeyedLocks {
    locks: Map,
}

/// `key`'s lock, held until dropped.
#[derive(Debug)]
pub(crate) struct KeyGuard {
    locks: Map,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    fn entry(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        locks.entry(key.to_owned()).or_default().clone()
    }

    fn guard(&self, key: &str, guard: tokio::sync::OwnedMutexGuard<()>) -> KeyGuard {
        KeyGuard { locks: self.locks.clone(), key: key.to_owned(), guard: Some(guard) }
    }

    /// Waits for `key`'s lock. Waiters get it in the order they asked (tokio's lock is fair).
    pub(crate) async fn lock(&self, key: &str) -> KeyGuard {
        let guard = self.entry(key).lock_owned().await;
        self.guard(key, guard)
    }

    /// `key`'s lock if nobody holds it now.
    pub(crate) fn try_lock(&self, key: &str) -> Option<KeyGuard> {
        let guard = self.entry(key).try_lock_owned().ok()?;
        Some(self.guard(key, guard))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        drop(self.guard.take());
        // The map's own reference is the last: nobody holds it or waits (a waiter took its
        // reference under the map's lock, which this takes too).
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if locks.get(&self.key).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            locks.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyedLocks;

    #[tokio::test]
    async fn one_holder_per_key_and_no_lock_left_behind() {
        let locks = KeyedLocks::default();
        let a = locks.lock("a").await;
        assert!(locks.try_lock("a").is_none(), "a is held");
        let b = locks.try_lock("b").expect("b is another key");
        assert_eq!(locks.len(), 2);
        drop(a);
        let again = locks.try_lock("a").expect("a was let go");
        drop((again, b));
        assert_eq!(locks.len(), 0, "nobody holds or waits: no lock kept");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiters_get_the_lock_in_turn() {
        let locks = std::sync::Arc::new(KeyedLocks::default());
        let inside = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, inside) = (locks.clone(), inside.clone());
            tasks.push(tokio::spawn(async move {
                let _held = locks.lock("same").await;
                assert_eq!(inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst), 0, "two inside at once");
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(locks.len(), 0);
    }
}
