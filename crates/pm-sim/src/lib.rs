//! PM server simulator.
