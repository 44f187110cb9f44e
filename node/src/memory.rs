//! Handing freed heap memory back to the operating system. glibc's allocator keeps memory
//! that bursts of work freed (thousands of pins added at once, say) in its arenas, where it
//! counts as the process's resident memory although nothing uses it; `malloc_trim` returns
//! those pages. Other platforms and allocators: nothing to do.

/// Return free heap pages to the operating system where the allocator keeps them.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks and takes no
    // pointers from us; it is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Return free heap pages to the operating system where the allocator keeps them.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
