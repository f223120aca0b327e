-- Identical requests share one bundle file: a new job looks for a finished job with its file name.
CREATE INDEX jobs_by_bundle_file ON jobs (bundle_file) WHERE bundle_file IS NOT NULL AND bundle_expired = 0;
