//! Signed bundles: the suites a resolution draws from, gathered from the index cache exactly
//! as the mirror signed them (`opaas_repo::store::signed_suite`), and the check of a bundle's
//! signatures with the distribution keyrings (`opaas verify`).

use crate::error::{EngineError, Kind};
use crate::session::Session;
use opaas_bundle::{ArchiveSuite, KeyringSource, SignedArchive, VerifyReport};
use opaas_repo::sig::{self, Keyring, Signer};
use opaas_repo::store::{self, WantedIndex};
use opaas_repo::universe::Universe;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The keyring file each family's keyring package installs on the target, and that package.
fn target_keyring(keyring_name: &str) -> (&'static str, &'static str) {
    match keyring_name {
        "ubuntu" => (
            "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
            "ubuntu-keyring",
        ),
        _ => (
            "/usr/share/keyrings/debian-archive-keyring.gpg",
            "debian-archive-keyring",
        ),
    }
}

/// `FINGERPRINT user id` of the key that signed.
pub fn describe_signer(s: &Signer) -> String {
    match &s.user_id {
        Some(u) => format!("{} {u}", s.primary_fingerprint),
        None => s.primary_fingerprint.clone(),
    }
}

/// The signed archive of a resolution: for every suite a chosen package comes from (in the
/// catalog's order), its signed Release and the compressed indices of the components and
/// architectures the packages come from, re-verified from the cache.
pub fn signed_archive(
    session: &Session,
    u: &Universe,
    chosen: &[opaas_resolve::Chosen],
) -> Result<SignedArchive, EngineError> {
    // (mirror, suite) → {(component, arch, index id)}
    type Indices = BTreeSet<(String, String, String)>;
    let mut used: Vec<((String, String), Indices)> = Vec::new();
    for (mirror, suite) in session.target.pockets() {
        used.push(((mirror.to_string(), suite.to_string()), BTreeSet::new()));
    }
    for c in chosen {
        let Some(r) = c.pref else { continue };
        let src = u.source(r);
        if src.index_id.is_empty() {
            return Err(EngineError::new(
                Kind::Internal,
                format!(
                    "{} {}: its index did not come from the cache",
                    c.name, c.version
                ),
            ));
        }
        let key = (src.mirror.clone(), src.suite.clone());
        let entry = (
            src.component.clone(),
            src.arch.clone(),
            src.index_id.clone(),
        );
        match used.iter_mut().find(|(k, _)| *k == key) {
            Some((_, set)) => {
                set.insert(entry);
            }
            None => used.push((key, BTreeSet::from([entry]))),
        }
    }
    // apt on the target reads every component × architecture a sources line names: ship the
    // whole cross product of what each suite's packages use (the resolution loaded them all)
    for ((mirror, suite), set) in used.iter_mut() {
        let comps: BTreeSet<String> = set.iter().map(|e| e.0.clone()).collect();
        let arches: BTreeSet<String> = set.iter().map(|e| e.1.clone()).collect();
        if set.is_empty() {
            continue;
        }
        for src in &u.sources {
            if &src.mirror == mirror
                && &src.suite == suite
                && comps.contains(&src.component)
                && arches.contains(&src.arch)
                && !src.index_id.is_empty()
            {
                set.insert((
                    src.component.clone(),
                    src.arch.clone(),
                    src.index_id.clone(),
                ));
            }
        }
    }
    let mut suites = Vec::new();
    for ((mirror, suite), set) in used.into_iter().filter(|(_, s)| !s.is_empty()) {
        let wanted: Vec<WantedIndex> = set
            .iter()
            .map(|(component, arch, index_id)| WantedIndex {
                component,
                arch,
                index_id,
            })
            .collect();
        let s = store::signed_suite(
            &session.cache,
            session
                .target
                .keyring
                .get()
                .map_err(|e| EngineError::from(opaas_repo::store::RepoError::Keyring(e)))?,
            &mirror,
            &suite,
            &wanted,
        )?;
        let mut files = Vec::new();
        if let Some(b) = s.inrelease {
            files.push(("InRelease".to_string(), b));
        }
        if let Some((rel, gpg)) = s.release_gpg {
            files.push(("Release".to_string(), rel));
            files.push(("Release.gpg".to_string(), gpg));
        }
        files.extend(s.indices);
        let set_of = |f: fn(&(String, String, String)) -> &String| -> Vec<String> {
            set.iter()
                .map(f)
                .cloned()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        suites.push(ArchiveSuite {
            suite: suite.clone(),
            components: set_of(|e| &e.0),
            arches: set_of(|e| &e.1),
            files,
            signed_by: describe_signer(&s.signer),
            date: s.release.date.map(opaas_repo::release::format_rfc2822),
            valid_until: s
                .release
                .valid_until
                .map(opaas_repo::release::format_rfc2822),
        });
    }
    let keyring = if session.keyring_files.is_empty() {
        let (path, package) = target_keyring(&session.distro.keyring);
        KeyringSource::Target {
            path: path.into(),
            package: package.into(),
        }
    } else {
        let mut files = Vec::new();
        for (i, p) in session.keyring_files.iter().enumerate() {
            let data = std::fs::read(p).map_err(|e| {
                EngineError::new(Kind::BadInput, format!("keyring {}: {e}", p.display()))
                    .field("keyring")
            })?;
            let base: String = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let base = base.trim_start_matches('.');
            files.push((
                format!(
                    "{}-{}",
                    i + 1,
                    if base.is_empty() { "keyring.gpg" } else { base }
                ),
                data,
            ));
        }
        KeyringSource::Shipped(files)
    };
    Ok(SignedArchive { suites, keyring })
}

/// Checks signatures with an OpenPGP keyring.
struct Checker(Keyring);

impl opaas_bundle::SignatureChecker for Checker {
    fn check(&self, signed: &[u8], detached: Option<&[u8]>) -> Result<(Vec<u8>, String), String> {
        match detached {
            None => sig::verify_cleartext(&self.0, signed)
                .map(|v| (v.signed_text, describe_signer(&v.signer))),
            Some(d) => sig::verify_detached(&self.0, signed, d)
                .map(|v| (signed.to_vec(), describe_signer(&v.signer))),
        }
        .map_err(|e| e.to_string())
    }
}

/// `opaas verify`: a bundle's structure and hashes, and in a signed bundle the chain signature
/// → index → .deb, with `keyrings` (none: the built-in Debian and Ubuntu archive keyrings).
pub fn verify_bundle(path: &Path, keyrings: &[PathBuf]) -> Result<VerifyReport, EngineError> {
    let bad = |e: sig::SigError| {
        EngineError::new(Kind::BadInput, format!("keyring: {e}")).field("keyring")
    };
    let ring = if keyrings.is_empty() {
        let mut k = opaas_repo::keyrings::for_distro("debian", &[]).map_err(bad)?;
        k.merge(opaas_repo::keyrings::for_distro("ubuntu", &[]).map_err(bad)?);
        k
    } else {
        let files: Vec<&Path> = keyrings.iter().map(PathBuf::as_path).collect();
        Keyring::from_files(&files).map_err(bad)?
    };
    Ok(opaas_bundle::verify_with(path, Some(&Checker(ring)))?)
}
