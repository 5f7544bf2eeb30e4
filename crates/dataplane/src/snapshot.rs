//! One configuration-snapshot mechanism for the whole dataplane (RCU style).
//!
//! Workers read the configuration through one pointer load per batch and
//! never lock. The control side owns a `Publisher` holding two copies of the
//! configuration: it applies a set of changes to the standby copy, swaps it
//! in atomically, and later replays the same changes on the copy it swapped
//! out, once no worker holds it any more. Readers therefore see either the
//! whole old or the whole new table, and large tables (a 1M-route FIB) are
//! updated in time proportional to the change, not to their size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, Guard};

/// A structure that can be changed by replaying a log of changes.
/// Applying the same changes to equal values must give equal values.
pub trait Apply {
    type Change;
    fn apply(&mut self, change: &Self::Change);
}

/// The control side's handle: the only writer.
pub struct Publisher<T: Apply> {
    live: Arc<ArcSwap<T>>,
    standby: Arc<T>,
    /// Changes applied to the live copy but not yet to the standby one.
    replay: Vec<T::Change>,
    generation: u64,
}

/// A worker's handle: cheap to clone, lock-free to read.
pub struct Reader<T> {
    live: Arc<ArcSwap<T>>,
}

impl<T> Clone for Reader<T> {
    fn clone(&self) -> Self {
        Reader {
            live: self.live.clone(),
        }
    }
}

impl<T> Reader<T> {
    /// The current snapshot; hold it for one batch, not longer, since the
    /// writer waits for it to be released before reusing its memory.
    #[inline(always)]
    pub fn load(&self) -> Guard<Arc<T>> {
        self.live.load()
    }
}

impl<T: Apply> Publisher<T> {
    /// Start from two equal values (built twice rather than cloned, so that
    /// large tables need not implement Clone).
    pub fn new(live: T, standby: T) -> Publisher<T> {
        Publisher {
            live: Arc::new(ArcSwap::from_pointee(live)),
            standby: Arc::new(standby),
            replay: Vec::new(),
            generation: 0,
        }
    }

    pub fn reader(&self) -> Reader<T> {
        Reader {
            live: self.live.clone(),
        }
    }

    /// The live snapshot, as workers see it.
    pub fn load(&self) -> Guard<Arc<T>> {
        self.live.load()
    }

    /// Number of commits so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Apply `changes` and publish them as one step. Blocks only while a
    /// worker still holds the snapshot from two commits ago (at most one
    /// batch).
    pub fn commit(&mut self, changes: Vec<T::Change>) {
        if changes.is_empty() {
            return;
        }
        let replay = std::mem::take(&mut self.replay);
        let standby = self.standby_mut();
        for c in &replay {
            standby.apply(c);
        }
        for c in &changes {
            standby.apply(c);
        }
        let old = self.live.swap(self.standby.clone());
        // Dropping our reference to the new live copy leaves the swap-cell
        // as its only owner; the old one becomes the standby.
        self.standby = old;
        self.replay = changes;
        self.generation += 1;
    }

    fn standby_mut(&mut self) -> &mut T {
        let start = Instant::now();
        let mut warned = false;
        loop {
            if Arc::get_mut(&mut self.standby).is_some() {
                break;
            }
            if !warned && start.elapsed() > Duration::from_secs(1) {
                eprintln!("weir: snapshot writer waiting for a worker to release an old snapshot");
                warned = true;
            }
            std::thread::yield_now();
        }
        Arc::get_mut(&mut self.standby).expect("checked above")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default, Debug, PartialEq)]
    struct Log(Vec<u32>);
    impl Apply for Log {
        type Change = u32;
        fn apply(&mut self, c: &u32) {
            self.0.push(*c);
        }
    }

    #[test]
    fn readers_see_whole_commits_and_copies_converge() {
        let mut p = Publisher::new(Log::default(), Log::default());
        let r = p.reader();
        p.commit(vec![1, 2]);
        assert_eq!(r.load().0, vec![1, 2]);
        p.commit(vec![3]);
        assert_eq!(r.load().0, vec![1, 2, 3]);
        p.commit(vec![4, 5]);
        assert_eq!(r.load().0, vec![1, 2, 3, 4, 5]);
        assert_eq!(p.generation(), 3);
    }

    #[test]
    fn writer_waits_for_old_snapshot() {
        let mut p = Publisher::new(Log::default(), Log::default());
        let r = p.reader();
        p.commit(vec![1]);
        let held = r.load_full_for_test();
        p.commit(vec![2]); // standby is the initial copy, free
        let h = std::thread::spawn(move || {
            p.commit(vec![3]); // must wait for `held` (the [1] copy)
            p
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!h.is_finished());
        assert_eq!(held.0, vec![1]);
        drop(held);
        let p = h.join().unwrap();
        assert_eq!(p.load().0, vec![1, 2, 3]);
    }

    impl<T> Reader<T> {
        fn load_full_for_test(&self) -> Arc<T> {
            self.live.load_full()
        }
    }
}
