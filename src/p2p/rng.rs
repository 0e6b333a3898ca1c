//! The shared PRNG (see `crate::rng`).

pub use crate::rng::SplitMix64;
