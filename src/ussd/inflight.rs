//! One hop at a time per session: a gateway that re-sends a hop while the first copy is
//! still being answered (it timed out waiting for us) must get the cached screen, not a
//! second run of the action.
//!
//! Owns: a map from session key to an async mutex, holding an entry only while some hop of
//! that session is in flight or waiting (so the map stays as small as the live concurrency).
//! Must never: serialise hops of different sessions (the bench runs 50 at once), or leak an
//! entry after its last hop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

#[derive(Default)]
pub struct InFlight {
    map: Mutex<HashMap<Vec<u8>, Arc<AsyncMutex<()>>>>,
}

/// Held while a hop of one session runs; the next hop of that session waits for its drop.
pub struct HopGuard<'a> {
    owner: &'a InFlight,
    key: Vec<u8>,
    guard: Option<OwnedMutexGuard<()>>,
}

impl InFlight {
    /// Waits until no other hop of `key` is running, then holds the session.
    pub async fn enter(&self, key: Vec<u8>) -> HopGuard<'_> {
        let lock = {
            let mut map = match self.map.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.entry(key.clone()).or_default().clone()
        };
        let guard = lock.lock_owned().await;
        HopGuard {
            owner: self,
            key,
            guard: Some(guard),
        }
    }

    /// Sessions with a hop in flight or waiting.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for HopGuard<'_> {
    fn drop(&mut self) {
        let mut map = match self.owner.map.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Under the map lock no one can clone the entry: if only the map holds it now, no
        // hop of this session is waiting and the entry goes.
        drop(self.guard.take());
        if map
            .get(&self.key)
            .is_some_and(|m| Arc::strong_count(m) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn hops_of_one_session_queue_and_others_do_not() {
        let f = Arc::new(InFlight::default());
        let a = f.enter(b"a".to_vec()).await;
        // Another session goes straight in.
        let b = tokio::time::timeout(Duration::from_millis(50), f.enter(b"b".to_vec())).await;
        assert!(b.is_ok());
        drop(b);
        // The same session waits until the first hop is done.
        let f2 = f.clone();
        let waiter = tokio::spawn(async move {
            let _g = f2.enter(b"a".to_vec()).await;
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(a);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("second hop ran")
            .expect("task");
        assert!(f.is_empty(), "no entry outlives its hops");
    }
}
