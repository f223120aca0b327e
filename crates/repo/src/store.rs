//! The on-disk cache of verified indices, and `update`, which fills it.
//!
//! Layout (versioned so a format change never misreads an old cache):
//!
//! ```text
//! <cache>/indices-v2/lock                      exclusive lock held by `update`
//! <cache>/indices-v2/<mirror-slug>/<suite>/
//!     InRelease                                the verified signed file as fetched (or
//!     Release + Release.gpg                    when the mirror has no InRelease)
//!     state.json                               what is current: Release fields + index ids
//!     <sha256>.Packages  <sha256>.idx          decompressed, verified text and its table
//!     <sha256>.Packages.xz (or .gz)            the compressed index exactly as the signed
//!                                              Release lists it, named by its own SHA256: what
//!                                              a signed bundle ships (see [`signed_suite`])
//! ```
//!
//! Every file is written to a temp name and renamed; `state.json` is renamed last, so a crash
//! leaves either the old state or the new one. Text files are named by the SHA256 of their
//! content (from the signed Release), so they are immutable and can be mapped safely.
//! `update` only downloads an index whose SHA256 in the new signed Release differs from the one
//! cached.

use crate::catalog::{ArchiveKind, Distro};
use crate::http::{Http, HttpError};
use crate::index::{write_idx, IndexFile, ScanWriter};
use crate::mirrors::Mirrors;
use crate::release::{FileEntry, Release, ReleaseError};
use crate::sig::{self, Keyring, SigError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Everything that can go wrong reading a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{url}: signature check failed: {source}. The mirror may be compromised or serving another archive; check the mirror URL, or pass --keyring FILE if it is signed by another key")]
    Signature { url: String, source: SigError },
    #[error("{url}: {source}")]
    Release { url: String, source: ReleaseError },
    #[error("{url}: the Release file expired at {valid_until} (Valid-Until); the mirror is stale or replaying old data. Use an up-to-date mirror")]
    Expired { url: String, valid_until: String },
    #[error("{url}: the Release file is dated {date}, in the future; check this machine's clock")]
    NotYetValid { url: String, date: String },
    #[error("{url}: serves suite '{got}', expected '{want}'; check the mirror URL")]
    WrongSuite {
        url: String,
        got: String,
        want: String,
    },
    #[error("{url}: size mismatch: the signed Release says {expected} bytes, got {got}")]
    SizeMismatch {
        url: String,
        expected: u64,
        got: u64,
    },
    #[error("{url}: SHA256 mismatch: the signed Release says {expected}, got {got}")]
    HashMismatch {
        url: String,
        expected: String,
        got: String,
    },
    #[error("{url}: compressed data is corrupt or truncated: {message}")]
    Decompress { url: String, message: String },
    #[error("{suite}: the signed Release lists no Packages index for {component}/binary-{arch}; the mirror does not carry this component or architecture")]
    MissingIndex {
        suite: String,
        component: String,
        arch: String,
    },
    #[error("no cached indices for {what}; run `opaas update --distro {distro} --arch {arch}` (without --offline) first")]
    NotCached {
        what: String,
        distro: String,
        arch: String,
    },
    #[error("cache {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("keyring: {0}")]
    Keyring(SigError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RepoError + '_ {
    move |source| RepoError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Progress of an update, reported by the library and drawn by the binary.
pub trait UpdateProgress: Sync {
    /// One index file (or signed Release) finished: `fetched` false means unchanged/cached.
    fn file_done(&self, _what: &str, _bytes: u64, _fetched: bool) {}
}

/// A progress sink that ignores everything.
pub struct NoProgress;
impl UpdateProgress for NoProgress {}

/// What one Packages index is: where it comes from and its content id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IndexState {
    pub component: String,
    pub arch: String,
    /// SHA256 of the decompressed text (the cache file name).
    pub id: String,
    pub size: u64,
    /// The file as downloaded (compressed), kept for signed bundles. Absent in caches written
    /// before it was kept: such an index counts as not cached and is fetched again once.
    #[serde(default)]
    pub raw: Option<RawState>,
}

/// The compressed index file as the signed Release lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RawState {
    /// Path under `dists/<suite>/`, e.g. `main/binary-amd64/Packages.xz`.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

impl RawState {
    /// The cache file name: `<sha256>.<base name>` (`….Packages` for an uncompressed index,
    /// the same file as the decompressed text).
    fn file_name(&self) -> String {
        raw_file_name(&self.sha256, &self.path)
    }
}

fn raw_file_name(sha256: &str, path: &str) -> String {
    format!("{sha256}.{}", path.rsplit('/').next().unwrap_or(path))
}

/// The cached state of one suite.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteState {
    pub mirror: String,
    pub suite: String,
    pub codename: String,
    pub origin: String,
    pub label: String,
    pub priority: i32,
    pub date: Option<String>,
    pub valid_until: Option<String>,
    pub fetched_at: u64,
    pub indices: Vec<IndexState>,
}

/// The cache root.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    pub fn new(dir: impl Into<PathBuf>) -> Cache {
        Cache {
            root: dir.into().join("indices-v2"),
        }
    }

    /// `$OPAAS_CACHE_DIR`, else `$XDG_CACHE_HOME/opaas`, else `~/.cache/opaas`.
    pub fn default_dir() -> PathBuf {
        if let Some(d) = std::env::var_os("OPAAS_CACHE_DIR").filter(|d| !d.is_empty()) {
            return PathBuf::from(d);
        }
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(x).join("opaas");
        }
        std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".cache/opaas"))
            .unwrap_or_else(|| PathBuf::from("/var/cache/opaas"))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn suite_dir(&self, mirror: &str, suite: &str) -> PathBuf {
        let slug: String = mirror
            .split("://")
            .last()
            .unwrap_or(mirror)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.root.join(slug).join(suite.replace('/', "_"))
    }

    fn lock(&self) -> Result<std::fs::File, RepoError> {
        std::fs::create_dir_all(&self.root).map_err(io_err(&self.root))?;
        let p = self.root.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(io_err(&p))?;
        f.lock().map_err(io_err(&p))?;
        Ok(f)
    }

    /// Reads a suite's cached state, if any.
    pub fn suite_state(&self, mirror: &str, suite: &str) -> Option<SuiteState> {
        let p = self.suite_dir(mirror, suite).join("state.json");
        serde_json::from_slice(&std::fs::read(p).ok()?).ok()
    }
}

/// What to fetch: one distro on some architectures with some components.
pub struct Target<'a> {
    pub distro: &'a Distro,
    pub arches: Vec<String>,
    pub components: Vec<String>,
    pub mirrors: Mirrors,
    /// Parsed on first use (signature checks), not by loading cached indices.
    pub keyring: crate::keyrings::LazyKeyring,
}

impl Target<'_> {
    /// (mirror url, suite) for every pocket, in catalog order.
    pub fn pockets(&self) -> impl Iterator<Item = (&str, &str)> {
        self.distro.pockets.iter().map(|p| {
            let m = self.mirrors.for_archive(p.archive);
            (m.url.as_str(), p.suite.as_str())
        })
    }

    /// Whether `suite` is one of the distro's security pockets.
    pub fn is_security(&self, suite: &str) -> bool {
        self.distro
            .pockets
            .iter()
            .any(|p| p.suite == suite && p.archive == ArchiveKind::Security)
    }
}

/// The result of an update.
#[derive(Debug, Default)]
pub struct UpdateReport {
    pub indices_fetched: usize,
    pub indices_unchanged: usize,
    pub bytes_fetched: u64,
}

/// A `Write` that hashes and counts what passes through.
struct HashingWriter<W: Write> {
    inner: W,
    hash: Sha256,
    n: u64,
}
impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.hash.update(&b[..k]);
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Loads the cached index `id` of `dir`; a table of an older format (or a missing one) is
/// rebuilt from the cached text when that text still has the SHA-256 it is named by, so a
/// new table format needs neither the network nor a new download.
fn load_index(dir: &Path, id: &str) -> io::Result<IndexFile> {
    let (tp, ip) = (
        dir.join(format!("{id}.Packages")),
        dir.join(format!("{id}.idx")),
    );
    if let Ok(f) = IndexFile::load(&tp, &ip) {
        return Ok(f);
    }
    let mut sw = ScanWriter::new(HashingWriter {
        inner: io::sink(),
        hash: Sha256::new(),
        n: 0,
    });
    io::copy(&mut std::fs::File::open(&tp)?, &mut sw)?;
    let (hw, table) = sw.finish()?;
    let hash: [u8; 32] = hw.hash.finalize().into();
    if hex::encode(hash) != id {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "cached Packages text does not match its name",
        ));
    }
    let tmp = TempFile(Some(tmp_name(dir, "idx")));
    let tmpp = tmp.0.clone().unwrap_or_default();
    let mut w = io::BufWriter::new(std::fs::File::create(&tmpp)?);
    write_idx(&mut w, &hash, hw.n, &table)?;
    w.flush()?;
    drop(w);
    tmp.persist(&ip)
        .map_err(|e| io::Error::other(e.to_string()))?;
    IndexFile::load(&tp, &ip)
}

fn tmp_name(dir: &Path, what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    dir.join(format!(
        ".tmp.{what}.{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Removes a temp file on drop unless it was renamed into place.
struct TempFile(Option<PathBuf>);
impl TempFile {
    fn persist(mut self, to: &Path) -> Result<(), RepoError> {
        if let Some(p) = self.0.take() {
            std::fs::rename(&p, to).map_err(io_err(to))?;
        }
        Ok(())
    }
}
impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), RepoError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let t = TempFile(Some(tmp_name(dir, "w")));
    let tp = t.0.clone().unwrap_or_default();
    let mut f = std::fs::File::create(&tp).map_err(io_err(&tp))?;
    f.write_all(data).map_err(io_err(&tp))?;
    f.sync_all().map_err(io_err(&tp))?;
    t.persist(path)
}

/// Fetches and verifies the signed Release of a suite: InRelease, else Release + Release.gpg.
/// A signature that does not verify is fetched again twice: a mirror that cuts responses
/// short hands out truncated signed files (a forged one fails every time).
/// A suite's signed Release as fetched: `InRelease`, or `Release` and its detached signature.
struct SignedRelease {
    raw: Vec<u8>,
    detached: Option<Vec<u8>>,
    release: Release,
}

fn fetch_release(
    http: &Http,
    keyring: &Keyring,
    mirror: &str,
    suite: &str,
) -> Result<SignedRelease, RepoError> {
    let mut tries = 0;
    loop {
        match fetch_release_once(http, keyring, mirror, suite) {
            Err(RepoError::Signature { .. }) if tries < 2 => tries += 1,
            r => return r,
        }
    }
}

fn fetch_release_once(
    http: &Http,
    keyring: &Keyring,
    mirror: &str,
    suite: &str,
) -> Result<SignedRelease, RepoError> {
    let base = format!("{mirror}/dists/{suite}");
    let url = format!("{base}/InRelease");
    let (raw, detached, text) = match http.get_bytes(&url) {
        Ok(raw) => {
            let v =
                sig::verify_cleartext(keyring, &raw).map_err(|source| RepoError::Signature {
                    url: url.clone(),
                    source,
                })?;
            (raw, None, v.signed_text)
        }
        Err(HttpError::NotFound { .. }) => {
            let rurl = format!("{base}/Release");
            let rel = http.get_bytes(&rurl)?;
            let sig_bytes = match http.get_bytes(&format!("{rurl}.gpg")) {
                Err(HttpError::NotFound { .. }) => {
                    return Err(RepoError::Signature {
                        url: rurl,
                        source: SigError::Malformed(
                            "the repository is not signed (no InRelease, no Release.gpg)".into(),
                        ),
                    })
                }
                r => r?,
            };
            sig::verify_detached(keyring, &rel, &sig_bytes).map_err(|source| {
                RepoError::Signature {
                    url: rurl.clone(),
                    source,
                }
            })?;
            (rel.clone(), Some(sig_bytes), rel)
        }
        Err(e) => return Err(e.into()),
    };
    let text = String::from_utf8_lossy(&text).into_owned();
    let release = Release::parse(&text).map_err(|source| RepoError::Release {
        url: url.clone(),
        source,
    })?;
    let now = SystemTime::now();
    if let Some(vu) = release.valid_until {
        if vu < now {
            return Err(RepoError::Expired {
                url,
                valid_until: crate::release::format_rfc2822(vu),
            });
        }
    }
    if let Some(d) = release.date {
        if d > now + Duration::from_secs(600) {
            return Err(RepoError::NotYetValid {
                url,
                date: crate::release::format_rfc2822(d),
            });
        }
    }
    if release.suite != suite && release.codename != suite {
        return Err(RepoError::WrongSuite {
            url,
            got: format!("{}/{}", release.suite, release.codename),
            want: suite.to_string(),
        });
    }
    Ok(SignedRelease {
        raw,
        detached,
        release,
    })
}

/// The compressed variant to download: (path in Release, entry, compression).
fn pick_variant<'r>(rel: &'r Release, base: &str) -> Option<(String, &'r FileEntry, &'static str)> {
    for ext in [".xz", ".gz", ""] {
        let p = format!("{base}{ext}");
        if let Some(e) = rel.files.get(&p) {
            return Some((p, e, ext));
        }
    }
    None
}

fn check_size_hash(url: &str, want: &FileEntry, n: u64, hash: [u8; 32]) -> Result<(), RepoError> {
    if n != want.size {
        return Err(RepoError::SizeMismatch {
            url: url.to_string(),
            expected: want.size,
            got: n,
        });
    }
    let got = hex::encode(hash);
    if got != want.sha256 {
        return Err(RepoError::HashMismatch {
            url: url.to_string(),
            expected: want.sha256.clone(),
            got,
        });
    }
    Ok(())
}

/// Downloads, verifies, decompresses and indexes one Packages file. Returns (id, size, bytes fetched).
fn fetch_index(
    http: &Http,
    dir: &Path,
    mirror: &str,
    suite: &str,
    rel: &Release,
    component: &str,
    arch: &str,
) -> Result<(IndexState, u64, bool), RepoError> {
    let base = format!("{component}/binary-{arch}/Packages");
    let (path, entry, ext) = pick_variant(rel, &base).ok_or_else(|| RepoError::MissingIndex {
        suite: suite.to_string(),
        component: component.to_string(),
        arch: arch.to_string(),
    })?;
    // the identity of the decompressed text: listed in the Release for every archive we know
    let plain = rel.files.get(&base);
    let id_known = plain.map(|e| e.sha256.clone());
    let raw = RawState {
        path: path.clone(),
        sha256: entry.sha256.clone(),
        size: entry.size,
    };
    if let Some(id) = &id_known {
        // cached and still readable (a table in an older format is rebuilt), the compressed
        // file too
        if load_index(dir, id).is_ok() && dir.join(raw.file_name()).is_file() {
            let size = plain.map_or(0, |e| e.size);
            return Ok((
                IndexState {
                    component: component.into(),
                    arch: arch.into(),
                    id: id.clone(),
                    size,
                    raw: Some(raw),
                },
                0,
                false,
            ));
        }
    }
    let url = if rel.acquire_by_hash {
        let d = base.rsplit_once('/').map_or("", |(d, _)| d);
        format!("{mirror}/dists/{suite}/{d}/by-hash/SHA256/{}", entry.sha256)
    } else {
        format!("{mirror}/dists/{suite}/{path}")
    };
    // 1. download the compressed file to a temp file, verify size + SHA256 before parsing
    let dl = TempFile(Some(tmp_name(dir, "dl")));
    let dlp = dl.0.clone().unwrap_or_default();
    let mut f = std::fs::File::options()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&dlp)
        .map_err(io_err(&dlp))?;
    let n = match http.get_to_file_sized(&url, &mut f, Some(entry.size)) {
        Err(HttpError::NotFound { .. }) if rel.acquire_by_hash => {
            // some mirrors lag behind on by-hash; the plain path is verified the same way
            http.get_to_file_sized(
                &format!("{mirror}/dists/{suite}/{path}"),
                &mut f,
                Some(entry.size),
            )?
        }
        r => r?,
    };
    drop(f);
    let mut h = Sha256::new();
    let mut rf = std::fs::File::open(&dlp).map_err(io_err(&dlp))?;
    io::copy(&mut rf, &mut h).map_err(io_err(&dlp))?;
    check_size_hash(&url, entry, n, h.finalize().into())?;
    // 2. decompress + index in one pass
    let tx = TempFile(Some(tmp_name(dir, "txt")));
    let txp = tx.0.clone().unwrap_or_default();
    let out = std::fs::File::create(&txp).map_err(io_err(&txp))?;
    let mut sw = ScanWriter::new(HashingWriter {
        inner: io::BufWriter::with_capacity(1 << 20, out),
        hash: Sha256::new(),
        n: 0,
    });
    let src =
        io::BufReader::with_capacity(1 << 20, std::fs::File::open(&dlp).map_err(io_err(&dlp))?);
    let mut reader: Box<dyn Read> = match ext {
        ".xz" => Box::new(liblzma::read::XzDecoder::new(src)),
        ".gz" => Box::new(flate2::read::GzDecoder::new(src)),
        _ => Box::new(src),
    };
    // Errors reading the decoder are the download's fault (flate2 reports a bad header or CRC
    // as InvalidInput, liblzma a cut stream as UnexpectedEof); errors writing are the cache's.
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if ext.is_empty() => {
                return Err(RepoError::Io {
                    path: dlp.clone(),
                    source: e,
                })
            }
            Err(e) => {
                return Err(RepoError::Decompress {
                    url,
                    message: e.to_string(),
                })
            }
        };
        sw.write_all(&buf[..k]).map_err(io_err(&txp))?;
    }
    let (hw, table) = sw.finish().map_err(io_err(&txp))?;
    let text_len = hw.n;
    let text_hash: [u8; 32] = hw.hash.finalize().into();
    let mut out = hw.inner.into_inner().map_err(|e| RepoError::Io {
        path: txp.clone(),
        source: e.into_error(),
    })?;
    out.flush().map_err(io_err(&txp))?;
    if let Some(p) = plain {
        check_size_hash(&format!("{url} (decompressed)"), p, text_len, text_hash)?;
    }
    let id = hex::encode(text_hash);
    let ix = TempFile(Some(tmp_name(dir, "idx")));
    let ixp = ix.0.clone().unwrap_or_default();
    let mut w = io::BufWriter::new(std::fs::File::create(&ixp).map_err(io_err(&ixp))?);
    write_idx(&mut w, &text_hash, text_len, &table).map_err(io_err(&ixp))?;
    w.flush().map_err(io_err(&ixp))?;
    tx.persist(&dir.join(format!("{id}.Packages")))?;
    ix.persist(&dir.join(format!("{id}.idx")))?;
    if !ext.is_empty() {
        // verified above: kept as the signed Release lists it, for signed bundles
        dl.persist(&dir.join(raw.file_name()))?;
    }
    Ok((
        IndexState {
            component: component.into(),
            arch: arch.into(),
            id,
            size: text_len,
            raw: Some(raw),
        },
        n,
        true,
    ))
}

/// Brings the cache up to date for `target`: verifies every suite's signed Release and fetches
/// the indices that changed. Indices are fetched in parallel (`jobs` at a time).
pub fn update(
    cache: &Cache,
    target: &Target,
    http: &Http,
    progress: &dyn UpdateProgress,
) -> Result<UpdateReport, RepoError> {
    let _lock = cache.lock()?;
    let mut report = UpdateReport::default();
    for (mirror, suite) in target.pockets() {
        let dir = cache.suite_dir(mirror, suite);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let keyring = target.keyring.get().map_err(RepoError::Keyring)?;
        let signed = fetch_release(http, keyring, mirror, suite)?;
        let rel = &signed.release;
        progress.file_done(&format!("{suite} InRelease"), signed.raw.len() as u64, true);
        let jobs: Vec<(String, String)> = target
            .components
            .iter()
            .flat_map(|c| target.arches.iter().map(move |a| (c.clone(), a.clone())))
            .collect();
        let results: Vec<Result<(IndexState, u64, bool), RepoError>> = std::thread::scope(|s| {
            let handles: Vec<_> = jobs
                .iter()
                .map(|(c, a)| {
                    let dir = &dir;
                    s.spawn(move || {
                        // a security archive may lack a component (e.g. no multiverse security updates)
                        fetch_index(http, dir, mirror, suite, rel, c, a)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(RepoError::Decompress {
                            url: suite.to_string(),
                            message: "worker panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut indices = Vec::new();
        for r in results {
            match r {
                Ok((st, n, fetched)) => {
                    progress.file_done(
                        &format!("{suite} {}/{}", st.component, st.arch),
                        n,
                        fetched,
                    );
                    if fetched {
                        report.indices_fetched += 1;
                        report.bytes_fetched += n;
                    } else {
                        report.indices_unchanged += 1;
                    }
                    indices.push(st);
                }
                Err(RepoError::MissingIndex { .. }) if target.is_security(suite) => {}
                Err(e) => return Err(e),
            }
        }
        // keep what other runs cached for other architectures/components of this suite, as
        // long as the new signed Release still lists exactly that content
        if let Some(prev) = cache.suite_state(mirror, suite) {
            for old in prev.indices {
                let covered = indices
                    .iter()
                    .any(|i: &IndexState| i.component == old.component && i.arch == old.arch);
                let path = format!("{}/binary-{}/Packages", old.component, old.arch);
                let still_valid = rel.files.get(&path).is_some_and(|e| e.sha256 == old.id)
                    && old.raw.as_ref().is_some_and(|r| {
                        rel.files.get(&r.path).is_some_and(|e| e.sha256 == r.sha256)
                    });
                if !covered && still_valid {
                    indices.push(old);
                }
            }
        }
        let state = SuiteState {
            mirror: mirror.to_string(),
            suite: suite.to_string(),
            codename: rel.codename.clone(),
            origin: rel.origin.clone(),
            label: rel.label.clone(),
            priority: rel.default_priority(),
            date: rel.date.map(crate::release::format_rfc2822),
            valid_until: rel.valid_until.map(crate::release::format_rfc2822),
            fetched_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            indices,
        };
        match &signed.detached {
            None => {
                write_atomic(&dir.join("InRelease"), &signed.raw)?;
                let _ = std::fs::remove_file(dir.join("Release.gpg"));
            }
            Some(sig) => {
                write_atomic(&dir.join("Release"), &signed.raw)?;
                write_atomic(&dir.join("Release.gpg"), sig)?;
                let _ = std::fs::remove_file(dir.join("InRelease"));
            }
        }
        let json = serde_json::to_vec_pretty(&state).map_err(|e| RepoError::Io {
            path: dir.clone(),
            source: e.into(),
        })?;
        write_atomic(&dir.join("state.json"), &json)?;
        gc_suite_dir(&dir, &state);
    }
    Ok(report)
}

/// Removes index files no longer referenced by `state` and stale temp files.
fn gc_suite_dir(dir: &Path, state: &SuiteState) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let keep = matches!(
            name.as_str(),
            "InRelease" | "Release" | "Release.gpg" | "state.json"
        ) || state.indices.iter().any(|i| {
            name == format!("{}.Packages", i.id)
                || name == format!("{}.idx", i.id)
                || i.raw.as_ref().is_some_and(|r| name == r.file_name())
        });
        if !keep {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Where a loaded index came from.
#[derive(Debug, Clone)]
pub struct SourceMeta {
    pub mirror: String,
    pub suite: String,
    pub codename: String,
    pub origin: String,
    pub label: String,
    pub component: String,
    pub arch: String,
    pub priority: i32,
    /// The signed Release's `Date` (RFC 2822), if it had one.
    pub date: Option<String>,
    /// SHA256 of the index text (what the signed Release lists for it); empty when the text
    /// did not come from the cache.
    pub index_id: String,
}

/// Opens the cached indices of `target` without touching the network.
/// Removes damaged index tables (see [`crate::universe::Universe::damaged_tables`]); the next
/// load rebuilds them from their Packages text.
pub fn remove_damaged(paths: &[PathBuf]) {
    for p in paths {
        let _ = std::fs::remove_file(p);
    }
}

/// [`load_cached`], with every table's CRC checked before returning (tables that failed are
/// rebuilt): for callers that keep the indices for long, such as the service.
pub fn load_cached_intact(
    cache: &Cache,
    target: &Target,
) -> Result<Vec<(SourceMeta, IndexFile)>, RepoError> {
    let loaded = load_cached(cache, target)?;
    let damaged: Vec<PathBuf> = loaded
        .iter()
        .filter_map(|(_, f)| f.damaged_path())
        .collect();
    if damaged.is_empty() {
        return Ok(loaded);
    }
    drop(loaded);
    remove_damaged(&damaged);
    load_cached(cache, target)
}

pub fn load_cached(
    cache: &Cache,
    target: &Target,
) -> Result<Vec<(SourceMeta, IndexFile)>, RepoError> {
    let mut out = Vec::new();
    for (mirror, suite) in target.pockets() {
        let not_cached = || RepoError::NotCached {
            what: format!("{suite} from {mirror}"),
            distro: target.distro.id.clone(),
            arch: target.arches.join(","),
        };
        let st = cache.suite_state(mirror, suite).ok_or_else(not_cached)?;
        let dir = cache.suite_dir(mirror, suite);
        for c in &target.components {
            for a in &target.arches {
                let Some(ix) = st
                    .indices
                    .iter()
                    .find(|i| &i.component == c && &i.arch == a)
                else {
                    if target.is_security(suite) {
                        continue;
                    }
                    return Err(not_cached());
                };
                // an index cached before the compressed file was kept is fetched again once
                if !ix
                    .raw
                    .as_ref()
                    .is_some_and(|r| dir.join(r.file_name()).is_file())
                {
                    return Err(not_cached());
                }
                let f = load_index(&dir, &ix.id).map_err(|_| not_cached())?;
                out.push((
                    SourceMeta {
                        mirror: mirror.to_string(),
                        suite: suite.to_string(),
                        codename: st.codename.clone(),
                        origin: st.origin.clone(),
                        label: st.label.clone(),
                        component: c.clone(),
                        arch: a.clone(),
                        priority: st.priority,
                        date: st.date.clone(),
                        index_id: ix.id.clone(),
                    },
                    f,
                ));
            }
        }
    }
    Ok(out)
}

/// One suite's signed files as a signed bundle ships them: the signed Release exactly as the
/// mirror served it and the compressed indices it lists, all read from the cache and checked
/// again (signature, then each file's size and SHA256 against the signed Release).
#[derive(Debug, Clone)]
pub struct SignedSuite {
    pub suite: String,
    /// `InRelease` when the mirror has one (else `None` and `release_gpg` is set).
    pub inrelease: Option<Vec<u8>>,
    /// `Release` and `Release.gpg` of a mirror without `InRelease`.
    pub release_gpg: Option<(Vec<u8>, Vec<u8>)>,
    /// The key that made the good signature.
    pub signer: sig::Signer,
    pub release: Release,
    /// (path under `dists/<suite>/`, bytes) of each index wanted.
    pub indices: Vec<(String, Vec<u8>)>,
}

/// What [`signed_suite`] is to gather: one index, and the id of the text the resolution read
/// from it (so a cache updated in between is noticed, not shipped).
pub struct WantedIndex<'a> {
    pub component: &'a str,
    pub arch: &'a str,
    pub index_id: &'a str,
}

/// The signed files of `suite` from `mirror` for a signed bundle (see [`SignedSuite`]).
pub fn signed_suite(
    cache: &Cache,
    keyring: &Keyring,
    mirror: &str,
    suite: &str,
    wanted: &[WantedIndex],
) -> Result<SignedSuite, RepoError> {
    let dir = cache.suite_dir(mirror, suite);
    let read = |name: &str| std::fs::read(dir.join(name));
    let (inrelease, release_gpg, verified, url) = match read("InRelease") {
        Ok(raw) => {
            let url = dir.join("InRelease").display().to_string();
            let v =
                sig::verify_cleartext(keyring, &raw).map_err(|source| RepoError::Signature {
                    url: url.clone(),
                    source,
                })?;
            (Some(raw), None, v, url)
        }
        Err(_) => {
            let url = dir.join("Release").display().to_string();
            let rel = read("Release").map_err(io_err(&dir.join("Release")))?;
            let sig_bytes = read("Release.gpg").map_err(io_err(&dir.join("Release.gpg")))?;
            let mut v = sig::verify_detached(keyring, &rel, &sig_bytes).map_err(|source| {
                RepoError::Signature {
                    url: url.clone(),
                    source,
                }
            })?;
            v.signed_text = rel.clone();
            (None, Some((rel, sig_bytes)), v, url)
        }
    };
    let release =
        Release::parse(&String::from_utf8_lossy(&verified.signed_text)).map_err(|source| {
            RepoError::Release {
                url: url.clone(),
                source,
            }
        })?;
    let state = cache.suite_state(mirror, suite);
    let mut indices = Vec::new();
    for w in wanted {
        let base = format!("{}/binary-{}/Packages", w.component, w.arch);
        let changed = || RepoError::NotCached {
            what: format!(
                "{suite} {}/{} as resolved (the cache was updated meanwhile; build again)",
                w.component, w.arch
            ),
            distro: suite.to_string(),
            arch: w.arch.to_string(),
        };
        if release.files.get(&base).map(|e| e.sha256.as_str()) != Some(w.index_id) {
            return Err(changed());
        }
        let raw = state
            .as_ref()
            .and_then(|st| {
                st.indices
                    .iter()
                    .find(|i| i.component == w.component && i.arch == w.arch && i.id == w.index_id)
            })
            .and_then(|i| i.raw.clone())
            .ok_or_else(changed)?;
        let entry = release.files.get(&raw.path).ok_or_else(changed)?;
        let p = dir.join(raw.file_name());
        let data = std::fs::read(&p).map_err(io_err(&p))?;
        let what = p.display().to_string();
        check_size_hash(
            &what,
            entry,
            data.len() as u64,
            Sha256::digest(&data).into(),
        )?;
        indices.push((raw.path, data));
    }
    Ok(SignedSuite {
        suite: suite.to_string(),
        inrelease,
        release_gpg,
        signer: verified.signer,
        release,
        indices,
    })
}
