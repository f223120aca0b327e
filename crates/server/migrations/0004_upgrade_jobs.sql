-- Patch bundles (issue 10): a job may upgrade collected hosts instead of installing packages.
-- mode: install | upgrade | full-upgrade; hosts: JSON list of the collected host names; plan:
-- JSON of each host's upgrade plan (computed when the job is submitted).
ALTER TABLE jobs ADD COLUMN mode TEXT NOT NULL DEFAULT 'install';
ALTER TABLE jobs ADD COLUMN security_only INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN hosts TEXT;
ALTER TABLE jobs ADD COLUMN plan TEXT;
