//! Shared fixtures: fake `.deb` files (random bytes) served by testkit's server.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use opaas_fetch::{Cas, Item, Options, Progress};
use opaas_testkit::Server;
use sha2::{Digest, Sha256};

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Fast options for tests: short backoff and timeout.
pub fn opts() -> Options {
    Options {
        jobs: 8,
        retries: 3,
        timeout: Duration::from_secs(5),
        backoff: Duration::from_millis(10),
        stall: Duration::from_secs(5),
        per_host: 8,
        patience: Duration::ZERO,
    }
}

/// One fake package file on the mirror.
#[derive(Debug, Clone)]
pub struct File {
    /// `/pool/...` (the server path)
    pub rel: String,
    pub bytes: Vec<u8>,
    pub sha: String,
}

impl File {
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }
    pub fn name(&self) -> String {
        self.rel.rsplit('/').next().unwrap_or_default().to_string()
    }
    /// An item with one URL per mirror base.
    pub fn item(&self, bases: &[&str]) -> Item {
        Item {
            name: self.name(),
            urls: bases.iter().map(|b| format!("{b}{}", self.rel)).collect(),
            sha256: self.sha.clone(),
            size: self.size(),
        }
    }
}

/// A mirror directory with `n` files, a server on it and an empty cache.
pub struct Fixture {
    pub mirror: tempfile::TempDir,
    pub cache: tempfile::TempDir,
    pub server: Server,
    pub files: Vec<File>,
}

pub fn write_files(root: &Path, n: usize, seed: u64, size: impl Fn(usize) -> usize) -> Vec<File> {
    (0..n)
        .map(|i| {
            let name = format!("pkg{i:02}-{seed}");
            let rel = format!("/pool/main/p/{name}/{name}_1.0-{i}_amd64.deb");
            let bytes = random_bytes(seed * 1000 + i as u64, size(i));
            let path = root.join(rel.trim_start_matches('/'));
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write");
            File {
                sha: sha256_hex(&bytes),
                rel,
                bytes,
            }
        })
        .collect()
}

impl Fixture {
    /// `n` files of 1 KB … ~600 KB (some larger than the 256 KB copy buffer).
    pub fn new(n: usize) -> Fixture {
        Fixture::with_sizes(n, |i| 1024 + (i * 37_123) % 600_000)
    }

    pub fn with_sizes(n: usize, size: impl Fn(usize) -> usize) -> Fixture {
        let mirror = tempfile::tempdir().expect("tmp");
        let cache = tempfile::tempdir().expect("tmp");
        let files = write_files(mirror.path(), n, 7, size);
        let server = Server::start(mirror.path()).expect("server");
        Fixture {
            mirror,
            cache,
            server,
            files,
        }
    }

    pub fn cas(&self) -> Cas {
        Cas::new(self.cache.path())
    }

    pub fn items(&self) -> Vec<Item> {
        let url = self.server.url();
        self.files.iter().map(|f| f.item(&[&url])).collect()
    }

    /// Every file is in the store with its exact bytes.
    pub fn assert_all_cached(&self) {
        let cas = self.cas();
        for f in &self.files {
            let got = std::fs::read(cas.path(&f.sha)).expect("cached file");
            assert!(got == f.bytes, "{} differs", f.rel);
        }
    }
}

/// Every file below `root` (recursively), as paths relative to it.
pub fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Files in the store that are not verified `.deb`s (a leftover `.part`, say); the store's one
/// lock file `.locks` is not a leftover.
pub fn leftovers(cas: &Cas) -> Vec<PathBuf> {
    list_files(cas.root())
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "deb"))
        .filter(|p| p.file_name().is_none_or(|n| n != ".locks"))
        .collect()
}

/// Records every progress call.
#[derive(Debug, Default)]
pub struct Recorder {
    pub start: Mutex<Option<(usize, u64)>>,
    pub bytes: AtomicU64,
    pub done: Mutex<Vec<(String, bool)>>,
    pub messages: Mutex<Vec<String>>,
}

impl Progress for Recorder {
    fn start(&self, files: usize, bytes: u64) {
        *self.start.lock().expect("lock") = Some((files, bytes));
    }
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::SeqCst);
    }
    fn file_done(&self, name: &str, cached: bool) {
        self.done
            .lock()
            .expect("lock")
            .push((name.to_string(), cached));
    }
    fn message(&self, msg: &str) {
        self.messages.lock().expect("lock").push(msg.to_string());
    }
}
