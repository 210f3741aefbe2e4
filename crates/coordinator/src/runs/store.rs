//! Run history in SQLite.
