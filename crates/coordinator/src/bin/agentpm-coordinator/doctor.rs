//! `doctor`: each check OK or FAIL with its fix.

use super::*;

pub(crate) async fn doctor(config: Option<PathBuf>) -> Result<ExitCode> {
    let (settings, path, store) = load_config(config)?;
    println!("settings: {}", path.display());
    let checks = coordinator::doctor::run(&settings, store.as_ref()).await;
    let mut ok = true;
    for c in &checks {
        ok &= c.ok;
        println!("{} {:<28} {}", if c.ok { "OK  " } else { "FAIL" }, c.name, c.detail);
        if let (false, Some(h)) = (c.ok, &c.hint) {
            println!("     {:<28} fix: {h}", "");
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
