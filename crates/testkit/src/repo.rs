//! Signed fixture repositories laid out like a Debian/Ubuntu archive.

use crate::deb::build_deb;
use crate::{io_err, Error, Result};
use opaas_repo::sig::{generate_key, Keyring, TestKey};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// A compression a suite publishes its Packages indices with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    Xz,
    Gz,
    /// The uncompressed `Packages` file.
    Plain,
}

impl Compression {
    pub fn ext(self) -> &'static str {
        match self {
            Compression::Xz => ".xz",
            Compression::Gz => ".gz",
            Compression::Plain => "",
        }
    }

    fn compress(self, text: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::Plain => Ok(text.to_vec()),
            Compression::Gz => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
                e.write_all(text)?;
                e.finish()
            }
            Compression::Xz => {
                let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
                e.write_all(text)?;
                e.finish()
            }
        }
    }
}

/// Damage done to a published index file *before* it is hashed into the Release, so the signed
/// Release vouches for the broken bytes (an archive that published garbage). For a mirror that
/// serves bytes other than the signed ones, use [`crate::Fault`] on the server instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mangle {
    /// Keep only the first half.
    Truncate,
    /// Flip every bit of the middle byte.
    CorruptMiddle,
    /// Publish these bytes instead.
    Replace(Vec<u8>),
}

impl Mangle {
    fn apply(&self, b: &mut Vec<u8>) {
        match self {
            Mangle::Truncate => b.truncate(b.len() / 2),
            Mangle::CorruptMiddle => {
                let mid = b.len() / 2;
                if let Some(x) = b.get_mut(mid) {
                    *x ^= 0xff;
                }
            }
            Mangle::Replace(r) => *b = r.clone(),
        }
    }
}

/// Who signs a suite's Release.
#[derive(Clone, Default)]
pub enum Signing {
    /// The repository's key (the one in [`FixtureRepo::keyring_path`]).
    #[default]
    RepoKey,
    /// Another key (e.g. one the client does not trust).
    Key(Arc<TestKey>),
    /// No InRelease and no Release.gpg.
    Unsigned,
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signing::RepoKey => f.write_str("RepoKey"),
            Signing::Key(k) => write!(f, "Key({})", k.primary_fingerprint()),
            Signing::Unsigned => f.write_str("Unsigned"),
        }
    }
}

/// Fields that the repository computes for a package that has a `.deb`.
const POOL_FIELDS: [&str; 6] = ["Filename", "Size", "MD5sum", "SHA1", "SHA256", "SHA512"];

/// One binary package: a Packages stanza (free-form fields, in order) and, optionally, a real
/// `.deb` built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    fields: Vec<(String, String)>,
    deb: Option<DebSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct DebSpec {
    files: Vec<(String, Vec<u8>, u32)>,
    scripts: Vec<(String, String)>,
}

impl Package {
    pub fn new(name: &str, version: &str, arch: &str) -> Package {
        Package {
            fields: vec![
                ("Package".into(), name.into()),
                ("Version".into(), version.into()),
                ("Architecture".into(), arch.into()),
            ],
            deb: None,
        }
    }

    /// A package from deb822 text (`Key: value` lines, continuation lines start with a blank).
    pub fn from_stanza(text: &str) -> Package {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, v)) = fields.last_mut() {
                    v.push('\n');
                    v.push_str(line);
                }
            } else if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Package { fields, deb: None }
    }

    /// Sets a field (replacing one of the same name, case-insensitively); an empty value removes it.
    /// Multi-line values: continuation lines must start with a space.
    pub fn field(mut self, key: &str, value: &str) -> Package {
        self.set(key, value);
        self
    }

    fn set(&mut self, key: &str, value: &str) {
        match self
            .fields
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(key))
        {
            Some(i) if value.is_empty() => {
                self.fields.remove(i);
            }
            Some(i) => self.fields[i].1 = value.to_string(),
            None if value.is_empty() => {}
            None => self.fields.push((key.to_string(), value.to_string())),
        }
    }

    pub fn depends(self, v: &str) -> Package {
        self.field("Depends", v)
    }
    pub fn pre_depends(self, v: &str) -> Package {
        self.field("Pre-Depends", v)
    }
    pub fn recommends(self, v: &str) -> Package {
        self.field("Recommends", v)
    }
    pub fn provides(self, v: &str) -> Package {
        self.field("Provides", v)
    }
    pub fn conflicts(self, v: &str) -> Package {
        self.field("Conflicts", v)
    }
    pub fn breaks(self, v: &str) -> Package {
        self.field("Breaks", v)
    }
    pub fn multi_arch(self, v: &str) -> Package {
        self.field("Multi-Arch", v)
    }

    /// Also build a real `.deb` in `pool/` (with a README under `/usr/share/doc/<name>/`); its
    /// Filename, Size and SHA256 go into the stanza.
    pub fn with_deb(mut self) -> Package {
        self.deb.get_or_insert_with(DebSpec::default);
        self
    }

    /// A file the `.deb` installs (implies [`Package::with_deb`]); mode 0644, or 0755 for `bin/` paths.
    pub fn deb_file(mut self, path: &str, content: &[u8]) -> Package {
        let mode = if path.contains("/bin/") || path.contains("/sbin/") {
            0o755
        } else {
            0o644
        };
        self.deb.get_or_insert_with(DebSpec::default).files.push((
            path.to_string(),
            content.to_vec(),
            mode,
        ));
        self
    }

    /// A maintainer script (`preinst`, `postinst`, `prerm`, `postrm`) of the `.deb`.
    pub fn deb_script(mut self, name: &str, text: &str) -> Package {
        self.deb
            .get_or_insert_with(DebSpec::default)
            .scripts
            .push((name.to_string(), text.to_string()));
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    pub fn name(&self) -> &str {
        self.get("Package").unwrap_or("")
    }
    pub fn version(&self) -> &str {
        self.get("Version").unwrap_or("")
    }
    pub fn arch(&self) -> &str {
        self.get("Architecture").unwrap_or("")
    }
    pub fn has_deb(&self) -> bool {
        self.deb.is_some()
    }

    /// The stanza text (ends with one newline).
    pub fn stanza(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.fields {
            s.push_str(k);
            s.push_str(": ");
            s.push_str(v);
            s.push('\n');
        }
        s
    }

    /// Where the `.deb` goes: `pool/<comp>/<prefix>/<name>/<name>_<version without epoch>_<arch>.deb`.
    pub fn pool_path(&self, component: &str) -> String {
        let name = self.name();
        let prefix = if name.starts_with("lib") && name.len() > 3 {
            &name[..4]
        } else {
            &name[..name.len().min(1)]
        };
        let v = self.version();
        let v = v.split_once(':').map_or(v, |(_, r)| r);
        format!(
            "pool/{component}/{prefix}/{name}/{name}_{v}_{}.deb",
            self.arch()
        )
    }
}

/// One suite (`dists/<dir>/`) of a fixture repository.
#[derive(Debug, Clone)]
pub struct Suite {
    /// The `Suite:` field.
    pub name: String,
    /// The `Codename:` field.
    pub codename: String,
    /// The directory under `dists/` (normally `name`).
    pub dir: String,
    pub origin: String,
    pub label: String,
    /// `Date:`; `None` means the time of publishing.
    pub date: Option<SystemTime>,
    pub valid_until: Option<SystemTime>,
    pub not_automatic: bool,
    pub but_automatic_upgrades: bool,
    pub acquire_by_hash: bool,
    /// The index files published, in the order listed in the Release.
    pub compressions: Vec<Compression>,
    /// List `Packages` (uncompressed) in the Release even when it is not published, as real
    /// archives do. Default true.
    pub list_uncompressed: bool,
    pub components: Vec<String>,
    pub architectures: Vec<String>,
    /// (component, package); `Architecture: all` packages go into every architecture's index.
    pub packages: Vec<(String, Package)>,
    /// (component, arch, text): the whole Packages text of one index, replacing the packages.
    pub raw_indices: Vec<(String, String, String)>,
    /// Extra or overriding Release fields; an empty value removes a field.
    pub release_fields: Vec<(String, String)>,
    /// (path relative to the suite directory, damage), applied before hashing.
    pub mangles: Vec<(String, Mangle)>,
    pub signing: Signing,
    /// Publish `InRelease`. Default true.
    pub inrelease: bool,
    /// Publish `Release.gpg`. Default true.
    pub release_gpg: bool,
}

impl Suite {
    /// A suite named `name` (codename and directory the same), component `main`, architecture
    /// `amd64`, xz + gz indices, dated now, signed by the repository key.
    pub fn new(name: &str) -> Suite {
        Suite {
            name: name.into(),
            codename: name.into(),
            dir: name.into(),
            origin: "OPaaS-Test".into(),
            label: "OPaaS-Test".into(),
            date: None,
            valid_until: None,
            not_automatic: false,
            but_automatic_upgrades: false,
            acquire_by_hash: false,
            compressions: vec![Compression::Xz, Compression::Gz],
            list_uncompressed: true,
            components: vec!["main".into()],
            architectures: vec!["amd64".into()],
            packages: Vec::new(),
            raw_indices: Vec::new(),
            release_fields: Vec::new(),
            mangles: Vec::new(),
            signing: Signing::RepoKey,
            inrelease: true,
            release_gpg: true,
        }
    }

    pub fn codename(mut self, c: &str) -> Suite {
        self.codename = c.into();
        self
    }
    /// Publish under `dists/<dir>/` while the Release says `Suite: <name>`.
    pub fn dir(mut self, d: &str) -> Suite {
        self.dir = d.into();
        self
    }
    pub fn origin(mut self, o: &str) -> Suite {
        self.origin = o.into();
        self
    }
    pub fn label(mut self, l: &str) -> Suite {
        self.label = l.into();
        self
    }
    pub fn date(mut self, t: SystemTime) -> Suite {
        self.date = Some(t);
        self
    }
    pub fn valid_until(mut self, t: SystemTime) -> Suite {
        self.valid_until = Some(t);
        self
    }
    pub fn not_automatic(mut self) -> Suite {
        self.not_automatic = true;
        self
    }
    /// `NotAutomatic: yes` + `ButAutomaticUpgrades: yes` (like backports).
    pub fn but_automatic_upgrades(mut self) -> Suite {
        self.not_automatic = true;
        self.but_automatic_upgrades = true;
        self
    }
    pub fn acquire_by_hash(mut self, on: bool) -> Suite {
        self.acquire_by_hash = on;
        self
    }
    pub fn compressions(mut self, c: &[Compression]) -> Suite {
        self.compressions = c.to_vec();
        self
    }
    pub fn list_uncompressed(mut self, on: bool) -> Suite {
        self.list_uncompressed = on;
        self
    }
    pub fn components(mut self, c: &[&str]) -> Suite {
        self.components = c.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn architectures(mut self, a: &[&str]) -> Suite {
        self.architectures = a.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn package(mut self, component: &str, p: Package) -> Suite {
        self.packages.push((component.into(), p));
        self
    }
    /// A package given as deb822 text.
    pub fn stanza(self, component: &str, text: &str) -> Suite {
        self.package(component, Package::from_stanza(text))
    }
    pub fn raw_index(mut self, component: &str, arch: &str, text: &str) -> Suite {
        self.raw_indices
            .push((component.into(), arch.into(), text.into()));
        self
    }
    pub fn release_field(mut self, key: &str, value: &str) -> Suite {
        self.release_fields.push((key.into(), value.into()));
        self
    }
    pub fn mangle(mut self, path: &str, m: Mangle) -> Suite {
        self.mangles.push((path.into(), m));
        self
    }
    pub fn signing(mut self, s: Signing) -> Suite {
        self.signing = s;
        self
    }
    pub fn inrelease(mut self, on: bool) -> Suite {
        self.inrelease = on;
        self
    }
    pub fn release_gpg(mut self, on: bool) -> Suite {
        self.release_gpg = on;
        self
    }

    /// The Packages text of one index, as published (before compression).
    pub fn index_text(&self, component: &str, arch: &str) -> String {
        if let Some((_, _, t)) = self
            .raw_indices
            .iter()
            .find(|(c, a, _)| c == component && a == arch)
        {
            return t.clone();
        }
        self.packages
            .iter()
            .filter(|(c, p)| c == component && (p.arch() == arch || p.arch() == "all"))
            .map(|(_, p)| p.stanza())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A `.deb` written to `pool/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDeb {
    pub name: String,
    pub version: String,
    pub arch: String,
    /// Relative to the repository root (the `Filename:` field).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

/// What [`FixtureRepo::publish`] wrote for a suite.
#[derive(Debug, Clone)]
pub struct PublishedSuite {
    /// `<root>/dists/<dir>`.
    pub dir: PathBuf,
    /// The Release text (what InRelease signs).
    pub release: String,
    /// Every file listed in the Release: path relative to `dir` -> (sha256, size).
    pub files: BTreeMap<String, (String, u64)>,
    pub debs: Vec<PublishedDeb>,
}

impl PublishedSuite {
    pub fn sha256(&self, path: &str) -> Option<&str> {
        self.files.get(path).map(|(h, _)| h.as_str())
    }
}

/// A repository directory plus the key that signs it.
pub struct FixtureRepo {
    root: PathBuf,
    key: Arc<TestKey>,
    keyring_path: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl fmt::Debug for FixtureRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FixtureRepo")
            .field("root", &self.root)
            .field("key", &self.key.primary_fingerprint())
            .finish()
    }
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Writes `data` to `path` via a temp file and a rename, creating parent directories.
fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut t = tempfile::NamedTempFile::new_in(dir).map_err(io_err(dir))?;
    t.write_all(data).map_err(io_err(path))?;
    t.persist(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Removes every file under `dir` except `by-hash` copies (archives keep those for a while).
fn clean_suite_dir(dir: &Path) -> Result<()> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in rd {
        let e = e.map_err(io_err(dir))?;
        let p = e.path();
        let ft = e.file_type().map_err(io_err(&p))?;
        if ft.is_dir() {
            if e.file_name() != "by-hash" {
                clean_suite_dir(&p)?;
            }
        } else {
            std::fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    Ok(())
}

impl FixtureRepo {
    /// A repository in `root` (created if needed) with a freshly generated key.
    pub fn new(root: impl Into<PathBuf>) -> Result<FixtureRepo> {
        let key = generate_key("OPaaS Test Archive <archive@example.invalid>")?;
        FixtureRepo::with_key(root, Arc::new(key))
    }

    /// A repository in a temporary directory, removed on drop.
    pub fn temp() -> Result<FixtureRepo> {
        let tmp = tempfile::tempdir().map_err(io_err(Path::new("(tempdir)")))?;
        let mut r = FixtureRepo::new(tmp.path())?;
        r._tmp = Some(tmp);
        Ok(r)
    }

    /// A repository in `root` signed with `key`.
    pub fn with_key(root: impl Into<PathBuf>, key: Arc<TestKey>) -> Result<FixtureRepo> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_err(&root))?;
        let keyring_path = root.join("opaas-test-archive-keyring.gpg");
        write_file(&keyring_path, &key.public_binary()?)?;
        Ok(FixtureRepo {
            root,
            key,
            keyring_path,
            _tmp: None,
        })
    }

    /// The directory to serve (`dists/` and `pool/` are in it).
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `root/<rel>`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel.trim_start_matches('/'))
    }
    /// The binary public keyring of the signing key.
    pub fn keyring_path(&self) -> &Path {
        &self.keyring_path
    }
    pub fn keyring(&self) -> Result<Keyring> {
        Ok(Keyring::from_file(&self.keyring_path)?)
    }
    pub fn key(&self) -> &Arc<TestKey> {
        &self.key
    }

    /// Publishes several suites.
    pub fn publish_all(&self, suites: &[Suite]) -> Result<Vec<PublishedSuite>> {
        suites.iter().map(|s| self.publish(s)).collect()
    }

    /// Writes (or rewrites) one suite: its `.deb`s, indices, by-hash copies, Release, InRelease
    /// and Release.gpg. Everything but by-hash copies left from an earlier publish is removed.
    pub fn publish(&self, suite: &Suite) -> Result<PublishedSuite> {
        if suite.dir.is_empty() || suite.dir.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(Error::Invalid(format!(
                "bad suite directory {:?}",
                suite.dir
            )));
        }
        let dir = self.root.join("dists").join(&suite.dir);
        clean_suite_dir(&dir)?;
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;

        // 1. the .debs, and the stanzas that describe them
        let mut packages = Vec::with_capacity(suite.packages.len());
        let mut debs = Vec::new();
        for (comp, p) in &suite.packages {
            if !suite.components.contains(comp) {
                return Err(Error::Invalid(format!(
                    "package {} is in component {comp}, which suite {} does not have",
                    p.name(),
                    suite.name
                )));
            }
            let p = match &p.deb {
                None => p.clone(),
                Some(spec) => {
                    let (p, d) = self.write_deb(comp, p, spec)?;
                    debs.push(d);
                    p
                }
            };
            packages.push((comp.clone(), p));
        }
        let built = Suite {
            packages,
            ..suite.clone()
        };

        // 2. the indices
        let mut files = BTreeMap::new();
        for comp in &suite.components {
            for arch in &suite.architectures {
                let base = format!("{comp}/binary-{arch}/Packages");
                let text = built.index_text(comp, arch);
                let mut listed_plain = false;
                for c in &suite.compressions {
                    let rel = format!("{base}{}", c.ext());
                    let mut bytes = c.compress(text.as_bytes()).map_err(io_err(&dir))?;
                    for (path, m) in &suite.mangles {
                        if *path == rel {
                            m.apply(&mut bytes);
                        }
                    }
                    let sha = sha256_hex(&bytes);
                    write_file(&dir.join(&rel), &bytes)?;
                    if suite.acquire_by_hash {
                        write_file(
                            &dir.join(format!("{comp}/binary-{arch}/by-hash/SHA256/{sha}")),
                            &bytes,
                        )?;
                    }
                    listed_plain |= *c == Compression::Plain;
                    files.insert(rel, (sha, bytes.len() as u64));
                }
                if !listed_plain && suite.list_uncompressed {
                    files.insert(base, (sha256_hex(text.as_bytes()), text.len() as u64));
                }
            }
        }

        // 3. the Release and its signatures
        let release = release_text(suite, &files);
        write_file(&dir.join("Release"), release.as_bytes())?;
        let key = match &suite.signing {
            Signing::RepoKey => Some(&*self.key),
            Signing::Key(k) => Some(&**k),
            Signing::Unsigned => None,
        };
        if let Some(key) = key {
            if suite.inrelease {
                write_file(
                    &dir.join("InRelease"),
                    key.sign_cleartext(&release)?.as_bytes(),
                )?;
            }
            if suite.release_gpg {
                write_file(
                    &dir.join("Release.gpg"),
                    key.sign_detached(release.as_bytes())?.as_bytes(),
                )?;
            }
        }
        Ok(PublishedSuite {
            dir,
            release,
            files,
            debs,
        })
    }

    fn write_deb(
        &self,
        comp: &str,
        p: &Package,
        spec: &DebSpec,
    ) -> Result<(Package, PublishedDeb)> {
        let mut p = p.clone();
        let mut files = spec.files.clone();
        if files.is_empty() {
            let readme = format!("{} {}\n", p.name(), p.version());
            files.push((
                format!("/usr/share/doc/{}/README", p.name()),
                readme.into_bytes(),
                0o644,
            ));
        }
        for k in POOL_FIELDS {
            p.set(k, "");
        }
        if p.get("Maintainer").is_none() {
            p.set("Maintainer", "OPaaS Test <test@example.invalid>");
        }
        if p.get("Installed-Size").is_none() {
            let bytes: usize = files.iter().map(|(_, c, _)| c.len()).sum();
            p.set("Installed-Size", &bytes.div_ceil(1024).max(1).to_string());
        }
        if p.get("Description").is_none() {
            let d = format!("fixture package {}\n generated by opaas-testkit", p.name());
            p.set("Description", &d);
        }
        let deb = build_deb(&p.stanza(), &files, &spec.scripts)?;
        let filename = p.pool_path(comp);
        let path = self.root.join(&filename);
        if let Ok(old) = std::fs::read(&path) {
            if old != deb.bytes {
                return Err(Error::Invalid(format!(
                    "{filename} already exists with other content; give the package another version"
                )));
            }
        }
        write_file(&path, &deb.bytes)?;
        let sha = sha256_hex(&deb.bytes);
        let size = deb.bytes.len() as u64;
        p.set("Filename", &filename);
        p.set("Size", &size.to_string());
        p.set("SHA256", &sha);
        let d = PublishedDeb {
            name: p.name().to_string(),
            version: p.version().to_string(),
            arch: p.arch().to_string(),
            filename,
            size,
            sha256: sha,
        };
        Ok((p, d))
    }
}

fn release_text(suite: &Suite, files: &BTreeMap<String, (String, u64)>) -> String {
    use opaas_repo::release::format_rfc2822;
    let yes = |b: bool| if b { "yes" } else { "" };
    let mut fields: Vec<(String, String)> = [
        ("Origin", suite.origin.clone()),
        ("Label", suite.label.clone()),
        ("Suite", suite.name.clone()),
        ("Codename", suite.codename.clone()),
        (
            "Date",
            format_rfc2822(suite.date.unwrap_or_else(SystemTime::now)),
        ),
        (
            "Valid-Until",
            suite.valid_until.map(format_rfc2822).unwrap_or_default(),
        ),
        ("NotAutomatic", yes(suite.not_automatic).into()),
        (
            "ButAutomaticUpgrades",
            yes(suite.but_automatic_upgrades).into(),
        ),
        ("Acquire-By-Hash", yes(suite.acquire_by_hash).into()),
        ("Architectures", suite.architectures.join(" ")),
        ("Components", suite.components.join(" ")),
        ("Description", "OPaaS test fixture".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in &suite.release_fields {
        match fields.iter_mut().find(|(f, _)| f.eq_ignore_ascii_case(k)) {
            Some(f) => f.1 = v.clone(),
            None => fields.push((k.clone(), v.clone())),
        }
    }
    let mut out = String::new();
    for (k, v) in fields.iter().filter(|(_, v)| !v.is_empty()) {
        out.push_str(&format!("{k}: {v}\n"));
    }
    let width = files
        .values()
        .map(|(_, s)| s.to_string().len())
        .max()
        .unwrap_or(1);
    out.push_str("SHA256:\n");
    for (path, (sha, size)) in files {
        out.push_str(&format!(" {sha} {size:>width$} {path}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanza_round_trip_and_fields() {
        let p = Package::from_stanza(
            "Package: a\nVersion: 1\nArchitecture: all\nDescription: x\n long\n",
        )
        .depends("b (>= 1)")
        .field("version", "2");
        assert_eq!(p.version(), "2");
        assert_eq!(
            p.stanza(),
            "Package: a\nVersion: 2\nArchitecture: all\nDescription: x\n long\nDepends: b (>= 1)\n"
        );
        assert_eq!(p.pool_path("main"), "pool/main/a/a/a_2_all.deb");
        let l = Package::new("libfoo1", "3:1.2-1", "amd64");
        assert_eq!(
            l.pool_path("contrib"),
            "pool/contrib/libf/libfoo1/libfoo1_1.2-1_amd64.deb"
        );
    }

    #[test]
    fn publishes_a_verifiable_suite() {
        let repo = FixtureRepo::temp().expect("repo");
        let s = Suite::new("fixture")
            .architectures(&["amd64", "arm64"])
            .acquire_by_hash(true)
            .package("main", Package::new("hello", "1.0", "amd64").with_deb())
            .package("main", Package::new("common", "1.0", "all"));
        let p = repo.publish(&s).expect("publish");
        let rel = opaas_repo::release::Release::parse(&p.release).expect("parse");
        assert!(rel.acquire_by_hash);
        for a in ["amd64", "arm64"] {
            for ext in ["", ".xz", ".gz"] {
                assert!(rel
                    .files
                    .contains_key(&format!("main/binary-{a}/Packages{ext}")));
            }
            assert!(!p.dir.join(format!("main/binary-{a}/Packages")).exists());
        }
        let xz = &p.files["main/binary-amd64/Packages.xz"].0;
        assert!(p
            .dir
            .join(format!("main/binary-amd64/by-hash/SHA256/{xz}"))
            .exists());
        let kr = repo.keyring().expect("keyring");
        let inr = std::fs::read(p.dir.join("InRelease")).expect("InRelease");
        let v = opaas_repo::sig::verify_cleartext(&kr, &inr).expect("verify");
        assert_eq!(
            String::from_utf8_lossy(&v.signed_text),
            p.release.trim_end()
        );
        let r = std::fs::read(p.dir.join("Release")).expect("Release");
        let g = std::fs::read(p.dir.join("Release.gpg")).expect("Release.gpg");
        opaas_repo::sig::verify_detached(&kr, &r, &g).expect("detached");
        // the deb is where the stanza says, with its size and hash
        let text = s.index_text("main", "amd64");
        assert!(text.contains("Package: common"));
        let d = &p.debs[0];
        let bytes = std::fs::read(repo.path(&d.filename)).expect("deb");
        assert_eq!(bytes.len() as u64, d.size);
        assert_eq!(sha256_hex(&bytes), d.sha256);
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut liblzma::read::XzDecoder::new(
                std::fs::File::open(p.dir.join("main/binary-amd64/Packages.xz")).expect("xz"),
            ),
            &mut plain,
        )
        .expect("unxz");
        let plain = String::from_utf8(plain).expect("utf8");
        assert!(
            plain.contains(&format!("SHA256: {}\n", d.sha256)),
            "{plain}"
        );
        assert!(plain.contains(&format!("Filename: {}\n", d.filename)));
        assert_eq!(
            sha256_hex(plain.as_bytes()),
            p.files["main/binary-amd64/Packages"].0
        );
        // a republish keeps by-hash copies but drops files no longer published
        let p2 = repo
            .publish(
                &s.clone()
                    .compressions(&[Compression::Gz])
                    .acquire_by_hash(false),
            )
            .expect("republish");
        assert!(!p2.dir.join("main/binary-amd64/Packages.xz").exists());
        assert!(p2
            .dir
            .join(format!("main/binary-amd64/by-hash/SHA256/{xz}"))
            .exists());
    }
}
