-- Jobs of `opaas serve`. Times are Unix milliseconds (UTC). JSON columns hold small documents.
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    state            TEXT    NOT NULL CHECK (state IN
                       ('queued', 'resolving', 'downloading', 'packing', 'done', 'failed', 'cancelled')),
    distro           TEXT    NOT NULL,
    arch             TEXT    NOT NULL,
    packages         TEXT    NOT NULL,              -- JSON array of request strings
    recommends       INTEGER NOT NULL,
    baseline         TEXT    NOT NULL CHECK (baseline IN ('minimal', 'none', 'status')),
    status_text      TEXT,                          -- the uploaded dpkg status when baseline = 'status'
    format           TEXT    NOT NULL CHECK (format IN ('tar.gz', 'tar.zst')),
    created_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER,
    progress         TEXT    NOT NULL,              -- JSON: phase, packages_done/total, bytes_done/total
    error_code       TEXT,
    error_message    TEXT,
    bundle_file      TEXT,
    bundle_size      INTEGER,
    bundle_sha256    TEXT,
    bundle_packages  INTEGER,
    expires_at       INTEGER,
    bundle_expired   INTEGER NOT NULL DEFAULT 0,    -- 1 once the janitor removed the tarball
    attempts         INTEGER NOT NULL DEFAULT 0,    -- how many times a worker started it
    downloaded_bytes INTEGER NOT NULL DEFAULT 0,
    downloads        INTEGER NOT NULL DEFAULT 0,
    cache_hits       INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_by_expiry ON jobs (expires_at) WHERE bundle_expired = 0 AND expires_at IS NOT NULL;
