//! The Python coordinator's YAML config, read as-is (protocol doc §5.6). OWNER: secrets helper.
