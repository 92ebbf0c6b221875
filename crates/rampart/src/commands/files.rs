//! Files the commands write that carry what a container did (its
//! environment, paths, addresses): owner-only from the moment they exist,
//! and never through a name someone else could have planted.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of files holding recorded data: a recording stores the container's
/// environment, often secrets.
pub const PRIVATE_FILE: u32 = 0o600;
/// Mode of directories created for them.
pub const PRIVATE_DIR: u32 = 0o700;

/// Creates `dir` and any missing parents with mode 0700 (existing ones keep
/// theirs: they may be shared, such as `.`).
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(PRIVATE_DIR).create(dir)
}

/// Writes `data` to `path` with `mode`: into a fresh temporary file (O_EXCL,
/// created with the mode) in the same directory, then renamed over `path`, so
/// a reader sees the old file or the whole new one, an existing wider mode is
/// not kept, and a symlink at `path` is replaced rather than followed.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".rampart-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// [`write_atomic`] with mode 0600.
pub fn write_private(path: &Path, data: &[u8]) -> io::Result<()> {
    write_atomic(path, data, PRIVATE_FILE)
}

/// Opens `path` for writing a stream (a capture), created with mode 0600.
/// A file that already exists is truncated and keeps its mode (it may be a
/// pipe or `/dev/stdout`, which must not be replaced).
pub fn create_private(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).mode(PRIVATE_FILE).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_and_dirs_are_owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        create_private_dir(&dir).unwrap(); // exists: fine

        let rec = dir.join("recording.json");
        write_private(&rec, b"{}").unwrap();
        assert_eq!(mode(&rec), 0o600);
        assert_eq!(std::fs::read(&rec).unwrap(), b"{}");
        // An existing world-readable file is replaced, not reused.
        std::fs::set_permissions(&rec, Permissions::from_mode(0o644)).unwrap();
        write_private(&rec, b"{\"a\":1}").unwrap();
        assert_eq!(mode(&rec), 0o600);
        // Nothing left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);

        let cap = dir.join("capture.jsonl");
        create_private(&cap).unwrap().write_all(b"x\n").unwrap();
        assert_eq!(mode(&cap), 0o600);
    }

    #[test]
    fn a_planted_symlink_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = tmp.path().join("recording.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_private(&link, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert!(!std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::metadata(&link).unwrap().mode() & 0o777, 0o600);
    }
}
