//! The supervisor loop.
