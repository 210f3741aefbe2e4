//! Token prices for providers whose CLI does not report a cost (Gemini, Codex): tokens × price is an
//! estimate, and every record made from it says so. The user can edit the table: `prices.json` next to
//! runs.db replaces or adds entries, e.g. `{"gpt-5": {"input": 1.25, "output": 10, "cache_read": 0.125}}`
//! (USD per million tokens; an omitted field is 0).
use super::events::TokenUsage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl Price {
    pub fn cost(&self, u: &TokenUsage) -> f64 {
        (u.input as f64 * self.input
            + u.output as f64 * self.output
            + u.cache_read as f64 * self.cache_read
            + u.cache_write as f64 * self.cache_write)
            / 1e6
    }
}

/// Model-name prefixes → price; the longest matching prefix wins. A provider kind ("gemini", "codex")
/// as the key is the fallback for runs whose model is unknown (the CLI's default model).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    entries: Vec<(String, Price)>,
}

const fn p(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// List prices (standard tier, ≤ 200k-token prompts) as published by the providers in late 2025.
const DEFAULTS: &[(&str, Price)] = &[
    ("claude-opus-4-5", p(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4", p(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-7-sonnet", p(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", p(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", p(0.8, 4.0, 0.08, 1.0)),
    ("claude", p(3.0, 15.0, 0.3, 3.75)),
    ("gemini-3-pro", p(2.0, 12.0, 0.2, 0.0)),
    ("gemini-2.5-pro", p(1.25, 10.0, 0.125, 0.0)),
    ("gemini-2.5-flash-lite", p(0.1, 0.4, 0.01, 0.0)),
    ("gemini-2.5-flash", p(0.3, 2.5, 0.03, 0.0)),
    ("gemini", p(1.25, 10.0, 0.125, 0.0)),
    ("gpt-5-mini", p(0.25, 2.0, 0.025, 0.0)),
    ("gpt-5-nano", p(0.05, 0.4, 0.005, 0.0)),
    ("gpt-5", p(1.25, 10.0, 0.125, 0.0)),
    ("o4-mini", p(1.1, 4.4, 0.275, 0.0)),
    ("codex", p(1.25, 10.0, 0.125, 0.0)),
];

impl Default for PriceTable {
    fn default() -> Self {
        PriceTable {
            entries: DEFAULTS.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
}

impl PriceTable {
    /// The defaults with the user's `path` applied on top; a missing file is the defaults.
    pub fn load(path: &Path) -> Result<PriceTable, String> {
        let mut t = PriceTable::default();
        let text = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(t),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        let user: std::collections::BTreeMap<String, Price> = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: expected {{\"<model prefix>\": {{\"input\": <USD per Mtok>, …}}}}: {e}",
                path.display()
            )
        })?;
        for (k, v) in user {
            t.set(&k, v);
        }
        Ok(t)
    }

    pub fn set(&mut self, prefix: &str, price: Price) {
        match self.entries.iter_mut().find(|(k, _)| k == prefix) {
            Some(e) => e.1 = price,
            None => self.entries.push((prefix.to_string(), price)),
        }
    }

    /// Price for `model` (longest prefix), else the provider kind's default.
    pub fn lookup(&self, provider_kind: &str, model: Option<&str>) -> Option<Price> {
        let by_prefix = |name: &str| {
            self.entries
                .iter()
                .filter(|(k, _)| name.starts_with(k.as_str()))
                .max_by_key(|(k, _)| k.len())
                .map(|(_, v)| *v)
        };
        model
            .and_then(by_prefix)
            .or_else(|| self.entries.iter().find(|(k, _)| k == provider_kind).map(|(_, v)| *v))
    }

    pub fn estimate(&self, provider_kind: &str, model: Option<&str>, usage: &TokenUsage) -> Option<f64> {
        self.lookup(provider_kind, model).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_then_provider_fallback() {
        let t = PriceTable::default();
        assert_eq!(
            t.lookup("gemini", Some("gemini-2.5-flash-lite-001")).unwrap().input,
            0.1
        );
        assert_eq!(t.lookup("gemini", Some("gemini-2.5-flash")).unwrap().input, 0.3);
        assert_eq!(t.lookup("codex", None).unwrap().output, 10.0);
        assert_eq!(t.lookup("custom", Some("my-model")), None);
        let u = TokenUsage {
            input: 1_000_000,
            output: 100_000,
            cache_read: 2_000_000,
            cache_write: 0,
        };
        let c = t.estimate("codex", Some("gpt-5-codex"), &u).unwrap();
        assert!((c - (1.25 + 1.0 + 0.25)).abs() < 1e-9, "{c}");
    }

    #[test]
    fn user_file_overrides_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("prices.json");
        std::fs::write(&f, r#"{"gpt-5": {"input": 2, "output": 20}, "local-llm": {}}"#).unwrap();
        let t = PriceTable::load(&f).unwrap();
        assert_eq!(
            t.lookup("codex", Some("gpt-5")).unwrap(),
            Price {
                input: 2.0,
                output: 20.0,
                cache_read: 0.0,
                cache_write: 0.0
            }
        );
        assert_eq!(t.lookup("custom", Some("local-llm-7b")).unwrap(), Price::default());
        std::fs::write(&f, r#"{"gpt-5": {"input": "cheap"}}"#).unwrap();
        let e = PriceTable::load(&f).unwrap_err();
        assert!(e.contains("prices.json") && e.contains("input"), "{e}");
        assert_eq!(
            PriceTable::load(&dir.path().join("none.json")).unwrap(),
            PriceTable::default()
        );
    }
}
