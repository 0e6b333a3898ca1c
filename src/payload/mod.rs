//! Segment bytes: decryption and container sanity checks. Pure functions, no I/O.

pub mod buf;
pub mod decrypt;
pub mod sniff;
pub mod verify;

pub use buf::SegmentBuf;
