//! Packet buffers: a per-worker pool of fixed-size buffers addressed by index.
//!
//! Buffers never move and are never freed to the allocator while the worker
//! runs; nodes pass `PktId`s (u32) in batches, as VPP passes buffer indices.

/// Index of a buffer in its worker's pool.
pub type PktId = u32;

/// Bytes kept free in front of the frame so encapsulations can prepend
/// headers without copying.
pub const HEADROOM: usize = 128;
/// Largest frame a buffer holds (Ethernet header included).
pub const DATA_ROOM: usize = 2048;
/// The largest port MTU: its frames (with an 802.1Q tag) fit a buffer.
pub const MAX_MTU: u16 = (DATA_ROOM - 14 - 4) as u16;
const BUF_SIZE: usize = HEADROOM + DATA_ROOM;

/// Per-packet metadata, filled in by the nodes as the packet advances.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta {
    /// Port the packet arrived on.
    pub rx_port: u16,
    /// Port the packet leaves through (set by the output nodes).
    pub tx_port: u16,
    /// VRF the packet is routed in.
    pub vrf: u16,
    /// Offset of the L3 header from the start of the frame.
    pub l3_offset: u16,
    /// Next hop chosen by the FIB lookup.
    pub nexthop: u32,
    /// Flow hash, 0 until computed.
    pub flow_hash: u32,
    /// ICMP error to send about this packet (set before "icmp4-error" or
    /// "icmp6-error"): type, code and parameter (MTU for too-big errors).
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_param: u16,
    /// `FLAG_*` bits.
    pub flags: u8,
    /// Modules' own per-packet fields (`slot`), claimed at registration.
    pub area: SlotArea,
}

/// Bytes of per-packet metadata modules claim slots in.
pub const SLOT_AREA: usize = 32;

/// The module area of `Meta`: zero when a packet is received.
#[derive(Debug, Clone, Copy, Default)]
#[repr(C, align(8))]
pub struct SlotArea([u8; SLOT_AREA]);

/// A type that may live in a metadata slot.
///
/// # Safety
/// Every bit pattern of `size_of::<Self>()` bytes must be a valid value
/// (plain integers and arrays or `repr(C)` structs of them without
/// padding): slots start zeroed and are read as bytes.
pub unsafe trait MetaSlot: Copy + Default + 'static {}

unsafe impl MetaSlot for u8 {}
unsafe impl MetaSlot for u16 {}
unsafe impl MetaSlot for u32 {}
unsafe impl MetaSlot for u64 {}
unsafe impl MetaSlot for i8 {}
unsafe impl MetaSlot for i16 {}
unsafe impl MetaSlot for i32 {}
unsafe impl MetaSlot for i64 {}
unsafe impl<S: MetaSlot, const N: usize> MetaSlot for [S; N] where [S; N]: Default {}

/// A module's slot in the metadata area: handed out by
/// `Registry::slot`, which keeps slots apart.
pub struct SlotId<S> {
    offset: u8,
    _s: std::marker::PhantomData<fn() -> S>,
}

impl<S> Clone for SlotId<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for SlotId<S> {}

impl<S> std::fmt::Debug for SlotId<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlotId(+{})", self.offset)
    }
}

impl<S: MetaSlot> SlotId<S> {
    const FITS: () = assert!(
        std::mem::size_of::<S>() <= SLOT_AREA && std::mem::align_of::<S>() <= 8,
        "a metadata slot must fit the area and need at most 8-byte alignment"
    );

    /// # Safety
    /// `offset` must be aligned for `S` with `offset + size_of::<S>()`
    /// within the area.
    pub(crate) unsafe fn new(offset: usize) -> SlotId<S> {
        let () = Self::FITS;
        SlotId {
            offset: offset as u8,
            _s: std::marker::PhantomData,
        }
    }

    /// Byte offset in the area.
    pub fn offset(self) -> usize {
        self.offset as usize
    }
}

impl Meta {
    /// This packet's value of a module's slot (zero until written).
    #[inline(always)]
    pub fn slot<S: MetaSlot>(&self, id: SlotId<S>) -> S {
        let () = SlotId::<S>::FITS;
        // SAFETY: the registry made `id` aligned and inside the area, and
        // any bytes are a valid S (`MetaSlot`).
        unsafe { *(self.area.0.as_ptr().add(id.offset as usize) as *const S) }
    }

    /// The slot to write.
    #[inline(always)]
    pub fn slot_mut<S: MetaSlot>(&mut self, id: SlotId<S>) -> &mut S {
        let () = SlotId::<S>::FITS;
        // SAFETY: as in `slot`; the area is borrowed mutably with `self`.
        unsafe { &mut *(self.area.0.as_mut_ptr().add(id.offset as usize) as *mut S) }
    }
}

/// The TTL / hop limit was already handled (decremented on the way out, or
/// the packet was made by the gateway itself).
pub const FLAG_TTL_DONE: u8 = 1;
/// The frame came to a link-layer broadcast or multicast address: a router
/// must neither forward the IP packet inside nor answer it with an ICMP
/// error (RFC 1812 5.3.4, 4.3.2.7; RFC 4443 2.4 e.3).
pub const FLAG_L2_MULTICAST: u8 = 2;

/// Metadata fills the first cache line; the frame starts on a line of its
/// own, so a small packet's headers and metadata are two cache lines.
#[repr(C, align(64))]
pub struct PacketBuf {
    pub meta: Meta,
    head: u16,
    len: u16,
    _pad: [u8; 64 - META_LEN],
    data: [u8; BUF_SIZE],
}

const META_LEN: usize = std::mem::size_of::<Meta>() + 4;
const _: () = assert!(META_LEN <= 64, "metadata fits the first cache line");

impl PacketBuf {
    /// The frame bytes.
    #[inline(always)]
    pub fn data(&self) -> &[u8] {
        let h = self.head as usize;
        &self.data[h..h + self.len as usize]
    }

    #[inline(always)]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let h = self.head as usize;
        &mut self.data[h..h + self.len as usize]
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replace the frame with `bytes` (truncated to the data room), resetting
    /// the headroom and metadata.
    #[inline]
    pub fn fill(&mut self, bytes: &[u8]) -> usize {
        let n = bytes.len().min(DATA_ROOM);
        self.head = HEADROOM as u16;
        self.len = n as u16;
        self.data[HEADROOM..HEADROOM + n].copy_from_slice(&bytes[..n]);
        self.meta = Meta::default();
        n
    }

    /// Like `fill`, from a source padded to a multiple of 64 bytes: copies
    /// whole blocks, which is cheaper than an exact-length copy for small
    /// frames. `len` is the frame's real length.
    #[inline]
    pub fn fill_blocks(&mut self, padded: &[u8], len: usize) -> usize {
        let n = len.min(DATA_ROOM).min(padded.len());
        self.head = HEADROOM as u16;
        self.len = n as u16;
        self.meta = Meta::default();
        let blocks = n.div_ceil(64).min(padded.len() / 64);
        for b in 0..blocks {
            let at = b * 64;
            let src: &[u8; 64] = padded[at..at + 64].try_into().expect("64-byte block");
            let dst: &mut [u8; 64] = (&mut self.data[HEADROOM + at..HEADROOM + at + 64])
                .try_into()
                .expect("64-byte block");
            *dst = *src;
        }
        n
    }

    /// Set the frame length (from the current head), e.g. after writing a
    /// reply in place. Returns false if it would exceed the buffer.
    #[inline]
    pub fn set_len(&mut self, len: usize) -> bool {
        if self.head as usize + len > BUF_SIZE {
            return false;
        }
        self.len = len as u16;
        true
    }

    /// Writable space from the head to the end of the buffer.
    #[inline]
    pub fn room_mut(&mut self) -> &mut [u8] {
        let h = self.head as usize;
        &mut self.data[h..]
    }

    /// Grow the frame at the front by `n` bytes (for encapsulation or to
    /// rebuild an L2 header). Returns false when the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> bool {
        if n > self.head as usize {
            return false;
        }
        self.head -= n as u16;
        self.len += n as u16;
        true
    }

    /// Drop `n` bytes from the front of the frame.
    #[inline]
    pub fn advance(&mut self, n: usize) -> bool {
        if n > self.len as usize {
            return false;
        }
        self.head += n as u16;
        self.len -= n as u16;
        true
    }

    /// Reset to an empty frame with full headroom.
    #[inline]
    pub fn reset(&mut self) {
        self.head = HEADROOM as u16;
        self.len = 0;
        self.meta = Meta::default();
    }
}

/// A worker's buffers and the stack of free ones.
pub struct Pool {
    bufs: Vec<PacketBuf>,
    free: Vec<PktId>,
}

impl Pool {
    pub fn new(count: usize) -> Pool {
        let mut bufs = Vec::with_capacity(count);
        for _ in 0..count {
            bufs.push(PacketBuf {
                meta: Meta::default(),
                head: HEADROOM as u16,
                len: 0,
                _pad: [0; 64 - META_LEN],
                data: [0; BUF_SIZE],
            });
        }
        Pool {
            bufs,
            free: (0..count as PktId).rev().collect(),
        }
    }

    /// Take a free buffer, or None when the pool is exhausted.
    #[inline(always)]
    pub fn alloc(&mut self) -> Option<PktId> {
        let id = self.free.pop()?;
        self.bufs[id as usize].reset();
        Some(id)
    }

    /// Take a free buffer without resetting it; for callers that `fill` it
    /// at once (drivers).
    #[inline(always)]
    pub fn alloc_raw(&mut self) -> Option<PktId> {
        self.free.pop()
    }

    #[inline(always)]
    pub fn free(&mut self, id: PktId) {
        debug_assert!(self.free.len() < self.bufs.len());
        self.free.push(id);
    }

    #[inline(always)]
    pub fn free_all(&mut self, ids: &[PktId]) {
        self.free.extend_from_slice(ids);
    }

    #[inline(always)]
    pub fn get(&self, id: PktId) -> &PacketBuf {
        &self.bufs[id as usize]
    }

    #[inline(always)]
    pub fn get_mut(&mut self, id: PktId) -> &mut PacketBuf {
        &mut self.bufs[id as usize]
    }

    /// Two distinct buffers at once (e.g. to copy from one to the other).
    /// Panics if `a == b`, which would be a bug in the caller.
    pub fn get_two_mut(&mut self, a: PktId, b: PktId) -> (&mut PacketBuf, &mut PacketBuf) {
        assert_ne!(a, b);
        let (a, b) = (a as usize, b as usize);
        if a < b {
            let (x, y) = self.bufs.split_at_mut(b);
            (&mut x[a], &mut y[0])
        } else {
            let (x, y) = self.bufs.split_at_mut(a);
            (&mut y[0], &mut x[b])
        }
    }

    /// Prefetch a buffer's first cache lines (metadata and headers).
    #[inline(always)]
    pub fn prefetch(&self, id: PktId) {
        if let Some(b) = self.bufs.get(id as usize) {
            crate::prefetch::read(b as *const PacketBuf as *const u8);
            crate::prefetch::read(b.data[HEADROOM..].as_ptr());
        }
    }

    pub fn available(&self) -> usize {
        self.free.len()
    }

    pub fn capacity(&self) -> usize {
        self.bufs.len()
    }
}
