//! The token bucket that holds submits to the contracted TPS, shared by every bind to one
//! SMSC account (the operator counts the account, not the connection).
//!
//! Owns: the refill arithmetic and waiting for a token. Must never: let a burst exceed
//! `burst` tokens, or busy-wait.

use std::sync::Mutex;

use tokio::time::{Duration, Instant};

#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `rate` tokens per second, at most `burst` saved up (at least one).
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: f64::from(rate.max(1)),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token now if one is there; otherwise how long until one will be.
    pub fn try_take(&self) -> Result<(), Duration> {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(st.1).as_secs_f64();
        st.0 = (st.0 + elapsed * self.rate).min(self.burst);
        st.1 = now;
        if st.0 >= 1.0 {
            st.0 -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - st.0) / self.rate))
        }
    }

    /// Waits for a token.
    pub async fn take(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn holds_the_rate_after_the_burst() {
        let b = TokenBucket::new(10, 5);
        let start = Instant::now();
        for _ in 0..5 {
            assert!(b.try_take().is_ok(), "the burst is available at once");
        }
        assert!(b.try_take().is_err());
        for _ in 0..20 {
            b.take().await;
        }
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1990) && took <= Duration::from_millis(2100),
            "20 tokens at 10/s after the burst: {took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn idle_time_never_saves_more_than_the_burst() {
        let b = TokenBucket::new(100, 3);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let ok = (0..10).filter(|_| b.try_take().is_ok()).count();
        assert_eq!(ok, 3);
    }
}
