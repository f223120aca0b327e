//! Loaded package universes for search and the submit-time name check, per (distro, arch):
//! a small LRU, reloaded when the cached indices change (another build or a refresh updated
//! them). Loading is blocking: call from blocking tasks.

use opaas_engine::{EngineError, Settings};
use opaas_repo::store::{self, RepoError};
use opaas_repo::universe::Universe;
use std::sync::{Arc, Mutex};

struct Entry {
    distro: String,
    arch: String,
    stamp: String,
    universe: Arc<Universe>,
    used: u64,
}

pub struct Universes {
    settings: Settings,
    cap: usize,
    entries: Mutex<(u64, Vec<Entry>)>,
}

/// What identifies the cached indices of a session's target: each pocket's index ids.
fn stamp(s: &opaas_engine::Session) -> Option<String> {
    let mut out = String::new();
    for (mirror, suite) in s.target.pockets() {
        let st = s.cache.suite_state(mirror, suite)?;
        out.push_str(suite);
        out.push(':');
        for i in &st.indices {
            out.push_str(&i.id);
            out.push(',');
        }
        out.push(';');
    }
    Some(out)
}

impl Universes {
    pub fn new(settings: Settings, cap: usize) -> Universes {
        Universes {
            settings,
            cap: cap.max(1),
            entries: Mutex::new((0, Vec::new())),
        }
    }

    /// The universe of `distro`/`arch`. With `network` false, only what the cache has (None
    /// when nothing is cached yet); with it, missing indices are fetched first.
    pub fn get(
        &self,
        distro: &str,
        arch: &str,
        network: bool,
    ) -> Result<Option<Arc<Universe>>, EngineError> {
        let session = opaas_engine::open(&self.settings, distro, arch, &[])?;
        let id = session.distro.id.clone();
        let current = stamp(&session);
        if let Some(st) = &current {
            let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            g.0 += 1;
            let tick = g.0;
            if let Some(e) =
                g.1.iter_mut()
                    .find(|e| e.distro == id && e.arch == arch && &e.stamp == st)
            {
                e.used = tick;
                return Ok(Some(Arc::clone(&e.universe)));
            }
        } else if !network {
            return Ok(None);
        }
        // only what is cached, unless fetching is allowed (a state file for the suite does not
        // mean this architecture's indices are there)
        let u = match store::load_cached_intact(&session.cache, &session.target) {
            Ok(loaded) => Universe::new(session.arch(), loaded),
            Err(RepoError::NotCached { .. }) if !network => return Ok(None),
            Err(RepoError::NotCached { .. }) => session.universe()?,
            Err(e) => return Err(e.into()),
        };
        let u = Arc::new(u);
        let st = stamp(&session).unwrap_or_default();
        let mut g = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        let tick = g.0;
        g.1.retain(|e| !(e.distro == id && e.arch == arch));
        g.1.push(Entry {
            distro: id,
            arch: arch.to_string(),
            stamp: st,
            universe: Arc::clone(&u),
            used: tick,
        });
        while g.1.len() > self.cap {
            if let Some(i) =
                g.1.iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.used)
                    .map(|(i, _)| i)
            {
                g.1.remove(i);
            }
        }
        Ok(Some(u))
    }

    /// How many universes are loaded.
    pub fn loaded(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .len()
    }
}
