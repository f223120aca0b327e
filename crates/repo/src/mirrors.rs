//! Mirror resolution. Mirrors are configuration; nothing in OPaaS names an official archive host.
//!
//! For each (family, main|security) slot the first of these that has a URL wins:
//! 1. the `--mirror` / `--security-mirror` flags,
//! 2. `OPAAS_MIRROR_<FAMILY>` / `OPAAS_SECURITY_MIRROR_<FAMILY>` (FAMILY: DEBIAN, UBUNTU, UBUNTU_PORTS),
//! 3. the config file's `[mirrors]` table,
//! 4. the host's own APT sources (`sources.list`, `sources.list.d/*.list` and `*.sources`) when an
//!    entry serves a suite of that family,
//! 5. the named preset chosen with `--mirror-preset`, `OPAAS_MIRROR_PRESET` or `preset =`.
//!
//! Ubuntu's security pocket lives on the same archive layout, so an Ubuntu security slot with
//! nothing configured falls back to the main mirror; Debian's security archive is separate and
//! must be found on its own.

use crate::catalog::{ArchiveKind, Distro, Family};
use crate::config::Config;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Where a mirror URL came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Flag(&'static str),
    Env(String),
    Config(PathBuf),
    HostApt(PathBuf),
    Preset(String),
    SameAsMain,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(flag) => write!(f, "flag {flag}"),
            Origin::Env(v) => write!(f, "env {v}"),
            Origin::Config(p) => write!(f, "config {}", p.display()),
            Origin::HostApt(p) => write!(f, "host APT sources {}", p.display()),
            Origin::Preset(n) => write!(f, "preset {n}"),
            Origin::SameAsMain => write!(f, "same as the main mirror"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub url: String,
    pub origin: Origin,
}

/// The two mirrors a distro/arch needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirrors {
    pub family: Family,
    pub main: Mirror,
    pub security: Mirror,
}

impl Mirrors {
    pub fn for_archive(&self, a: ArchiveKind) -> &Mirror {
        match a {
            ArchiveKind::Main => &self.main,
            ArchiveKind::Security => &self.security,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MirrorError {
    #[error("no {what} mirror configured for {distro}. Set one of: {how}")]
    NotFound {
        what: String,
        distro: String,
        how: String,
    },
    #[error("unknown mirror preset '{given}'; presets: {known}")]
    UnknownPreset { given: String, known: String },
    #[error("mirror URL '{url}' from {origin} is not an http(s) or file URL")]
    BadUrl { url: String, origin: String },
}

/// What the caller supplies; `env` is injectable for tests.
pub struct MirrorInputs<'a> {
    pub mirror_flag: Option<&'a str>,
    pub security_flag: Option<&'a str>,
    pub preset_flag: Option<&'a str>,
    pub config: &'a Config,
    /// The host's APT configuration directory (`/etc/apt`); `None` skips the host sources.
    pub apt_etc: Option<&'a Path>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> MirrorInputs<'a> {
    /// Inputs with the real environment and the host's `/etc/apt`.
    pub fn from_env(config: &'a Config) -> Self {
        MirrorInputs {
            mirror_flag: None,
            security_flag: None,
            preset_flag: None,
            config,
            apt_etc: Some(Path::new("/etc/apt")),
            env: &|k| std::env::var(k).ok().filter(|v| !v.is_empty()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Preset {
    pub name: String,
    pub description: String,
    pub debian: String,
    pub debian_security: String,
    pub ubuntu: String,
    pub ubuntu_ports: String,
}

impl Preset {
    fn url(&self, family: Family, archive: ArchiveKind) -> &str {
        match (family, archive) {
            (Family::Debian, ArchiveKind::Main) => &self.debian,
            (Family::Debian, ArchiveKind::Security) => &self.debian_security,
            (Family::Ubuntu, _) => &self.ubuntu,
            (Family::UbuntuPorts, _) => &self.ubuntu_ports,
        }
    }
}

/// The named public mirror presets (`data/presets.toml`).
pub fn presets() -> &'static [Preset] {
    #[derive(Deserialize)]
    struct File {
        preset: Vec<Preset>,
    }
    static P: OnceLock<Vec<Preset>> = OnceLock::new();
    P.get_or_init(|| {
        toml::from_str::<File>(include_str!("../data/presets.toml"))
            .map(|f| f.preset)
            .unwrap_or_else(|e| panic!("data/presets.toml is invalid: {e}"))
    })
}

fn slot_key(family: Family, archive: ArchiveKind) -> String {
    match archive {
        ArchiveKind::Main => family.key().to_string(),
        ArchiveKind::Security => format!("{}_security", family.key()),
    }
}

fn env_key(family: Family, archive: ArchiveKind) -> String {
    match archive {
        ArchiveKind::Main => format!("OPAAS_MIRROR_{}", family.env_name()),
        ArchiveKind::Security => format!("OPAAS_SECURITY_MIRROR_{}", family.env_name()),
    }
}

/// One place [`resolve`] looked for a mirror, in order, and what it found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The place, e.g. `--mirror`, `env OPAAS_MIRROR_DEBIAN`, `config ~/.config/opaas/config.toml`.
    pub source: String,
    /// The URL it gave, if any (the first one wins).
    pub url: Option<String>,
    /// Why it gave none (`not given`, `not set`, `file absent`, …); empty when it gave a URL.
    pub note: String,
}

/// Every source for both archives, in the order [`resolve`] tries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub family: Family,
    pub main: Vec<Tried>,
    pub security: Vec<Tried>,
    /// What to set to configure the main / security archive.
    pub how_main: String,
    pub how_security: String,
}

impl Trace {
    pub fn for_archive(&self, a: ArchiveKind) -> &[Tried] {
        match a {
            ArchiveKind::Main => &self.main,
            ArchiveKind::Security => &self.security,
        }
    }
}

fn chosen_preset(inp: &MirrorInputs) -> Result<Option<(&'static Preset, String)>, MirrorError> {
    let (name, via) = if let Some(n) = inp.preset_flag {
        (n.to_string(), "--mirror-preset".to_string())
    } else if let Some(n) = (inp.env)("OPAAS_MIRROR_PRESET") {
        (n, "env OPAAS_MIRROR_PRESET".to_string())
    } else if let Some(n) = inp.config.preset.clone() {
        (n, "config preset".to_string())
    } else {
        return Ok(None);
    };
    presets()
        .iter()
        .find(|p| p.name.eq_ignore_ascii_case(name.trim()))
        .map(|p| Some((p, via)))
        .ok_or_else(|| MirrorError::UnknownPreset {
            given: name.clone(),
            known: presets()
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn sources_tried(
    family: Family,
    archive: ArchiveKind,
    inp: &MirrorInputs,
    host: &[HostSource],
    preset: Option<&(&Preset, String)>,
) -> Vec<(Tried, Option<Mirror>)> {
    let mut out = Vec::new();
    let mut push = |source: String, m: Option<Mirror>, note: &str| {
        let t = Tried {
            source,
            url: m.as_ref().map(|m| m.url.clone()),
            note: if m.is_some() {
                String::new()
            } else {
                note.to_string()
            },
        };
        out.push((t, m));
    };
    let flag = match archive {
        ArchiveKind::Main => "--mirror",
        ArchiveKind::Security => "--security-mirror",
    };
    let given = match archive {
        ArchiveKind::Main => inp.mirror_flag,
        ArchiveKind::Security => inp.security_flag,
    };
    push(
        flag.to_string(),
        given.map(|u| Mirror {
            url: u.to_string(),
            origin: Origin::Flag(flag),
        }),
        "not given",
    );
    let ek = env_key(family, archive);
    push(
        format!("env {ek}"),
        (inp.env)(&ek).map(|u| Mirror {
            url: u,
            origin: Origin::Env(ek.clone()),
        }),
        "not set",
    );
    let key = slot_key(family, archive);
    let cfg_path = inp.config.path.clone().or_else(Config::default_path);
    push(
        format!(
            "config {} [mirrors] {key}",
            cfg_path
                .as_deref()
                .map_or("(no path)".into(), |p| p.display().to_string())
        ),
        inp.config.mirrors.get(&key).map(|u| Mirror {
            url: u.clone(),
            origin: Origin::Config(inp.config.path.clone().unwrap_or_default()),
        }),
        if inp.config.path.is_some() {
            "no such key"
        } else {
            "file absent"
        },
    );
    match inp.apt_etc {
        Some(etc) => push(
            format!("host APT sources {}", etc.display()),
            host.iter()
                .find(|h| h.family == family && h.archive == archive)
                .map(|h| Mirror {
                    url: h.url.clone(),
                    origin: Origin::HostApt(h.file.clone()),
                }),
            &format!("no {key} entry"),
        ),
        None => push("host APT sources".into(), None, "not read"),
    }
    push(
        match preset {
            Some((p, via)) => format!("preset {} ({via})", p.name),
            None => "preset (--mirror-preset, OPAAS_MIRROR_PRESET, config preset)".into(),
        },
        preset.map(|(p, _)| Mirror {
            url: p.url(family, archive).to_string(),
            origin: Origin::Preset(p.name.clone()),
        }),
        "none chosen",
    );
    out
}

/// Where [`resolve`] looks for `distro`'s mirrors on `arch`, and what each place holds.
pub fn trace(distro: &Distro, arch: &str, inp: &MirrorInputs) -> Result<Trace, MirrorError> {
    let family = distro.family_for(arch).unwrap_or(distro.family);
    let preset = chosen_preset(inp)?;
    let host = inp.apt_etc.map(host_sources).unwrap_or_default();
    let list = |a| {
        sources_tried(family, a, inp, &host, preset.as_ref())
            .into_iter()
            .map(|(t, _)| t)
            .collect()
    };
    Ok(Trace {
        family,
        main: list(ArchiveKind::Main),
        security: list(ArchiveKind::Security),
        how_main: how(family, ArchiveKind::Main),
        how_security: how(family, ArchiveKind::Security),
    })
}

fn how(family: Family, archive: ArchiveKind) -> String {
    let flag = match archive {
        ArchiveKind::Main => "--mirror URL",
        ArchiveKind::Security => "--security-mirror URL",
    };
    format!(
        "{flag}, env {}, `{}` in [mirrors] of the config file, or --mirror-preset NAME (presets: {})",
        env_key(family, archive),
        slot_key(family, archive),
        presets().iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
    )
}

/// Resolves the main and security mirrors for `distro` on `arch`.
pub fn resolve(distro: &Distro, arch: &str, inp: &MirrorInputs) -> Result<Mirrors, MirrorError> {
    let family = distro.family_for(arch).unwrap_or(distro.family);
    let preset = chosen_preset(inp)?;
    let host = inp.apt_etc.map(host_sources).unwrap_or_default();
    let find = |archive: ArchiveKind| -> Option<Mirror> {
        sources_tried(family, archive, inp, &host, preset.as_ref())
            .into_iter()
            .find_map(|(_, m)| m)
    };
    let how = |archive: ArchiveKind| how(family, archive);
    let main = find(ArchiveKind::Main).ok_or_else(|| MirrorError::NotFound {
        what: format!("{} archive", family.key()),
        distro: format!("{} {arch}", distro.id),
        how: how(ArchiveKind::Main),
    })?;
    let security = match find(ArchiveKind::Security) {
        Some(m) => m,
        None if family != Family::Debian => Mirror {
            url: main.url.clone(),
            origin: Origin::SameAsMain,
        },
        None => {
            return Err(MirrorError::NotFound {
                what: format!("{} security archive", family.key()),
                distro: format!("{} {arch}", distro.id),
                how: how(ArchiveKind::Security),
            })
        }
    };
    for m in [&main, &security] {
        if !(m.url.starts_with("http://")
            || m.url.starts_with("https://")
            || m.url.starts_with("file:/"))
        {
            return Err(MirrorError::BadUrl {
                url: m.url.clone(),
                origin: m.origin.to_string(),
            });
        }
    }
    let trim = |m: Mirror| Mirror {
        url: m.url.trim_end_matches('/').to_string(),
        ..m
    };
    Ok(Mirrors {
        family,
        main: trim(main),
        security: trim(security),
    })
}

/// One usable entry of the host's APT sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostSource {
    pub family: Family,
    pub archive: ArchiveKind,
    pub url: String,
    pub file: PathBuf,
}

/// Classifies a suite name by the catalog's codenames.
fn classify(suite: &str, url: &str) -> Option<(Family, ArchiveKind)> {
    let base = suite.split('-').next().unwrap_or(suite);
    let archive = if suite.ends_with("-security") || suite.ends_with("/updates") {
        ArchiveKind::Security
    } else {
        ArchiveKind::Main
    };
    let debian_names = [
        "sid",
        "stable",
        "oldstable",
        "oldoldstable",
        "testing",
        "unstable",
        "buster",
    ];
    let fam = crate::catalog::distros()
        .iter()
        .find(|d| d.codename == base)
        .map(|d| d.family)
        .or_else(|| debian_names.contains(&base).then_some(Family::Debian))?;
    let fam = if fam == Family::Ubuntu && url.contains("ports") {
        Family::UbuntuPorts
    } else {
        fam
    };
    Some((fam, archive))
}

/// Reads the host's APT sources (one-line `.list` and deb822 `.sources`), `deb` entries only.
pub fn host_sources(apt_etc: &Path) -> Vec<HostSource> {
    let mut files = vec![apt_etc.join("sources.list")];
    if let Ok(rd) = std::fs::read_dir(apt_etc.join("sources.list.d")) {
        let mut v: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        v.sort();
        files.extend(v);
    }
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let mut push = |url: &str, suite: &str| {
            if let Some((family, archive)) = classify(suite, url) {
                out.push(HostSource {
                    family,
                    archive,
                    url: url.trim_end_matches('/').to_string(),
                    file: f.clone(),
                });
            }
        };
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => {
                for p in opaas_deb::paragraphs(&text) {
                    let types = p.get("Types").unwrap_or("");
                    if !types.split_whitespace().any(|t| t == "deb")
                        || p.get("Enabled") == Some("no")
                    {
                        continue;
                    }
                    for url in p.get("URIs").unwrap_or("").split_whitespace() {
                        for suite in p.get("Suites").unwrap_or("").split_whitespace() {
                            push(url, suite);
                        }
                    }
                }
            }
            Some("list") => {
                for line in text.lines() {
                    let line = line.split('#').next().unwrap_or("").trim();
                    let mut words = line.split_whitespace();
                    if words.next() != Some("deb") {
                        continue;
                    }
                    let mut rest: Vec<&str> = words.collect();
                    // drop an options block: [arch=amd64 signed-by=...]
                    if rest.first().is_some_and(|w| w.starts_with('[')) {
                        while let Some(w) = rest.first().copied() {
                            rest.remove(0);
                            if w.ends_with(']') {
                                break;
                            }
                        }
                    }
                    if let (Some(url), Some(suite)) = (rest.first(), rest.get(1)) {
                        push(url, suite);
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::find;
    use std::collections::HashMap;

    fn etc_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(d.path().join("sources.list.d")).expect("mkdir");
        for (n, t) in files {
            std::fs::write(d.path().join(n), t).expect("write");
        }
        d
    }

    #[test]
    fn resolution_order() {
        let etc = etc_with(&[
            ("sources.list.d/debian.sources", "Types: deb\nURIs: http://host-apt.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: http://host-apt.example/debian-security\nSuites: bookworm-security\nComponents: main\n"),
            ("sources.list", "deb [arch=amd64 signed-by=/x.gpg] http://list.example/ubuntu noble main\n# deb http://commented.example/ubuntu noble main\n"),
        ]);
        let d12 = find("debian-12").expect("d12");
        let mut cfg = Config::default();
        let env: HashMap<String, String> = HashMap::new();
        let envf = |k: &str| env.get(k).cloned();
        let mk = |cfg: &'_ Config,
                  env: &'_ dyn Fn(&str) -> Option<String>,
                  flag: Option<&'static str>| {
            let inp = MirrorInputs {
                mirror_flag: flag,
                security_flag: None,
                preset_flag: None,
                config: cfg,
                apt_etc: Some(etc.path()),
                env,
            };
            resolve(d12, "amd64", &inp)
        };
        // host sources
        let m = mk(&cfg, &envf, None).expect("host");
        assert_eq!(m.main.url, "http://host-apt.example/debian");
        assert!(matches!(m.main.origin, Origin::HostApt(_)));
        assert_eq!(m.security.url, "http://host-apt.example/debian-security");
        // config beats host
        cfg.mirrors
            .insert("debian".into(), "http://cfg.example/debian/".into());
        let m = mk(&cfg, &envf, None).expect("cfg");
        assert_eq!(m.main.url, "http://cfg.example/debian");
        assert!(matches!(m.security.origin, Origin::HostApt(_)));
        // env beats config
        let env2 =
            |k: &str| (k == "OPAAS_MIRROR_DEBIAN").then(|| "http://env.example/debian".to_string());
        let m = mk(&cfg, &env2, None).expect("env");
        assert_eq!(m.main.origin, Origin::Env("OPAAS_MIRROR_DEBIAN".into()));
        // flag beats env
        let m = mk(&cfg, &env2, Some("http://flag.example/debian")).expect("flag");
        assert_eq!(m.main.origin, Origin::Flag("--mirror"));
        // ubuntu from a one-line list; security falls back to main
        let noble = find("noble").expect("noble");
        let inp = MirrorInputs {
            mirror_flag: None,
            security_flag: None,
            preset_flag: None,
            config: &Config::default(),
            apt_etc: Some(etc.path()),
            env: &envf,
        };
        let m = resolve(noble, "amd64", &inp).expect("ubuntu");
        assert_eq!(m.main.url, "http://list.example/ubuntu");
        assert_eq!(m.security.origin, Origin::SameAsMain);
        // ports: nothing configured -> error naming the variable
        let e = resolve(noble, "arm64", &inp).expect_err("no ports mirror");
        assert!(e.to_string().contains("OPAAS_MIRROR_UBUNTU_PORTS"), "{e}");
        // preset
        let inp = MirrorInputs {
            preset_flag: Some("tuna"),
            ..inp
        };
        let m = resolve(noble, "arm64", &inp).expect("preset");
        assert!(m.main.url.ends_with("/ubuntu-ports"));
        assert_eq!(m.main.origin, Origin::Preset("tuna".into()));
        let inp = MirrorInputs {
            preset_flag: Some("nope"),
            ..inp
        };
        assert!(matches!(
            resolve(noble, "arm64", &inp),
            Err(MirrorError::UnknownPreset { .. })
        ));
    }

    #[test]
    fn debian_without_anything_names_the_fix() {
        let etc = etc_with(&[]);
        let inp = MirrorInputs {
            mirror_flag: None,
            security_flag: None,
            preset_flag: None,
            config: &Config::default(),
            apt_etc: Some(etc.path()),
            env: &|_| None,
        };
        let e = resolve(find("debian-11").expect("d11"), "amd64", &inp).expect_err("nothing");
        let s = e.to_string();
        assert!(
            s.contains("--mirror URL") && s.contains("OPAAS_MIRROR_DEBIAN"),
            "{s}"
        );
        let inp = MirrorInputs {
            mirror_flag: Some("ftp://x"),
            ..inp
        };
        let inp2 = MirrorInputs {
            security_flag: Some("http://s.example/debian-security"),
            ..inp
        };
        assert!(matches!(
            resolve(find("debian-11").expect("d11"), "amd64", &inp2),
            Err(MirrorError::BadUrl { .. })
        ));
    }
}
