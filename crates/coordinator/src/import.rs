//! `import-yaml`: move passkeys from the Python YAML into the secret store, write settings.json. OWNER: secrets helper.
