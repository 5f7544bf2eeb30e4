//! Readiness of descriptors that have no ring to look at (TAP devices),
//! watched from one place so a worker polling an idle one makes no syscall.
//!
//! One thread per process waits in `epoll_wait` on every watched
//! descriptor (edge-triggered) and raises the descriptor's flag when frames
//! arrive; the worker reads only while the flag is up. A worker lowers the
//! flag *before* draining, so a frame that arrives during the drain raises
//! it again and is read on a later poll.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

struct Poller {
    epfd: OwnedFd,
    flags: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    next: AtomicU64,
}

static POLLER: OnceLock<Option<Arc<Poller>>> = OnceLock::new();

fn poller() -> Option<Arc<Poller>> {
    POLLER
        .get_or_init(|| {
            // SAFETY: plain syscall; a non-negative result is ours.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            let p = Arc::new(Poller {
                // SAFETY: fd is fresh.
                epfd: unsafe { OwnedFd::from_raw_fd(fd) },
                flags: Mutex::new(HashMap::new()),
                next: AtomicU64::new(1),
            });
            let q = p.clone();
            std::thread::Builder::new()
                .name("weir-readiness".into())
                .spawn(move || run(&q))
                .ok()?;
            Some(p)
        })
        .clone()
}

fn run(p: &Poller) {
    // SAFETY: epoll_event is plain data.
    let mut evs: [libc::epoll_event; 64] = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: waiting into a local array of the length given.
        let n = unsafe { libc::epoll_wait(p.epfd.as_raw_fd(), evs.as_mut_ptr(), 64, -1) };
        if n <= 0 {
            continue;
        }
        let flags = p.flags.lock().unwrap_or_else(|e| e.into_inner());
        for ev in &evs[..n as usize] {
            let token = ev.u64;
            if let Some(f) = flags.get(&token) {
                f.store(true, Ordering::Release);
            }
        }
    }
}

/// A watched descriptor's flag. Up while frames may wait.
pub(crate) struct Readiness {
    flag: Arc<AtomicBool>,
    /// None: not watched (no epoll here), so always treated as ready.
    token: Option<u64>,
    fd: RawFd,
}

impl Readiness {
    /// Watch `fd` for input. The flag starts up: frames may already wait.
    pub(crate) fn watch(fd: RawFd) -> Readiness {
        let flag = Arc::new(AtomicBool::new(true));
        let token = poller().and_then(|p| {
            let token = p.next.fetch_add(1, Ordering::Relaxed);
            p.flags
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(token, flag.clone());
            let mut ev = libc::epoll_event {
                events: (libc::EPOLLIN | libc::EPOLLET) as u32,
                u64: token,
            };
            // SAFETY: registering a live fd with a local event.
            let r =
                unsafe { libc::epoll_ctl(p.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) };
            if r != 0 {
                p.flags
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&token);
                return None;
            }
            Some(token)
        });
        Readiness { flag, token, fd }
    }

    /// Take the flag: true if frames may wait (the caller then reads until
    /// the descriptor is empty, or calls `keep` when it stops early).
    #[inline(always)]
    pub(crate) fn take(&self) -> bool {
        if self.token.is_none() {
            return true;
        }
        // A load first keeps the idle case a plain read of a shared line.
        self.flag.load(Ordering::Acquire) && self.flag.swap(false, Ordering::AcqRel)
    }

    /// Raise the flag again: the caller stopped before the descriptor was
    /// empty.
    #[inline(always)]
    pub(crate) fn keep(&self) {
        self.flag.store(true, Ordering::Release);
    }
}

impl Drop for Readiness {
    fn drop(&mut self) {
        let (Some(token), Some(p)) = (self.token, POLLER.get().and_then(|p| p.clone())) else {
            return;
        };
        // SAFETY: removing our own registration; the fd is still open.
        unsafe {
            libc::epoll_ctl(
                p.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                self.fd,
                std::ptr::null_mut(),
            )
        };
        p.flags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
    }
}
