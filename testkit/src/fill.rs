//! Filling a disk: a small tmpfs mounted for one test (unmounted on drop), and writing
//! until the daemon refuses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a path, lazily unmounted on drop.
#[derive(Debug)]
pub struct Mount(pub PathBuf);

impl Mount {
    /// Mounts a tmpfs of `size` (`6m`) at `at` (created); the error says why not.
    pub fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(at).map_err(|e| format!("cannot create {}: {e}", at.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={size},mode=0755"))
            .arg("tmpfs")
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Calls `write` (which answers an HTTP status) up to `max` times until it answers 507
/// three times in a row; returns whether it did.
pub async fn until_refused<F, Fut>(max: usize, mut write: F) -> bool
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let mut refused_in_a_row = 0;
    for i in 0..max {
        if write(i).await == 507 {
            refused_in_a_row += 1;
            if refused_in_a_row == 3 {
                return true;
            }
        } else {
            refused_in_a_row = 0;
        }
    }
    false
}
