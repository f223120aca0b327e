//! Catalog and mirror values that point `opaas_repo::store` at a fixture.

use opaas_repo::catalog::{ArchiveKind, Distro, Family, Pocket};
use opaas_repo::mirrors::{Mirror, Mirrors, Origin};

/// A made-up Debian-family distro whose pockets are `pockets` (suite, archive), in order.
/// Its codename is the first pocket's suite.
pub fn distro(
    id: &str,
    pockets: &[(&str, ArchiveKind)],
    components: &[&str],
    arches: &[&str],
) -> Distro {
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Distro {
        id: id.into(),
        name: format!("Fixture {id}"),
        codename: pockets.first().map_or(id, |p| p.0).to_string(),
        family: Family::Debian,
        support: "test fixture".into(),
        lifecycle: opaas_repo::catalog::Lifecycle {
            release: "stable".into(),
            until: None,
            ended: false,
        },
        pockets: pockets
            .iter()
            .map(|(suite, archive)| Pocket {
                suite: suite.to_string(),
                archive: *archive,
            })
            .collect(),
        components: strings(components),
        optional_components: Vec::new(),
        architectures: strings(arches),
        ports_architectures: Vec::new(),
        keyring: "debian".into(),
        minimal_extra: Vec::new(),
    }
}

/// Mirrors with the main and security archives at these URLs (trailing slashes trimmed).
pub fn mirrors(main: &str, security: &str) -> Mirrors {
    let m = |url: &str| Mirror {
        url: url.trim_end_matches('/').to_string(),
        origin: Origin::Flag("--mirror"),
    };
    Mirrors {
        family: Family::Debian,
        main: m(main),
        security: m(security),
    }
}
