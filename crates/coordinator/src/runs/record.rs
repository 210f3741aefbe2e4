//! The run record.
