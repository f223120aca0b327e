#!/bin/bash
# sbom-validate.sh FILE... - validates CycloneDX SBOMs (sbom.cdx.json of a bundle) against the
# official CycloneDX 1.6 JSON schema as the PyPI package cyclonedx-python-lib ships it
# (cyclonedx/schema/_res/bom-1.6.schema.json, with the SPDX and JSF schemas it refers to), in
# strict mode. Prints VALID/INVALID per file; exit 1 when one is invalid.
# `sbom-validate.sh --install` only installs the validator: a venv under
# ${OPAAS_SBOM_VENV:-~/.cache/opaas-sbom/venv} with cyclonedx-python-lib[json-validation].
set -euo pipefail
VENV=${OPAAS_SBOM_VENV:-$HOME/.cache/opaas-sbom/venv}
if ! "$VENV/bin/python" -c 'import cyclonedx.validation.json, jsonschema' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'cyclonedx-python-lib[json-validation]' </dev/null
fi
[ "${1:-}" = --install ] && exit 0
[ $# -gt 0 ] || { sed -n '2,7p' "$0" >&2; exit 2; }
exec "$VENV/bin/python" - "$@" <<'PY'
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
import cyclonedx.schema._res as res
import os
schema = os.path.join(os.path.dirname(res.__file__), "bom-1.6.schema.json")
validator = JsonStrictValidator(SchemaVersion.V1_6)
bad = 0
for f in sys.argv[1:]:
    with open(f, encoding="utf-8") as fh:
        err = validator.validate_str(fh.read())
    if err is None:
        print(f"VALID {f} (CycloneDX 1.6, strict, schema {schema})")
    else:
        e = err.data
        where = "/".join(str(p) for p in getattr(e, "absolute_path", [])) or "(top)"
        print(f"INVALID {f} at {where}: {getattr(e, 'message', str(e))[:500]}")
        bad = 1
sys.exit(bad)
PY
