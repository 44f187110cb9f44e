//! Serving side of Bitswap (placeholder, filled in by the next commit).
