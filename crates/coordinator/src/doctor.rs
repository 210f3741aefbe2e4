//! `doctor`: server reachable, provider CLIs found, passkeys present, dirs writable.
