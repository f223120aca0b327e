-- Patch bundles (issue 10) and lockfile jobs (issue 11), as SQLite's 0004: how a job computes
-- its packages (install | upgrade | full-upgrade | locked), security-only upgrades, the
-- collected host names (JSON list) and each host's plan (JSON, computed at submit).
ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'install';
ALTER TABLE jobs ADD COLUMN security_only BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN hosts TEXT;
ALTER TABLE jobs ADD COLUMN plan TEXT;
