//! Run records: what each agent run did, whether it worked and what it cost (issue 16).
//!
//! `parse` turns a provider's JSON event stream into [`events::RunEvent`]s, `record` folds them into a
//! [`record::RunRecord`], `store` keeps the history in SQLite, `quota` reads reset times from the provider's
//! own words.
pub mod events;
pub mod parse;
pub mod quota;
pub mod record;
pub mod store;
