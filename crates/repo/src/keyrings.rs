//! Which OpenPGP keys a distro's Release files must be signed with.
//!
//! The project ships Debian's archive keyring (from the `debian-archive-keyring` package) and
//! Ubuntu's (from `ubuntu-keyring`) compiled into the binary, so a host without either package
//! can still verify. On a host that has `/usr/share/keyrings/debian-archive-keyring.gpg` its
//! keys are added (a newer host knows newer release keys). `--keyring FILE` replaces both.

use crate::sig::{Keyring, SigError};
use std::path::Path;

const DEBIAN: &[u8] = include_bytes!("../../../keyrings/debian-archive-keyring.gpg");
const UBUNTU: &[u8] = include_bytes!("../../../keyrings/ubuntu-archive-keyring.gpg");
const HOST_DEBIAN: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
const HOST_UBUNTU: &str = "/usr/share/keyrings/ubuntu-archive-keyring.gpg";

/// The keyring for catalog keyring name `name` (`debian`, `ubuntu`), or `explicit` files.
pub fn for_distro(name: &str, explicit: &[&Path]) -> Result<Keyring, SigError> {
    if !explicit.is_empty() {
        return Keyring::from_files(explicit);
    }
    let (embedded, host) = match name {
        "ubuntu" => (UBUNTU, HOST_UBUNTU),
        _ => (DEBIAN, HOST_DEBIAN),
    };
    let mut k = Keyring::from_bytes(embedded)?;
    if let Ok(h) = Keyring::from_file(host) {
        k.merge(h);
    }
    Ok(k)
}

/// A distro's keyring, parsed on first use: a warm `resolve --offline` verifies no signature
/// and should not pay for parsing (and merging) every archive key (about 3 M instructions,
/// 8 % of a small resolve). Explicit files are checked to exist up front, so a mistyped
/// `--keyring` is still reported at once.
pub struct LazyKeyring {
    name: String,
    files: Vec<std::path::PathBuf>,
    cell: std::sync::OnceLock<Result<Keyring, String>>,
}

impl LazyKeyring {
    /// The keyring [`for_distro`] would return, parsed when [`LazyKeyring::get`] is first called.
    pub fn for_distro(name: &str, explicit: &[&Path]) -> Result<LazyKeyring, SigError> {
        for f in explicit {
            std::fs::metadata(f).map_err(|e| SigError::Keyring(format!("{}: {e}", f.display())))?;
        }
        Ok(LazyKeyring {
            name: name.to_string(),
            files: explicit.iter().map(|p| p.to_path_buf()).collect(),
            cell: std::sync::OnceLock::new(),
        })
    }

    /// An already parsed keyring.
    pub fn ready(k: Keyring) -> LazyKeyring {
        LazyKeyring {
            name: String::new(),
            files: Vec::new(),
            cell: std::sync::OnceLock::from(Ok(k)),
        }
    }

    pub fn get(&self) -> Result<&Keyring, SigError> {
        self.cell
            .get_or_init(|| {
                let files: Vec<&Path> = self.files.iter().map(|p| p.as_path()).collect();
                for_distro(&self.name, &files).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| SigError::Keyring(e.clone()))
    }
}

impl std::fmt::Debug for LazyKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyKeyring")
            .field("name", &self.name)
            .field("files", &self.files)
            .field("parsed", &self.cell.get().is_some())
            .finish()
    }
}
