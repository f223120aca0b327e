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
