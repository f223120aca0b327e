//! The distro catalog: which distros exist, their pockets, components, architectures and keys.
//!
//! The catalog is data (`data/distros.toml`, compiled in) so that adding a release is an edit
//! to a table, not to code paths.

use serde::Deserialize;
use std::sync::OnceLock;

/// Which archive a pocket lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveKind {
    Main,
    Security,
}

/// A mirror family: one archive layout that a mirror URL serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Debian,
    Ubuntu,
    UbuntuPorts,
}

impl Family {
    /// The name used in environment variables (`OPAAS_MIRROR_<NAME>`).
    pub fn env_name(self) -> &'static str {
        match self {
            Family::Debian => "DEBIAN",
            Family::Ubuntu => "UBUNTU",
            Family::UbuntuPorts => "UBUNTU_PORTS",
        }
    }
    /// The key used in the config file and presets (`debian`, `ubuntu`, `ubuntu_ports`).
    pub fn key(self) -> &'static str {
        match self {
            Family::Debian => "debian",
            Family::Ubuntu => "ubuntu",
            Family::UbuntuPorts => "ubuntu_ports",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Pocket {
    pub suite: String,
    pub archive: ArchiveKind,
}

/// Where a release is in its life: `release` (lts, stable, oldstable, oldoldstable), the end of
/// its (LTS) support as `YYYY-MM`, and whether that has passed.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Lifecycle {
    pub release: String,
    #[serde(default)]
    pub until: Option<String>,
    pub ended: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Distro {
    pub id: String,
    pub name: String,
    pub codename: String,
    pub family: Family,
    pub support: String,
    /// The support status as data (the API sends it; the UI words it in each language).
    pub lifecycle: Lifecycle,
    pub pockets: Vec<Pocket>,
    pub components: Vec<String>,
    pub optional_components: Vec<String>,
    pub architectures: Vec<String>,
    pub ports_architectures: Vec<String>,
    pub keyring: String,
    /// Packages a minbase image of this release has beyond Essential/required + apt (e.g.
    /// `usr-is-merged`, installed by the merged-/usr setup of bookworm and later).
    #[serde(default)]
    pub minimal_extra: Vec<String>,
}

impl Distro {
    /// All architectures, primary archive first.
    pub fn all_architectures(&self) -> impl Iterator<Item = &str> {
        self.architectures
            .iter()
            .chain(&self.ports_architectures)
            .map(String::as_str)
    }

    /// The mirror family that serves `arch` for this distro.
    pub fn family_for(&self, arch: &str) -> Option<Family> {
        if self.architectures.iter().any(|a| a == arch) {
            Some(self.family)
        } else if self.ports_architectures.iter().any(|a| a == arch) {
            Some(Family::UbuntuPorts)
        } else {
            None
        }
    }

    /// Checks an architecture, with a helpful error.
    pub fn check_arch(&self, arch: &str) -> Result<Family, CatalogError> {
        self.family_for(arch)
            .ok_or_else(|| CatalogError::UnknownArch {
                distro: self.id.clone(),
                arch: arch.to_string(),
                known: self.all_architectures().collect::<Vec<_>>().join(", "),
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("unknown distro '{given}'; known distros: {known} (codenames work too)")]
    UnknownDistro { given: String, known: String },
    #[error("{distro} has no architecture '{arch}'; it has: {known}")]
    UnknownArch {
        distro: String,
        arch: String,
        known: String,
    },
}

#[derive(Deserialize)]
struct CatalogFile {
    distro: Vec<Distro>,
}

/// Every distro OPaaS knows, in catalog order.
pub fn distros() -> &'static [Distro] {
    static CATALOG: OnceLock<Vec<Distro>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The catalog is compiled in and tested; a parse failure is a build defect.
        toml::from_str::<CatalogFile>(include_str!("../data/distros.toml"))
            .map(|c| c.distro)
            .unwrap_or_else(|e| panic!("data/distros.toml is invalid: {e}"))
    })
}

/// Looks a distro up by id (`debian-12`), codename (`bookworm`) or `name:version`-ish aliases
/// (`debian12`, `ubuntu24.04`, `Debian-12`).
pub fn find(given: &str) -> Result<&'static Distro, CatalogError> {
    let g = given.trim().to_ascii_lowercase();
    let squash = |s: &str| s.replace(['-', '_', ' ', ':'], "");
    distros()
        .iter()
        .find(|d| d.id == g || d.codename == g || squash(&d.id) == squash(&g))
        .ok_or_else(|| CatalogError::UnknownDistro {
            given: given.to_string(),
            known: distros()
                .iter()
                .map(|d| format!("{} ({})", d.id, d.codename))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_loads_and_aliases_work() {
        assert!(distros().len() >= 5);
        assert_eq!(find("bookworm").map(|d| d.id.as_str()), Ok("debian-12"));
        assert_eq!(find("Debian12").map(|d| d.id.as_str()), Ok("debian-12"));
        assert_eq!(find("noble").map(|d| d.id.as_str()), Ok("ubuntu-24.04"));
        assert!(matches!(
            find("debian-99"),
            Err(CatalogError::UnknownDistro { .. })
        ));
        let n = find("ubuntu-24.04").expect("noble");
        assert_eq!(n.family_for("amd64"), Some(Family::Ubuntu));
        assert_eq!(n.family_for("arm64"), Some(Family::UbuntuPorts));
        assert!(n.check_arch("mips").is_err());
        let b = find("debian-11").expect("bullseye");
        assert_eq!(b.pockets[2].suite, "bullseye-security");
        assert_eq!(b.pockets[2].archive, ArchiveKind::Security);
    }
}
