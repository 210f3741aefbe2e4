//! `tools/list`: the tools the simulator implements, with the real server's `inputSchema`s (property names,
//! types, `required`, enums as in upstream `Sources/MCPServer/Tools/ToolDefinitions.swift`) and our own prose.
//! `data/make_tools.py` regenerates `data/tools.json` from the upstream file.

use serde_json::Value;
use std::sync::OnceLock;

static CATALOG: OnceLock<Vec<Value>> = OnceLock::new();

pub fn catalog() -> &'static [Value] {
    CATALOG.get_or_init(|| {
        serde_json::from_str(include_str!("../data/tools.json")).expect("data/tools.json is valid JSON")
    })
}

pub fn names() -> Vec<&'static str> {
    catalog().iter().filter_map(|t| t["name"].as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_has_a_described_object_schema() {
        assert!(catalog().len() >= 20);
        for t in catalog() {
            let name = t["name"].as_str().unwrap();
            assert!(t["description"].as_str().is_some_and(|d| d.len() > 10), "{name}");
            assert_eq!(t["inputSchema"]["type"], "object", "{name}");
            for (p, v) in t["inputSchema"]["properties"].as_object().unwrap() {
                assert!(v["type"].is_string() && v["description"].is_string(), "{name}.{p}");
            }
        }
        let ga = catalog().iter().find(|t| t["name"] == "get_agent_action").unwrap();
        assert_eq!(
            ga["inputSchema"]["required"],
            serde_json::json!(["agent_id", "project_id"])
        );
        let rc = catalog().iter().find(|t| t["name"] == "report_completed").unwrap();
        assert_eq!(
            rc["inputSchema"]["properties"]["result"]["enum"],
            serde_json::json!(["success", "failed", "blocked"])
        );
    }
}
