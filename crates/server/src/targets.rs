//! What this server can build, per (distro, arch): whether its configuration has a mirror for
//! the target (flags, env, config file, host APT sources, presets), and how the last refresh of
//! its package indices went. `GET /api/distros` reports it so that the UI marks the targets it
//! cannot serve before anything is typed (issue #13, item 2).

use opaas_engine::Settings;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a mirror look-up is reused (it reads the configuration and the host's APT sources).
const MIRROR_TTL: Duration = Duration::from_secs(60);

/// Why a target cannot be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unavailable {
    /// No mirror is configured for it.
    NoMirror,
    /// The last refresh of its indices failed (the mirror did not answer or was not trusted).
    MirrorFailing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Status {
    pub available: bool,
    pub unavailable: Option<Unavailable>,
}

type Key = (String, String);

#[derive(Default)]
pub struct Targets {
    mirrors: Mutex<HashMap<Key, (Instant, bool)>>,
    /// The last refresh: true when it worked.
    refreshed: Mutex<HashMap<Key, bool>>,
}

fn key(distro: &str, arch: &str) -> Key {
    (distro.to_string(), arch.to_string())
}

impl Targets {
    /// Records how a refresh of the indices of `distro`/`arch` (or a build that needed the
    /// mirror) went.
    pub fn record_refresh(&self, distro: &str, arch: &str, ok: bool) {
        self.refreshed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key(distro, arch), ok);
    }

    fn has_mirror(&self, settings: &Settings, distro: &str, arch: &str) -> bool {
        let k = key(distro, arch);
        let now = Instant::now();
        if let Some((at, ok)) = self
            .mirrors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&k)
        {
            if now.duration_since(*at) < MIRROR_TTL {
                return *ok;
            }
        }
        let ok = opaas_engine::mirrors_for(settings, distro, arch).is_ok();
        self.mirrors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k, (now, ok));
        ok
    }

    /// Whether this server can serve `distro`/`arch` (blocking: reads the configuration).
    pub fn status(&self, settings: &Settings, distro: &str, arch: &str) -> Status {
        let unavailable = if !self.has_mirror(settings, distro, arch) {
            Some(Unavailable::NoMirror)
        } else if self
            .refreshed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key(distro, arch))
            == Some(&false)
        {
            Some(Unavailable::MirrorFailing)
        } else {
            None
        };
        Status {
            available: unavailable.is_none(),
            unavailable,
        }
    }
}
