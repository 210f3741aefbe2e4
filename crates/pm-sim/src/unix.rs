//! JSON lines over a Unix socket: many requests per connection, no reply to notifications or to lines
//! that are not JSON-RPC (like the real server), optional faults.

use crate::model::Model;
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

pub async fn serve(path: &Path, model: Arc<Mutex<Model>>, stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path); // stale socket from an earlier run
    let listener = UnixListener::bind(path)?;
    let mut stop_accept = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop_accept.changed() => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => { tokio::spawn(connection(stream, model.clone(), stop.clone())); }
                    Err(_) => break,
                },
            }
        }
    });
    Ok(())
}

async fn connection(stream: UnixStream, model: Arc<Mutex<Model>>, mut stop: watch::Receiver<bool>) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    loop {
        let line = tokio::select! {
            _ = stop.changed() => return,
            l = lines.next_line() => match l { Ok(Some(l)) => l, _ => return },
        };
        if line.trim().is_empty() {
            continue;
        }
        let Ok(req) = serde_json::from_str::<Value>(&line) else {
            continue; // the real server logs and sends nothing
        };
        let (reply, faults) = {
            let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
            (m.handle(&req, "unix"), m.faults.clone())
        };
        let Some(reply) = reply else { continue };
        if faults.delay_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(faults.delay_ms)).await;
        }
        if faults.drop_replies {
            continue;
        }
        let mut bytes = if faults.garbage_replies {
            b"}{ not json at all".to_vec()
        } else {
            serde_json::to_vec(&reply).unwrap_or_default()
        };
        if faults.close_mid_reply {
            bytes.truncate(bytes.len() / 2);
            let _ = w.write_all(&bytes).await;
            return;
        }
        bytes.push(b'\n');
        if w.write_all(&bytes).await.is_err() {
            return;
        }
    }
}
