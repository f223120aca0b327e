-- A failed job's error names the request entry (0-based index into `packages`) and the package
-- it is about, as the API's error bodies do.
ALTER TABLE jobs ADD COLUMN error_index INTEGER;
ALTER TABLE jobs ADD COLUMN error_package TEXT;
