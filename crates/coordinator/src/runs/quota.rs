//! Quota reset times from the provider's own words.
