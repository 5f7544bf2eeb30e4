//! Time, injectable so tests can drive retries.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

pub trait Clock: Send {
    /// For retry deadlines.
    fn now(&self) -> Instant;
    /// For timestamps people read (history, last transition).
    fn wall(&self) -> SystemTime;
}

/// The real clocks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that moves only when told to; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    time: Arc<Mutex<(Instant, SystemTime)>>,
}

impl ManualClock {
    pub fn new() -> Self {
        ManualClock {
            time: Arc::new(Mutex::new((Instant::now(), SystemTime::UNIX_EPOCH))),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut t = self.time.lock().unwrap_or_else(|e| e.into_inner());
        t.0 += by;
        t.1 += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.time.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    fn wall(&self) -> SystemTime {
        self.time.lock().unwrap_or_else(|e| e.into_inner()).1
    }
}
