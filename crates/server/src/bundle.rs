//! Reading a finished bundle: its `manifest.json` (kept beside the tarball for the API) and its
//! SHA256.

use sha2::{Digest, Sha256};
use std::io::{BufRead, Read};
use std::path::Path;

/// The largest manifest accepted (a bundle of thousands of packages has a few MB).
const MAX_MANIFEST: u64 = 64 << 20;

/// The bytes of `<top>/manifest.json` inside a `.tar.gz` or `.tar.zst` bundle.
pub fn read_manifest(path: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let magic = r
        .fill_buf()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .get(..4)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let reader: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::GzDecoder::new(r))
    } else if magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(r)
                .map_err(|e| format!("{}: {e}", path.display()))?,
        )
    } else {
        return Err(format!(
            "{}: not a .tar.gz or .tar.zst file",
            path.display()
        ));
    };
    let mut ar = tar::Archive::new(reader);
    let bad = |e: std::io::Error| format!("{}: {e}", path.display());
    for entry in ar.entries().map_err(bad)? {
        let e = entry.map_err(bad)?;
        let p = e.path().map_err(bad)?.to_string_lossy().into_owned();
        if p.split_once('/').map(|(_, rest)| rest) == Some("manifest.json") {
            let mut buf = Vec::new();
            e.take(MAX_MANIFEST).read_to_end(&mut buf).map_err(bad)?;
            serde_json::from_slice::<serde_json::Value>(&buf)
                .map_err(|e| format!("{}: manifest.json is not JSON: {e}", path.display()))?;
            return Ok(buf);
        }
    }
    Err(format!(
        "{}: the bundle has no manifest.json",
        path.display()
    ))
}

/// SHA256 (hex) and size of a file.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex::encode(h.finalize()), n))
}
