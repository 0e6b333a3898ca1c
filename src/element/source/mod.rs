//! `P2pMediaSrc`: the abstract base class of `p2phlssrc` and `p2pdashsrc` (as `hlsbasesink`
//! is for the hlssink3 family): properties, signals, pads, seeking, queries and stats.

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

pub mod imp;

pub use imp::Kind;

glib::wrapper! {
    pub struct P2pMediaSrc(ObjectSubclass<imp::P2pMediaSrc>) @extends gst::Element, gst::Object;
}

/// Subclasses call [`imp::P2pMediaSrc::set_kind`] from `constructed()` and implement
/// `URIHandler` by delegating to the base.
pub trait P2pMediaSrcImpl: ElementImpl + ObjectSubclass<Type: IsA<P2pMediaSrc>> {
    /// This instance as the base class (call `.imp()` on it for the shared machinery).
    fn base(&self) -> P2pMediaSrc {
        self.obj().clone().upcast()
    }
}

unsafe impl<T: P2pMediaSrcImpl> IsSubclassable<T> for P2pMediaSrc {}
