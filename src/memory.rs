//! The allocator's one setting: large blocks (changeset bodies, their canonical forms, zips) are
//! always mapped on their own and returned to the system when freed.
//!
//! glibc's malloc starts out that way, but raises its mmap threshold to the size of each mapped
//! block it frees (up to 32 MiB). After the first 3 MB changeset is freed, the next ones come from
//! its heaps instead, one per thread that allocates, and fragment them: peak RSS then grows with the
//! length of the run rather than with what is in flight. Measured (`make bench`, `scale`):
//! validate_signature over 16x the dataset (3,264 changesets, 729 MB) peaked at 67 MiB with the
//! default, 30 MiB with a fixed threshold, for the same CPU time.

/// Blocks of at least this size are mapped on their own (the buffer pool's size too).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: usize = commands::buffers::MAPPED_MIN;

/// Fix the mmap threshold, before any large allocation.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; it is called once, at start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;

    fn mapped_blocks() -> usize {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        unsafe { libc::mallinfo2() }.hblks
    }

    #[test]
    fn a_large_block_stays_mapped_after_a_larger_one_was_freed() {
        tune();
        // With the default, freeing this block would raise the threshold to 8 MiB.
        drop(std::hint::black_box(vec![1u8; 8 << 20]));
        let before = mapped_blocks();
        let block = std::hint::black_box(vec![1u8; 1 << 20]);
        let during = mapped_blocks();
        drop(block);
        assert!(
            during > before,
            "a 1 MiB block was not mapped on its own ({before} then {during} mapped blocks)"
        );
    }
}
