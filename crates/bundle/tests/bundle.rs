//! Bundles: deterministic bytes, verification (good and tampered), install.sh that parses and
//! passes shellcheck.

use opaas_bundle::{
    bundle_id, open_archive, read_manifest, render_install_sh, render_readme, sha256_file, verify,
    write_bundle, ArchiveSuite, BundleDistro, BundleInput, BundlePackage, Format, KeyringSource,
    Manifest, PackageInfo, SignedArchive,
};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

fn input(dir: &Path) -> BundleInput {
    let mut packages = Vec::new();
    for (i, name) in ["alpha", "beta-tools", "libgamma1"].iter().enumerate() {
        let mut bytes: Vec<u8> = format!("{name}-{i}:").repeat(8).into_bytes();
        bytes.extend((0..(5000 + i * 977)).map(|k| ((k * 31 + i * 7) % 251) as u8));
        let path = dir.join(format!("{name}.deb"));
        std::fs::write(&path, &bytes).expect("write deb");
        let sha = hex::encode(Sha256::digest(&bytes));
        let filename = format!("{name}_1.{i}-1_amd64.deb");
        let stanza = format!(
            "Package: {name}\nVersion: 1.{i}-1\nArchitecture: amd64\nInstalled-Size: {}\nDepends: libc6 (>= 2.36)\nFilename: pool/main/{}/{name}/{filename}\nSize: {}\nSHA256: {sha}\nDescription: test package {i}\n more text",
            10 + i,
            &name[..1],
            bytes.len()
        );
        packages.push(BundlePackage {
            info: PackageInfo {
                name: name.to_string(),
                version: format!("1.{i}-1"),
                arch: "amd64".into(),
                size: bytes.len() as u64,
                sha256: sha,
                filename,
                pocket: "bookworm/main".into(),
                why: if i == 0 {
                    "requested".into()
                } else {
                    "alpha 1.0-1 Depends: beta-tools".into()
                },
                installed_size_kb: 10 + i as u64,
                upgrade_from: None,
            },
            stanza,
            path,
            pool_path: String::new(),
        });
    }
    BundleInput {
        distro: BundleDistro {
            id: "debian-12".into(),
            os_id: "debian".into(),
            codename: "bookworm".into(),
        },
        arch: "amd64".into(),
        request: vec!["alpha".into()],
        recommends: true,
        baseline: "minimal".into(),
        packages,
        created: "2026-07-11T10:16:37Z".into(),
        created_epoch: 1_783_764_997,
        created_rfc2822: "Sat, 11 Jul 2026 10:16:37 UTC".into(),
        tool_version: "0.1.0".into(),
        remove: Vec::new(),
        mode: "install".into(),
        assumed: Vec::new(),
        host: String::new(),
        hosts: Vec::new(),
        phased: "include".into(),
        build_log: "test build\n".into(),
        archive: None,
        lock_sha256: None,
    }
}

#[test]
fn deterministic_and_verifies() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = input(d.path());
    let wa = write_bundle(&inp, &d.path().join("a"), Format::TarGz).expect("bundle a");
    let wb = write_bundle(&inp, &d.path().join("b"), Format::TarGz).expect("bundle b");
    let (a, b) = (wa.path.clone(), wb.path.clone());
    assert_eq!(a.file_name(), b.file_name());
    let name = a
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert_eq!(
        name,
        format!("offline_pkg_debian-12_amd64_{}.tar.gz", bundle_id(&inp))
    );
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "bundles differ"
    );
    let rep = verify(&a).expect("verify");
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(
        (rep.packages, rep.distro.as_str(), rep.arch.as_str()),
        (3, "debian-12", "amd64")
    );
    // no temp file left behind: the tarball and the digest recorded beside it
    let mut left: Vec<_> = std::fs::read_dir(d.path().join("a"))
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let name = a.file_name().expect("name").to_string_lossy().into_owned();
    assert_eq!(left, [format!(".{name}.sha256"), name.clone()]);
    let (sha, _) = opaas_bundle::sha256_file(&a).expect("sha");
    assert_eq!(opaas_bundle::recorded_digest(&a), Some(sha));
    // zstd too
    let z = write_bundle(&inp, &d.path().join("z"), Format::TarZst)
        .expect("zst")
        .path;
    let zrep = verify(&z).expect("verify zst");
    assert!(zrep.problems.is_empty());
    // the tarball's own digest, hashed while verifying, is the file's (also past the tar end:
    // the compressor's trailer)
    assert_eq!(
        rep.file_sha256,
        Some((wa.sha256.clone(), std::fs::metadata(&a).expect("len").len()))
    );
    assert_eq!(zrep.file_sha256, Some(sha256_file(&z).expect("sha")));
    // the digest hashed while writing is the file's
    assert_eq!(
        (wa.sha256.clone(), wa.size),
        sha256_file(&a).expect("sha a")
    );
    let mut grown = std::fs::read(&a).expect("a");
    grown.extend_from_slice(&[0u8; 4096]);
    let g = d.path().join("grown.tar.gz");
    std::fs::write(&g, &grown).expect("write");
    assert_eq!(
        verify(&g).expect("verify grown").file_sha256,
        Some(sha256_file(&g).expect("sha"))
    );
}

#[test]
fn packing_reports_the_deb_bytes_written() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = input(d.path());
    let total: u64 = inp.packages.iter().map(|p| p.size).sum();
    let seen = std::cell::RefCell::new(Vec::new());
    let plain = write_bundle(&inp, &d.path().join("a"), Format::TarGz).expect("plain");
    let w =
        opaas_bundle::write_bundle_with(&inp, &d.path().join("b"), Format::TarGz, &|done, all| {
            seen.borrow_mut().push((done, all))
        })
        .expect("bundle");
    let seen = seen.into_inner();
    assert_eq!(seen.len(), inp.packages.len(), "{seen:?}");
    assert!(seen.windows(2).all(|p| p[0].0 < p[1].0), "{seen:?}");
    assert_eq!(seen.last(), Some(&(total, total)));
    // the same file as without the callback
    assert_eq!(w.sha256, plain.sha256);
}

#[test]
fn a_different_resolution_is_a_different_bundle() {
    let d = tempfile::tempdir().expect("tmp");
    let mut inp = input(d.path());
    let id1 = bundle_id(&inp);
    inp.recommends = false;
    assert_ne!(id1, bundle_id(&inp));
}

/// Where apt's answer removes installed packages, the bundle says so: another id, the
/// manifest's `remove`, and install.sh's REMOVALS (shown, and refused without --force).
#[test]
fn removals_are_recorded_in_the_manifest_and_install_sh() {
    let d = tempfile::tempdir().expect("tmp");
    let mut inp = input(d.path());
    let plain = bundle_id(&inp);
    inp.remove = vec!["oldpkg".into()];
    assert_ne!(plain, bundle_id(&inp));
    let w = write_bundle(&inp, &d.path().join("out"), Format::TarGz).expect("bundle");
    assert_eq!(w.manifest.remove, ["oldpkg"]);
    assert_eq!(read_manifest(&w.path).expect("manifest").remove, ["oldpkg"]);
    let sh = render_install_sh(&inp, "1a2b3c4d").expect("render");
    assert!(sh.contains("REMOVALS=('oldpkg')"), "REMOVALS not rendered");
    assert!(sh.contains("run again with --force to allow it"));
    let none = render_install_sh(&input(d.path()), "1a2b3c4d").expect("render");
    assert!(none.contains("REMOVALS=()"));
}

#[test]
fn tampered_bundle_is_detected() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = input(d.path());
    let a = write_bundle(&inp, &d.path().join("a"), Format::TarGz)
        .expect("bundle")
        .path;
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&a).expect("open"))
        .read_to_end(&mut raw)
        .expect("gunzip");
    // flip a byte of beta-tools' .deb content inside the tar
    let deb = std::fs::read(&inp.packages[1].path).expect("deb");
    let pos = raw
        .windows(64)
        .position(|w| w == &deb[..64])
        .expect("deb bytes in tar");
    raw[pos + 100] ^= 0xff;
    let bad = d.path().join("bad.tar.gz");
    let mut enc = flate2::write::GzEncoder::new(
        std::fs::File::create(&bad).expect("create"),
        flate2::Compression::fast(),
    );
    enc.write_all(&raw).expect("write");
    enc.finish().expect("finish");
    let rep = verify(&bad).expect("verify");
    assert!(
        rep.problems
            .iter()
            .any(|p| p.contains("beta-tools") && p.contains("SHA256")),
        "{:?}",
        rep.problems
    );
    // not a bundle at all
    std::fs::write(d.path().join("junk.tar.gz"), b"junk").expect("write");
    assert!(verify(&d.path().join("junk.tar.gz")).is_err());
}

#[test]
fn install_sh_parses_and_passes_shellcheck() {
    let d = tempfile::tempdir().expect("tmp");
    let unsigned = input(d.path());
    let mut signed = input(d.path());
    signed.archive = Some(SignedArchive {
        suites: vec![ArchiveSuite {
            suite: "bookworm-security".into(),
            components: vec!["main".into(), "contrib".into()],
            arches: vec!["amd64".into()],
            files: vec![("InRelease".into(), b"signed".to_vec())],
            signed_by: "ABCD Debian Security Archive Automatic Signing Key (12/bookworm) <ftpmaster@example.org>".into(),
            date: Some("Sat, 11 Jul 2026 10:16:37 UTC".into()),
            valid_until: Some("Sat, 18 Jul 2026 10:16:37 UTC".into()),
        }],
        keyring: KeyringSource::Target {
            path: "/usr/share/keyrings/debian-archive-keyring.gpg".into(),
            package: "debian-archive-keyring".into(),
        },
    });
    // an upgrade bundle for a fleet: a plan per host, picked at run time
    let mut fleet = input(d.path());
    fleet.mode = "upgrade".into();
    fleet.host = "web01 db01".into();
    let files: Vec<String> = fleet.packages.iter().map(|p| p.filename.clone()).collect();
    fleet.hosts = vec![
        opaas_bundle::HostPlan {
            host: "web01".into(),
            digest: opaas_bundle::HostPlan::digest_of(&["a:amd64=1".into()]),
            assumed: vec!["a:amd64=1".into()],
            files: files.clone(),
            remove: vec![],
        },
        opaas_bundle::HostPlan {
            host: "db01".into(),
            digest: opaas_bundle::HostPlan::digest_of(&["b:amd64=1".into()]),
            assumed: vec!["b:amd64=1".into()],
            files: files[..1].to_vec(),
            remove: vec!["old-tool".into()],
        },
    ];
    let sh = render_install_sh(&fleet, "1a2b3c4d").expect("render");
    assert!(sh.contains("FLEET='1'") && sh.contains("FLEET_HOSTS=('web01' 'db01')"));
    assert!(
        sh.contains("    1) PLAN_HOST='db01'; PLAN_DIR='plans/2'"),
        "{sh}"
    );
    assert!(sh.contains("       REMOVALS=('old-tool') ;;"), "{sh}");
    for inp in [unsigned, signed, fleet] {
        install_sh_checks(&inp, d.path());
    }
}

fn install_sh_checks(inp: &BundleInput, d: &Path) {
    let sh = render_install_sh(inp, "1a2b3c4d").expect("render");
    assert_eq!(
        sh.contains("SIGNED='1'"),
        inp.archive.is_some(),
        "install.sh does not know whether it is signed"
    );
    assert!(sh.starts_with("#!"), "install.sh must start with a shebang");
    assert!(!sh.contains("{{"), "unrendered template variable left");
    let p = d.join("install.sh");
    std::fs::write(&p, &sh).expect("write");
    let n = Command::new("bash")
        .arg("-n")
        .arg(&p)
        .output()
        .expect("bash");
    assert!(
        n.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&n.stderr)
    );
    match Command::new("shellcheck").arg("--version").output() {
        Ok(_) => {
            let sc = Command::new("shellcheck")
                .arg(&p)
                .output()
                .expect("shellcheck");
            assert!(
                sc.status.success(),
                "shellcheck:\n{}",
                String::from_utf8_lossy(&sc.stdout)
            );
        }
        Err(_) => eprintln!("SKIP shellcheck: not installed (apt-get install shellcheck)"),
    }
}

#[test]
fn the_writer_returns_the_digest_and_manifest_of_what_it_wrote() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = input(d.path());
    for format in [Format::TarGz, Format::TarZst] {
        let w = write_bundle(&inp, &d.path().join(format.ext()), format).expect("bundle");
        let bytes = std::fs::read(&w.path).expect("read");
        assert_eq!(w.sha256, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(w.size, bytes.len() as u64);
        assert_eq!(
            sha256_file(&w.path).expect("hash"),
            (w.sha256.clone(), w.size)
        );
        assert_eq!(
            Some(w.file_name.as_str()),
            w.path.file_name().and_then(|n| n.to_str())
        );
        // the manifest read back from the tarball is the one returned, byte for byte
        assert_eq!(read_manifest(&w.path).expect("manifest"), w.manifest);
        let mut ar = open_archive(&w.path).expect("open");
        let mut inside = None;
        for e in ar.entries().expect("entries") {
            let mut e = e.expect("entry");
            if e.path().expect("path").ends_with("manifest.json") {
                let mut b = Vec::new();
                e.read_to_end(&mut b).expect("read");
                inside = Some(b);
            }
        }
        assert_eq!(inside.as_deref(), Some(w.manifest_json.as_slice()));
        let m: Manifest = Manifest::from_json(&w.manifest_json).expect("typed");
        assert_eq!(
            (m.package_count, m.distro.id.as_str(), m.options.recommends),
            (3, "debian-12", true)
        );
        assert_eq!(m.packages[0].name, "alpha");
        assert_eq!(m.packages[0].arch, "amd64");
        // the on-disk key order of a package entry is alphabetical, as it always was
        let text = String::from_utf8(w.manifest_json.clone()).expect("utf8");
        let keys = [
            "\"arch\"",
            "\"filename\"",
            "\"installed_size_kb\"",
            "\"name\"",
            "\"pocket\"",
            "\"sha256\"",
            "\"size\"",
            "\"upgrade_from\"",
            "\"version\"",
            "\"why\"",
        ];
        let pos: Vec<usize> = keys
            .iter()
            .map(|k| text.find(&format!("      {k}")).expect(k))
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
    // not a bundle: a typed error, not a panic
    std::fs::write(d.path().join("junk"), b"junk").expect("write");
    assert!(open_archive(&d.path().join("junk")).is_err());
    assert!(read_manifest(&d.path().join("junk")).is_err());
}

/// Unpacks a bundle tarball into `dir` (with the tar crate: no shell, no system tar needed).
fn unpack(tarball: &Path, dir: &Path) -> std::path::PathBuf {
    let mut ar = open_archive(tarball).expect("open");
    ar.unpack(dir).expect("unpack");
    let top = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .next()
        .expect("top");
    top.path()
}

#[test]
fn an_unpacked_bundle_directory_verifies_too() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = input(d.path());
    let w = write_bundle(&inp, &d.path().join("a"), Format::TarGz).expect("bundle");
    let top = unpack(&w.path, &d.path().join("x"));
    let rep = verify(&top).expect("verify dir");
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    let tar_rep = verify(&w.path).expect("verify tar");
    assert_eq!(
        (&rep.top, &rep.id, rep.files, rep.packages, rep.bytes),
        (
            &tar_rep.top,
            &tar_rep.id,
            tar_rep.files,
            tar_rep.packages,
            tar_rep.bytes
        )
    );
    // the same directory named with a trailing "/." still has its own name as the top
    assert!(verify(&top.join(".")).expect("dot").problems.is_empty());
    // a changed .deb, a missing file and an extra file are all found
    let deb = top.join("repo").join(&inp.packages[1].filename);
    let mut bytes = std::fs::read(&deb).expect("deb");
    bytes[100] ^= 0xff;
    std::fs::write(&deb, &bytes).expect("write");
    std::fs::remove_file(top.join("README.txt")).expect("rm");
    std::fs::write(top.join("extra.txt"), b"x").expect("extra");
    let rep = verify(&top).expect("verify dir");
    let has = |s: &str| rep.problems.iter().any(|p| p.contains(s));
    assert!(has("beta-tools"), "{:?}", rep.problems);
    assert!(has("missing README.txt"), "{:?}", rep.problems);
    assert!(
        has("extra.txt is not listed in SHA256SUMS"),
        "{:?}",
        rep.problems
    );
    // a directory that is not a bundle
    let rep = verify(d.path().join("x").parent().expect("p")).expect("verify");
    assert!(!rep.problems.is_empty());
    assert!(verify(&d.path().join("absent")).is_err());
}

#[test]
fn readme_dates_the_package_lists_and_says_as_root_in_both_languages() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = input(d.path());
    let r = render_readme(&inp, "1a2b3c4d").expect("render");
    // the date is the archive's package lists', not the build time
    assert!(
        r.contains("软件包列表日期 / Package lists as of  2026-07-11T10:16:37Z"),
        "{r}"
    );
    assert!(!r.contains("Created") && !r.contains("创建时间"), "{r}");
    // minimal Debian has no sudo: every instruction says "as root", sudo only as one way
    assert!(
        r.contains("以 root 身份安装") && r.contains("su - 切换到 root"),
        "{r}"
    );
    assert!(
        r.contains("install as root") && r.contains("su - first"),
        "{r}"
    );
    for l in r.lines().filter(|l| l.contains("sudo")) {
        assert!(
            l.contains("root") || l.contains("sudo:") || l.contains("没有 sudo"),
            "an instruction needs sudo without saying root: {l}"
        );
    }
    let commands: Vec<&str> = r
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("bash install.sh"))
        .collect();
    assert_eq!(commands.len(), 2, "one install command per language: {r}");
    let sh = render_install_sh(&inp, "1a2b3c4d").expect("render");
    assert!(
        sh.contains("must be run as root: sudo bash $BUNDLE_DIR/install.sh, or without sudo: su -"),
        "{sh}"
    );
    assert!(sh.contains("没有 sudo 时先 su - 切换到 root"), "{sh}");
    assert!(!sh.contains("'sudo dpkg"), "{sh}");
}

/// A real .deb's shape: an ar archive of debian-binary, control.tar.xz and data.tar.xz (here
/// random bytes stand in for the xz streams: they do not compress either).
fn fake_deb(seed: u64, data_len: usize, data_member: &str) -> Vec<u8> {
    let mut x = seed | 1;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let mut out = b"!<arch>\n".to_vec();
    let control = noise(301);
    let data = if data_member == "data.tar" {
        b"usr/share/doc/readme text\n".repeat(data_len / 26 + 1)
    } else {
        noise(data_len)
    };
    for (name, body) in [
        ("debian-binary", b"2.0\n".to_vec()),
        ("control.tar.xz", control),
        (data_member, data),
    ] {
        out.extend(
            format!(
                "{name:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                0,
                0,
                0,
                100644,
                body.len()
            )
            .bytes(),
        );
        out.extend(&body);
        if body.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

fn deb_input(dir: &Path) -> BundleInput {
    let mut inp = input(dir);
    let long = format!(
        "libsomething-with-a-very-long-name-plugin-extras{}",
        "x".repeat(40)
    );
    for (i, p) in inp.packages.iter_mut().enumerate() {
        let member = if i == 2 { "data.tar" } else { "data.tar.xz" };
        let bytes = fake_deb(i as u64 + 3, 300_000 + i * 70_001, member);
        std::fs::write(&p.path, &bytes).expect("write deb");
        let sha = hex::encode(Sha256::digest(&bytes));
        p.stanza = p
            .stanza
            .replace(
                &format!("Size: {}\n", p.size),
                &format!("Size: {}\n", bytes.len()),
            )
            .replace(&p.sha256, &sha);
        p.info.size = bytes.len() as u64;
        p.info.sha256 = sha;
        if i == 1 {
            // a path beyond tar's 100-byte name field
            p.info.filename = format!("{long}_1.1-1_amd64.deb");
        }
    }
    inp
}

/// The .tar.gz stores the .debs' compressed bytes as they are and deflates the rest; GNU tar,
/// busybox tar and Python's tarfile all read it back to the same bytes.
#[test]
fn tar_gz_stores_compressed_debs_and_standard_tools_read_it() {
    let d = tempfile::tempdir().expect("tmp");
    let inp = deb_input(d.path());
    let a = write_bundle(&inp, &d.path().join("a"), Format::TarGz)
        .expect("bundle")
        .path;
    let b = write_bundle(&inp, &d.path().join("b"), Format::TarGz)
        .expect("bundle again")
        .path;
    assert_eq!(std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    let rep = verify(&a).expect("verify");
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    // the two xz .debs are stored (no smaller, a few bytes per 64 KiB larger); the one with an
    // uncompressed data.tar is deflated
    let gz_len = std::fs::metadata(&a).expect("len").len();
    let xz: u64 = inp.packages[..2].iter().map(|p| p.size).sum();
    assert!(
        gz_len > xz,
        "{gz_len} <= {xz}: the noise cannot have been compressed"
    );
    assert!(
        gz_len < xz + inp.packages[2].size / 4,
        "{gz_len}: the text .deb was not compressed or the stored data is bloated"
    );
    let top = a
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".tar.gz").to_string())
        .unwrap_or_default();
    let check_tree = |root: &Path, tool: &str| {
        for p in &inp.packages {
            let got = std::fs::read(root.join(&top).join("repo").join(&p.filename))
                .unwrap_or_else(|e| panic!("{tool}: {}: {e}", p.filename));
            assert_eq!(
                got,
                std::fs::read(&p.path).expect("deb"),
                "{tool}: {}",
                p.filename
            );
        }
        let sums = std::fs::read_to_string(root.join(&top).join("SHA256SUMS")).expect("sums");
        assert!(sums.contains("repo/Packages.gz"), "{tool}");
    };
    // GNU tar (and through it gzip's own integrity check of the CRC and length)
    let x = d.path().join("gnu");
    std::fs::create_dir_all(&x).expect("mkdir");
    let out = Command::new("tar")
        .arg("-xzf")
        .arg(&a)
        .arg("-C")
        .arg(&x)
        .output()
        .expect("tar");
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    check_tree(&x, "GNU tar");
    let t = Command::new("gzip")
        .arg("-t")
        .arg(&a)
        .output()
        .expect("gzip");
    assert!(
        t.status.success(),
        "gzip -t: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    // Python's tarfile
    let x = d.path().join("py");
    let py = Command::new("python3")
        .arg("-c")
        .arg("import sys,tarfile; t=tarfile.open(sys.argv[1], 'r:gz'); t.extractall(sys.argv[2])")
        .arg(&a)
        .arg(&x)
        .output();
    match py {
        Ok(out) => {
            assert!(
                out.status.success(),
                "python: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            check_tree(&x, "python tarfile");
        }
        Err(e) => eprintln!("SKIP python3 tarfile: {e}"),
    }
    // busybox tar, when installed
    let x = d.path().join("bb");
    std::fs::create_dir_all(&x).expect("mkdir");
    match Command::new("busybox")
        .arg("tar")
        .arg("-xzf")
        .arg(&a)
        .arg("-C")
        .arg(&x)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "busybox: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            check_tree(&x, "busybox tar");
        }
        Err(e) => eprintln!("SKIP busybox tar: {e} (apt-get install busybox)"),
    }
}

/// Pages of `path` in the page cache (`mincore` over a shared mapping).
fn resident_pages(path: &Path) -> usize {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).expect("open");
    let len = f.metadata().expect("stat").len() as usize;
    if len == 0 {
        return 0;
    }
    let page = 4096;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: a read-only shared mapping of a file kept open, unmapped before it is closed;
    // `vec` has one byte per page of the mapping, as mincore requires.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap {}", path.display());
        assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0, "mincore");
        libc::munmap(p, len);
    }
    vec.iter().filter(|b| **b & 1 == 1).count()
}

/// Gives `path`'s pages back; false when this filesystem keeps them whatever it is told
/// (tmpfs) or the kernel cannot say what is cached (no `cachestat(2)` before Linux 6.5): then
/// what is tested here cannot be seen.
fn drop_pages(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).expect("open");
    f.sync_all().expect("sync");
    // SAFETY: plain system calls; cachestat is given no memory, so it answers EFAULT if it
    // exists and ENOSYS if it does not.
    let cachestat = unsafe {
        libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED);
        let r = libc::syscall(451, f.as_raw_fd(), 0usize, 0usize, 0u32);
        r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS)
    };
    cachestat && resident_pages(path) == 0
}

/// Issue 12: what a bundle pulls in from the disk it gives back (the store's .debs when
/// packing, the tarball when it is hashed for reuse), so a huge build neither evicts the
/// machine's working set nor, on a VM, faults in half a gigabyte of fresh pages; what was
/// cached (the .debs a build has just downloaded) stays cached for the next rebuild.
#[test]
fn packing_and_hashing_give_back_the_pages_they_pulled_in() {
    // on the disk's filesystem (the target directory), not a tmpfs /tmp
    let d = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let inp = deb_input(d.path());
    let debs: Vec<_> = inp.packages.iter().map(|p| p.path.clone()).collect();
    for p in &debs {
        if !drop_pages(p) {
            eprintln!(
                "SKIP packing_and_hashing_give_back_the_pages_they_pulled_in: {} keeps its pages \
                 (tmpfs?) or this kernel has no cachestat",
                d.path().display()
            );
            return;
        }
    }
    // the first .deb is cached (as if just downloaded), the others are on the disk only
    std::fs::read(&debs[0]).expect("read");
    let cached = resident_pages(&debs[0]);
    assert!(cached > 0);
    let w = write_bundle(&inp, &d.path().join("out"), Format::TarGz).expect("bundle");
    assert_eq!(
        resident_pages(&debs[0]),
        cached,
        "a cached .deb was given back"
    );
    for p in &debs[1..] {
        assert_eq!(resident_pages(p), 0, "{} stayed cached", p.display());
    }
    // the tarball hashed as the reuse check does: from the disk, then from the cache
    assert!(drop_pages(&w.path));
    let (sha, size) = sha256_file(&w.path).expect("hash");
    assert_eq!((sha, size), (w.sha256.clone(), w.size));
    assert_eq!(
        resident_pages(&w.path),
        0,
        "the hashed tarball stayed cached"
    );
    std::fs::read(&w.path).expect("read");
    let cached = resident_pages(&w.path);
    assert!(cached > 0);
    assert_eq!(sha256_file(&w.path).expect("hash").0, w.sha256);
    assert_eq!(
        resident_pages(&w.path),
        cached,
        "a cached tarball was given back"
    );
}
