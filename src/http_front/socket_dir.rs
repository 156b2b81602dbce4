//! The private folder of the router's Unix socket: made 0700 under the temp
//! dir with a random name, so no other user can reach the router directly;
//! removed when dropped.

use std::fs::DirBuilder;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

/// The socket's file name inside the folder.
const SOCKET_NAME: &str = "router.sock";

/// A private folder, removed with everything in it when dropped.
#[derive(Debug)]
pub struct SocketDir {
    path: PathBuf,
}

impl SocketDir {
    /// Creates a fresh folder; fails rather than reuse one that exists.
    pub fn create() -> io::Result<SocketDir> {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).map_err(io::Error::other)?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let path = std::env::temp_dir().join(format!("wspush-{name}"));
        DirBuilder::new().mode(0o700).create(&path)?;
        Ok(SocketDir { path })
    }

    /// Where the router's socket goes.
    pub fn socket_path(&self) -> PathBuf {
        self.path.join(SOCKET_NAME)
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_folder_is_private_new_and_removed() {
        let dir = SocketDir::create().unwrap();
        let folder = dir.path.clone();
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_ne!(SocketDir::create().unwrap().path, folder);
        drop(dir);
        assert!(!folder.exists());
    }
}
