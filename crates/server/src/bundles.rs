//! Where finished bundles are kept, behind a trait: the data directory's `bundles/<job>/`
//! ([`Local`], the default) or an S3-compatible bucket ([`S3`], `--storage s3://bucket/prefix`,
//! several replicas). Each job has its own entry (`<job>/<bundle file>`, `manifest.json`,
//! `sbom.cdx.json`); the .deb cache stays local to each replica.
//!
//! The calls are synchronous (publishing and removing run on blocking threads, like the job
//! store's); serving a download is async and streams (Range requests answered by the store).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tower::ServiceExt;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bundle storage: {0}")]
    Store(String),
    #[error("bundle storage: {0}")]
    Config(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An entry of the store: a job id and when its newest file was written.
pub type Entry = (String, SystemTime);

/// The bundles of finished jobs.
pub trait BundleStore: Send + Sync + 'static {
    /// `local` or `s3`.
    fn backend(&self) -> &'static str;
    /// Puts the file `src` as `<id>/<name>` (moved: `src` is gone afterwards). `log` hears
    /// about retries.
    fn put_file(
        &self,
        id: &str,
        name: &str,
        src: &Path,
        log: &dyn Fn(&str),
    ) -> Result<(), BundleError>;
    /// Puts a small file (manifest, SBOM).
    fn put_bytes(&self, id: &str, name: &str, data: &[u8]) -> Result<(), BundleError>;
    /// Reads a small file; None when there is none.
    fn get_bytes(&self, id: &str, name: &str) -> Result<Option<Vec<u8>>, BundleError>;
    /// Places job `from`'s `name` at `dest` without copying (a hard link); false when it is
    /// not there, or the store cannot share (then the job builds its own).
    fn link_into(&self, from: &str, name: &str, dest: &Path) -> Result<bool, BundleError>;
    /// Removes one file of a job (an expired bundle; the manifest and SBOM stay).
    fn remove_file(&self, id: &str, name: &str) -> Result<(), BundleError>;
    /// Removes everything of a job.
    fn remove(&self, id: &str) -> Result<(), BundleError>;
    /// The job ids with something stored (the janitor's orphan sweep).
    fn entries(&self) -> Result<Vec<Entry>, BundleError>;
    /// Proves the store answers (`/healthz`).
    fn ping(&self) -> Result<(), BundleError>;
    /// Answers a download of `<id>/<name>` (Range and If-Range honoured); None: not there.
    fn serve<'a>(
        &'a self,
        id: &'a str,
        name: &'a str,
        req: Request,
    ) -> BoxFuture<'a, Result<Option<Response>, BundleError>>;
}

/// The service's handle on its bundle store.
pub type Bundles = Arc<dyn BundleStore>;

/// Opens the store `url` names: None → `bundles_dir`; `s3://bucket/prefix` → S3.
pub fn open(url: Option<&str>, bundles_dir: &Path, presign: bool) -> Result<Bundles, BundleError> {
    match url.map(str::trim).filter(|u| !u.is_empty()) {
        None => Ok(Arc::new(Local {
            dir: bundles_dir.to_path_buf(),
        })),
        Some(u) if u.starts_with("s3://") => Ok(Arc::new(S3::open(u, presign)?)),
        Some(u) if u.starts_with("file://") || u.starts_with('/') => Ok(Arc::new(Local {
            dir: PathBuf::from(u.trim_start_matches("file://")),
        })),
        Some(_) => Err(BundleError::Config(
            "--storage: use s3://bucket/prefix (or leave it unset for <data-dir>/bundles)".into(),
        )),
    }
}

// ---------------------------------------------------------------- local

/// `<data_dir>/bundles/<job>/…`, as before there was a trait.
pub struct Local {
    pub dir: PathBuf,
}

impl Local {
    fn job(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }
}

impl BundleStore for Local {
    fn backend(&self) -> &'static str {
        "local"
    }
    fn put_file(
        &self,
        id: &str,
        name: &str,
        src: &Path,
        _log: &dyn Fn(&str),
    ) -> Result<(), BundleError> {
        let dir = self.job(id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let dest = dir.join(name);
        std::fs::rename(src, &dest).map_err(|source| {
            BundleError::Store(format!(
                "cannot move {} to {}: {source}",
                src.display(),
                dest.display()
            ))
        })
    }
    fn put_bytes(&self, id: &str, name: &str, data: &[u8]) -> Result<(), BundleError> {
        let dir = self.job(id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let p = dir.join(name);
        std::fs::write(&p, data).map_err(io(&p))
    }
    fn get_bytes(&self, id: &str, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
        let p = self.job(id).join(name);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&p)(e)),
        }
    }
    fn link_into(&self, from: &str, name: &str, dest: &Path) -> Result<bool, BundleError> {
        let src = self.job(from).join(name);
        let _ = std::fs::remove_file(dest);
        match std::fs::hard_link(&src, dest) {
            Ok(()) => {
                // its recorded digest too, so that verifying the shared file is one pass
                let side = opaas_bundle::digest_file_path(dest);
                let _ = std::fs::remove_file(&side);
                let _ = std::fs::copy(opaas_bundle::digest_file_path(&src), &side);
                Ok(true)
            }
            // deleted or expired meanwhile
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(&src)(e)),
        }
    }
    fn remove_file(&self, id: &str, name: &str) -> Result<(), BundleError> {
        let p = self.job(id).join(name);
        crate::files::remove_any(&p).map_err(io(&p))?;
        let _ = crate::files::remove_any(&opaas_bundle::digest_file_path(&p));
        Ok(())
    }
    fn remove(&self, id: &str) -> Result<(), BundleError> {
        let p = self.job(id);
        crate::files::remove_any(&p).map_err(io(&p))
    }
    fn entries(&self) -> Result<Vec<Entry>, BundleError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.dir)(e)),
        };
        Ok(rd
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?.modified().ok()?;
                Some((e.file_name().to_string_lossy().into_owned(), m))
            })
            .collect())
    }
    fn ping(&self) -> Result<(), BundleError> {
        std::fs::metadata(&self.dir)
            .map(|_| ())
            .map_err(io(&self.dir))
    }
    fn serve<'a>(
        &'a self,
        id: &'a str,
        name: &'a str,
        req: Request,
    ) -> BoxFuture<'a, Result<Option<Response>, BundleError>> {
        Box::pin(async move {
            let path = self.job(id).join(name);
            if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
                return Ok(None);
            }
            let mut req = req;
            if let Some(v) = req.headers().get(header::IF_RANGE).cloned() {
                // RFC 9110 13.1.5: a Range is honoured only while the validator still matches
                // (our validator is Last-Modified); otherwise the whole file, 200
                let modified = tokio::fs::metadata(&path)
                    .await
                    .and_then(|m| m.modified())
                    .ok()
                    .map(httpdate::fmt_http_date);
                if modified.as_deref() != v.to_str().ok().map(str::trim) {
                    req.headers_mut().remove(header::RANGE);
                }
            }
            let resp = tower_http::services::ServeFile::new(&path)
                .oneshot(req)
                .await
                .map_err(|e| BundleError::Store(format!("cannot send the bundle: {e}")))?;
            Ok(Some(resp.map(Body::new)))
        })
    }
}

// ---------------------------------------------------------------- S3

/// An S3-compatible bucket (`s3://bucket/prefix`) through the `object_store` crate: the
/// endpoint, region and credentials from the usual AWS variables (`AWS_ENDPOINT_URL` or
/// `AWS_ENDPOINT`, `AWS_REGION` or `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`); path-style requests unless
/// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true`; plain http allowed for an `http://` endpoint.
pub struct S3 {
    store: Arc<object_store::aws::AmazonS3>,
    /// The same bucket without retries and with short timeouts: the health probe.
    probe: object_store::aws::AmazonS3,
    prefix: String,
    handle: tokio::runtime::Handle,
    presign: bool,
    /// How long an upload keeps retrying while the bucket does not answer.
    retry_for: Duration,
}

/// Large bundles go up in parts of this size (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;

impl S3 {
    pub fn open(url: &str, presign: bool) -> Result<S3, BundleError> {
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(BundleError::Config(format!("--storage {url}: no bucket")));
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
        let endpoint = env("AWS_ENDPOINT_URL_S3")
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| env("AWS_ENDPOINT"));
        let allow_http = endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"));
        if let Some(e) = &endpoint {
            b = b.with_endpoint(e.clone());
        }
        if let Some(r) = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")) {
            b = b.with_region(r);
        }
        let virtual_hosted = env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST").is_some_and(|v| v == "true");
        b = b.with_virtual_hosted_style_request(virtual_hosted);
        let probe = b
            .clone()
            .with_retry(object_store::RetryConfig {
                backoff: object_store::BackoffConfig::default(),
                max_retries: 0,
                retry_timeout: Duration::from_secs(2),
            })
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_allow_http(allow_http)
                    .with_connect_timeout(Duration::from_secs(1))
                    .with_timeout(Duration::from_secs(2)),
            )
            .build()
            .map_err(|e| BundleError::Config(format!("--storage {url}: {e}")))?;
        b = b.with_retry(object_store::RetryConfig {
            backoff: object_store::BackoffConfig::default(),
            max_retries: 3,
            retry_timeout: Duration::from_secs(20),
        });
        b = b.with_client_options(
            object_store::ClientOptions::new()
                .with_allow_http(allow_http)
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(300)),
        );
        let store = b
            .build()
            .map_err(|e| BundleError::Config(format!("--storage {url}: {e}")))?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|e| BundleError::Config(format!("no async runtime: {e}")))?;
        let retry_for = env("OPAAS_STORAGE_RETRY")
            .and_then(|v| crate::config::parse_duration(&v).ok())
            .unwrap_or(Duration::from_secs(300));
        Ok(S3 {
            store: Arc::new(store),
            probe,
            prefix: prefix.trim_matches('/').to_string(),
            handle,
            presign,
            retry_for,
        })
    }

    fn path(&self, id: &str, name: &str) -> object_store::path::Path {
        if self.prefix.is_empty() {
            object_store::path::Path::from(format!("{id}/{name}"))
        } else {
            object_store::path::Path::from(format!("{}/{id}/{name}", self.prefix))
        }
    }

    fn root(&self) -> Option<object_store::path::Path> {
        (!self.prefix.is_empty()).then(|| object_store::path::Path::from(self.prefix.clone()))
    }

    fn err(e: object_store::Error) -> BundleError {
        BundleError::Store(e.to_string())
    }

    /// Runs `f` again (every 2 s, up to `retry_for`) while the bucket does not answer.
    fn retrying<R>(
        &self,
        what: &str,
        log: &dyn Fn(&str),
        mut f: impl FnMut() -> Result<R, BundleError>,
    ) -> Result<R, BundleError> {
        let t0 = std::time::Instant::now();
        let mut said = false;
        loop {
            match f() {
                Ok(r) => return Ok(r),
                Err(e) if t0.elapsed() < self.retry_for => {
                    if !said {
                        log(&format!(
                            "W: the bundle storage does not answer ({e}); retrying {what} for up to {} s",
                            self.retry_for.as_secs()
                        ));
                        said = true;
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn upload(&self, path: &object_store::path::Path, src: &Path) -> Result<(), BundleError> {
        use object_store::ObjectStore;
        use tokio::io::AsyncReadExt;
        let mut f = tokio::fs::File::open(src).await.map_err(io(src))?;
        let size = f.metadata().await.map_err(io(src))?.len();
        if size <= PART as u64 {
            let mut data = Vec::with_capacity(size as usize);
            f.read_to_end(&mut data).await.map_err(io(src))?;
            self.store
                .put(path, object_store::PutPayload::from(data))
                .await
                .map_err(Self::err)?;
            return Ok(());
        }
        let upload = self.store.put_multipart(path).await.map_err(Self::err)?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        let r: Result<(), BundleError> = async {
            loop {
                let n = f.read(&mut buf).await.map_err(io(src))?;
                if n == 0 {
                    break;
                }
                w.wait_for_capacity(4).await.map_err(Self::err)?;
                w.write(&buf[..n]);
            }
            Ok(())
        }
        .await;
        match r {
            Ok(()) => w.finish().await.map(|_| ()).map_err(Self::err),
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }
}

/// One `bytes=` range of a `size`-byte object: (start, end inclusive); Err: not satisfiable;
/// None: no usable Range (the whole object).
fn parse_range(h: Option<&HeaderValue>, size: u64) -> Option<Result<(u64, u64), ()>> {
    let v = h?.to_str().ok()?.trim();
    let spec = v.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None; // several ranges: the whole object
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    let r = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        if n == 0 || size == 0 {
            return Some(Err(()));
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let s: u64 = a.parse().ok()?;
        let e: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>().ok()?.min(size.saturating_sub(1))
        };
        if s >= size || e < s {
            return Some(Err(()));
        }
        (s, e)
    };
    Some(Ok(r))
}

impl BundleStore for S3 {
    fn backend(&self) -> &'static str {
        "s3"
    }
    fn put_file(
        &self,
        id: &str,
        name: &str,
        src: &Path,
        log: &dyn Fn(&str),
    ) -> Result<(), BundleError> {
        let path = self.path(id, name);
        self.retrying("the upload", log, || {
            self.handle.block_on(self.upload(&path, src))
        })?;
        let _ = std::fs::remove_file(src);
        Ok(())
    }
    fn put_bytes(&self, id: &str, name: &str, data: &[u8]) -> Result<(), BundleError> {
        use object_store::ObjectStore;
        let path = self.path(id, name);
        self.retrying("the upload", &|_| {}, || {
            self.handle
                .block_on(
                    self.store
                        .put(&path, object_store::PutPayload::from(data.to_vec())),
                )
                .map(|_| ())
                .map_err(Self::err)
        })
    }
    fn get_bytes(&self, id: &str, name: &str) -> Result<Option<Vec<u8>>, BundleError> {
        use object_store::ObjectStore;
        let path = self.path(id, name);
        self.handle.block_on(async {
            match self.store.get(&path).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(Self::err)?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(Self::err(e)),
            }
        })
    }
    fn link_into(&self, _from: &str, _name: &str, _dest: &Path) -> Result<bool, BundleError> {
        // no links in a bucket: the job builds its own (its .debs come from the cache)
        Ok(false)
    }
    fn remove_file(&self, id: &str, name: &str) -> Result<(), BundleError> {
        use object_store::ObjectStore;
        let path = self.path(id, name);
        self.handle.block_on(async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Self::err(e)),
            }
        })
    }
    fn remove(&self, id: &str) -> Result<(), BundleError> {
        use futures_util::StreamExt;
        use object_store::ObjectStore;
        let dir = match self.root() {
            Some(r) => r.child(id),
            None => object_store::path::Path::from(id),
        };
        self.handle.block_on(async {
            let found: Vec<_> = self.store.list(Some(&dir)).collect().await;
            for m in found {
                let m = m.map_err(Self::err)?;
                match self.store.delete(&m.location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(Self::err(e)),
                }
            }
            Ok(())
        })
    }
    fn entries(&self) -> Result<Vec<Entry>, BundleError> {
        use futures_util::StreamExt;
        use object_store::ObjectStore;
        let root = self.root();
        let skip = root.as_ref().map_or(0, |r| r.parts().count());
        self.handle.block_on(async {
            let mut out: std::collections::HashMap<String, SystemTime> = Default::default();
            let mut s = self.store.list(root.as_ref());
            while let Some(m) = s.next().await {
                let m = m.map_err(Self::err)?;
                let Some(id) = m.location.parts().nth(skip) else {
                    continue;
                };
                let t = SystemTime::UNIX_EPOCH
                    + Duration::from_millis(m.last_modified.timestamp_millis().max(0) as u64);
                let e = out
                    .entry(id.as_ref().to_string())
                    .or_insert(SystemTime::UNIX_EPOCH);
                *e = (*e).max(t);
            }
            Ok(out.into_iter().collect())
        })
    }
    fn ping(&self) -> Result<(), BundleError> {
        use object_store::ObjectStore;
        let path = self.path(".opaas", "ping");
        self.handle.block_on(async {
            match self.probe.head(&path).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(Self::err(e)),
            }
        })
    }
    fn serve<'a>(
        &'a self,
        id: &'a str,
        name: &'a str,
        req: Request,
    ) -> BoxFuture<'a, Result<Option<Response>, BundleError>> {
        Box::pin(async move {
            use futures_util::StreamExt;
            use object_store::signer::Signer;
            use object_store::ObjectStore;
            let path = self.path(id, name);
            let meta = match self.store.head(&path).await {
                Ok(m) => m,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(e) => return Err(Self::err(e)),
            };
            if self.presign {
                let url = self
                    .store
                    .signed_url(axum::http::Method::GET, &path, Duration::from_secs(3600))
                    .await
                    .map_err(Self::err)?;
                let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
                if let Ok(v) = HeaderValue::from_str(url.as_str()) {
                    resp.headers_mut().insert(header::LOCATION, v);
                }
                return Ok(Some(resp));
            }
            let size = meta.size;
            let modified = httpdate::fmt_http_date(
                SystemTime::UNIX_EPOCH
                    + Duration::from_secs(meta.last_modified.timestamp().max(0) as u64),
            );
            let mut range_h = req.headers().get(header::RANGE).cloned();
            if let Some(v) = req.headers().get(header::IF_RANGE) {
                if v.to_str().ok().map(str::trim) != Some(modified.as_str()) {
                    range_h = None;
                }
            }
            let range = parse_range(range_h.as_ref(), size);
            let (status, start, end) = match range {
                Some(Err(())) => {
                    let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                        resp.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return Ok(Some(resp));
                }
                Some(Ok((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
                None => (StatusCode::OK, 0, size.saturating_sub(1)),
            };
            let len = if size == 0 { 0 } else { end - start + 1 };
            let body = if len == 0 {
                Body::empty()
            } else {
                let opts = object_store::GetOptions {
                    range: Some(object_store::GetRange::Bounded(start..end + 1)),
                    ..Default::default()
                };
                let got = self.store.get_opts(&path, opts).await.map_err(Self::err)?;
                Body::from_stream(got.into_stream().map(|r| r.map_err(std::io::Error::other)))
            };
            let mut resp = Response::new(body);
            *resp.status_mut() = status;
            let h = resp.headers_mut();
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
                h.insert(header::CONTENT_LENGTH, v);
            }
            if let Ok(v) = HeaderValue::from_str(&modified) {
                h.insert(header::LAST_MODIFIED, v);
            }
            if status == StatusCode::PARTIAL_CONTENT {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            Ok(Some(resp))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let h = |s: &str| HeaderValue::from_str(s).expect("header");
        assert_eq!(parse_range(Some(&h("bytes=0-9")), 100), Some(Ok((0, 9))));
        assert_eq!(parse_range(Some(&h("bytes=90-")), 100), Some(Ok((90, 99))));
        assert_eq!(parse_range(Some(&h("bytes=-10")), 100), Some(Ok((90, 99))));
        assert_eq!(
            parse_range(Some(&h("bytes=50-500")), 100),
            Some(Ok((50, 99)))
        );
        assert_eq!(parse_range(Some(&h("bytes=100-")), 100), Some(Err(())));
        assert_eq!(parse_range(Some(&h("bytes=0-1,5-6")), 100), None);
        assert_eq!(parse_range(None, 100), None);
    }
}
