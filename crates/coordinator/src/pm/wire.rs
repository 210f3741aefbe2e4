//! What the server sends, as typed structs. Nothing is parsed into a `serde_json::Value` tree: the envelope keeps
//! its `result` raw until the tool's own type reads it, unknown fields are skipped without being built, and lists
//! are bounded while they are read. A reply within the transport's byte cap therefore costs about its own size in
//! memory, never a tree many times larger (a 16 MiB list of `{}` is 5 million objects as a `Value`).
//!
//! Parsing stays as lenient as the server is: a field of the wrong type counts as missing ([`Lenient`]), camelCase
//! spellings are read as fallbacks (kept as separate fields, so a reply carrying both never fails as a duplicate).

use super::PmError;
use serde::de::{DeserializeOwned, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;

/// More projects than any real server lists (the fault suite runs 30,000); past it the reply is refused.
pub const MAX_PROJECTS: usize = 100_000;
/// Skills per agent profile.
pub const MAX_SKILLS: usize = 1_000;
/// Agents per project.
pub const MAX_AGENTS_PER_PROJECT: usize = 10_000;

/// A JSON-RPC response. `id`, `result` and `error` stay raw: only the reply we wait for is read further.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub id: Option<Box<RawValue>>,
    #[serde(default)]
    pub result: Option<Box<RawValue>>,
    #[serde(default)]
    pub error: Option<Box<RawValue>>,
}

impl Envelope {
    pub fn parse(bytes: &[u8], tool: &str) -> Result<Envelope, PmError> {
        serde_json::from_slice(bytes).map_err(|e| PmError::Protocol {
            tool: tool.into(),
            message: format!("reply is not a JSON-RPC object: {e}"),
        })
    }

    /// Whether this is the reply to request `id` (compared as JSON text: we only ever send integers).
    pub fn answers(&self, id: u64) -> bool {
        self.id.as_ref().is_some_and(|r| r.get().trim() == id.to_string())
    }

    /// A reply without an id that carries an error (a server that could not read our request at all).
    pub fn is_anonymous_error(&self) -> bool {
        self.id.as_ref().is_none_or(|r| r.get().trim() == "null") && self.error().is_some()
    }

    fn error(&self) -> Option<&RawValue> {
        self.error.as_deref().filter(|e| e.get().trim() != "null")
    }

    /// Unwrap the envelope (protocol doc §1.2): the JSON-RPC error, the tool's `isError`, or the reply itself —
    /// `result.content[0].text` when there is one, else the result. Never panics on any input.
    pub fn into_reply(self, tool: &str) -> Result<Reply, PmError> {
        let redact = |s: &str| crate::redact::global().redact(s);
        if let Some(err) = self.error() {
            let e: RpcErrorWire = serde_json::from_str(err.get()).unwrap_or_default();
            return Err(PmError::Rpc {
                tool: tool.into(),
                code: e.code.0.unwrap_or(0),
                message: redact(e.message.0.as_deref().unwrap_or("unknown error")),
            });
        }
        let Some(result) = self.result else {
            return Err(PmError::Protocol {
                tool: tool.into(),
                message: "reply has neither result nor error".into(),
            });
        };
        let r: ToolResultWire = serde_json::from_str(result.get()).unwrap_or_default();
        let first = r.content.and_then(|c| c.0);
        let text = first
            .as_ref()
            .filter(|c| c.kind.as_deref().unwrap_or("text") == "text")
            .and_then(|c| c.text.clone());
        if r.is_error.0 == Some(true) {
            return Err(PmError::Tool {
                tool: tool.into(),
                message: redact(text.as_deref().unwrap_or("tool failed without a message")),
            });
        }
        Ok(match (first, text) {
            // No content list: the result is the reply (structured results).
            (None, _) => Reply::Json(result.get().to_string()),
            (Some(_), Some(t)) if serde_json::from_str::<serde::de::IgnoredAny>(&t).is_ok() => Reply::Json(t),
            (Some(_), Some(t)) => Reply::Text(t),
            (Some(_), None) => Reply::Text(String::new()),
        })
    }
}

/// A tool's answer: JSON text to read into the tool's type, or plain text (older servers answer some tools so).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Json(String),
    Text(String),
}

impl Reply {
    /// Read the reply as `T`. Plain text reads as an empty object (every field missing), as the Python client does.
    pub fn parse<T: DeserializeOwned>(&self, tool: &str) -> Result<T, PmError> {
        let json = match self {
            Reply::Json(j) => j.as_str(),
            Reply::Text(_) => "{}",
        };
        serde_json::from_str(json).map_err(|e| PmError::Protocol {
            tool: tool.into(),
            message: format!("unexpected reply: {e}"),
        })
    }

    /// `success: false` → a tool error naming the server's reason; a missing `success` counts as true.
    pub fn check_success(&self, tool: &str) -> Result<(), PmError> {
        let s: StatusWire = self.parse(tool).unwrap_or_default();
        if s.success.0 == Some(false) {
            let reason = s
                .error
                .0
                .or(s.message.0)
                .or(s.text.0)
                .unwrap_or_else(|| "success: false".into());
            return Err(PmError::Tool {
                tool: tool.into(),
                message: crate::redact::global().redact(&reason),
            });
        }
        Ok(())
    }
}

/// A field that reads as `None` when it has another type than expected, instead of failing the whole reply.
/// The value is first taken raw (a copy of its bytes, bounded by the reply cap), then read as `T`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Default for Lenient<T> {
    fn default() -> Self {
        Lenient(None)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        Ok(Lenient(serde_json::from_str(raw.get()).ok()))
    }
}

impl Lenient<String> {
    /// The string, if present and not empty.
    pub fn non_empty(self) -> Option<String> {
        self.0.filter(|s| !s.is_empty())
    }
}

/// The first string of several spellings.
pub fn first_of(options: impl IntoIterator<Item = Lenient<String>>) -> Option<String> {
    options.into_iter().find_map(|o| o.0)
}

/// A list read item by item, each item leniently (a bad item is dropped, not the list), at most `MAX` items.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundedList<T, const MAX: usize>(pub Vec<T>);

impl<T, const MAX: usize> Default for BoundedList<T, MAX> {
    fn default() -> Self {
        BoundedList(Vec::new())
    }
}

impl<'de, T: DeserializeOwned, const MAX: usize> Deserialize<'de> for BoundedList<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T, const MAX: usize>(std::marker::PhantomData<T>);
        impl<'de, T: DeserializeOwned, const MAX: usize> Visitor<'de> for V<T, MAX> {
            type Value = BoundedList<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "a list of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                let mut seen = 0usize;
                while let Some(item) = seq.next_element::<Lenient<T>>()? {
                    seen += 1;
                    if seen > MAX {
                        return Err(serde::de::Error::custom(format!("the list has more than {MAX} items")));
                    }
                    out.extend(item.0);
                }
                Ok(BoundedList(out))
            }
        }
        d.deserialize_seq(V::<T, MAX>(std::marker::PhantomData))
    }
}

#[derive(Debug, Default, Deserialize)]
struct RpcErrorWire {
    #[serde(default)]
    code: Lenient<i64>,
    #[serde(default)]
    message: Lenient<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ToolResultWire {
    #[serde(default)]
    content: Option<FirstContent>,
    #[serde(default, rename = "isError")]
    is_error: Lenient<bool>,
}

/// The first item of `content`, read in place (its text is the whole reply, up to the cap: it is not copied
/// first); the other items are skipped unread; anything that is not a list counts as no content.
#[derive(Debug, Default)]
struct FirstContent(Option<ContentWire>);

#[derive(Debug, Default, Deserialize)]
struct ContentWire {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    text: Option<String>,
}

impl<'de> Deserialize<'de> for FirstContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirstContent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a content list")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstContent, A::Error> {
                let first = seq.next_element::<ContentWire>()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstContent(first))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FirstContent, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(FirstContent(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<FirstContent, E> {
                Ok(FirstContent(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<FirstContent, E> {
                Ok(FirstContent(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<FirstContent, E> {
                Ok(FirstContent(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<FirstContent, E> {
                Ok(FirstContent(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<FirstContent, E> {
                Ok(FirstContent(None))
            }
            fn visit_unit<E>(self) -> Result<FirstContent, E> {
                Ok(FirstContent(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
struct StatusWire {
    #[serde(default)]
    success: Lenient<bool>,
    #[serde(default)]
    error: Lenient<String>,
    #[serde(default)]
    message: Lenient<String>,
    #[serde(default)]
    text: Lenient<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct HealthWire {
    #[serde(default)]
    pub status: Lenient<String>,
    #[serde(default)]
    pub agent_count: Lenient<u64>,
    #[serde(default)]
    pub project_count: Lenient<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProjectsWire {
    /// Missing or not a list → the reply is refused ("no `projects` list"); too long → refused.
    #[serde(default)]
    pub projects: Option<BoundedList<ProjectWire, MAX_PROJECTS>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProjectWire {
    #[serde(default)]
    pub project_id: Lenient<String>,
    #[serde(default, rename = "projectId")]
    pub project_id_camel: Lenient<String>,
    #[serde(default)]
    pub project_name: Lenient<String>,
    #[serde(default, rename = "projectName")]
    pub project_name_camel: Lenient<String>,
    #[serde(default)]
    pub name: Lenient<String>,
    #[serde(default)]
    pub working_directory: Lenient<String>,
    #[serde(default, rename = "workingDirectory")]
    pub working_directory_camel: Lenient<String>,
    #[serde(default)]
    pub agents: Lenient<BoundedList<String, MAX_AGENTS_PER_PROJECT>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ActionWire {
    #[serde(default)]
    pub action: Lenient<String>,
    #[serde(default)]
    pub reason: Lenient<String>,
    #[serde(default)]
    pub task_id: Lenient<String>,
    #[serde(default, rename = "taskId")]
    pub task_id_camel: Lenient<String>,
    #[serde(default)]
    pub provider: Lenient<String>,
    #[serde(default)]
    pub model: Lenient<String>,
    #[serde(default)]
    pub kick_command: Lenient<String>,
    #[serde(default, rename = "kickCommand")]
    pub kick_command_camel: Lenient<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct LogRegisteredWire {
    #[serde(default)]
    pub success: Lenient<bool>,
    #[serde(default)]
    pub execution_log_id: Lenient<String>,
    #[serde(default)]
    pub error: Lenient<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ProfileWire {
    #[serde(default)]
    pub error: Lenient<String>,
    #[serde(default)]
    pub id: Lenient<String>,
    #[serde(default)]
    pub name: Lenient<String>,
    #[serde(default)]
    pub system_prompt: Lenient<String>,
    #[serde(default, rename = "systemPrompt")]
    pub system_prompt_camel: Lenient<String>,
    #[serde(default)]
    pub skills: Lenient<BoundedList<SkillWire, MAX_SKILLS>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SkillWire {
    #[serde(default)]
    pub id: Lenient<String>,
    #[serde(default)]
    pub name: Lenient<String>,
    #[serde(default)]
    pub directory_name: Lenient<String>,
    #[serde(default, rename = "directoryName")]
    pub directory_name_camel: Lenient<String>,
    #[serde(default)]
    pub archive_base64: Lenient<String>,
    #[serde(default, rename = "archiveBase64")]
    pub archive_base64_camel: Lenient<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct AppSettingsWire {
    #[serde(default)]
    pub agent_base_prompt: Lenient<String>,
    #[serde(default, rename = "agentBasePrompt")]
    pub agent_base_prompt_camel: Lenient<String>,
}
