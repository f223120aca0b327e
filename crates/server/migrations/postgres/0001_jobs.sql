-- Jobs of `opaas serve` on PostgreSQL (several replicas): the columns of the SQLite schema
-- (migrations/0001..0003) plus the lease of the replica that runs a job, and the job logs
-- (so that any replica can tell a job's story). Times are Unix milliseconds (UTC).
CREATE TABLE jobs (
    seq              BIGSERIAL PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    state            TEXT    NOT NULL CHECK (state IN
                       ('queued', 'resolving', 'downloading', 'packing', 'done', 'failed', 'cancelled')),
    distro           TEXT    NOT NULL,
    arch             TEXT    NOT NULL,
    packages         TEXT    NOT NULL,
    recommends       BOOLEAN NOT NULL,
    baseline         TEXT    NOT NULL CHECK (baseline IN ('minimal', 'none', 'status')),
    status_text      TEXT,
    format           TEXT    NOT NULL CHECK (format IN ('tar.gz', 'tar.zst')),
    created_at       BIGINT  NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    progress         TEXT    NOT NULL,
    error_code       TEXT,
    error_message    TEXT,
    error_index      BIGINT,
    error_package    TEXT,
    bundle_file      TEXT,
    bundle_size      BIGINT,
    bundle_sha256    TEXT,
    bundle_packages  BIGINT,
    expires_at       BIGINT,
    bundle_expired   BOOLEAN NOT NULL DEFAULT false,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    downloaded_bytes BIGINT  NOT NULL DEFAULT 0,
    downloads        BIGINT  NOT NULL DEFAULT 0,
    cache_hits       BIGINT  NOT NULL DEFAULT 0,
    -- the replica running the job and until when (database clock) its lease holds
    owner            TEXT,
    lease_until      BIGINT
);

CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_by_expiry ON jobs (expires_at) WHERE NOT bundle_expired AND expires_at IS NOT NULL;
CREATE INDEX jobs_by_bundle_file ON jobs (bundle_file) WHERE bundle_file IS NOT NULL AND NOT bundle_expired;

CREATE TABLE job_log (
    job_id TEXT   NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    n      BIGINT NOT NULL,
    line   TEXT   NOT NULL,
    PRIMARY KEY (job_id, n)
);
