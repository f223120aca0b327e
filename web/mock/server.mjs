#!/usr/bin/env node
// A mock of `opaas serve` (docs/API.md) for developing and testing the web UI: fake data, plain
// Node http, no dependencies. It serves web/dist at `/`.
//
//   node mock/server.mjs [--port 5180] [--host 127.0.0.1] [--token SECRET] [--speed 1] [--dist DIR] [--no-seed]
//
// A job goes queued → resolving → downloading → packing → done in about 3 s (divided by --speed)
// and streams SSE events; the bundle is a real (tiny) tar.gz. Fake data: mock/data.mjs. Requests
// that fail: an unknown name (unknown_package with suggestions), `legacy-app` on Debian 12 /
// Ubuntu 24.04 (unsatisfiable), `postfix` + `exim4-daemon-light` (conflict), `httpd` (virtual).
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { DISTROS, PRESETS, indexFor } from './data.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const NAME_RE = /^([a-z0-9][a-z0-9+.-]+)(?:([=/])([A-Za-z0-9.+~:-]+)|:([a-z0-9-]+))?$/
const MAX_PACKAGES = 100
const TOOL_VERSION = '0.1.0-mock'
// the real service's OpenAPI document: the mock answers as it documents (tests/unit/mock-openapi.test.js)
const OPENAPI = JSON.parse(fs.readFileSync(path.join(HERE, '..', '..', 'crates', 'server', 'data', 'openapi.json'), 'utf8'))

class HttpError extends Error {
  constructor(status, code, message, field = null, suggestions = [], pkg = null, index = null) {
    super(message)
    Object.assign(this, { status, code, field, suggestions, index, pkg })
  }
  // an error about entry i of the request's package list (field `packages[i]`, `index` i)
  static entry(status, code, message, i, suggestions = [], pkg = null) {
    return new HttpError(status, code, message, `packages[${i}]`, suggestions, pkg, i)
  }
  body() { return { error: { code: this.code, message: this.message, field: this.field, index: this.index, package: this.pkg, suggestions: this.suggestions } } }
}

// ---------------------------------------------------------------- search and resolution

function levenshtein(a, b) {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      // a transposition counts as one edit (optimal string alignment)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

function providers(idx, name) {
  return [...idx.values()].filter((p) => p.provides.includes(name)).map((p) => p.name)
}

/** Close names, then providers of a virtual name. */
function suggest(idx, name) {
  const prov = providers(idx, name)
  if (prov.length) return prov
  return [...idx.keys()]
    .map((n) => ({ n, d: levenshtein(name, n) }))
    .filter((x) => x.d <= (name.length <= 3 ? 1 : name.length <= 7 ? 2 : 3))
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n))
    .slice(0, 5)
    .map((x) => x.n)
}

function search(idx, q, limit) {
  q = q.trim().toLowerCase()
  if (!q) return { items: [], suggestions: [] }
  const rank = (p) => (p.name === q ? 0 : p.name.startsWith(q) ? 1 : p.name.includes(q) ? 2 : p.summary.toLowerCase().includes(q) ? 3 : 9)
  const items = [...idx.values()]
    .map((p) => ({ p, r: rank(p) }))
    .filter((x) => x.r < 9)
    .sort((a, b) => a.r - b.r || a.p.name.length - b.p.name.length || a.p.name.localeCompare(b.p.name))
    .slice(0, limit)
    .map(({ p }) => ({ name: p.name, version: p.version, summary: p.summary }))
  const suggestions = idx.has(q) ? [] : suggest(idx, q).filter((n) => n !== q)
  return { items, suggestions }
}

// ---- patch bundles (upgrade mode): collected files, plans -----------------------------------
const here = path.dirname(fileURLToPath(import.meta.url))
/** The real collect script (crates/engine/src/collect.rs), as GET /api/collect-script serves it. */
export function collectScript() {
  try {
    const src = fs.readFileSync(path.join(here, '../../crates/engine/src/collect.rs'), 'utf8')
    const m = /pub const COLLECT_SCRIPT: &str = r#"([\s\S]*?)"#;/.exec(src)
    if (m) return m[1]
  } catch { /* outside the repository */ }
  return '#!/bin/sh\n# OPaaS collect script\n'
}
function badCollected(i, msg) {
  const e = new HttpError(400, 'bad_collected_file', `collected file ${i + 1}: ${msg}`, `collected[${i}]`)
  e.index = i
  return e
}
/** A collected file, read as strictly as the service: header, status (name -> version). */
export function parseCollected(text, i) {
  if (typeof text !== 'string') throw badCollected(i, 'each collected file must be a string (the file\'s text)')
  if (text.includes('\0')) throw badCollected(i, 'the collected file is not text (binary data); give the file `sh collect.sh` wrote')
  const lines = text.split('\n')
  if (lines[0] !== 'OPaaS-Collect: 1') throw badCollected(i, "line 1: not a collected file (it must start with 'OPaaS-Collect: 1')")
  const head = {}
  let k = 1
  for (; k < lines.length && lines[k] !== ''; k++) {
    const c = lines[k].indexOf(':')
    if (c > 0) head[lines[k].slice(0, c)] = lines[k].slice(c + 1).trim()
  }
  if (!text.includes('\n### end')) throw badCollected(i, "the collected file is cut short: no '### end' line; copy it again")
  const distro = DISTROS.find((d) => d.id === `${(head['OS-ID'] || '').toLowerCase()}-${head['OS-Version-ID']}`)
  if (!distro) throw badCollected(i, `the collected machine runs ${head['OS-ID']}-${head['OS-Version-ID']}, which this opaas does not support (end of life or unknown); supported: ${DISTROS.map((d) => d.id).join(', ')}`)
  const arch = distro.architectures.find((a) => a.name === head.Architecture)
  if (!arch) throw badCollected(i, `the collected machine is ${distro.id} ${head.Architecture}; ${distro.id} supports ${distro.architectures.map((a) => a.name).join(', ')}`)
  const body = text.split('### /var/lib/dpkg/status\n')[1] || ''
  const status = body.split('### /var/lib/apt/extended_states')[0]
  const installed = new Map()
  for (const para of status.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(para)
    const ver = /^Version:\s*(\S+)/m.exec(para)
    if (name && ver && /^Status:\s*(install|hold) ok installed\s*$/m.test(para)) installed.set(name[1], ver[1])
  }
  return { host: head.Hostname || '?', collected: head.Collected || '', distro, arch, installed }
}
/** What the service's upgrade preview answers: each host's plan, security first. */
function upgradePlans(body) {
  const mode = body.mode
  if (mode !== 'upgrade' && mode !== 'full-upgrade') throw new HttpError(400, 'bad_request', 'mode must be "install", "upgrade" or "full-upgrade"', 'mode')
  if (!Array.isArray(body.collected) || !body.collected.length) throw new HttpError(400, 'bad_request', 'collected is required in upgrade modes: a list of the files the collect script wrote', 'collected')
  const hosts = body.collected.map((t, i) => parseCollected(t, i))
  const first = hosts[0]
  hosts.forEach((h, i) => {
    if (h.distro.id !== first.distro.id || h.arch.name !== first.arch.name) throw new HttpError(400, 'bad_collected_file', `collected file ${i + 1}: ${h.host} is ${h.distro.id} ${h.arch.name}, but collected file 1 (${first.host}) is ${first.distro.id} ${first.arch.name}: a fleet bundle is for one distro and architecture`, 'collected')
    if (hosts.findIndex((o) => o.host === h.host) < i) throw new HttpError(400, 'bad_collected_file', `two files were both collected on host '${h.host}': give each host once`, 'collected')
  })
  const idx = indexFor(first.distro.id)
  const files = new Map()
  const plans = hosts.map((h, i) => {
    const items = []
    const missing = []
    for (const [name, from] of h.installed) {
      const p = idx.get(name)
      if (!p) { missing.push(`${name}:${h.arch.name}`); continue }
      if (p.version === from) continue
      const security = /-security\//.test(p.pocket)
      if (body.security_only && !security) continue
      items.push({ kind: security ? 'security' : 'upgrade', name, arch: h.arch.name, from, to: p.version, pocket: p.pocket })
      files.set(`${name}_${p.version}`, p.size)
    }
    if (h.installed.size && missing.length === h.installed.size) {
      throw new HttpError(400, 'bad_collected_file', `collected file ${i + 1}: none of the ${h.installed.size} packages installed on ${h.host} exists in the ${h.distro.id} ${h.arch.name} archive`, 'collected')
    }
    items.sort((a, b) => (a.kind === b.kind ? a.name.localeCompare(b.name) : a.kind === 'security' ? -1 : 1))
    const n = (k) => items.filter((x) => x.kind === k).length
    return {
      host: h.host, collected: h.collected, distro: h.distro.id, arch: h.arch.name, mode, security_only: !!body.security_only,
      installed: h.installed.size, plan: items, kept_back: [], remove: [], not_in_archive: missing.sort(),
      counts: { security: n('security'), upgrade: n('upgrade'), new: 0, kept_back: 0, remove: 0 },
    }
  })
  return {
    mode, distro: first.distro.id, arch: first.arch.name, security_only: !!body.security_only,
    count: files.size, total_size: [...files.values()].reduce((a, b) => a + b, 0), hosts: plans,
    req: { distro: first.distro, arch: first.arch, idx, requests: [...new Set(plans.flatMap((p) => p.plan.map((x) => x.name)))], recommends: false, baseline: 'none', installed: new Set(hosts.flatMap((h) => [...h.installed.keys()])), format: body.format ?? 'tar.gz' },
  }
}

function parseStatus(text) {
  const installed = new Set()
  for (const para of String(text).split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(para)
    if (name && /^Status:\s*install ok installed\s*$/m.test(para)) installed.add(name[1])
  }
  return installed
}

/** Validate a request body (400s) and return the normalized request. */
function validate(body, { job = false } = {}) {
  if (!body || typeof body !== 'object') throw new HttpError(400, 'bad_request', 'the body must be a JSON object')
  const distro = DISTROS.find((d) => d.id === body.distro)
  if (!distro) throw new HttpError(400, 'unknown_distro', `unknown distro '${body.distro}'`, 'distro', DISTROS.map((d) => d.id))
  const arch = distro.architectures.find((a) => a.name === body.arch)
  if (!arch) throw new HttpError(400, 'unknown_arch', `${distro.name} has no architecture '${body.arch}'`, 'arch', distro.architectures.map((a) => a.name))
  if (!arch.available) throw new HttpError(502, 'no_mirror', `this server has no mirror for ${distro.id} ${arch.name}; ask the administrator`)
  if (!Array.isArray(body.packages) || body.packages.length === 0) throw new HttpError(400, 'bad_request', 'packages must be a non-empty list', 'packages')
  if (body.packages.length > MAX_PACKAGES) throw new HttpError(400, 'too_many_packages', `at most ${MAX_PACKAGES} packages per request (got ${body.packages.length})`, 'packages')
  let baseline = body.baseline ?? 'minimal'
  let installed = null
  if (baseline && typeof baseline === 'object') {
    if (typeof baseline.status !== 'string') throw new HttpError(400, 'bad_request', 'baseline must be "minimal", "none" or {"status": "<text>"}', 'baseline')
    installed = parseStatus(baseline.status)
    if (installed.size === 0) throw new HttpError(400, 'bad_status_file', "the status file has no installed package (expected stanzas with 'Status: install ok installed')", 'baseline')
  } else if (baseline !== 'minimal' && baseline !== 'none') {
    throw new HttpError(400, 'bad_request', 'baseline must be "minimal", "none" or {"status": "<text>"}', 'baseline')
  }
  const format = body.format ?? 'tar.gz'
  if (job && format !== 'tar.gz' && format !== 'tar.zst') throw new HttpError(400, 'bad_request', 'format must be "tar.gz" or "tar.zst"', 'format')
  const idx = indexFor(distro.id)
  const requests = body.packages.map((spec, i) => {
    const m = typeof spec === 'string' ? NAME_RE.exec(spec) : null
    if (!m) {
      throw HttpError.entry(400, 'invalid_package_name', `invalid request '${spec}': use pkg, pkg=VERSION, pkg/SUITE or pkg:ARCH with a Debian package name ([a-z0-9][a-z0-9+.-]+)`, i)
    }
    const name = m[1]
    const p = idx.get(name)
    if (!p) {
      const prov = providers(idx, name)
      if (prov.length) throw HttpError.entry(400, 'unknown_package', `package '${name}' is a virtual package provided by: ${prov.join(', ')}; select one of them`, i, prov, name)
      throw HttpError.entry(400, 'unknown_package', `unable to locate package '${name}' in ${distro.name} (${distro.codename}) ${arch.name}`, i, suggest(idx, name), name)
    }
    if (m[2] === '=' && m[3] !== p.version) throw HttpError.entry(400, 'unknown_package', `version '${m[3]}' of '${name}' was not found (available: ${p.version})`, i, [`${name}=${p.version}`], name)
    return name
  })
  return { distro, arch, idx, requests, recommends: body.recommends !== false, baseline, installed, format }
}

/** A small breadth-first resolver with apt-like reasons. Throws unsatisfiable (422). */
function resolve(req) {
  const { idx, distro } = req
  const skip = (name) => {
    if (req.installed) return req.installed.has(name)
    if (req.baseline === 'minimal') return !!idx.get(name)?.base
    return false
  }
  const chosen = new Map() // name -> {pkg, why}
  const queue = []
  for (const name of req.requests) {
    if (!chosen.has(name)) { chosen.set(name, { pkg: idx.get(name), why: 'requested' }); queue.push(name) }
  }
  while (queue.length) {
    const name = queue.shift()
    const p = idx.get(name)
    const fields = [['Depends', p.depends], ...(req.recommends ? [['Recommends', p.recommends]] : [])]
    for (const [field, rels] of fields) {
      for (const rel of rels) {
        const alts = rel.split('|').map((s) => s.trim())
        const names = alts.map((a) => a.split(' ')[0])
        if (names.some((n) => chosen.has(n) || skip(n))) continue
        const idxOk = names.findIndex((n) => idx.has(n))
        if (idxOk < 0) {
          if (field === 'Recommends') continue
          throw new HttpError(422, 'unsatisfiable',
            `the request cannot be satisfied in ${distro.name} (${distro.codename}):\n  ${name} ${p.version} ${field}: ${rel}\n    but ${names.join(' | ')} ${names.length > 1 ? 'are' : 'is'} not installable (no package of that name, and nothing provides it)`)
        }
        const dep = names[idxOk]
        const choice = alts.length > 1 ? (idxOk === 0 ? ' [first alternative]' : ` [alternative ${idxOk + 1} (earlier ones not installable)]`) : ''
        chosen.set(dep, { pkg: idx.get(dep), why: `${name} ${p.version} ${field}: ${rel}${choice}` })
        queue.push(dep)
      }
    }
  }
  // conflicts between chosen packages (Conflicts on a virtual name that another one provides)
  const list = [...chosen.values()]
  for (const a of list) {
    for (const c of a.pkg.conflicts) {
      const b = list.find((x) => x !== a && (x.pkg.name === c || x.pkg.provides.includes(c)))
      if (b) {
        throw new HttpError(422, 'unsatisfiable',
          `the request cannot be satisfied in ${distro.name} (${distro.codename}):\n  ${a.pkg.name} ${a.pkg.version} Conflicts: ${c}\n  ${b.pkg.name} ${b.pkg.version} Provides: ${c} (${b.why})`)
      }
    }
  }
  const packages = list
    .map(({ pkg, why }) => ({
      // the engine's package view (docs/API.md): the same fields as a bundle manifest's packages
      name: pkg.name, version: pkg.version, arch: req.arch.name, size: pkg.size, pocket: pkg.pocket, why,
      sha256: crypto.createHash('sha256').update(`${pkg.name} ${pkg.version}`).digest('hex'),
      filename: `${pkg.name}_${pkg.version.replace(/^\d+:/, '')}_${req.arch.name}.deb`,
      installed_size_kb: Math.round(pkg.size * 3 / 1024), upgrade_from: null,
    }))
    .sort((a, b) => a.name.localeCompare(b.name))
  return { count: packages.length, total_size: packages.reduce((s, p) => s + p.size, 0), packages, remove: [] }
}

// ---------------------------------------------------------------- bundles (a real, tiny tar.gz)

function tarEntry(name, content, mode = 0o644) {
  const data = Buffer.from(content)
  const h = Buffer.alloc(512)
  h.write(name, 0, 100, 'utf8')
  h.write(mode.toString(8).padStart(7, '0') + '\0', 100)
  h.write('0000000\0', 108)
  h.write('0000000\0', 116)
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124)
  h.write('14000000000\0', 136) // fixed time: deterministic
  h.write('        ', 148)
  h.write('0', 156)
  h.write('ustar\0' + '00', 257)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512)
  return Buffer.concat([h, data, pad])
}

function makeBundle(job, resolution) {
  const hash = crypto.createHash('sha256').update(JSON.stringify(resolution.packages)).digest('hex').slice(0, 8)
  const dir = `offline_pkg_${job.distro}_${job.arch}_${hash}`
  const manifest = {
    request: job.packages, distro: job.distro, arch: job.arch,
    options: { recommends: job.recommends, baseline: typeof job.baseline === 'string' ? job.baseline : 'status' },
    tool_version: TOOL_VERSION, created: job.finished_at, packages: resolution.packages,
  }
  const install = `#!/bin/bash\n# mock bundle made by web/mock/server.mjs: it installs nothing\nset -euo pipefail\necho "would install: ${resolution.packages.map((p) => p.name).join(' ')}"\n`
  const readme = `Offline bundle (mock) for ${job.distro} ${job.arch}\n离线安装包（模拟）\n\n  sudo bash install.sh\n`
  const tar = Buffer.concat([
    tarEntry(`${dir}/install.sh`, install, 0o755),
    tarEntry(`${dir}/manifest.json`, JSON.stringify(manifest, null, 2) + '\n'),
    tarEntry(`${dir}/README.txt`, readme),
    Buffer.alloc(1024),
  ])
  // the mock always writes gzip; a tar.zst request only changes the name
  const data = zlib.gzipSync(tar, { level: 6 })
  const ext = job.format === 'tar.zst' ? 'tar.zst' : 'tar.gz'
  // the SBOM's shape (docs/API.md): a CycloneDX 1.6 document, one component per package
  const purl = (p) => `pkg:deb/${job.distro.split('-')[0]}/${p.name}@${encodeURIComponent(p.version)}?arch=${p.arch}&distro=${job.distro}`
  const sbom = {
    bomFormat: 'CycloneDX', specVersion: '1.6', version: 1,
    metadata: { timestamp: job.finished_at, component: { type: 'application', 'bom-ref': dir, name: dir, version: hash } },
    components: resolution.packages.map((p) => ({ type: 'library', 'bom-ref': purl(p), name: p.name, version: p.version, purl: purl(p), hashes: [{ alg: 'SHA-256', content: p.sha256 }] })),
    dependencies: [{ ref: dir, dependsOn: resolution.packages.map(purl) }],
  }
  return { data, manifest, sbom, file_name: `${dir}.${ext}`, sha256: crypto.createHash('sha256').update(data).digest('hex') }
}

// ---------------------------------------------------------------- jobs

const WORK_PHASES = ['queued', 'resolving', 'downloading', 'packing']

export function createMock({ token = '', speed = 1, seed = true, dist = path.join(HERE, '..', 'dist'), ttlHours = 24 } = {}) {
  const jobs = new Map() // id -> {job, log: [], subs: Set<res>, bundleData, manifest, timers}
  const iso = (t) => new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z')
  // bundle.expired: the tarball was removed after expires_at (the job and its manifest stay)
  const fresh = (job) => {
    if (job.bundle) job.bundle.expired = new Date(job.bundle.expires_at).getTime() <= Date.now()
    return job
  }
  const ms = (n) => Math.max(1, Math.round(n / speed))

  function newJob(req, body, createdAt = Date.now()) {
    const id = crypto.randomBytes(16).toString('hex')
    const job = {
      id, state: 'queued', distro: req.distro.id, arch: req.arch.name, packages: [...body.packages],
      recommends: req.recommends, baseline: req.installed ? 'status' : req.baseline, format: req.format, // the status text is not repeated
      created_at: iso(createdAt), started_at: null, finished_at: null,
      progress: { phase: 'queued', packages_done: 0, packages_total: 0, bytes_done: 0, bytes_total: 0 },
      error: null, bundle: null, mode: 'install', security_only: false, hosts: [],
    }
    const rec = { job, log: [], subs: new Set(), timers: [], req }
    jobs.set(id, rec)
    return rec
  }

  function send(rec, event, data) {
    const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
    for (const res of rec.subs) res.write(msg)
  }
  function logLine(rec, line) {
    rec.log.push(line)
    send(rec, 'log', { line, n: rec.log.length }) // counts from 1, as the service's
  }
  function setState(rec, state) {
    rec.job.state = state
    if (WORK_PHASES.includes(state)) rec.job.progress = { ...rec.job.progress, phase: state }
    send(rec, 'state', rec.job)
  }
  function progress(rec, p) {
    rec.job.progress = { ...rec.job.progress, ...p }
    send(rec, 'progress', rec.job.progress)
  }
  function end(rec) {
    rec.timers.forEach(clearTimeout)
    rec.timers = []
    send(rec, 'end', rec.job)
    for (const res of rec.subs) res.end()
    rec.subs.clear()
  }
  function fail(rec, err, at = Date.now()) {
    rec.job.error = { code: err.code, message: err.message, index: err.index ?? null, package: err.pkg ?? null }
    rec.job.finished_at = iso(at)
    logLine(rec, `E: ${err.message.split('\n')[0]}`)
    for (const l of err.message.split('\n').slice(1)) logLine(rec, `   ${l.trim()}`)
    setState(rec, 'failed')
    end(rec)
  }
  function finishDone(rec, resolution, at = Date.now()) {
    rec.job.finished_at = iso(at)
    const b = makeBundle(rec.job, resolution)
    rec.bundleData = b.data
    rec.manifest = b.manifest
    rec.sbom = b.sbom
    rec.job.bundle = { file_name: b.file_name, size: b.data.length, sha256: b.sha256, package_count: resolution.count, expires_at: iso(at + ttlHours * 3600e3), expired: false }
    logLine(rec, `Wrote ${b.file_name} (${b.data.length} bytes, ${resolution.count} packages)`)
    setState(rec, 'done')
    end(rec)
  }

  /** Run a job through its phases (about 3 s at speed 1). */
  function run(rec) {
    const { job, req } = rec
    const at = (t, f) => rec.timers.push(setTimeout(f, ms(t)))
    logLine(rec, `Queued: ${job.packages.join(' ')} for ${job.distro} ${job.arch}`)
    send(rec, 'state', job)
    at(300, () => {
      job.started_at = iso(Date.now())
      setState(rec, 'resolving')
      logLine(rec, `Reading package indices of ${req.distro.name} (${req.distro.codename}) ${job.arch}: verified, up to date`)
      logLine(rec, `Resolving ${job.packages.join(' ')} (recommends: ${job.recommends ? 'yes' : 'no'}, baseline: ${typeof job.baseline === 'string' ? job.baseline : 'status file'})`)
    })
    // the package lists, as `opaas serve` reports a cold fetch (index_files, index_bytes)
    for (let i = 1; i <= 3; i++) at(300 + i * 120, () => progress(rec, { index_files: i, index_bytes: i * 412000 }))
    at(800, () => {
      let resolution
      try { resolution = resolve(req) } catch (e) { fail(rec, e); return }
      rec.resolution = resolution
      logLine(rec, `${resolution.count} packages to download, ${(resolution.total_size / 1e6).toFixed(1)} MB`)
      setState(rec, 'downloading')
      progress(rec, { phase: 'downloading', packages_done: 0, packages_total: resolution.count, bytes_done: 0, bytes_total: resolution.total_size })
      const steps = 16
      const pk = resolution.packages
      let done = 0
      let cum = 0 // bytes of the packages completed
      for (let s = 1; s <= steps; s++) {
        at(s * 100, () => { // timers set here count from now (0.8 s into the job)
          const target = Math.round((resolution.total_size * s) / steps)
          while (done < pk.length && cum + pk[done].size <= target) {
            const p = pk[done++]
            cum += p.size
            logLine(rec, `Get:${done} ${p.pocket} ${p.name} ${p.arch} ${p.version} [${Math.round(p.size / 1000)} kB]`)
          }
          progress(rec, { packages_done: done, bytes_done: target })
        })
      }
      at(1650, () => {
        setState(rec, 'packing')
        logLine(rec, 'Writing the repository index (Packages, Release), manifest.json, SHA256SUMS, install.sh')
      })
      // the .debs written into the bundle, like `opaas serve` (packed_bytes of pack_total_bytes)
      for (let s = 0; s <= 4; s++) {
        at(1650 + s * 130, () => progress(rec, { packed_bytes: Math.round((resolution.total_size * s) / 4), pack_total_bytes: resolution.total_size }))
      }
      at(2200, () => finishDone(rec, resolution))
    })
  }

  function cancel(rec) {
    if (['done', 'failed', 'cancelled'].includes(rec.job.state)) return
    rec.timers.forEach(clearTimeout)
    rec.timers = []
    rec.job.finished_at = iso(Date.now())
    logLine(rec, 'Cancelled by the user')
    setState(rec, 'cancelled')
    end(rec)
  }

  // a few jobs in the past so that the history page has something to show
  if (seed) {
    const now = Date.now()
    const past = (body, minutes, outcome) => {
      const req = validate(body, { job: true })
      const rec = newJob(req, body, now - minutes * 60e3)
      const j = rec.job
      j.started_at = iso(now - minutes * 60e3 + 1000)
      rec.log.push(`Queued: ${j.packages.join(' ')} for ${j.distro} ${j.arch}`, `Resolving ${j.packages.join(' ')}`)
      let resolution = null
      try { resolution = resolve(req) } catch (e) {
        j.error = { code: e.code, message: e.message, index: e.index ?? null, package: e.pkg ?? null }
        j.state = 'failed'
        j.progress = { ...j.progress, phase: 'resolving' }
        j.finished_at = iso(now - minutes * 60e3 + 2000)
        rec.log.push(...e.message.split('\n').map((l, i) => (i ? `   ${l.trim()}` : `E: ${l}`)))
        return rec
      }
      const endAt = now - minutes * 60e3 + 40e3
      if (outcome === 'cancelled') {
        j.state = 'cancelled'
        j.progress = { phase: 'downloading', packages_done: 3, packages_total: resolution.count, bytes_done: 900000, bytes_total: resolution.total_size }
        j.finished_at = iso(endAt)
        rec.log.push('Cancelled by the user')
        return rec
      }
      resolution.packages.forEach((p, i) => rec.log.push(`Get:${i + 1} ${p.pocket} ${p.name} ${p.arch} ${p.version} [${Math.round(p.size / 1000)} kB]`))
      j.progress = { phase: 'done', packages_done: resolution.count, packages_total: resolution.count, bytes_done: resolution.total_size, bytes_total: resolution.total_size }
      j.finished_at = iso(endAt)
      const b = makeBundle(j, resolution)
      rec.bundleData = b.data
      rec.manifest = b.manifest
      rec.sbom = b.sbom
      j.bundle = { file_name: b.file_name, size: b.data.length, sha256: b.sha256, package_count: resolution.count, expires_at: iso(endAt + ttlHours * 3600e3), expired: false }
      j.state = 'done'
      rec.log.push(`Wrote ${b.file_name}`)
      return rec
    }
    past({ distro: 'debian-11', arch: 'arm64', packages: ['docker.io'], recommends: true, baseline: 'minimal' }, 60 * 26, 'done') // expired
    past({ distro: 'debian-12', arch: 'amd64', packages: ['postgresql'], recommends: false, baseline: 'none' }, 60 * 5, 'cancelled')
    past({ distro: 'debian-12', arch: 'amd64', packages: ['nginx', 'htop', 'jq', 'curl', 'apache2', 'openssl', 'adduser', 'ssl-cert'], recommends: true, baseline: 'minimal' }, 60 * 4, 'cancelled')
    past({ distro: 'ubuntu-24.04', arch: 'amd64', packages: ['legacy-app', 'curl'], recommends: true, baseline: 'minimal' }, 60 * 3, 'failed')
    past({ distro: 'debian-12', arch: 'amd64', packages: ['nginx', 'htop', 'jq'], recommends: true, baseline: 'minimal', format: 'tar.gz' }, 90, 'done')
  }

  // ---------------------------------------------------------------- HTTP

  const json = (res, status, data, headers = {}) => {
    const body = JSON.stringify(data)
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers })
    res.end(body)
  }
  const readBody = (req) => new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      if (size > 32 * 1024 * 1024) { reject(new HttpError(413, 'bad_request', 'request body too large')); req.destroy() } else chunks.push(c)
    })
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      if (!text) return resolve(undefined)
      try { resolve(JSON.parse(text)) } catch { reject(new HttpError(400, 'bad_request', 'the body is not valid JSON')) }
    })
    req.on('error', reject)
  })

  const MIME = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2' }
  function serveStatic(res, pathname) {
    const root = path.resolve(dist)
    let file = path.resolve(root, '.' + decodeURIComponent(pathname))
    if (!file.startsWith(root)) file = path.join(root, 'index.html')
    let status = 200
    if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      // like `opaas serve`: assets under a deeper path, the UI's pages, a 404 page for the rest
      const asset = pathname.lastIndexOf('/assets/')
      const alt = asset > 0 ? path.resolve(root, '.' + decodeURIComponent(pathname.slice(asset))) : ''
      if (alt && alt.startsWith(root) && fs.existsSync(alt)) file = alt
      else {
        if (/\/assets\//.test(pathname)) { res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }); return res.end('not found\n') }
        if (!/^\/(index\.html|history\/?|patch\/?|jobs\/[^/]+\/?)?$/.test(pathname)) status = 404
        file = path.join(root, 'index.html')
      }
    }
    if (!fs.existsSync(file)) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' })
      return res.end('web/dist is missing: run `npm run build` in web/ first\n')
    }
    const depth = (pathname.replace(/^\/+/, '').match(/\//g) || []).length
    if (file === path.join(root, 'index.html') && depth > 0) {
      // like `opaas serve`: a page below the root is based at the root
      const html = fs.readFileSync(file, 'utf8').replaceAll('="./', `="${'../'.repeat(depth)}`)
      res.writeHead(status, { 'Content-Type': MIME['.html'], 'Cache-Control': 'no-cache' })
      return res.end(html)
    }
    const hashed = /[.-][A-Za-z0-9_-]{8}\.(js|css|svg|png|woff2)$/.test(file)
    res.writeHead(status, { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream', 'Cache-Control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache' })
    fs.createReadStream(file).pipe(res)
  }

  function authorized(req, url, queryAllowed) {
    if (!token) return true
    if ((req.headers.authorization || '') === `Bearer ${token}`) return true
    return queryAllowed && url.searchParams.get('token') === token
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://localhost')
    const p = url.pathname
    const method = req.method
    if (p === '/healthz') return json(res, 200, { status: 'ok' })
    if (p === '/metrics') { res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4' }); return res.end(`opaas_jobs ${jobs.size}\n`) }
    if (!p.startsWith('/api/')) return serveStatic(res, p)

    let m
    const jobPath = (suffix) => (m = new RegExp(`^/api/jobs/([0-9a-f]+)${suffix}$`).exec(p)) && jobs.get(m[1])
    const queryAllowed = /^\/api\/jobs\/[0-9a-f]+\/(events|bundle|sbom)$/.test(p)
    if (!authorized(req, url, queryAllowed)) throw new HttpError(401, 'unauthorized', 'a valid token is required (Authorization: Bearer <token>)')

    if (method === 'GET' && p === '/api/distros') return json(res, 200, DISTROS)
    if (method === 'GET' && p === '/api/openapi.json') return json(res, 200, OPENAPI)
    if (method === 'GET' && p === '/api/presets') {
      const d = url.searchParams.get('distro')
      if (!DISTROS.some((x) => x.id === d)) throw new HttpError(400, 'unknown_distro', `unknown distro '${d}'`, 'distro')
      const idx = indexFor(d)
      return json(res, 200, PRESETS.map((pr) => ({ ...pr, packages: pr.packages.filter((n) => idx.has(n)) })).filter((pr) => pr.packages.length))
    }
    if (method === 'GET' && p === '/api/packages') {
      const d = DISTROS.find((x) => x.id === url.searchParams.get('distro'))
      if (!d) throw new HttpError(400, 'unknown_distro', `unknown distro '${url.searchParams.get('distro')}'`, 'distro')
      if (!d.architectures.some((a) => a.name === url.searchParams.get('arch'))) throw new HttpError(400, 'unknown_arch', `${d.name} has no architecture '${url.searchParams.get('arch')}'`, 'arch')
      const limit = Math.min(100, Math.max(1, Number(url.searchParams.get('limit')) || 20))
      return json(res, 200, search(indexFor(d.id), url.searchParams.get('q') || '', limit))
    }
    if (method === 'GET' && p === '/api/collect-script') {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' })
      return res.end(collectScript())
    }
    if (method === 'POST' && p === '/api/resolve') {
      const body = await readBody(req)
      if (body && typeof body === 'object' && body.mode && body.mode !== 'install') {
        const { req: _r, ...preview } = upgradePlans(body)
        return json(res, 200, preview)
      }
      return json(res, 200, resolve(validate(body)))
    }
    if (method === 'POST' && p === '/api/jobs') {
      const body = await readBody(req)
      if (body && typeof body === 'object' && body.mode && body.mode !== 'install') {
        const up = upgradePlans(body)
        const rec = newJob(up.req, { packages: [] })
        Object.assign(rec.job, { baseline: 'status', mode: up.mode, security_only: up.security_only, hosts: up.hosts.map((h) => h.host), plan: { hosts: up.hosts } })
        // the plan's packages, upgraded in place (the mock's resolver installs what is missing)
        rec.req = { ...up.req, installed: new Set([...up.req.installed].filter((n) => !up.req.requests.includes(n))) }
        run(rec)
        return json(res, 202, rec.job)
      }
      const r = validate(body, { job: true })
      const rec = newJob(r, body)
      run(rec)
      return json(res, 202, rec.job)
    }
    if (method === 'GET' && p === '/api/jobs') {
      const page = Math.max(1, Number(url.searchParams.get('page')) || 1)
      const per = Math.min(100, Math.max(1, Number(url.searchParams.get('per_page')) || 20))
      const all = [...jobs.values()].map((r) => { const { plan, ...j } = fresh(r.job); return j }).sort((a, b) => b.created_at.localeCompare(a.created_at))
      return json(res, 200, { items: all.slice((page - 1) * per, page * per), total: all.length, page, per_page: per })
    }
    let rec
    if (method === 'GET' && (rec = jobPath(''))) return json(res, 200, fresh(rec.job))
    if (method === 'DELETE' && (rec = jobPath(''))) {
      cancel(rec)
      jobs.delete(rec.job.id)
      res.writeHead(204)
      return res.end()
    }
    if (method === 'POST' && (rec = jobPath('/cancel'))) { cancel(rec); return json(res, 200, rec.job) }
    if (method === 'GET' && (rec = jobPath('/log'))) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-store' })
      return res.end(rec.log.join('\n') + (rec.log.length ? '\n' : ''))
    }
    if (method === 'GET' && (rec = jobPath('/manifest'))) {
      if (rec.job.state !== 'done') throw new HttpError(404, 'not_found', 'the manifest exists once the job is done')
      return json(res, 200, rec.manifest)
    }
    if (method === 'GET' && (rec = jobPath('/sbom'))) {
      if (rec.job.state !== 'done') throw new HttpError(404, 'not_found', 'the SBOM exists once the job is done')
      res.writeHead(200, { 'Content-Type': 'application/vnd.cyclonedx+json; version=1.6', 'Cache-Control': 'no-store' })
      return res.end(JSON.stringify(rec.sbom, null, 2) + '\n')
    }
    if (method === 'GET' && (rec = jobPath('/bundle'))) {
      if (rec.job.state !== 'done') throw new HttpError(404, 'not_found', 'the bundle exists once the job is done')
      if (new Date(rec.job.bundle.expires_at).getTime() <= Date.now()) throw new HttpError(410, 'gone', `the bundle of job ${rec.job.id} expired at ${rec.job.bundle.expires_at}; run the job again`)
      const data = rec.bundleData
      const headers = {
        'Content-Type': rec.job.format === 'tar.zst' ? 'application/zstd' : 'application/gzip',
        'Content-Disposition': `attachment; filename="${rec.job.bundle.file_name}"`,
        'Accept-Ranges': 'bytes',
      }
      const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '')
      if (range) {
        const start = range[1] === '' ? data.length - Number(range[2]) : Number(range[1])
        const endB = range[1] === '' || range[2] === '' ? data.length - 1 : Math.min(Number(range[2]), data.length - 1)
        if (start > endB || start >= data.length) { res.writeHead(416, { 'Content-Range': `bytes */${data.length}` }); return res.end() }
        res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${endB}/${data.length}`, 'Content-Length': endB - start + 1 })
        return res.end(data.subarray(start, endB + 1))
      }
      res.writeHead(200, { ...headers, 'Content-Length': data.length })
      return res.end(data)
    }
    if (method === 'GET' && (rec = jobPath('/events'))) {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' })
      res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(rec.job)}\n\n`)
      if (['done', 'failed', 'cancelled'].includes(rec.job.state)) {
        res.write(`event: end\ndata: ${JSON.stringify(rec.job)}\n\n`)
        return res.end()
      }
      // like `opaas serve`: a running job's log so far, then the live events
      rec.log.forEach((line, i) => res.write(`event: log\ndata: ${JSON.stringify({ line, n: i + 1 })}\n\n`))
      rec.subs.add(res)
      const ping = setInterval(() => res.write(': ping\n\n'), 15000)
      req.on('close', () => { clearInterval(ping); rec.subs.delete(res) })
      return
    }
    if (p.startsWith('/api/jobs/')) throw new HttpError(404, 'not_found', `no job at ${p}`)
    throw new HttpError(404, 'not_found', `no API endpoint ${method} ${p}`)
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (res.headersSent) return res.end()
      if (e instanceof HttpError) return json(res, e.status, e.body())
      console.error(e)
      json(res, 500, { error: { code: 'internal', message: String(e && e.message), field: null, index: null, package: null, suggestions: [] } })
    })
  })
  return { server, jobs }
}

/** Start a mock server; resolves to {url, close()}. port 0 = a free port. */
export function startMockServer({ port = 0, host = '127.0.0.1', ...opts } = {}) {
  const { server } = createMock(opts)
  const sockets = new Set()
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      const a = server.address()
      resolve({
        url: `http://${host}:${a.port}`,
        server,
        close: () => new Promise((r) => { sockets.forEach((s) => s.destroy()); server.close(() => r()) }),
      })
    })
  })
}

// CLI
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const opt = (name, def) => {
    const i = args.indexOf(`--${name}`)
    return i >= 0 ? args[i + 1] : def
  }
  const { url } = await startMockServer({
    port: Number(opt('port', process.env.PORT || 5180)),
    host: opt('host', '127.0.0.1'),
    token: opt('token', process.env.OPAAS_TOKEN || ''),
    speed: Number(opt('speed', 1)),
    seed: !args.includes('--no-seed'),
    dist: opt('dist', path.join(HERE, '..', 'dist')),
  })
  console.log(`OPaaS mock API listening on ${url}`)
}
