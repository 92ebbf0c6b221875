//! Path joining and normalisation for paths the kernel reported relative to a
//! base directory (the dirfd's path or the cwd). Pure functions.

/// Lexically normalise an absolute path: drop empty and `.` components, resolve
/// `..` (never above `/`). A relative input is normalised the same way but stays
/// relative (leading `..` kept).
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !absolute {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".to_string()
    } else {
        joined
    }
}

/// The absolute path a syscall's path argument names: `path` itself when
/// absolute; else joined onto `base` (the dirfd's or cwd's absolute path). An
/// empty `path` (AT_EMPTY_PATH) names `base`. Without a base a relative path is
/// returned as given.
pub fn join_path(base: Option<&str>, path: &str) -> String {
    if path.starts_with('/') {
        return normalize(path);
    }
    match base {
        Some(b) if b.starts_with('/') => {
            if path.is_empty() {
                normalize(b)
            } else {
                normalize(&format!("{b}/{path}"))
            }
        }
        _ => path.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_absolute() {
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("//a//b/"), "/a/b");
        assert_eq!(normalize("/a/./b/../c"), "/a/c");
        assert_eq!(normalize("/../../etc/passwd"), "/etc/passwd");
        assert_eq!(normalize("/a/b/.."), "/a");
        assert_eq!(normalize("/a/.."), "/");
    }

    #[test]
    fn normalize_relative() {
        assert_eq!(normalize("a/../.."), "..");
        assert_eq!(normalize("./a"), "a");
        assert_eq!(normalize(""), ".");
        assert_eq!(normalize("../x/../y"), "../y");
    }

    #[test]
    fn join() {
        assert_eq!(join_path(Some("/tmp"), "x"), "/tmp/x");
        assert_eq!(join_path(Some("/tmp"), "./x/../y"), "/tmp/y");
        assert_eq!(join_path(Some("/tmp/a"), "../../../etc/shadow"), "/etc/shadow");
        assert_eq!(join_path(Some("/"), "etc"), "/etc");
        assert_eq!(join_path(Some("/ignored"), "/etc/./passwd"), "/etc/passwd");
        assert_eq!(join_path(Some("/work"), ""), "/work");
        assert_eq!(join_path(None, "rel/x"), "rel/x");
        assert_eq!(join_path(Some("...truncated/x"), "y"), "y");
    }
}
