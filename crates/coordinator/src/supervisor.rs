//! The supervisor loop (being written).
use crate::api::{Event, Snapshot};
use crate::engine::{Command, EngineConfig};
use tokio::sync::{broadcast, mpsc, watch};

pub(crate) fn spawn(cfg: EngineConfig, cmd: mpsc::Receiver<Command>, snap: watch::Sender<Snapshot>, ev: broadcast::Sender<Event>) {
    let _ = (cfg, cmd, snap, ev);
}
