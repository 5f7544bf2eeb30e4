//! One configuration-snapshot mechanism for the whole dataplane (RCU style).
//!
//! Workers read the configuration through one pointer load per batch and
//! never lock. The control side owns a `Publisher` holding two copies of the
//! configuration: it applies a set of changes to the standby copy, swaps it
//! in atomically, and later replays the same changes on the copy it swapped
//! out, once no worker holds it any more. Readers therefore see either the
//! whole old or the whole new table, and large tables (a 1M-route FIB) are
//! updated in time proportional to the change, not to their size.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
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

/// Publish a whole new value each time: for small read-mostly tables
/// (settings) whose change is simply their next version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Value<T>(pub T);

impl<T: Clone> Apply for Value<T> {
    type Change = T;
    fn apply(&mut self, change: &T) {
        self.0 = change.clone();
    }
}

impl<T> std::ops::Deref for Value<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A table a module registered (`Registry::table`), as its nodes name it:
/// an index into the worker's module tables, typed so that reading it
/// needs no guess.
pub struct TableId<T> {
    index: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for TableId<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for TableId<T> {}

impl<T> std::fmt::Debug for TableId<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableId({})", self.index)
    }
}

impl<T> TableId<T> {
    pub(crate) fn new(index: usize) -> TableId<T> {
        TableId {
            index,
            _t: PhantomData,
        }
    }
}

/// How to make a module table's publisher: its type and first value.
pub struct TableDecl {
    pub type_id: TypeId,
    pub name: &'static str,
    make: Box<dyn Fn() -> Box<dyn AnyPublisher>>,
}

impl TableDecl {
    pub fn new<T>(initial: T) -> TableDecl
    where
        T: Apply + Clone + Send + Sync + 'static,
        T::Change: Send,
    {
        TableDecl {
            type_id: TypeId::of::<T>(),
            name: std::any::type_name::<T>(),
            make: Box::new(move || {
                Box::new(Publisher::new(initial.clone(), initial.clone())) as Box<dyn AnyPublisher>
            }),
        }
    }
}

/// A `Publisher<T>` with its type erased, kept by the control side.
pub trait AnyPublisher: Send {
    fn reader(&self) -> Box<dyn AnyReader>;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn as_any(&self) -> &dyn Any;
}

impl<T> AnyPublisher for Publisher<T>
where
    T: Apply + Send + Sync + 'static,
    T::Change: Send,
{
    fn reader(&self) -> Box<dyn AnyReader> {
        Box::new(Pinned {
            reader: Publisher::reader(self),
            cur: None,
        })
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A `Reader<T>` with its type erased, that holds its snapshot for one
/// batch (`pin` .. `unpin`).
pub trait AnyReader: Send {
    fn pin(&mut self);
    fn unpin(&mut self);
    /// The pinned snapshot.
    fn get(&self) -> Option<&dyn Any>;
}

struct Pinned<T> {
    reader: Reader<T>,
    cur: Option<Guard<Arc<T>>>,
}

impl<T: Send + Sync + 'static> AnyReader for Pinned<T> {
    #[inline]
    fn pin(&mut self) {
        self.cur = Some(self.reader.load());
    }
    #[inline]
    fn unpin(&mut self) {
        self.cur = None;
    }
    #[inline]
    fn get(&self) -> Option<&dyn Any> {
        self.cur.as_ref().map(|g| &***g as &dyn Any)
    }
}

/// The control side's publishers of module tables, one per type.
#[derive(Default)]
pub struct TablePublishers {
    by_type: Vec<(TypeId, Box<dyn AnyPublisher>)>,
}

impl TablePublishers {
    /// The publisher of `decl`'s table, made from its first value unless
    /// it exists already.
    pub fn declare(&mut self, decl: &TableDecl) -> &mut dyn AnyPublisher {
        let i = match self.by_type.iter().position(|(t, _)| *t == decl.type_id) {
            Some(i) => i,
            None => {
                self.by_type.push((decl.type_id, (decl.make)()));
                self.by_type.len() - 1
            }
        };
        &mut *self.by_type[i].1
    }

    /// The publisher of the table of type `T`, if a module declared one.
    pub fn get_mut<T: Apply + 'static>(&mut self) -> Option<&mut Publisher<T>> {
        self.by_type
            .iter_mut()
            .find(|(t, _)| *t == TypeId::of::<T>())
            .and_then(|(_, p)| p.as_any_mut().downcast_mut())
    }

    pub fn get<T: Apply + 'static>(&self) -> Option<&Publisher<T>> {
        self.by_type
            .iter()
            .find(|(t, _)| *t == TypeId::of::<T>())
            .and_then(|(_, p)| p.as_any().downcast_ref())
    }

    /// One worker's readers of the tables in `decls`, in their order (the
    /// order `TableId`s index).
    pub fn readers(&mut self, decls: &[TableDecl]) -> TableReaders {
        TableReaders {
            readers: decls.iter().map(|d| self.declare(d).reader()).collect(),
        }
    }
}

/// A worker's module tables: pinned once per batch, read by `TableId`.
#[derive(Default)]
pub struct TableReaders {
    readers: Vec<Box<dyn AnyReader>>,
}

impl TableReaders {
    /// Load every table's current snapshot for the coming batch.
    #[inline]
    pub fn pin(&mut self) {
        for r in &mut self.readers {
            r.pin();
        }
    }

    /// Release the snapshots after the batch.
    #[inline]
    pub fn unpin(&mut self) {
        for r in &mut self.readers {
            r.unpin();
        }
    }

    /// The pinned snapshot of table `id`. Panics if the table was not
    /// registered with the registry the graph was built from, or outside
    /// a batch.
    #[inline]
    pub fn get<T: 'static>(&self, id: TableId<T>) -> &T {
        self.readers[id.index]
            .get()
            .and_then(|a| a.downcast_ref())
            .expect("a registered module table, read within a batch")
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
