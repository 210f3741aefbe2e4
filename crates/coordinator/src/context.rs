//! Agent context directory (CLAUDE.md / GEMINI.md from the profile's system prompt, skills from zip archives).
//! OWNER: process helper (issue 8).
