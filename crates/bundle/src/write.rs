//! Writing a bundle tarball, deterministically.

use crate::render::{render_install_sh, render_readme};
use crate::{
    io_err, BundleError, BundleInput, BundlePackage, KeyringSource, Manifest, ManifestArchive,
    ManifestOptions, ManifestSuite, SignedArchive,
};
use sha2::{Digest, Sha256};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

mod gz;
mod sink;
mod source;
use crate::pagecache::{advise, Advice};
use gz::MixedGz;
use sink::TarFile;
use source::Sources;

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `.tar.gz` (the default: every admin knows it). .debs are already compressed, so their
    /// bytes go into stored deflate blocks (a copy); the tar headers and text members are
    /// compressed (see `write/gz.rs`).
    TarGz,
    /// `.tar.zst`
    TarZst,
}

impl Format {
    pub fn ext(self) -> &'static str {
        match self {
            Format::TarGz => "tar.gz",
            Format::TarZst => "tar.zst",
        }
    }
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "tar.gz" | "tgz" | "gz" => Some(Format::TarGz),
            "tar.zst" | "zst" | "zstd" => Some(Format::TarZst),
            _ => None,
        }
    }
}

/// The bundle id: 8 hex digits of the SHA256 of the resolution (and the tool version).
pub fn bundle_id(input: &BundleInput) -> String {
    let mut h = Sha256::new();
    let mut line = |s: &str| {
        h.update(s.as_bytes());
        h.update(b"\n");
    };
    // the tool version is part of the identity: another version may render another install.sh
    line(&input.tool_version);
    line(&input.distro.id);
    line(&input.arch);
    line(&input.request.join(" "));
    line(if input.recommends {
        "recommends"
    } else {
        "no-recommends"
    });
    line(&input.baseline);
    if input.archive.is_some() {
        // (unsigned bundles keep the ids they always had)
        line("signed");
    }
    if let Some(l) = &input.lock_sha256 {
        line(&format!("lock {l}"));
    }
    if !input.remove.is_empty() {
        line(&format!("remove {}", input.remove.join(" ")));
    }
    if input.mode != "install" && !input.mode.is_empty() {
        line(&format!(
            "mode {} host {} phased {}",
            input.mode, input.host, input.phased
        ));
        for a in &input.assumed {
            line(a);
        }
    }
    for h in &input.hosts {
        line(&format!("plan {} {}", h.host, h.digest));
        for f in &h.files {
            line(f);
        }
        if !h.remove.is_empty() {
            line(&format!("remove {}", h.remove.join(" ")));
        }
    }
    let mut pk: Vec<_> = input
        .packages
        .iter()
        .map(|p| format!("{} {} {} {}", p.name, p.arch, p.version, p.sha256))
        .collect();
    pk.sort();
    for p in pk {
        line(&p);
    }
    hex::encode(h.finalize())[..8].to_string()
}

/// The stanza with its Filename pointing into the flat repository.
fn flat_stanza(stanza: &str, filename: &str) -> String {
    let mut out = String::with_capacity(stanza.len() + 16);
    for (k, v) in opaas_deb::Paragraph::new(stanza).fields() {
        out.push_str(k);
        out.push_str(": ");
        out.push_str(if k == "Filename" { filename } else { v });
        out.push('\n');
    }
    out
}

fn tar_err(path: &Path) -> impl FnOnce(io::Error) -> BundleError + '_ {
    io_err(path)
}

struct Entry {
    path: String,
    mode: u32,
    data: EntryData,
}

impl Entry {
    fn mem(path: impl Into<String>, mode: u32, data: Vec<u8>) -> Entry {
        Entry {
            path: path.into(),
            mode,
            data: EntryData::Mem(data),
        }
    }
}

enum EntryData {
    Mem(Vec<u8>),
    /// A cached .deb: its path, size and (verified) SHA256.
    File(PathBuf, u64, String),
}

/// A bundle just written: where, its digest, and its manifest (no need to read it back).
#[derive(Debug, Clone)]
pub struct Written {
    pub path: PathBuf,
    pub file_name: String,
    pub size: u64,
    /// SHA256 of the tarball, lowercase hex.
    pub sha256: String,
    pub manifest: Manifest,
    /// `manifest.json` exactly as it is in the tarball.
    pub manifest_json: Vec<u8>,
    /// `sbom.cdx.json` exactly as it is in the tarball.
    pub sbom_json: Vec<u8>,
}

/// `offline_pkg_<distro>_<arch>_<id>.<ext>`: the file [`write_bundle`] writes for `input`.
/// Identical for the same resolution and format, so an existing file of that name (once
/// verified) is the bundle and need not be written again.
pub fn bundle_file_name(input: &BundleInput, format: Format) -> String {
    format!(
        "offline_pkg_{}_{}_{}.{}",
        input.distro.id,
        input.arch,
        bundle_id(input),
        format.ext()
    )
}

/// Writes `<out_dir>/offline_pkg_<distro>_<arch>_<id>.<ext>`.
pub fn write_bundle(
    input: &BundleInput,
    out_dir: &Path,
    format: Format,
) -> Result<Written, BundleError> {
    write_bundle_with(input, out_dir, format, &|_, _| {})
}

/// [`write_bundle`], calling `packed(done, total)` with the bytes of `.deb` files written so far
/// and in all, after each one (packing a big bundle takes seconds: the UI shows it).
pub fn write_bundle_with(
    input: &BundleInput,
    out_dir: &Path,
    format: Format,
    packed: &dyn Fn(u64, u64),
) -> Result<Written, BundleError> {
    write_bundle_streaming(input, out_dir, format, packed, &|_| Ok(()))
}

/// [`write_bundle_with`] while the `.deb` files may still be arriving: before a file is read,
/// `ready(path)` must return (it blocks until the file is complete, or fails). The tarball's
/// members keep their fixed order, so packing overlaps the downloads and the result is
/// byte-identical to packing after them.
pub fn write_bundle_streaming(
    input: &BundleInput,
    out_dir: &Path,
    format: Format,
    packed: &dyn Fn(u64, u64),
    ready: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<Written, BundleError> {
    let id = bundle_id(input);
    let top = format!("offline_pkg_{}_{}_{}", input.distro.id, input.arch, id);
    let mut pkgs = input.packages.clone();
    pkgs.sort_by(|a, b| a.name.cmp(&b.name).then(a.arch.cmp(&b.arch)));
    let manifest = Manifest {
        archive: input.archive.as_ref().map(manifest_archive),
        arch: input.arch.clone(),
        created: input.created.clone(),
        distro: input.distro.clone(),
        download_size: pkgs.iter().map(|p| p.size).sum(),
        format: 1,
        id: id.clone(),
        installed_size_kb: pkgs.iter().map(|p| p.installed_size_kb).sum(),
        lock_sha256: input.lock_sha256.clone(),
        options: ManifestOptions {
            baseline: input.baseline.clone(),
            recommends: input.recommends,
        },
        package_count: pkgs.len(),
        packages: pkgs.iter().map(|p| p.info.clone()).collect(),
        remove: input.remove.clone(),
        mode: if input.mode.is_empty() {
            "install".into()
        } else {
            input.mode.clone()
        },
        assumed: input.assumed.clone(),
        host: input.host.clone(),
        hosts: input.hosts.clone(),
        request: input.request.clone(),
        tool: format!("opaas {}", input.tool_version),
    };
    let manifest_json = manifest.to_json()?;
    let sbom = crate::sbom_json(input, &id, &pkgs, input.lock_sha256.as_deref())?;
    let install_sh = render_install_sh(input, &id)?;
    let readme = render_readme(input, &id)?;

    let mut entries: Vec<Entry> = vec![
        Entry::mem("install.sh", 0o755, install_sh.into_bytes()),
        Entry::mem("README.txt", 0o644, readme.into_bytes()),
        Entry::mem("manifest.json", 0o644, manifest_json.clone()),
        Entry::mem("build.log", 0o644, input.build_log.clone().into_bytes()),
        Entry::mem("sbom.cdx.json", 0o644, sbom.clone()),
    ];
    if !input.hosts.is_empty() && input.archive.is_some() {
        return Err(BundleError::Invalid(
            "a fleet upgrade bundle has a flat repository (unsigned): each host's plan is an index of its own".into(),
        ));
    }
    match &input.archive {
        Some(a) => signed_entries(a, &pkgs, &mut entries)?,
        None => flat_entries(input, &id, &pkgs, &mut entries, out_dir)?,
    }
    // SHA256SUMS: the .debs' sums are known (verified on download); the rest are hashed here
    let mut sums: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            let h = match &e.data {
                EntryData::Mem(b) => sha(b),
                EntryData::File(_, _, h) => h.clone(),
            };
            (e.path.clone(), h)
        })
        .collect();
    sums.sort();
    let sums_text: String = sums.iter().map(|(p, h)| format!("{h}  {p}\n")).collect();
    entries.insert(4, Entry::mem("SHA256SUMS", 0o644, sums_text.into_bytes()));

    let deb_total: u64 = pkgs.iter().map(|p| p.size).sum();
    let done = std::cell::Cell::new(0u64);
    let on_file = |n: u64| {
        done.set(done.get() + n);
        packed(done.get(), deb_total);
    };
    std::fs::create_dir_all(out_dir).map_err(io_err(out_dir))?;
    let final_path = out_dir.join(format!("{top}.{}", format.ext()));
    let tmp = out_dir.join(format!(".{top}.{}.tmp{}", format.ext(), std::process::id()));
    let result = (|| -> Result<(String, u64), BundleError> {
        let w = TarFile::create(&tmp)?;
        match format {
            Format::TarGz => {
                let enc = MixedGz::new(w, flate2::Compression::default()).map_err(io_err(&tmp))?;
                let enc = write_tar(
                    enc,
                    &top,
                    &entries,
                    input.created_epoch,
                    &tmp,
                    &on_file,
                    ready,
                )?;
                let w = enc.finish().map_err(io_err(&tmp))?;
                w.finish()
            }
            Format::TarZst => {
                let enc = zstd::stream::write::Encoder::new(w, 3).map_err(io_err(&tmp))?;
                let enc = write_tar(
                    enc,
                    &top,
                    &entries,
                    input.created_epoch,
                    &tmp,
                    &on_file,
                    ready,
                )?;
                let w = enc.finish().map_err(io_err(&tmp))?;
                w.finish()
            }
        }
    })();
    let (sha256, size) = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    std::fs::rename(&tmp, &final_path).map_err(io_err(&final_path))?;
    // the digest beside it: a rebuild of the same bundle then verifies it with one hash pass
    // (a failure here only costs that rebuild a full verification)
    let _ = crate::read::write_digest_file(&final_path, &sha256);
    Ok(Written {
        file_name: format!("{top}.{}", format.ext()),
        path: final_path,
        size,
        sha256,
        manifest,
        manifest_json,
        sbom_json: sbom,
    })
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The manifest's account of a signed archive.
fn manifest_archive(a: &SignedArchive) -> ManifestArchive {
    ManifestArchive {
        keyring: keyring_paths(&a.keyring),
        suites: a
            .suites
            .iter()
            .map(|s| ManifestSuite {
                components: s.components.clone(),
                date: s.date.clone(),
                signed_by: s.signed_by.clone(),
                suite: s.suite.clone(),
                valid_until: s.valid_until.clone(),
            })
            .collect(),
    }
}

/// The keyring files apt on the target is given: absolute paths on the target, or paths
/// relative to the bundle (`keyring/…`).
pub(crate) fn keyring_paths(k: &KeyringSource) -> Vec<String> {
    match k {
        KeyringSource::Target { path, .. } => vec![path.clone()],
        KeyringSource::Shipped(files) => files
            .iter()
            .map(|(name, _)| format!("keyring/{name}"))
            .collect(),
    }
}

/// A name that stays one path component and one shell word.
fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+' | b'~'))
}

/// A relative path without `..`, empty or odd components.
fn safe_path(p: &str) -> bool {
    !p.starts_with('/') && p.split('/').all(safe_component)
}

/// `archive/`: the signed files of every suite, then the .debs at their pool paths.
fn signed_entries(
    a: &SignedArchive,
    pkgs: &[BundlePackage],
    entries: &mut Vec<Entry>,
) -> Result<(), BundleError> {
    let bad = |what: &str| BundleError::Invalid(format!("unusable path '{what}' in the bundle"));
    if let KeyringSource::Shipped(files) = &a.keyring {
        for (name, data) in files {
            if !safe_component(name) {
                return Err(bad(name));
            }
            entries.push(Entry::mem(format!("keyring/{name}"), 0o644, data.clone()));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for s in &a.suites {
        if !safe_path(&s.suite) || !seen.insert(s.suite.clone()) {
            return Err(bad(&s.suite));
        }
        for (rel, data) in &s.files {
            if !safe_path(rel) {
                return Err(bad(rel));
            }
            entries.push(Entry::mem(
                format!("archive/dists/{}/{rel}", s.suite),
                0o644,
                data.clone(),
            ));
        }
    }
    let mut debs: Vec<&BundlePackage> = pkgs.iter().collect();
    debs.sort_by(|x, y| x.pool_path.cmp(&y.pool_path));
    let mut seen = std::collections::HashSet::new();
    for p in debs {
        if !safe_path(&p.pool_path) || !p.pool_path.ends_with(".deb") {
            return Err(bad(&p.pool_path));
        }
        if !seen.insert(p.pool_path.clone()) {
            return Err(BundleError::Invalid(format!(
                "two packages have the same file {}",
                p.pool_path
            )));
        }
        entries.push(deb_entry(format!("archive/{}", p.pool_path), p));
    }
    Ok(())
}

/// A bundled .deb at `path` in the tarball, copied from its place in the store.
fn deb_entry(path: String, p: &BundlePackage) -> Entry {
    Entry {
        path,
        mode: 0o644,
        data: EntryData::File(p.path.clone(), p.size, p.sha256.clone()),
    }
}

/// `repo/`: a flat repository of exactly the bundled .debs (unsigned bundles).
fn flat_entries(
    input: &BundleInput,
    id: &str,
    pkgs: &[BundlePackage],
    entries: &mut Vec<Entry>,
    out_dir: &Path,
) -> Result<(), BundleError> {
    let mut seen = std::collections::HashSet::new();
    for p in pkgs {
        if !seen.insert(p.filename.clone()) || p.filename.contains('/') || p.filename.is_empty() {
            return Err(BundleError::Invalid(format!(
                "bad or duplicate file name '{}' in the bundle",
                p.filename
            )));
        }
    }
    flat_index(input, id, pkgs, "repo", "", entries, out_dir)?;
    // a fleet: each host's plan is an index of its own under repo/plans/<n>/ whose Filename
    // fields point back at the shared .debs (a flat repository's Filename is relative to its
    // base URI, not to the index's directory)
    for (n, h) in input.hosts.iter().enumerate() {
        let mine: Vec<BundlePackage> = pkgs
            .iter()
            .filter(|p| h.files.contains(&p.filename))
            .cloned()
            .collect();
        if mine.len() != h.files.len() {
            return Err(BundleError::Invalid(format!(
                "the plan of {} names a file the bundle does not hold",
                h.host
            )));
        }
        let dir = format!("repo/plans/{}", n + 1);
        let label = format!(" plan {} ({})", n + 1, h.host);
        flat_index(input, id, &mine, &dir, &label, entries, out_dir)?;
    }
    for p in pkgs {
        entries.push(deb_entry(format!("repo/{}", p.filename), p));
    }
    Ok(())
}

/// `Packages`, `Packages.gz` and `Release` of `pkgs` in `dir`, whose Filename fields are
/// `./<file>` (relative to `repo/`, the base of the flat repository).
fn flat_index(
    input: &BundleInput,
    id: &str,
    pkgs: &[BundlePackage],
    dir: &str,
    label: &str,
    entries: &mut Vec<Entry>,
    out_dir: &Path,
) -> Result<(), BundleError> {
    let mut packages = String::new();
    for p in pkgs {
        packages.push_str(&flat_stanza(&p.stanza, &format!("./{}", p.filename)));
        packages.push('\n');
    }
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(packages.as_bytes()).map_err(io_err(out_dir))?;
    let packages_gz = gz.finish().map_err(io_err(out_dir))?;
    let release = format!(
        "Origin: OPaaS\nLabel: OPaaS offline bundle {id}{label}\nSuite: opaas-{id}\nCodename: {}\nDate: {}\nArchitectures: {}\nDescription: offline bundle {id} for {} {}\nSHA256:\n {} {} Packages\n {} {} Packages.gz\n",
        input.distro.codename,
        input.created_rfc2822,
        input.arch,
        input.distro.id,
        input.arch,
        sha(packages.as_bytes()),
        packages.len(),
        sha(&packages_gz),
        packages_gz.len()
    );
    entries.push(Entry::mem(
        format!("{dir}/Packages"),
        0o644,
        packages.into_bytes(),
    ));
    entries.push(Entry::mem(format!("{dir}/Packages.gz"), 0o644, packages_gz));
    entries.push(Entry::mem(
        format!("{dir}/Release"),
        0o644,
        release.into_bytes(),
    ));
    Ok(())
}

fn header(path: &str, size: u64, mode: u32, mtime: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    let _ = h.set_username("root");
    let _ = h.set_groupname("root");
    let _ = path;
    h
}

/// Where the tar stream goes: a compressor that may treat already-compressed member data
/// specially.
trait TarSink: Write {
    /// Writes exactly `size` bytes of `src`, which are already compressed.
    fn write_opaque(&mut self, src: &mut dyn Read, size: u64) -> io::Result<()>;
}

impl<W: gz::FillWrite> TarSink for MixedGz<W> {
    fn write_opaque(&mut self, src: &mut dyn Read, size: u64) -> io::Result<()> {
        self.write_stored(src, size)
    }
}

impl<W: Write> TarSink for zstd::stream::write::Encoder<'_, W> {
    fn write_opaque(&mut self, src: &mut dyn Read, size: u64) -> io::Result<()> {
        copy_exact(src, self, size)
    }
}

fn copy_exact(src: &mut dyn Read, dst: &mut dyn Write, size: u64) -> io::Result<()> {
    let n = io::copy(&mut src.take(size), dst)?;
    if n != size {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file ended after {n} of {size} bytes"),
        ));
    }
    Ok(())
}

/// Whether a .deb's payload is already compressed: its `data.tar` member has a compressor
/// suffix (`data.tar.xz`, `.zst`, `.gz`, `.bz2`, `.lzma`). Read from the ar headers without
/// moving the file position; anything that is not a readable .deb counts as compressible.
fn deb_is_compressed(f: &std::fs::File) -> bool {
    use std::os::unix::fs::FileExt;
    let mut head = [0u8; 8 + 60 + 4 + 60];
    if f.read_exact_at(&mut head, 0).is_err() || &head[..8] != b"!<arch>\n" {
        return false;
    }
    let member_size = |h: &[u8]| -> Option<u64> {
        std::str::from_utf8(h.get(48..58)?)
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // debian-binary (4 bytes), then control.tar*, then data.tar*
    let Some(control) = member_size(&head[72..132]) else {
        return false;
    };
    let data_at = 132 + control + (control & 1);
    let mut h = [0u8; 60];
    if f.read_exact_at(&mut h, data_at).is_err() {
        return false;
    }
    let name = String::from_utf8_lossy(&h[..16]);
    let name = name.trim_end().trim_end_matches('/');
    name.strip_prefix("data.tar.")
        .is_some_and(|ext| matches!(ext, "xz" | "zst" | "gz" | "bz2" | "lzma"))
}

fn write_tar<W: TarSink>(
    w: W,
    top: &str,
    entries: &[Entry],
    mtime: u64,
    tmp: &Path,
    on_file: &dyn Fn(u64),
    ready: &dyn Fn(&Path) -> io::Result<()>,
) -> Result<W, BundleError> {
    let mut b = tar::Builder::new(w);
    b.mode(tar::HeaderMode::Deterministic);
    // every directory first (sorted), so that any tar creates them with the same mode
    let mut dirs = std::collections::BTreeSet::new();
    for e in entries {
        let mut p = e.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            dirs.insert(format!("{top}/{parent}/"));
            p = parent;
        }
    }
    for dir in std::iter::once(format!("{top}/")).chain(dirs) {
        let mut h = header(&dir, 0, 0o755, mtime, tar::EntryType::Directory);
        b.append_data(&mut h, &dir, io::empty())
            .map_err(tar_err(tmp))?;
    }
    let mut sources = Sources::new(
        entries
            .iter()
            .filter_map(|e| match &e.data {
                EntryData::File(src, size, _) => Some((src.clone(), *size)),
                EntryData::Mem(_) => None,
            })
            .collect(),
    );
    for e in entries {
        let path = format!("{top}/{}", e.path);
        match &e.data {
            EntryData::Mem(data) if e.path.starts_with("archive/") => {
                // the archive's compressed indices: stored, like the .debs (deflating xz is
                // wasted time)
                let size = data.len() as u64;
                let mut h = header(&path, size, e.mode, mtime, tar::EntryType::Regular);
                b.append_data(&mut h, &path, io::empty())
                    .map_err(tar_err(tmp))?;
                let sink = b.get_mut();
                if e.path.ends_with(".xz") || e.path.ends_with(".gz") {
                    sink.write_opaque(&mut data.as_slice(), size)
                } else {
                    sink.write_all(data)
                }
                .map_err(tar_err(tmp))?;
                let pad = (512 - (size % 512) as usize) % 512;
                sink.write_all(&[0u8; 512][..pad]).map_err(tar_err(tmp))?;
            }
            EntryData::Mem(data) => {
                let mut h = header(
                    &path,
                    data.len() as u64,
                    e.mode,
                    mtime,
                    tar::EntryType::Regular,
                );
                b.append_data(&mut h, &path, data.as_slice())
                    .map_err(tar_err(tmp))?;
            }
            EntryData::File(src, size, _) => {
                ready(src).map_err(io_err(src))?;
                let (mut f, was_cached) = sources.open(src).map_err(io_err(src))?;
                let actual = f.metadata().map_err(io_err(src))?.len();
                if actual != *size {
                    return Err(BundleError::Invalid(format!(
                        "{}: cached file has {actual} bytes, expected {size}",
                        src.display()
                    )));
                }
                // the header alone (with a GNU long-name entry before it when the path needs
                // one), then the data, then the padding to the 512-byte block
                let mut h = header(&path, *size, e.mode, mtime, tar::EntryType::Regular);
                b.append_data(&mut h, &path, io::empty())
                    .map_err(tar_err(tmp))?;
                let sink = b.get_mut();
                if deb_is_compressed(&f) {
                    sink.write_opaque(&mut f, *size).map_err(io_err(src))?;
                } else {
                    copy_exact(&mut f, sink, *size).map_err(io_err(src))?;
                }
                if !was_cached {
                    // pulled in from the disk for this one read: give its pages back
                    // (pagecache.rs)
                    advise(&f, 0, 0, Advice::DontNeed);
                }
                let pad = (512 - (*size % 512) as usize) % 512;
                sink.write_all(&[0u8; 512][..pad]).map_err(tar_err(tmp))?;
                on_file(*size);
            }
        }
    }
    b.into_inner().map_err(tar_err(tmp))
}
