//! Fetching side of Bitswap (placeholder, filled in by a later commit).
