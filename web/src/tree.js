// The dependency tree of a resolution, built from each package's `why`:
//   "requested"
//   "<parent>[:arch] <version> <Field>: <relation>[ [choice]]"     e.g. "nginx 1.22.1-9 Depends: nginx-common (= 1.22.1-9)"
//   "upgraded with <sibling> (same source package)"
//   "upgraded because <parent> <version> <Field>: <relation>"
// Anything else, or a parent that is not in the list, goes to the "other" group.

/** Parse one `why` string: {kind, parent, field, relation}. */
export function parseWhy(why) {
  const w = String(why || '').trim()
  if (w === '' || w === 'requested') return { kind: 'requested' }
  let m
  if ((m = w.match(/^upgraded with (\S+)/))) return { kind: 'same-source', parent: m[1], field: '', relation: w }
  if ((m = w.match(/^upgraded because (\S+) \S+ ([A-Za-z-]+): (.*)$/))) return { kind: 'upgrade', parent: m[1], field: m[2], relation: m[3] }
  if ((m = w.match(/^(\S+) \S+ ([A-Za-z-]+): (.*)$/))) return { kind: 'dependency', parent: m[1], field: m[2], relation: m[3] }
  if ((m = w.match(/^(\S+)\s/))) return { kind: 'other', parent: m[1], field: '', relation: w }
  return { kind: 'other', parent: null, field: '', relation: w }
}

/**
 * Build a forest: [{pkg, field, relation, children: [...]}], requested packages first, then a
 * synthetic node {other: true, children} for packages whose parent is unknown. Every package
 * appears exactly once; cycles (which a `why` chain should never have) are broken.
 */
export function buildTree(packages) {
  const byKey = new Map()
  for (const p of packages) {
    byKey.set(p.name, p)
    if (p.arch) byKey.set(`${p.name}:${p.arch}`, p)
  }
  const nodes = new Map(packages.map((p) => [p, { pkg: p, ...parseWhy(p.why), children: [] }]))
  const roots = []
  const orphans = []
  for (const p of packages) {
    const n = nodes.get(p)
    if (n.kind === 'requested') { roots.push(n); continue }
    const parent = n.parent && (byKey.get(n.parent) || byKey.get(n.parent.split(':')[0]))
    if (parent && parent !== p) nodes.get(parent).children.push(n)
    else orphans.push(n)
  }
  // packages not reachable from a root (cycles) become orphans too
  const seen = new Set()
  const visit = (n) => {
    if (seen.has(n)) return
    seen.add(n)
    n.children.forEach(visit)
  }
  roots.forEach(visit)
  orphans.forEach(visit)
  for (const n of nodes.values()) {
    if (!seen.has(n)) {
      // detach from its parent inside the cycle and promote
      for (const m of nodes.values()) m.children = m.children.filter((c) => c !== n)
      orphans.push(n)
      visit(n)
    }
  }
  const byName = (a, b) => a.pkg.name.localeCompare(b.pkg.name)
  const sortRec = (list) => { list.sort(byName); list.forEach((n) => sortRec(n.children)) }
  sortRec(roots)
  sortRec(orphans)
  const out = [...roots]
  if (orphans.length) out.push({ other: true, children: orphans })
  return out
}

/** Number of nodes below `n`. */
export function countDescendants(n) {
  return n.children.reduce((s, c) => s + 1 + countDescendants(c), 0)
}
