//! How poolrun touches a run root that other users may be able to write to (`--run-dir /tmp/x`,
//! a shared project folder), the way ssh treats `~/.ssh`: it follows no symlink it did not make,
//! creates every file new (`O_EXCL`) under a name nobody can guess in advance, makes its folders
//! 0755 whatever the umask, and refuses a folder that someone else owns or may write to.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::hash::{BuildHasher, RandomState};
use std::io::{self, ErrorKind};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

use crate::report::{FILE_MODE, ReportError};

/// The mode of every folder poolrun makes.
pub const DIR_MODE: u32 = 0o755;

/// The user poolrun runs as.
fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Creates `path` and any missing parents, each 0755 whatever the umask; folders that exist are
/// left as they are (and checked by `check_folder` where it matters).
pub fn create_dirs(path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = path;
    while fs::symlink_metadata(at).is_err() {
        missing.push(at);
        match at.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => at = parent,
            _ => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match create_dir(dir) {
            // Made by a concurrent run a moment ago: it is checked like any existing folder.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => {}
            result => result?,
        }
    }
    Ok(())
}

/// Creates one folder, 0755 whatever the umask; fails if anything is at `path` already.
pub fn create_dir(path: &Path) -> io::Result<()> {
    DirBuilder::new().mode(DIR_MODE).create(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(DIR_MODE))
}

/// Refuses a folder that poolrun may not trust with a run: one reached through a symlink that
/// someone else made, one owned by another user (root's own folders aside), or one that others
/// may write to without the sticky bit (which keeps them from replacing what poolrun made).
pub fn check_folder(path: &Path) -> Result<(), ReportError> {
    let unsafe_folder = |reason: String| ReportError::Unsafe {
        path: path.to_owned(),
        reason,
    };
    let link = fs::symlink_metadata(path).map_err(ReportError::io("inspect", path))?;
    if link.file_type().is_symlink() && !trusted_owner(link.uid()) {
        return Err(unsafe_folder(format!(
            "it is a symlink made by another user (uid {})",
            link.uid()
        )));
    }
    let meta = fs::metadata(path).map_err(ReportError::io("inspect", path))?;
    if !meta.is_dir() {
        return Err(unsafe_folder("it is not a folder".to_owned()));
    }
    if !trusted_owner(meta.uid()) {
        return Err(unsafe_folder(format!(
            "it belongs to another user (uid {}, and poolrun runs as uid {})",
            meta.uid(),
            me()
        )));
    }
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.mode() & 0o022 != 0 && !sticky {
        return Err(unsafe_folder(format!(
            "other users may write to it (mode {:o}); `chmod go-w` it",
            meta.mode() & 0o7777
        )));
    }
    Ok(())
}

/// Whether a file or folder owned by `uid` is trusted: poolrun's user's, or root's.
fn trusted_owner(uid: u32) -> bool {
    uid == me() || uid == 0
}

/// Refuses a file poolrun opened that is not a regular file of its own user.
pub fn check_own_file(file: &File, path: &Path) -> Result<(), ReportError> {
    let meta = file.metadata().map_err(ReportError::io("inspect", path))?;
    let reason = if !meta.is_file() {
        "it is not a regular file".to_owned()
    } else if meta.uid() != me() {
        format!("it belongs to another user (uid {})", meta.uid())
    } else {
        return Ok(());
    };
    Err(ReportError::Unsafe {
        path: path.to_owned(),
        reason,
    })
}

/// Options that never follow a symlink at the last component.
fn no_follow() -> OpenOptions {
    let mut options = OpenOptions::new();
    options
        .mode(FILE_MODE)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC).bits());
    options
}

/// Creates a new file at `path` (`O_EXCL`: never an existing file, never through a symlink).
pub fn create_new(path: &Path) -> io::Result<File> {
    no_follow().write(true).create_new(true).open(path)
}

/// `create_new`, open for reading too (a scratch file poolrun reads back).
pub fn create_new_rw(path: &Path) -> io::Result<File> {
    no_follow()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
}

/// Writes `bytes` to a new file at `path`.
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    create_new(path)?.write_all(bytes)
}

/// Opens an existing file of poolrun's for appending, or creates it, never through a symlink.
pub fn open_append(path: &Path) -> io::Result<File> {
    no_follow().append(true).create(true).open(path)
}

/// Creates a new file at `path` (as `create_new`) opened for appending.
pub fn create_new_append(path: &Path) -> io::Result<File> {
    no_follow().append(true).create_new(true).open(path)
}

/// Opens (creating it if missing) a file that lives on between runs, such as a lock, never
/// through a symlink and without truncating it.
pub fn open_shared(path: &Path) -> io::Result<File> {
    no_follow()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// A name beside `path` that nobody can guess: `<dir>/.<name>.<random>.<suffix>`.
pub fn temp_beside(path: &Path, suffix: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // RandomState is seeded from the OS's randomness; two of them give 128 unpredictable bits.
    let random = (
        RandomState::new().hash_one(std::process::id()),
        RandomState::new().hash_one(&name),
    );
    path.with_file_name(format!(
        ".{name}.{:016x}{:016x}.{suffix}",
        random.0, random.1
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_0755_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let created = create_dirs(&tmp.path().join("a/b/c"));
        nix::sys::stat::umask(old);
        created.unwrap();
        for dir in ["a", "a/b", "a/b/c"] {
            let mode = fs::metadata(tmp.path().join(dir)).unwrap().mode() & 0o7777;
            assert_eq!(mode, 0o755, "{dir}");
        }
    }

    #[test]
    fn no_file_is_created_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        fs::write(&target, "precious").unwrap();
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(create_new(&link).is_err());
        assert!(open_append(&link).is_err());
        assert!(open_shared(&link).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn a_folder_others_may_write_to_is_refused_unless_sticky() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("open");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            check_folder(&dir),
            Err(ReportError::Unsafe { .. })
        ));
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
        check_folder(&dir).unwrap();
        assert_ne!(temp_beside(&dir, "x"), temp_beside(&dir, "x"));
    }
}
