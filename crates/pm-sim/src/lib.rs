//! PM server simulator (placeholder until the simulator lands).
#[derive(Clone)]
pub struct Simulator;
