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
//!
//! Block-sized buffers (256 KiB leaves, 2 MiB bitswap messages) are above glibc's default
//! mmap threshold, so by default each one was a fresh `mmap` whose pages the kernel faulted in
//! and zeroed, then unmapped on free: 88,000–190,000 page faults in the serving daemon per
//! GiB sent. [`serve_buffers_from_heap`] serves them from the heap instead (mmap threshold
//! [`MMAP_THRESHOLD`], trim threshold [`TRIM_THRESHOLD`]), so freed buffers are reused: about
//! 3,000 faults per GiB, and the serving daemon's CPU per GiB fell from 1.59–1.74 s to
//! 1.38–1.55 s (release build, 1 GiB node-to-node, interleaved runs). The periodic trim
//! ([`TRIM_EVERY`]) still hands the heap's free pages back once a burst is over.

/// How often the daemon hands freed memory back, whatever freed it: a burst of pin work
/// (about 40 MiB resident after 2,000 pins were added), or serving the pinset to members
/// catching up (a node once stayed at 1.1 GiB resident with 50 MiB in use).
pub const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Heap arenas the daemon lets glibc create.
pub const ARENAS: i32 = 1;

/// Largest allocation glibc serves from the heap rather than its own `mmap`: glibc's own
/// ceiling for its dynamic threshold on 64-bit, well above the largest bitswap message (4 MiB).
pub const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of the heap glibc keeps rather than returning at once.
pub const TRIM_THRESHOLD: i32 = 64 << 20;

/// One `mallopt` parameter the daemon sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    ArenaMax(i32),
    MmapThreshold(i32),
    TrimThreshold(i32),
}

/// The allocator settings to apply, given the environment (`var` reads one variable): every
/// setting the operator already gave glibc through `MALLOC_*` variables or `GLIBC_TUNABLES`
/// is left to them.
pub fn settings(var: impl Fn(&str) -> Option<String>) -> Vec<Setting> {
    let tunables = var("GLIBC_TUNABLES").unwrap_or_default();
    let mut out = Vec::new();
    if var("MALLOC_ARENA_MAX").is_none() && !tunables.contains("glibc.malloc.arena_max") {
        out.push(Setting::ArenaMax(ARENAS));
    }
    let thresholds_given = ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"]
        .iter()
        .any(|name| var(name).is_some())
        || tunables.contains("glibc.malloc.mmap_threshold")
        || tunables.contains("glibc.malloc.trim_threshold");
    if !thresholds_given {
        out.push(Setting::MmapThreshold(MMAP_THRESHOLD));
        out.push(Setting::TrimThreshold(TRIM_THRESHOLD));
    }
    out
}

/// Cap glibc's heap arenas ([`Setting::ArenaMax`] of [`settings`]). Call once at daemon
/// start, before the worker threads exist.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_arenas() {
    apply_all(|s| matches!(s, Setting::ArenaMax(_)));
}

/// Serve block-sized buffers from the heap ([`Setting::MmapThreshold`] and
/// [`Setting::TrimThreshold`] of [`settings`]). Call once the repository is open, not
/// before: sled sizes its page table with 2 and 4 MiB zeroed allocations of which it touches
/// little. Under glibc's default threshold they are their own mappings, resident only where
/// touched; from the heap, reused memory is cleared and resident in full (an idle daemon
/// went from 18 to 25 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn serve_buffers_from_heap() {
    apply_all(|s| !matches!(s, Setting::ArenaMax(_)));
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn apply_all(which: impl Fn(&Setting) -> bool) {
    for setting in settings(|name| std::env::var(name).ok()) {
        if which(&setting) && !apply(setting) {
            tracing::debug!(?setting, "mallopt refused; the allocator keeps its default");
        }
    }
}

/// Set one allocator parameter; false when glibc refuses the value.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn apply(setting: Setting) -> bool {
    let (param, value) = match setting {
        Setting::ArenaMax(v) => (libc::M_ARENA_MAX, v),
        Setting::MmapThreshold(v) => (libc::M_MMAP_THRESHOLD, v),
        Setting::TrimThreshold(v) => (libc::M_TRIM_THRESHOLD, v),
    };
    // SAFETY: mallopt only sets one of glibc's documented allocator parameters from two
    // integers; it takes no pointers.
    unsafe { libc::mallopt(param, value) == 1 }
}

/// Cap the allocator's heap arenas where that is a thing (glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_arenas() {}

/// Serve block-sized buffers from the heap where the allocator has such a setting (glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn serve_buffers_from_heap() {}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_string())
        }
    }

    #[test]
    fn without_operator_settings_all_three_are_set() {
        assert_eq!(
            settings(env(&[])),
            vec![
                Setting::ArenaMax(ARENAS),
                Setting::MmapThreshold(MMAP_THRESHOLD),
                Setting::TrimThreshold(TRIM_THRESHOLD),
            ]
        );
    }

    #[test]
    fn operator_variables_win() {
        assert_eq!(
            settings(env(&[("MALLOC_ARENA_MAX", "4")])),
            vec![
                Setting::MmapThreshold(MMAP_THRESHOLD),
                Setting::TrimThreshold(TRIM_THRESHOLD),
            ]
        );
        assert_eq!(
            settings(env(&[("MALLOC_TRIM_THRESHOLD_", "1000000")])),
            vec![Setting::ArenaMax(ARENAS)]
        );
        assert_eq!(
            settings(env(&[(
                "GLIBC_TUNABLES",
                "glibc.malloc.mmap_threshold=1048576:glibc.malloc.arena_max=2"
            )])),
            vec![]
        );
        // A tunable for something else leaves the daemon's settings in place.
        assert_eq!(
            settings(env(&[("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0")])).len(),
            3
        );
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_every_setting() {
        for setting in settings(env(&[])) {
            assert!(apply(setting), "{setting:?} refused");
        }
    }
}
