//! What to run and running it: `plan` decides argv/env/files without I/O, `process` spawns and stops the
//! process group, `output` copies the child's output into its redacted log. OWNER: process helper.

mod output;
mod plan;
mod process;
#[cfg(test)]
mod tests;

pub use output::{LiveProgress, Recorder, MAX_LINE, PUBLISH_EVERY};
pub use plan::*;
pub use process::*;
