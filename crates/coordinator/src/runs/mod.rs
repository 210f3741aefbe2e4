//! Run records: what each agent run did, whether it worked and what it cost (issue 16).
//!
//! `parse` turns a provider's JSON event stream into [`events::RunEvent`]s; `record` folds them into a
//! [`record::RunSummary`] and defines the [`record::RunRecord`]; `store` keeps the history in SQLite
//! (`schema` its migrations); `quota` reads reset times; `prices` estimates costs; `report` prints them; `transcript` shows a run's log as messages and tool calls.
pub mod events;
pub mod parse;
pub mod prices;
pub mod quota;
pub mod record;
pub mod report;
pub mod schema;
pub mod store;
pub mod transcript;

pub use record::{Outcome, RunProgress, RunRecord, RunSummary, StoppedBy, Summarizer};
pub use store::{RunEnd, RunFilter, RunReader, RunStart, RunStore, StoreError, UsageBy, UsageRow};
