// The mock API (mock/server.mjs) answers as the real service documents it: every response of the
// mock, for every operation of crates/server/data/openapi.json, has a documented status and a
// body valid against that operation's schema (ajv). The mock serves that same document.
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import { startMockServer } from '../../mock/server.mjs'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const SPEC = JSON.parse(fs.readFileSync(path.join(HERE, '../../../crates/server/data/openapi.json'), 'utf8'))

/**
 * OpenAPI 3.0's `nullable: true` beside a `$ref`/`allOf` (no `type`) is not JSON Schema: it
 * becomes `anyOf: [schema, {type: null}]`; `nullable` with a `type` ajv reads itself.
 */
function jsonSchema(node) {
  if (Array.isArray(node)) return node.map(jsonSchema)
  if (!node || typeof node !== 'object') return node
  const out = Object.fromEntries(Object.entries(node).map(([k, v]) => [k, jsonSchema(v)]))
  if (out.nullable === true && out.type === undefined) {
    const { nullable, ...rest } = out
    return { anyOf: [rest, { type: 'null' }] }
  }
  return out
}

const ajv = new Ajv({ strict: false, allErrors: true })
addFormats(ajv)
ajv.addSchema(jsonSchema(SPEC), 'openapi.json')

const esc = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1')

/** The documented path template that `pathname` matches (`/api/jobs/{id}/log`), if any. */
function template(pathname) {
  return Object.keys(SPEC.paths).find((t) => {
    const re = new RegExp('^' + t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+') + '$')
    return re.test(pathname)
  })
}

/** Checks one response of the mock against the document; returns the parsed JSON body, if any. */
function check(method, url, res, text) {
  const { pathname } = new URL(url)
  const t = template(pathname)
  expect(t, `${method} ${pathname} is not in openapi.json`).toBeTruthy()
  const op = SPEC.paths[t][method.toLowerCase()]
  expect(op, `${method} ${t} is not in openapi.json`).toBeTruthy()
  const status = String(res.status)
  const documented = op.responses[status] ? status : op.responses.default ? 'default' : null
  expect(documented, `${method} ${t} answered ${status}, documented: ${Object.keys(op.responses)}`).toBeTruthy()
  const content = op.responses[documented].content || {}
  const type = (res.headers.get('content-type') || '').split(';')[0].trim()
  if (!Object.keys(content).length) {
    expect(text, `${method} ${t} ${status} has no documented body`).toBe('')
    return null
  }
  expect(Object.keys(content), `${method} ${t} ${status}: content type ${type}`).toContain(type)
  if (type !== 'application/json') return null
  const body = JSON.parse(text)
  const ref = `openapi.json#/paths/${esc(t)}/${method.toLowerCase()}/responses/${documented}/content/${esc(type)}/schema`
  const validate = ajv.getSchema(ref) || ajv.compile({ $ref: ref })
  const ok = validate(body)
  expect(ok, `${method} ${t} ${status}: ${ajv.errorsText(validate.errors)}\n${text.slice(0, 400)}`).toBe(true)
  return body
}

let mock
let authed
const calls = new Set()

async function call(server, method, p, { body, headers = {} } = {}) {
  const url = `${server.url}${p}`
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = method === 'GET' && p.endsWith('/events') ? '' : await res.text()
  if (p.endsWith('/events')) await res.body?.cancel()
  calls.add(`${method} ${template(new URL(url).pathname)} ${res.status}`)
  return { res, body: p.endsWith('/events') ? null : check(method, url, res, text) }
}

beforeAll(async () => {
  mock = await startMockServer({ port: 0, speed: 100, seed: true })
  authed = await startMockServer({ port: 0, speed: 100, token: 'secret' })
})
afterAll(async () => {
  await mock?.close()
  await authed?.close()
})

describe('the mock API against openapi.json', () => {
  it('the check rejects what the document does not allow', () => {
    const res = (status, body) => new Response(body, { status, headers: { 'content-type': 'application/json' } })
    const url = 'http://127.0.0.1/api/jobs/0123456789abcdef0123456789abcdef'
    expect(() => check('GET', url, res(200, '{"id":1}'), '{"id":1}')).toThrow(/GET \/api\/jobs\/\{id\} 200/)
    expect(() => check('GET', url, res(418, '{}'), '{}')).toThrow(/answered 418/)
    expect(() => check('GET', 'http://127.0.0.1/api/nowhere', res(200, '{}'), '{}')).toThrow(/not in openapi.json/)
  })

  it('serves the real OpenAPI document', async () => {
    const { body } = await call(mock, 'GET', '/api/openapi.json')
    expect(body).toEqual(SPEC)
  })

  it('catalog, presets, package search and their errors', async () => {
    const { body: distros } = await call(mock, 'GET', '/api/distros')
    expect(distros.length).toBeGreaterThan(0)
    await call(mock, 'GET', '/api/presets?distro=debian-12')
    await call(mock, 'GET', '/api/presets?distro=nope')
    await call(mock, 'GET', '/api/packages?distro=debian-12&arch=amd64&q=ngi')
    await call(mock, 'GET', '/api/packages?distro=debian-12&arch=nope&q=ngi')
    await call(mock, 'GET', '/healthz')
  })

  it('preview: a resolution, an unknown package, an unsatisfiable request, bad JSON', async () => {
    const ok = await call(mock, 'POST', '/api/resolve', { body: { distro: 'debian-12', arch: 'amd64', packages: ['nginx'] } })
    expect(ok.res.status).toBe(200)
    const unknown = await call(mock, 'POST', '/api/resolve', { body: { distro: 'debian-12', arch: 'amd64', packages: ['ngnix'] } })
    expect(unknown.res.status).toBeGreaterThanOrEqual(400)
    const unsat = await call(mock, 'POST', '/api/resolve', { body: { distro: 'debian-12', arch: 'amd64', packages: ['legacy-app'] } })
    expect(unsat.res.status).toBeGreaterThanOrEqual(400)
    const bad = await call(mock, 'POST', '/api/resolve', { body: '{not json' })
    expect(bad.res.status).toBe(400)
  })

  it('a job from submission to its bundle, then cancel and delete', async () => {
    const { body: job } = await call(mock, 'POST', '/api/jobs', { body: { distro: 'debian-12', arch: 'amd64', packages: ['nginx', 'htop'] } })
    const id = job.id
    await call(mock, 'GET', `/api/jobs/${id}/events`)
    let j = job
    for (let i = 0; i < 200 && !['done', 'failed', 'cancelled'].includes(j.state); i++) {
      await new Promise((r) => setTimeout(r, 25))
      j = (await call(mock, 'GET', `/api/jobs/${id}`)).body
    }
    expect(j.state).toBe('done')
    await call(mock, 'GET', '/api/jobs?page=1&per_page=5')
    await call(mock, 'GET', `/api/jobs/${id}/log`)
    await call(mock, 'GET', `/api/jobs/${id}/manifest`)
    await call(mock, 'GET', `/api/jobs/${id}/sbom`)
    const whole = await call(mock, 'GET', `/api/jobs/${id}/bundle`)
    expect(whole.res.status).toBe(200)
    const part = await fetch(`${mock.url}/api/jobs/${id}/bundle`, { headers: { Range: 'bytes=0-9' } })
    expect(part.status).toBe(206)
    check('GET', `${mock.url}/api/jobs/${id}/bundle`, part, '')
    const { body: second } = await call(mock, 'POST', '/api/jobs', { body: { distro: 'debian-12', arch: 'amd64', packages: ['jq'] } })
    await call(mock, 'POST', `/api/jobs/${second.id}/cancel`)
    const del = await call(mock, 'DELETE', `/api/jobs/${id}`)
    expect(del.res.status).toBe(204)
    const gone = await call(mock, 'GET', `/api/jobs/${id}`)
    expect(gone.res.status).toBe(404)
  })

  it('patch bundles: the collect script, plans, an upgrade job, bad collected files', async () => {
    const script = await fetch(`${mock.url}/api/collect-script`)
    const text = await script.text()
    check('GET', `${mock.url}/api/collect-script`, script, text)
    calls.add('GET /api/collect-script 200')
    expect(text).toMatch(/^#!\/bin\/sh\n# OPaaS collect script/)
    const file = (host, status) => `OPaaS-Collect: 1\nHostname: ${host}\nCollected: 2026-12-02T10:00:00Z\nOS-ID: debian\nOS-Version-ID: 12\nOS-Codename: bookworm\nArchitecture: amd64\nForeign-Architectures: \nHolds: \nStatus-Lines: 1\n\n### /var/lib/dpkg/status\n${status}### /var/lib/apt/extended_states\n### end\n`
    const st = (n, v) => `Package: ${n}\nStatus: install ok installed\nArchitecture: amd64\nVersion: ${v}\n\n`
    const web01 = file('web01', st('openssl', '3.0.11-1~deb12u1') + st('libsystemd0', '252.30-1~deb12u2'))
    const db01 = file('db01', st('curl', '7.88.1-10+deb12u5'))
    const { res, body } = await call(mock, 'POST', '/api/resolve', { body: { mode: 'upgrade', collected: [web01, db01] } })
    expect(res.status).toBe(200)
    expect(body.hosts.map((h) => h.host)).toEqual(['web01', 'db01'])
    expect(body.hosts[0].plan[0]).toMatchObject({ kind: 'security', name: 'openssl' })
    expect(body.hosts[0].plan[1]).toMatchObject({ kind: 'upgrade', name: 'libsystemd0' })
    const { res: r2, body: job } = await call(mock, 'POST', '/api/jobs', { body: { mode: 'upgrade', collected: [web01, db01] } })
    expect(r2.status).toBe(202)
    expect(job.hosts).toEqual(['web01', 'db01'])
    expect(job.plan.hosts[1].plan[0].name).toBe('curl')
    const bad = await call(mock, 'POST', '/api/resolve', { body: { mode: 'upgrade', collected: ['Package: x\n'] } })
    expect(bad.res.status).toBe(400)
    expect(bad.body.error).toMatchObject({ code: 'bad_collected_file', field: 'collected[0]' })
  })

  it('a token: 401 without it, answers with it', async () => {
    const no = await call(authed, 'GET', '/api/distros')
    expect(no.res.status).toBe(401)
    const yes = await call(authed, 'GET', '/api/distros', { headers: { Authorization: 'Bearer secret' } })
    expect(yes.res.status).toBe(200)
  })

  it('every documented operation was called', () => {
    const called = new Set([...calls].map((c) => c.split(' ').slice(0, 2).join(' ')))
    for (const [t, ops] of Object.entries(SPEC.paths)) {
      for (const m of Object.keys(ops).filter((k) => k !== 'parameters')) {
        if (t === '/metrics') continue // Prometheus text, not part of the UI's contract
        expect(called.has(`${m.toUpperCase()} ${t}`), `${m.toUpperCase()} ${t} not exercised`).toBe(true)
      }
    }
  })
})
