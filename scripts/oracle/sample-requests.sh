#!/bin/bash
# sample-requests.sh - a reproducible random sample of real requests for scripts/apt-diff.sh:
# N package names of the target's archive, one per line, then N/3 lines of three, drawn with SEED
# from the Packages indices apt-oracle.sh's private root holds for TARGET (so both sides of the
# comparison know every name). Names apt sees only as virtual are not drawn.
#
# usage: scripts/oracle/sample-requests.sh TARGET SEED N > requests.txt
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 3 ] || { echo "usage: $0 SUITE-ARCH SEED N" >&2; exit 2; }
target=$1 seed=$2 n=$3
"$here/apt-oracle.sh" "$target" >/dev/null               # the private root's indices
lists=${ORACLE_WORK:-${TMPDIR:-/tmp}/opaas-oracle}/roots/$target/var/lib/apt/lists
python3 - "$seed" "$n" "$lists" <<'PY'
import glob, random, sys
seed, n, lists = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
names = set()
for f in glob.glob(lists + "/*_Packages"):
    with open(f, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith("Package: "):
                names.add(line[9:].strip())
pool = sorted(names)
rng = random.Random(seed)
for name in rng.sample(pool, n):
    print(name)
for _ in range(n // 3):
    print(" ".join(rng.sample(pool, 3)))
PY
