//! `opaas-testkit`: hermetic fixtures for tests that talk to APT repositories.
//!
//! * [`FixtureRepo`] writes signed repositories the way real archives lay them out:
//!   `dists/<suite>/{InRelease,Release,Release.gpg}`, `<comp>/binary-<arch>/Packages{,.xz,.gz}`,
//!   `by-hash/SHA256/<sha>` copies, and optionally tiny but real `.deb` files in `pool/`.
//!   Everything is signed with a key made by [`opaas_repo::sig::generate_key`]; its public half is
//!   written to [`FixtureRepo::keyring_path`].
//! * [`Server`] serves a directory over HTTP/1.1 on 127.0.0.1 (random port) with keep-alive,
//!   `Range`, per-path request counts and run-time fault injection ([`Fault`]).
//! * [`target`] builds the catalog and mirror values (`Distro`, `Mirrors`) that point
//!   `opaas_repo::store` at a fixture.
//!
//! Typical use:
//!
//! ```no_run
//! use opaas_testkit::{FixtureRepo, Package, Server, Suite};
//! let repo = FixtureRepo::temp().expect("repo");
//! repo.publish(&Suite::new("fixture").package("main", Package::new("hello", "1.0", "amd64").with_deb()))
//!     .expect("publish");
//! let server = Server::start(repo.root()).expect("server");
//! // point a Target at server.url(), with repo.keyring() as its keyring
//! ```

mod deb;
pub mod fixtures;
mod repo;
mod server;
pub mod target;

pub use deb::{build_deb, DebFile};
pub use repo::{Compression, FixtureRepo, Mangle, Package, PublishedSuite, Signing, Suite};
pub use server::{unused_local_url, Fault, Server};

/// What can go wrong building a fixture.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("signing: {0}")]
    Sig(#[from] opaas_repo::sig::SigError),
    #[error("invalid fixture: {0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}
