//! Run records: what each agent run did, whether it worked and what it cost (issue 16).
//!
//! `parse` turns a provider's JSON event stream into [`events::RunEvent`]s. Still to come (issue 16):
//! the run record, the SQLite run store and quota reset times from the stream.
pub mod events;
pub mod parse;
