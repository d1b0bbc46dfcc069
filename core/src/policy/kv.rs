//! The key-value store flint holds for each plugin.
//!
//! Every decision runs in a fresh instance, so a plugin that needs memory
//! across connections (rate limits, sticky routes) keeps it here, through the
//! WIT's `store` interface. The store is bounded in entries and in bytes (key
//! plus value), entries may carry an expiry, and every operation is atomic
//! with respect to the others (one mutex; operations are O(1) except the
//! sweep of expired entries when the store is full). Expired entries are
//! invisible at once and reclaimed lazily. A poisoned lock is recovered: the
//! map is valid after any single operation.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Bounds of one plugin's store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvLimits {
    /// Most entries held at once.
    pub max_entries: usize,
    /// Most bytes (keys plus values) held at once.
    pub max_bytes: usize,
    /// Longest key, in bytes.
    pub max_key_len: usize,
    /// Longest value, in bytes.
    pub max_value_len: usize,
}

impl Default for KvLimits {
    fn default() -> Self {
        KvLimits {
            max_entries: 16 * 1024,
            max_bytes: 4 * 1024 * 1024,
            max_key_len: 512,
            max_value_len: 64 * 1024,
        }
    }
}

/// Why a store operation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The store holds as many entries or bytes as its limits allow.
    #[error("store is full")]
    Full,
    /// The key or value is longer than the limits allow.
    #[error("key or value too large")]
    TooLarge,
    /// `increment` on a value that is not an 8-byte counter.
    #[error("value is not a counter")]
    NotACounter,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|t| t > now)
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Entry>,
    bytes: usize,
}

impl Inner {
    fn remove(&mut self, key: &str) -> Option<Entry> {
        let e = self.map.remove(key)?;
        self.bytes -= key.len() + e.value.len();
        Some(e)
    }

    fn sweep(&mut self, now: Instant) {
        let mut freed = 0;
        self.map.retain(|k, e| {
            let keep = e.live(now);
            if !keep {
                freed += k.len() + e.value.len();
            }
            keep
        });
        self.bytes -= freed;
    }

    /// Makes room for a new entry of `size` bytes replacing `key`'s.
    fn make_room(
        &mut self,
        limits: &KvLimits,
        key: &str,
        size: usize,
        now: Instant,
    ) -> Result<(), KvError> {
        let fits = |inner: &Inner| {
            let old = inner.map.get(key).map(|e| key.len() + e.value.len());
            let entries = inner.map.len() + usize::from(old.is_none());
            let bytes = inner.bytes - old.unwrap_or(0) + size;
            entries <= limits.max_entries && bytes <= limits.max_bytes
        };
        if fits(self) {
            return Ok(());
        }
        self.sweep(now);
        if fits(self) {
            Ok(())
        } else {
            Err(KvError::Full)
        }
    }
}

/// A bounded, expiring, thread-safe key-value store.
#[derive(Debug)]
pub struct KvStore {
    limits: KvLimits,
    inner: Mutex<Inner>,
}

impl KvStore {
    pub fn new(limits: KvLimits) -> KvStore {
        KvStore {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn limits(&self) -> KvLimits {
        self.limits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value under `key`, unless absent or expired.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.get_at(key, Instant::now())
    }

    /// Stores `value` under `key`, expiring after `ttl` if given.
    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Option<Duration>) -> Result<(), KvError> {
        self.set_at(key, value, ttl, Instant::now())
    }

    /// Adds `delta` to the 8-byte little-endian counter under `key` and
    /// returns the new value (saturating). An absent or expired counter
    /// starts at 0 and expires after `ttl` if given; an existing one keeps
    /// its expiry.
    pub fn increment(&self, key: &str, delta: i64, ttl: Option<Duration>) -> Result<i64, KvError> {
        self.increment_at(key, delta, ttl, Instant::now())
    }

    /// Removes `key`; true if a live entry was there.
    pub fn delete(&self, key: &str) -> bool {
        let now = Instant::now();
        self.lock().remove(key).is_some_and(|e| e.live(now))
    }

    /// Live entries and the bytes they hold.
    pub fn usage(&self) -> (usize, usize) {
        let mut inner = self.lock();
        inner.sweep(Instant::now());
        (inner.map.len(), inner.bytes)
    }

    pub(crate) fn get_at(&self, key: &str, now: Instant) -> Option<Vec<u8>> {
        let inner = self.lock();
        inner
            .map
            .get(key)
            .filter(|e| e.live(now))
            .map(|e| e.value.clone())
    }

    pub(crate) fn set_at(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<(), KvError> {
        if key.len() > self.limits.max_key_len || value.len() > self.limits.max_value_len {
            return Err(KvError::TooLarge);
        }
        let mut inner = self.lock();
        inner.make_room(&self.limits, key, key.len() + value.len(), now)?;
        inner.remove(key);
        inner.bytes += key.len() + value.len();
        let expires = ttl.and_then(|t| now.checked_add(t));
        inner.map.insert(key.to_string(), Entry { value, expires });
        Ok(())
    }

    pub(crate) fn increment_at(
        &self,
        key: &str,
        delta: i64,
        ttl: Option<Duration>,
        now: Instant,
    ) -> Result<i64, KvError> {
        if key.len() > self.limits.max_key_len || self.limits.max_value_len < 8 {
            return Err(KvError::TooLarge);
        }
        let mut inner = self.lock();
        if let Some(e) = inner.map.get_mut(key).filter(|e| e.live(now)) {
            let old: [u8; 8] = e
                .value
                .as_slice()
                .try_into()
                .map_err(|_| KvError::NotACounter)?;
            let new = i64::from_le_bytes(old).saturating_add(delta);
            e.value.copy_from_slice(&new.to_le_bytes());
            return Ok(new);
        }
        inner.make_room(&self.limits, key, key.len() + 8, now)?;
        inner.remove(key);
        inner.bytes += key.len() + 8;
        let expires = ttl.and_then(|t| now.checked_add(t));
        inner.map.insert(
            key.to_string(),
            Entry {
                value: delta.to_le_bytes().to_vec(),
                expires,
            },
        );
        Ok(delta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> KvStore {
        KvStore::new(KvLimits {
            max_entries: 3,
            max_bytes: 64,
            max_key_len: 8,
            max_value_len: 32,
        })
    }

    #[test]
    fn set_get_delete_and_expiry() {
        let kv = small();
        let t0 = Instant::now();
        kv.set_at("a", b"1".to_vec(), None, t0).unwrap();
        kv.set_at("b", b"2".to_vec(), Some(Duration::from_secs(1)), t0)
            .unwrap();
        assert_eq!(kv.get_at("a", t0), Some(b"1".to_vec()));
        assert_eq!(kv.get_at("b", t0), Some(b"2".to_vec()));
        assert_eq!(kv.get_at("b", t0 + Duration::from_secs(2)), None);
        assert!(kv.delete("a"));
        assert!(!kv.delete("a"));
    }

    #[test]
    fn bounded_in_entries_and_bytes_and_sizes() {
        let kv = small();
        let t0 = Instant::now();
        assert_eq!(
            kv.set_at("toolongkey", vec![], None, t0),
            Err(KvError::TooLarge)
        );
        assert_eq!(
            kv.set_at("k", vec![0; 33], None, t0),
            Err(KvError::TooLarge)
        );
        kv.set_at("a", vec![0; 30], None, t0).unwrap();
        kv.set_at("b", vec![0; 30], Some(Duration::from_millis(5)), t0)
            .unwrap();
        // 62 bytes held: a third value of 4 bytes does not fit...
        assert_eq!(kv.set_at("c", vec![0; 4], None, t0), Err(KvError::Full));
        // ...replacing one in place does...
        kv.set_at("a", vec![0; 29], None, t0).unwrap();
        // ...and so does anything once `b` has expired.
        let later = t0 + Duration::from_millis(10);
        kv.set_at("c", vec![0; 4], None, later).unwrap();
        kv.set_at("d", vec![0; 4], None, later).unwrap();
        assert_eq!(kv.set_at("e", vec![], None, later), Err(KvError::Full));
        assert_eq!(kv.usage().0, 3);
    }

    #[test]
    fn increment_counts_and_keeps_first_expiry() {
        let kv = small();
        let t0 = Instant::now();
        let ttl = Some(Duration::from_secs(1));
        assert_eq!(kv.increment_at("n", 1, ttl, t0), Ok(1));
        assert_eq!(
            kv.increment_at("n", 2, ttl, t0 + Duration::from_millis(900)),
            Ok(3)
        );
        // The window opened at t0 closes at t0 + 1 s, whatever came later.
        assert_eq!(
            kv.increment_at("n", 1, ttl, t0 + Duration::from_secs(1)),
            Ok(1)
        );
        assert_eq!(kv.increment_at("n", i64::MAX, None, t0), Ok(i64::MAX));
        kv.set_at("s", b"xyz".to_vec(), None, t0).unwrap();
        assert_eq!(kv.increment_at("s", 1, None, t0), Err(KvError::NotACounter));
    }

    #[test]
    fn shared_between_threads() {
        let kv = std::sync::Arc::new(KvStore::new(KvLimits::default()));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let kv = kv.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        kv.increment("n", 1, None).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(kv.increment("n", 0, None), Ok(4000));
    }
}
