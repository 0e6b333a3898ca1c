//! The shared PRNG (see `crate::rng`), named for the scheduler and simulator.

pub use crate::rng::SplitMix64 as Rng;
