//! The engine handle used by the CLI and the app.
