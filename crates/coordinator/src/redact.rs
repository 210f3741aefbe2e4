//! Masking of known secrets in every log line, error and status text. OWNER: secrets helper.

use std::sync::{Arc, RwLock};

/// A shared, growing set of secrets to mask. Cheap to clone.
#[derive(Clone, Default)]
pub struct Redactor(Arc<RwLock<Vec<String>>>);

impl Redactor {
    pub fn add(&self, secret: &str) {
        if secret.len() < 4 {
            return;
        }
        let mut v = self.0.write().unwrap();
        if !v.iter().any(|s| s == secret) {
            v.push(secret.to_string());
            v.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }
    pub fn redact(&self, text: &str) -> String {
        let v = self.0.read().unwrap();
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "********");
            }
        }
        out
    }
}

/// The process-wide redactor used by the tracing writer.
pub fn global() -> &'static Redactor {
    static G: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
    G.get_or_init(Redactor::default)
}
