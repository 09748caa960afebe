//! Finding programs on PATH the way a shell does: the first executable file
//! of that name (or `NAME.exe`) in PATH's directories. Nothing is run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The first executable `name` in the directories of `path` (a PATH value).
pub fn on_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path?).find_map(|dir| {
        [name.to_owned(), format!("{name}.exe")]
            .into_iter()
            .map(|file| dir.join(file))
            .find(|candidate| is_executable(candidate))
    })
}

/// A file that may be run (on Unix: with an execute bit).
pub fn is_executable(path: &Path) -> bool {
    let Ok(meta) = path.metadata() else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}
