//! Segment bytes: decryption, container sanity checks and published hashes. Pure functions, no I/O.

pub mod buf;
pub mod decrypt;
pub mod hashes;
pub mod sniff;
pub mod verify;

pub use buf::SegmentBuf;
