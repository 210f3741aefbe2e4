//! Writing inside a folder we do not control (a project's `.aiagent/`) without following symlinks.
//!
//! A cloned repository can carry `.aiagent/agents/<id>/.claude -> ~/victim`: every path below the project
//! folder is walked one component at a time from a directory fd opened with `O_NOFOLLOW`, files are created
//! with `O_EXCL|O_NOFOLLOW` and renamed into place, and removal never descends through a link. A symlink
//! anywhere on the way is refused with an error naming it.

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use std::io::Write;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SafeFsError {
    #[error("{path} is a symbolic link; refusing to follow it (remove it, it is not ours)")]
    Symlink { path: String },
    #[error("{path} exists and is not a {expected}; remove it")]
    WrongType { path: String, expected: &'static str },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

/// A directory held open by fd; every operation is relative to it. `path` is only for messages.
pub struct SafeDir {
    fd: OwnedFd,
    path: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> SafeFsError {
    SafeFsError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// One plain file-name component (no `/`, not `.`/`..`, not empty).
fn check_name(parent: &Path, name: &str) -> Result<(), SafeFsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(io_err(&parent.join(name), "not a plain file name"));
    }
    Ok(())
}

impl SafeDir {
    /// Open a folder the user or the server named (symlinks in *its* path are the user's choice).
    pub fn open(path: &Path) -> Result<SafeDir, SafeFsError> {
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io_err(path, e))?;
        Ok(SafeDir {
            fd,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open the child directory `name`, creating it (mode 0755) when missing; a symlink there is refused.
    pub fn subdir(&self, name: &str) -> Result<SafeDir, SafeFsError> {
        check_name(&self.path, name)?;
        let path = self.path.join(name);
        match rustix::fs::mkdirat(&self.fd, name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(io_err(&path, e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => Ok(SafeDir { fd, path }),
            Err(rustix::io::Errno::LOOP) => Err(SafeFsError::Symlink {
                path: path.display().to_string(),
            }),
            Err(rustix::io::Errno::NOTDIR) => Err(self.classify(name, "directory")),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Walk (and create) a relative path of plain components.
    pub fn subdirs(&self, rel: &Path) -> Result<SafeDir, SafeFsError> {
        let mut names = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned());
        let first = names.next().ok_or_else(|| io_err(&self.path, "empty relative path"))?;
        let mut dir = self.subdir(&first)?;
        for n in names {
            dir = dir.subdir(&n)?;
        }
        Ok(dir)
    }

    /// Why opening `name` failed: a symlink, or some other kind of file.
    fn classify(&self, name: &str, expected: &'static str) -> SafeFsError {
        let path = self.path.join(name);
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink => {
                SafeFsError::Symlink {
                    path: path.display().to_string(),
                }
            }
            _ => SafeFsError::WrongType {
                path: path.display().to_string(),
                expected,
            },
        }
    }

    /// Read `name` if it is a regular file (`None` when absent); a symlink is refused.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, SafeFsError> {
        check_name(&self.path, name)?;
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let fd = match rustix::fs::openat(&self.fd, name, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Ok(None),
            Err(rustix::io::Errno::LOOP) => {
                return Err(SafeFsError::Symlink {
                    path: self.path.join(name).display().to_string(),
                })
            }
            Err(e) => return Err(io_err(&self.path.join(name), e)),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| io_err(&self.path.join(name), e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(SafeFsError::WrongType {
                path: self.path.join(name).display().to_string(),
                expected: "regular file",
            });
        }
        let mut f = std::fs::File::from(fd);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut f, &mut out).map_err(|e| io_err(&self.path.join(name), e))?;
        Ok(Some(out))
    }

    /// Replace `name` atomically: a fresh temp file (`O_EXCL|O_NOFOLLOW`), fsync, rename over the old entry.
    /// A symlink at `name` is replaced by the file, never written through.
    pub fn write(&self, name: &str, bytes: &[u8], mode: u32) -> Result<(), SafeFsError> {
        check_name(&self.path, name)?;
        let path = self.path.join(name);
        if let Ok(st) = rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory {
                return Err(SafeFsError::WrongType {
                    path: path.display().to_string(),
                    expected: "regular file",
                });
            }
        }
        let (tmp, fd) = create_temp(&self.fd, &self.path, name, mode)?;
        let mut f = std::fs::File::from(fd);
        let written = f.write_all(bytes).and_then(|_| f.sync_all());
        drop(f);
        if let Err(e) = written
            .map_err(|e| io_err(&path, e))
            .and_then(|_| rustix::fs::renameat(&self.fd, &tmp, &self.fd, name).map_err(|e| io_err(&path, e)))
        {
            let _ = rustix::fs::unlinkat(&self.fd, &tmp, AtFlags::empty());
            return Err(e);
        }
        Ok(())
    }

    /// Remove `name` and, for a directory, everything below it; links are removed, never followed.
    pub fn remove_all(&self, name: &str) -> Result<(), SafeFsError> {
        check_name(&self.path, name)?;
        let path = self.path.join(name);
        let st = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_err(&path, e)),
        };
        if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Directory {
            return rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(|e| io_err(&path, e));
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty()).map_err(|e| io_err(&path, e))?;
        let child = SafeDir { fd, path: path.clone() };
        for entry in rustix::fs::Dir::read_from(&child.fd).map_err(|e| io_err(&path, e))? {
            let entry = entry.map_err(|e| io_err(&path, e))?;
            let n = entry.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                child.remove_all(&n)?;
            }
        }
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR).map_err(|e| io_err(&path, e))
    }
}

/// `.<name>.tmp-<pid>-<n>`, created exclusively; a name someone planted is skipped, never opened.
fn create_temp(dir: &OwnedFd, dir_path: &Path, name: &str, mode: u32) -> Result<(String, OwnedFd), SafeFsError> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut last = None;
    for _ in 0..16 {
        let tmp = format!(".{name}.tmp-{}-{:08x}", std::process::id(), rand::random::<u32>());
        match rustix::fs::openat(dir, tmp.as_str(), flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => return Ok((tmp, fd)),
            Err(e @ rustix::io::Errno::EXIST) => last = Some(e),
            Err(e) => return Err(io_err(&dir_path.join(&tmp), e)),
        }
    }
    Err(io_err(
        &dir_path.join(name),
        format!(
            "no free temporary name: {}",
            last.map(|e| e.to_string()).unwrap_or_default()
        ),
    ))
}

/// `write_atomic` for our own folders: parents created, the temp file exclusive and never a followed link.
pub fn write_atomic_path(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| std::io::Error::other(format!("{}: not a file name", path.display())))?;
    let dfd = rustix::fs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let d = SafeDir {
        fd: dfd,
        path: dir.to_path_buf(),
    };
    d.write(name, bytes, mode)
        .map_err(|e| std::io::Error::other(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinked_directories_and_files_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir_all(victim.join("skills/keep")).unwrap();
        std::fs::write(victim.join("CLAUDE.md"), "victim's").unwrap();
        std::fs::write(t.path().join("victim.txt"), "victim file").unwrap();
        let proj = t.path().join("proj");
        std::fs::create_dir_all(&proj).unwrap();
        symlink(&victim, proj.join("link")).unwrap();
        symlink(t.path().join("victim.txt"), proj.join("file")).unwrap();
        let root = SafeDir::open(&proj).unwrap();
        assert!(matches!(root.subdir("link"), Err(SafeFsError::Symlink { .. })));
        assert!(matches!(root.read("file"), Err(SafeFsError::Symlink { .. })));
        // Removing the link removes the link, not the victim's tree.
        root.remove_all("link").unwrap();
        assert!(victim.join("skills/keep").is_dir());
        // Writing over a link replaces the link; the target is untouched.
        root.write("file", b"ours", 0o644).unwrap();
        assert_eq!(
            std::fs::read_to_string(t.path().join("victim.txt")).unwrap(),
            "victim file"
        );
        assert_eq!(std::fs::read_to_string(proj.join("file")).unwrap(), "ours");
        assert!(!std::fs::symlink_metadata(proj.join("file"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn remove_all_does_not_descend_through_links_inside() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("x"), "x").unwrap();
        let proj = t.path().join("proj");
        std::fs::create_dir_all(proj.join("skills/a")).unwrap();
        symlink(&victim, proj.join("skills/a/inner")).unwrap();
        let root = SafeDir::open(&proj).unwrap();
        root.remove_all("skills").unwrap();
        assert!(!proj.join("skills").exists());
        assert!(victim.join("x").exists());
    }

    #[test]
    fn atomic_write_skips_a_planted_temp_name_and_sets_mode() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("a/b.json");
        write_atomic_path(&p, b"{}", 0o600).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        let leftovers: Vec<_> = std::fs::read_dir(t.path().join("a"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
