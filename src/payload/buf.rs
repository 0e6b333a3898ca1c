//! Segment bytes whose memory goes back to the system when the segment is dropped.
//!
//! glibc serves a block above its mmap threshold (128 KiB) with a mapping of its own, but each
//! time such a block is freed it raises the threshold to that block's size (up to 32 MiB): from
//! the first segment dropped on, every later segment is carved out of a malloc arena, and the
//! holes dropped segments leave there stay resident (docs/memory.md: an 8-MiB store bought
//! 1 MiB of the 4.5 MB it no longer held). A segment in its own anonymous mapping is unmapped
//! when its last reference goes, so a store eviction lowers RSS, and capacity reserved but not
//! yet written costs address space, not memory. Small buffers (init segments, tests) stay on the
//! heap, where a mapping's page rounding and system calls would cost more than they save.

use bytes::Bytes;
use memmap2::MmapMut;

/// Below this capacity a buffer lives on the heap (glibc's own initial mmap threshold).
const MAP_FROM: usize = 128 * 1024;

/// A growable segment buffer: a `Vec<u8>` for small sizes, an anonymous mapping from
/// [`MAP_FROM`] on. [`SegmentBuf::freeze`] turns it into `Bytes` without a copy.
#[derive(Default)]
pub struct SegmentBuf {
    inner: Inner,
}

enum Inner {
    Heap(Vec<u8>),
    Mapped { map: MmapMut, len: usize },
}

impl Default for Inner {
    fn default() -> Self {
        Inner::Heap(Vec::new())
    }
}

impl SegmentBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(capacity: usize) -> Self {
        let mut b = Self::new();
        b.reserve_exact(capacity);
        b
    }

    pub fn len(&self) -> usize {
        match &self.inner {
            Inner::Heap(v) => v.len(),
            Inner::Mapped { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        match &self.inner {
            Inner::Heap(v) => v.capacity(),
            Inner::Mapped { map, .. } => map.len(),
        }
    }

    /// Whether the bytes live in their own mapping (for tests and `GST_DEBUG` lines).
    pub fn is_mapped(&self) -> bool {
        matches!(self.inner, Inner::Mapped { .. })
    }

    /// Room for at least `additional` more bytes, in one allocation of exactly that size.
    pub fn reserve_exact(&mut self, additional: usize) {
        let len = self.len();
        let want = len.saturating_add(additional);
        if want <= self.capacity() {
            return;
        }
        if want >= MAP_FROM {
            // A failed mapping (address space exhausted) falls back to the heap.
            if let Ok(mut map) = MmapMut::map_anon(want) {
                map[..len].copy_from_slice(self.as_slice());
                self.inner = Inner::Mapped { map, len };
                return;
            }
        }
        match &mut self.inner {
            Inner::Heap(v) => v.reserve_exact(additional),
            Inner::Mapped { map, len } => {
                let mut v = Vec::with_capacity(want);
                v.extend_from_slice(&map[..*len]);
                self.inner = Inner::Heap(v);
            }
        }
    }

    /// Appends `data`, doubling the capacity when it runs out (as `Vec` does).
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        let len = self.len();
        if len + data.len() > self.capacity() {
            self.reserve_exact(data.len().max(self.capacity()));
        }
        match &mut self.inner {
            Inner::Heap(v) => v.extend_from_slice(data),
            Inner::Mapped { map, len } => {
                map[*len..*len + data.len()].copy_from_slice(data);
                *len += data.len();
            }
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        match &self.inner {
            Inner::Heap(v) => v,
            Inner::Mapped { map, len } => &map[..*len],
        }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.inner {
            Inner::Heap(v) => v,
            Inner::Mapped { map, len } => &mut map[..*len],
        }
    }

    /// Shortens the buffer to `len` bytes (no effect if it is not longer).
    pub fn truncate(&mut self, new_len: usize) {
        match &mut self.inner {
            Inner::Heap(v) => v.truncate(new_len),
            Inner::Mapped { len, .. } => *len = (*len).min(new_len),
        }
    }

    /// The bytes as `Bytes`, without a copy; a mapping is unmapped when the last clone drops.
    pub fn freeze(self) -> Bytes {
        match self.inner {
            Inner::Heap(v) => Bytes::from(v),
            Inner::Mapped { map, len } => Bytes::from_owner(Frozen { map, len }),
        }
    }
}

/// A finished mapped segment, owned by `Bytes`.
struct Frozen {
    map: MmapMut,
    len: usize,
}

impl AsRef<[u8]> for Frozen {
    fn as_ref(&self) -> &[u8] {
        &self.map[..self.len]
    }
}

impl std::ops::Deref for SegmentBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Vec<u8>> for SegmentBuf {
    fn from(v: Vec<u8>) -> Self {
        SegmentBuf {
            inner: Inner::Heap(v),
        }
    }
}

impl From<&[u8]> for SegmentBuf {
    fn from(s: &[u8]) -> Self {
        let mut b = SegmentBuf::with_capacity(s.len());
        b.extend_from_slice(s);
        b
    }
}

impl Clone for SegmentBuf {
    fn clone(&self) -> Self {
        SegmentBuf::from(self.as_slice())
    }
}

impl PartialEq for SegmentBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SegmentBuf {}

impl std::fmt::Debug for SegmentBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentBuf")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_buffers_stay_on_the_heap_and_large_ones_are_mapped() {
        assert!(!SegmentBuf::with_capacity(4096).is_mapped());
        let b = SegmentBuf::with_capacity(MAP_FROM);
        assert!(b.is_mapped());
        assert_eq!((b.len(), b.capacity()), (0, MAP_FROM));
    }

    #[test]
    fn growing_across_the_threshold_keeps_the_bytes() {
        let mut b = SegmentBuf::new();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        for chunk in data.chunks(16_384) {
            b.extend_from_slice(chunk);
        }
        assert!(b.is_mapped());
        assert_eq!(b.as_slice(), &data[..]);
        let frozen = b.freeze();
        assert_eq!(&frozen[..], &data[..]);
        // Slices and clones share the mapping; it outlives the first handle.
        let tail = frozen.slice(100_000..);
        drop(frozen);
        assert_eq!(&tail[..], &data[100_000..]);
    }

    #[test]
    fn an_exact_reservation_is_one_mapping_filled_in_place() {
        let mut b = SegmentBuf::with_capacity(200_000);
        for _ in 0..200 {
            b.extend_from_slice(&[1u8; 1000]);
        }
        assert_eq!((b.len(), b.capacity()), (200_000, 200_000));
        assert_eq!(b.clone(), b);
        b.as_mut_slice()[0] = 2;
        b.truncate(10);
        assert_eq!(b.as_slice(), &[2, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        assert!(b.freeze()[1..].iter().all(|&x| x == 1));
    }

    #[test]
    fn a_heap_buffer_freezes_as_is() {
        let b = SegmentBuf::from(b"abc".to_vec());
        assert!(!b.is_mapped());
        assert_eq!(&b.freeze()[..], b"abc");
    }
}
