//! Named package sets (`data/presets.toml`), with per-distro names where they differ.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
struct File {
    preset: Vec<PresetDef>,
}

#[derive(Debug, Clone, Deserialize)]
struct PresetDef {
    id: String,
    name: BTreeMap<String, String>,
    description: BTreeMap<String, String>,
    packages: Vec<String>,
    #[serde(default)]
    distros: BTreeMap<String, Vec<String>>,
}

/// One preset as the API shows it (packages for the asked distro).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Preset {
    pub id: String,
    pub name: BTreeMap<String, String>,
    pub description: BTreeMap<String, String>,
    pub packages: Vec<String>,
}

/// The compiled-in presets do not parse (a build defect, caught by the tests).
#[derive(Debug, thiserror::Error)]
#[error("data/presets.toml: {0}")]
pub struct PresetsError(#[from] toml::de::Error);

pub struct Presets {
    defs: Vec<PresetDef>,
}

impl Presets {
    /// The compiled-in presets.
    pub fn builtin() -> Result<Presets, PresetsError> {
        let f: File = toml::from_str(include_str!("../data/presets.toml"))?;
        Ok(Presets { defs: f.preset })
    }

    /// The presets for `distro` (a catalog id; None: the default names). A preset with no
    /// package on that distro is left out.
    pub fn for_distro(&self, distro: Option<&str>) -> Vec<Preset> {
        self.defs
            .iter()
            .filter_map(|d| {
                let packages = distro
                    .and_then(|id| d.distros.get(id))
                    .unwrap_or(&d.packages)
                    .clone();
                (!packages.is_empty()).then(|| Preset {
                    id: d.id.clone(),
                    name: d.name.clone(),
                    description: d.description.clone(),
                    packages,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_presets_are_well_formed() {
        let p = Presets::builtin().expect("parses");
        let ids: Vec<&str> = opaas_repo::catalog::distros()
            .iter()
            .map(|d| d.id.as_str())
            .collect();
        for d in &p.defs {
            for lang in ["en", "zh-CN"] {
                assert!(d.name.contains_key(lang), "{} name {lang}", d.id);
                assert!(
                    d.description.contains_key(lang),
                    "{} description {lang}",
                    d.id
                );
            }
            for (distro, names) in &d.distros {
                assert!(
                    ids.contains(&distro.as_str()),
                    "{}: unknown distro {distro}",
                    d.id
                );
                for n in names {
                    opaas_resolve::Request::parse(n).expect("valid name");
                }
            }
            for n in &d.packages {
                opaas_resolve::Request::parse(n).expect("valid name");
            }
        }
        let all = p.for_distro(None);
        assert!(all.len() >= 12);
        let docker = |d: Option<&str>| {
            p.for_distro(d)
                .into_iter()
                .find(|x| x.id == "docker")
                .expect("docker")
                .packages
        };
        assert!(docker(Some("ubuntu-24.04")).contains(&"docker-compose-v2".to_string()));
        assert!(docker(Some("debian-12")).contains(&"docker-compose".to_string()));
    }
}
