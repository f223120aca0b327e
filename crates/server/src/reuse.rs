//! Identical requests share one bundle file (issue 12 "no repacking", issue 16 item 4).
//!
//! The same resolution and format give the same bundle file name (`offline_pkg_…_<id>.<ext>`,
//! the id a hash of the resolution). Once a build knows that name (after resolving, before
//! downloading) the engine asks [`JobReuse::place`]:
//! * a finished job whose bundle of that name is still on disk: its file is hard-linked into
//!   the build's output directory; the engine verifies it (structure, checksums, manifest ==
//!   this resolution) and reuses it, so the job completes at once with its own record, log and
//!   `bundles/<job>/` entry, and no byte is copied or packed;
//! * a running job building that name: wait for it (cancellation is checked every 250 ms),
//!   then look again; if it failed or was cancelled, this job builds;
//! * otherwise this job claims the name until its build is published or has failed.
//!
//! Sharing is by hard link, so the reference count is the file system's link count: each job
//! keeps its own `bundles/<job>/<file>` entry; deleting a job or expiring its bundle removes
//! that entry only, and the bytes go with the last one. A link to a file being removed fails
//! (`ENOENT`), so a concurrent delete can never leave a job pointing at nothing.

use crate::jobs::{Jobs, Live};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Bundle file names being built now, each with the job that builds it.
#[derive(Default)]
pub struct Inflight {
    names: Mutex<HashMap<String, String>>,
    changed: Condvar,
}

impl Inflight {
    /// Which job builds `file_name` now, if any.
    pub fn builder(&self, file_name: &str) -> Option<String> {
        lock(&self.names).get(file_name).cloned()
    }
}

/// One job's side of the sharing: [`opaas_engine::Reuse`] for its build. Dropping it (after
/// the job's outcome is in the database) releases the name it claimed.
pub struct JobReuse<'a> {
    pub jobs: &'a Jobs,
    pub live: &'a Live,
    pub inflight: &'a Inflight,
    claimed: Mutex<Option<String>>,
    /// Set when a file was placed: the job it came from.
    pub shared_from: Mutex<Option<String>>,
}

impl<'a> JobReuse<'a> {
    pub fn new(jobs: &'a Jobs, live: &'a Live, inflight: &'a Inflight) -> JobReuse<'a> {
        JobReuse {
            jobs,
            live,
            inflight,
            claimed: Mutex::new(None),
            shared_from: Mutex::new(None),
        }
    }

    /// Links the newest finished job's bundle `file_name` to `dest`; the job's id, or None.
    fn link_published(&self, file_name: &str, dest: &Path) -> Option<String> {
        let me = self.live.id.clone();
        let others = match self.jobs.db.published_with(file_name, &me) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(job = %me, "cannot look for an identical bundle: {e}");
                return None;
            }
        };
        for other in others {
            match self.jobs.bundles.link_into(&other, file_name, dest) {
                Ok(true) => return Some(other),
                // deleted or expired meanwhile: the next one
                Ok(false) => continue,
                Err(e) => {
                    // another file system, no links: this job builds its own
                    self.live.log(&format!(
                        "W: cannot share job {other}'s bundle ({e}); building it again"
                    ));
                    return None;
                }
            }
        }
        None
    }
}

impl opaas_engine::Reuse for JobReuse<'_> {
    fn place(&self, file_name: &str, dest: &Path) {
        let mut said_wait = false;
        let mut names = lock(&self.inflight.names);
        loop {
            if self.live.stopping() {
                return;
            }
            // looked up under the lock: a builder publishes (database) before it releases
            // the name, so a name that is not in flight is either on disk or nowhere
            if let Some(other) = self.link_published(file_name, dest) {
                self.live.log(&format!(
                    "job {other} has the same bundle: sharing {file_name}"
                ));
                *lock(&self.shared_from) = Some(other);
                return;
            }
            match names.get(file_name) {
                Some(other) if *other != self.live.id => {
                    if !said_wait {
                        self.live.log(&format!(
                            "job {other} is building the same bundle: waiting for it"
                        ));
                        said_wait = true;
                    }
                    names = self
                        .inflight
                        .changed
                        .wait_timeout(names, Duration::from_millis(250))
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                _ => {
                    names.insert(file_name.to_string(), self.live.id.clone());
                    *lock(&self.claimed) = Some(file_name.to_string());
                    return;
                }
            }
        }
    }
}

impl Drop for JobReuse<'_> {
    fn drop(&mut self) {
        if let Some(name) = lock(&self.claimed).take() {
            let mut names = lock(&self.inflight.names);
            if names.get(&name) == Some(&self.live.id) {
                names.remove(&name);
            }
            drop(names);
            self.inflight.changed.notify_all();
        }
    }
}
