//! AgentPM Coordinator engine: polls an AI Agent PM server and supervises AI coding CLIs.
//!
//! No GUI dependency: the Tauri app and the headless CLI both embed [`engine::Engine`].

pub mod agent_cli;
pub mod api;
pub mod attention;
pub mod backoff;
pub mod clock;
pub mod config;
pub mod context;
pub mod demo;
pub mod doctor;
pub mod engine;
pub mod exit;
pub mod import;
pub mod io_words;
pub mod launch;
pub mod legacy_yaml;
pub mod lock;
pub mod logs;
pub mod mcp_bridge;
pub mod paths;
pub mod pm;
pub mod redact;
pub mod runs;
pub mod safe_fs;
pub mod secrets;
pub mod shell_path;
pub mod state;
pub mod supervisor;
