//! Handing freed heap memory back to the operating system. glibc's allocator keeps memory
//! that bursts of work freed (thousands of pins added at once, say) in its arenas, where it
//! counts as the process's resident memory although nothing uses it; `malloc_trim` returns
//! those pages. Other platforms and allocators: nothing to do.
//!
//! glibc also gives each thread that allocates under contention an arena of its own (up to
//! eight per core); a daemon whose blocking pool runs many short tasks ends up with dozens,
//! each holding its own free memory. [`limit_arenas`] caps them at [`ARENAS`] unless the
//! operator set `MALLOC_ARENA_MAX`: a one-node cluster with 10,000 pins went from +44 MiB to
//! +33..38 MiB resident over an empty node (release build, bench/cluster.sh's setup) with two
//! arenas. One arena does better still: in the 3-node cluster with 10,000 pins of replication
//! 3, the node that added the files stayed at +19..22 MiB with two arenas (its second arena
//! held 26 MB for 6.5 MB in use after the add burst) and +15 MiB with one, over three runs
//! each; 1 GiB node-to-node transfers showed no difference beyond run-to-run noise (five
//! runs each: 200..246 MB/s with one, 211..230 MB/s with two) — glibc's per-thread caches
//! serve most allocations without the arena lock.

/// How often the daemon hands freed memory back, whatever freed it: a burst of pin work
/// (about 40 MiB resident after 2,000 pins were added), or serving the pinset to members
/// catching up (a node once stayed at 1.1 GiB resident with 50 MiB in use).
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Heap arenas the daemon lets glibc create.
pub const ARENAS: i32 = 1;

/// Cap glibc's heap arenas at [`ARENAS`], unless `MALLOC_ARENA_MAX` is set (glibc reads it
/// itself). Call once at daemon start, before the worker threads exist.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn limit_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets a glibc tunable; M_ARENA_MAX with a positive value is a
    // documented parameter and takes no pointers.
    let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
    if ok != 1 {
        tracing::debug!("mallopt(M_ARENA_MAX) was refused; the allocator keeps its default");
    }
}

/// Cap the allocator's heap arenas where that is a thing (glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

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

/// Call [`release_free_memory`] every `every`, off the async threads, for as long as the
/// runtime runs. On a heap with little free memory a call costs well under a millisecond.
pub async fn trim_every(every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if tokio::task::spawn_blocking(release_free_memory)
            .await
            .is_err()
        {
            return;
        }
    }
}
