//! Prefetch planning for file reads: which children of a file node to ask a
//! [`BlockSource`](super::BlockSource) for together ([`prefetch_runs`]), in windows of at most
//! [`PREFETCH_WINDOW`] bytes. Pure arithmetic over the children's file positions; the reader in
//! [`file`](super::file) hints the runs as it reaches them.

use std::ops::Range;

/// Most file bytes one [`BlockSource::prefetch`](super::BlockSource::prefetch) of a file read
/// asks for: enough blocks to keep many in flight, few enough that bytes start flowing soon
/// and that a range never pulls much beyond what it covers.
pub const PREFETCH_WINDOW: u64 = 16 << 20;

/// Which children of a file node to prefetch together, given each child's `(start, size)` in
/// file positions: runs of consecutive children that lie wholly inside `[from, to)`, each
/// run at most `window` bytes. A child larger than `window` is in no run (its own children
/// are planned when it is read), nor is one the range only partly covers (only the blocks on
/// the range's edge are read from it).
pub fn prefetch_runs(
    children: &[(u64, u64)],
    from: u64,
    to: u64,
    window: u64,
) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    // The open run: its first child and its bytes so far.
    let mut open: Option<(usize, u64)> = None;
    for (i, &(start, size)) in children.iter().enumerate() {
        let inside = start >= from && start.saturating_add(size) <= to && size <= window;
        match open {
            Some((first, bytes)) if inside && bytes.saturating_add(size) <= window => {
                open = Some((first, bytes.saturating_add(size)));
            }
            _ => {
                if let Some((first, _)) = open.take() {
                    runs.push(first..i);
                }
                if inside {
                    open = Some((i, size));
                }
            }
        }
    }
    if let Some((first, _)) = open {
        runs.push(first..children.len());
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_runs_take_whole_children_inside_the_range_up_to_the_window() {
        // Ten children of 10 bytes: [0,10), [10,20), ...
        let tens: Vec<(u64, u64)> = (0..10).map(|i| (i * 10, 10)).collect();
        // Runs as (first, past the last) child indices.
        let check = |children: &[(u64, u64)], from, to, window, expected: &[(usize, usize)]| {
            let runs: Vec<(usize, usize)> = prefetch_runs(children, from, to, window)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect();
            assert_eq!(runs, expected, "[{from}, {to}) window {window}");
        };
        // The whole file: runs of at most the window.
        check(&tens, 0, u64::MAX, 30, &[(0, 3), (3, 6), (6, 9), (9, 10)]);
        check(&tens, 0, 100, 1000, &[(0, 10)]);
        // A few bytes in the middle: no child lies wholly inside, nothing prefetched.
        check(&tens, 45, 47, 1000, &[]);
        // Partly covered children at the edges stay out of the run.
        check(&tens, 15, 65, 1000, &[(2, 6)]);
        // Exact boundaries are inside.
        check(&tens, 20, 40, 1000, &[(2, 4)]);
        // A child bigger than the window is in no run and splits the runs around it.
        let mixed = [(0, 10), (10, 10), (20, 500), (520, 10)];
        check(&mixed, 0, u64::MAX, 100, &[(0, 2), (3, 4)]);
        // Empty children inside the range ride along; no children, no runs.
        check(&[(0, 0), (0, 5)], 0, 5, 10, &[(0, 2)]);
        check(&[], 0, u64::MAX, 10, &[]);
    }
}
