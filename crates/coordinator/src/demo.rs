//! Demo mode: the embedded simulator plus fake agents (being written).
