//! I/O errors in words a user can act on: "permission denied", not "Permission denied (os error 13)".
//! The window, the tray and notifications show these; the error number helps nobody there.

use std::io::{Error, ErrorKind};

pub fn io_words(e: &Error) -> String {
    let words = match e.kind() {
        ErrorKind::NotFound => "it does not exist",
        ErrorKind::PermissionDenied => "permission denied (check the file's owner and mode)",
        ErrorKind::AlreadyExists => "something is already there",
        ErrorKind::StorageFull => "the disk is full",
        ErrorKind::ReadOnlyFilesystem => "the disk is read-only",
        ErrorKind::IsADirectory => "it is a folder, not a file",
        ErrorKind::NotADirectory => "a part of the path is a file, not a folder",
        ErrorKind::ExecutableFileBusy => "the program is being written right now; try again",
        _ => match e.raw_os_error() {
            Some(libc_enoexec) if libc_enoexec == nix::errno::Errno::ENOEXEC as i32 => {
                "it is not a program this system can run"
            }
            Some(eloop) if eloop == nix::errno::Errno::ELOOP as i32 => {
                "a symbolic link is in the way (links are not followed there)"
            }
            Some(emfile) if emfile == nix::errno::Errno::EMFILE as i32 => "too many open files",
            _ => return strip_os_error(&e.to_string()),
        },
    };
    words.to_string()
}

/// "Something failed (os error 5)" → "something failed".
fn strip_os_error(s: &str) -> String {
    let s = match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => &s[..i],
        _ => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_words_without_numbers() {
        assert_eq!(
            io_words(&Error::from_raw_os_error(13)),
            "permission denied (check the file's owner and mode)"
        );
        assert_eq!(io_words(&Error::from_raw_os_error(2)), "it does not exist");
        assert_eq!(
            io_words(&Error::from_raw_os_error(8)),
            "it is not a program this system can run"
        );
        let w = io_words(&Error::from_raw_os_error(5));
        assert!(!w.contains("os error") && w.starts_with(char::is_lowercase), "{w}");
        assert_eq!(io_words(&Error::other("custom words")), "custom words");
    }
}
