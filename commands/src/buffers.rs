//! Large byte buffers kept for reuse: response bodies and the canonical bytes of changesets.
//!
//! The binary fixes glibc's mmap threshold at [`MAPPED_MIN`] (`src/memory.rs`), so every buffer
//! of that size or more is a fresh mapping: the kernel zeroes and faults in each of its pages on
//! first touch, and unmaps them on free. A run reading hundreds of changesets of megabytes paid
//! that for every byte twice (the body, then its canonical form). Buffers handed back with
//! [`Pool::give`] are kept, their pages already mapped, for the next [`Pool::take`].
//!
//! Memory stays bounded: at most [`KEPT`] buffers and [`KEPT_BYTES`] of capacity are kept, so a
//! run's peak RSS is at most that above what its buffers in use hold at their busiest moment. A
//! buffer that would go beyond either is freed.

use std::sync::Mutex;

/// Blocks of at least this size are mapped on their own: the binary sets glibc's mmap threshold
/// to it at start (`src/memory.rs`, which says why). Smaller buffers come from malloc's heaps,
/// which reuse them cheaply: they are not pooled.
pub const MAPPED_MIN: usize = 128 * 1024;

/// At most this many buffers are kept.
pub const KEPT: usize = 8;

/// At most this much capacity is kept, in all: without it, every kept buffer would in time grow
/// to the largest body of the run and stay mapped, 8 times the largest changeset in all.
pub const KEPT_BYTES: usize = 12 << 20;

/// A pool of large buffers.
#[derive(Debug, Default)]
pub struct Pool {
    kept: Mutex<Vec<Vec<u8>>>,
}

/// The process's pool.
pub static LARGE: Pool = Pool::new();

impl Pool {
    pub const fn new() -> Self {
        Pool {
            kept: Mutex::new(Vec::new()),
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: the smallest kept buffer that
    /// fits, else the largest kept one grown to fit, else a new one.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity < MAPPED_MIN {
            return Vec::with_capacity(capacity);
        }
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            let fitting = (0..kept.len())
                .filter(|&i| kept[i].capacity() >= capacity)
                .min_by_key(|&i| kept[i].capacity());
            let chosen = fitting.or_else(|| (0..kept.len()).max_by_key(|&i| kept[i].capacity()));
            chosen.map(|i| kept.swap_remove(i))
        };
        match kept {
            Some(mut buffer) => {
                buffer.reserve_exact(capacity);
                buffer
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// Hand a buffer back once its bytes are no longer needed. Small buffers, and those that
    /// would take the pool beyond [`KEPT`] buffers or [`KEPT_BYTES`], are freed.
    pub fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() < MAPPED_MIN {
            return;
        }
        buffer.clear();
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < KEPT && capacity(&kept) + buffer.capacity() <= KEPT_BYTES {
            kept.push(buffer);
        }
    }

    /// How many buffers are kept, and their bytes of capacity.
    pub fn kept(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.len(), capacity(&kept))
    }
}

fn capacity(buffers: &[Vec<u8>]) -> usize {
    buffers.iter().map(Vec::capacity).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn a_buffer_given_back_is_taken_again_with_its_memory() {
        let pool = Pool::new();
        let mut buffer = pool.take(2 * MIB);
        buffer.extend_from_slice(&[7; 1000]);
        let address = buffer.as_ptr();
        pool.give(buffer);
        assert_eq!(pool.kept(), (1, 2 * MIB));
        let again = pool.take(MIB);
        assert_eq!(again.as_ptr(), address, "the same memory");
        assert!(again.is_empty(), "handed out empty");
        assert_eq!(pool.kept(), (0, 0));
    }

    #[test]
    fn the_smallest_buffer_that_fits_is_taken_else_the_largest_grows() {
        let pool = Pool::new();
        for size in [4 * MIB, MIB, 2 * MIB] {
            pool.give(Vec::with_capacity(size));
        }
        assert_eq!(pool.take(MIB + 1).capacity(), 2 * MIB);
        let grown = pool.take(8 * MIB);
        assert!(grown.capacity() >= 8 * MIB);
        assert_eq!(
            pool.kept(),
            (1, MIB),
            "the 4 MiB one grew; the 1 MiB one is left"
        );
    }

    #[test]
    fn small_buffers_are_not_pooled_and_the_pool_is_bounded_in_count_and_bytes() {
        let pool = Pool::new();
        pool.give(Vec::with_capacity(MAPPED_MIN - 1));
        assert_eq!(pool.kept(), (0, 0));
        assert!(pool.take(MAPPED_MIN - 1).capacity() < MAPPED_MIN);
        for _ in 0..KEPT + 3 {
            pool.give(Vec::with_capacity(MAPPED_MIN));
        }
        assert_eq!(pool.kept(), (KEPT, KEPT * MAPPED_MIN));

        let pool = Pool::new();
        let third = KEPT_BYTES / 3;
        for _ in 0..4 {
            pool.give(Vec::with_capacity(third));
        }
        assert_eq!(
            pool.kept(),
            (3, 3 * third),
            "the fourth would go beyond KEPT_BYTES"
        );
        pool.give(Vec::with_capacity(KEPT_BYTES + 1));
        assert_eq!(pool.kept().0, 3, "nor can one buffer alone");
    }
}
