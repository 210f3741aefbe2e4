//! Coordinator REST endpoints: log upload (multipart) and dynamic config. OWNER: pm helper.
