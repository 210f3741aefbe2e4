//! Find programs the way the user's shell does.
//!
//! An app started from Finder or as a login item gets `PATH=/usr/bin:/bin:/usr/sbin:/sbin`, while `claude`,
//! `gemini` and `codex` live in `/opt/homebrew/bin`, `/usr/local/bin`, `~/.local/bin`, npm's or nvm's
//! folders — and their `#!/usr/bin/env node` needs `node` from there too. So the login shell's PATH is read
//! once (`$SHELL -l -c`, bounded by a timeout), joined with our own PATH and the well-known folders, and used
//! both to look commands up and as the PATH of every agent we start.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// A login shell that hangs (a prompt, a slow network mount) must not hold up the start.
const SHELL_TIMEOUT: Duration = Duration::from_secs(3);
const MARK: &str = "__AGENTPM_PATH__";

/// The PATH used for lookups and children (computed once per process).
pub fn effective_path() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let login = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .and_then(|sh| login_shell_path(Path::new(&sh), SHELL_TIMEOUT));
        let own = std::env::var("PATH").unwrap_or_default();
        let home = directories::BaseDirs::new().map(|b| b.home_dir().to_path_buf());
        combine(login.as_deref(), &own, &well_known_dirs(home.as_deref()))
    })
}

/// The PATH a login shell sets up, or None if the shell fails, hangs or prints nothing usable.
pub fn login_shell_path(shell: &Path, timeout: Duration) -> Option<String> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let script = format!("printf '{MARK}%s{MARK}' \"$PATH\"");
    let mut child = Command::new(shell)
        .args(["-l", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let text = match rx.recv_timeout(timeout) {
        Ok(t) => t,
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            tracing::warn!(
                "the login shell {} did not answer within {timeout:?}; using the usual folders for agent CLIs",
                shell.display()
            );
            return None;
        }
    };
    let _ = child.wait();
    // Profiles may print banners: take what is between the marks.
    let start = text.find(MARK)? + MARK.len();
    let end = start + text[start..].find(MARK)?;
    Some(text[start..end].to_string()).filter(|p| !p.trim().is_empty())
}

/// Where CLIs are usually installed, newest nvm Node first.
pub fn well_known_dirs(home: Option<&Path>) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["/opt/homebrew/bin", "/opt/homebrew/sbin", "/usr/local/bin"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = home {
        for d in [
            ".local/bin",
            ".npm-global/bin",
            ".npm/bin",
            ".bun/bin",
            ".volta/bin",
            ".cargo/bin",
            ".yarn/bin",
            "bin",
        ] {
            v.push(home.join(d));
        }
        let mut nvm: Vec<PathBuf> = std::fs::read_dir(home.join(".nvm/versions/node"))
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .collect();
        // "v22.1.0" > "v20.9.0": compare the version numbers, not the text.
        nvm.sort_by_key(|p| std::cmp::Reverse(version_key(p)));
        v.extend(nvm);
    }
    v.extend(["/usr/bin", "/bin", "/usr/sbin", "/sbin"].iter().map(PathBuf::from));
    v
}

fn version_key(bin: &Path) -> Vec<u64> {
    let name = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    name.trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Login shell's PATH first (what the user sees in a terminal), then ours, then the usual folders; each
/// folder once, relative entries dropped (a PATH entry like `.` would run programs from the project folder).
pub fn combine(login: Option<&str>, own: &str, extra: &[PathBuf]) -> String {
    let mut seen: Vec<PathBuf> = Vec::new();
    let candidates = login
        .into_iter()
        .flat_map(std::env::split_paths)
        .chain(std::env::split_paths(own))
        .chain(extra.iter().cloned());
    for d in candidates {
        if d.is_absolute() && !seen.contains(&d) {
            seen.push(d);
        }
    }
    std::env::join_paths(seen)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_shells_path_comes_first_and_nothing_twice_or_relative() {
        let p = combine(
            Some("/home/u/.nvm/versions/node/v22/bin:/usr/bin:."),
            "/usr/bin:/bin:relative",
            &[PathBuf::from("/opt/homebrew/bin"), PathBuf::from("/bin")],
        );
        assert_eq!(p, "/home/u/.nvm/versions/node/v22/bin:/usr/bin:/bin:/opt/homebrew/bin");
    }

    #[test]
    fn a_login_shell_profile_is_read_and_a_hanging_one_times_out() {
        let d = tempfile::tempdir().unwrap();
        let shell = d.path().join("sh");
        // A profile that prints a banner and adds a folder, like a user's .zprofile.
        std::fs::write(
            &shell,
            "#!/bin/sh\necho 'Welcome!'\nPATH=/home/u/tools/bin:$PATH\neval \"$3\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&shell, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let p = login_shell_path(&shell, Duration::from_secs(5)).unwrap();
        assert!(p.starts_with("/home/u/tools/bin:"), "{p}");
        let slow = d.path().join("slow");
        std::fs::write(&slow, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let t = std::time::Instant::now();
        assert_eq!(login_shell_path(&slow, Duration::from_millis(300)), None);
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn nvm_folders_newest_first() {
        let d = tempfile::tempdir().unwrap();
        for v in ["v9.11.2", "v20.9.0", "v22.1.0"] {
            std::fs::create_dir_all(d.path().join(".nvm/versions/node").join(v).join("bin")).unwrap();
        }
        let dirs = well_known_dirs(Some(d.path()));
        let nvm: Vec<String> = dirs
            .iter()
            .filter(|p| p.to_string_lossy().contains(".nvm"))
            .map(|p| p.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(nvm, vec!["v22.1.0", "v20.9.0", "v9.11.2"]);
    }
}
