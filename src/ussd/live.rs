//! Live sessions in memory, in front of their records in the store.
//!
//! Owns: a sharded map of the sessions that are still running, so that a hop reads its
//! session without a store read and decode (a hop is otherwise two reads and a write). The
//! store stays the record: every save still writes it, and a session not in memory (after a
//! restart, or ended) is read from there.
//! Must never: hold an ended session (their replays are rare and read the store), hold a
//! session past its TTL (the sweeper evicts), or be read without the session's hop lock
//! (see [`super::inflight`]), which is what keeps it coherent with the store.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, MutexGuard};

use super::session::Session;

const SHARDS: usize = 32;

pub struct LiveSessions {
    shards: Vec<Mutex<HashMap<Vec<u8>, Session>>>,
}

impl Default for LiveSessions {
    fn default() -> Self {
        LiveSessions {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl LiveSessions {
    fn shard(&self, key: &[u8]) -> MutexGuard<'_, HashMap<Vec<u8>, Session>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let m = &self.shards[(h.finish() as usize) % SHARDS];
        match m.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<Session> {
        self.shard(key).get(key).cloned()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.shard(key).contains_key(key)
    }

    /// Keeps `s` if it is still running, forgets it otherwise.
    pub fn put(&self, key: Vec<u8>, s: &Session) {
        let mut shard = self.shard(&key);
        if s.ended.is_some() {
            shard.remove(&key);
        } else {
            shard.insert(key, s.clone());
        }
    }

    pub fn remove(&self, key: &[u8]) {
        self.shard(key).remove(key);
    }

    /// Forgets sessions whose last hop is older than `before_ms`; returns how many.
    pub fn evict_idle(&self, before_ms: i64) -> usize {
        let mut n = 0;
        for m in &self.shards {
            let mut shard = match m.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            let len = shard.len();
            shard.retain(|_, s| s.last_ms >= before_ms);
            n += len - shard.len();
        }
        n
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|m| m.lock().map(|g| g.len()).unwrap_or(0))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
