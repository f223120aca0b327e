// The client of docs/API.md. Every call goes to `ROOT + 'api/…'`, where ROOT is the address the
// UI is served from, taken from this script's own URL (`<root>/assets/index-*.js` once built,
// `<root>/src/api.js` in development): it does not depend on the page's path (`/foo/bar` must not
// ask `/foo/api/…`), and the UI still works wherever `opaas serve` is mounted (a proxy prefix). A 401 opens the token dialog once; the token is kept in
// localStorage and sent as `Authorization: Bearer`, and as `?token=` where headers are impossible
// (EventSource, download links).
import { reactive } from 'vue'

const TOKEN_KEY = 'opaas.token'

/** The UI's root address, ending in `/` (`http://host:port/` or `http://host/prefix/`). */
export function appRoot(scriptUrl) {
  try { return new URL('..', scriptUrl).href } catch { return '' }
}
const here = import.meta.url // (a variable: `new URL('…', import.meta.url)` is an asset import for Vite)
export const ROOT = appRoot(here)
const u = (path) => ROOT + path

export class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {}
    super(e.message || `HTTP ${status}`)
    this.status = status
    this.code = e.code || (status === 0 ? 'network' : status === 401 ? 'unauthorized' : 'unknown')
    this.field = e.field ?? null
    // the entry of the request's package list the error is about, and the package it names
    this.index = Number.isInteger(e.index) ? e.index : null
    this.package = e.package ?? null
    this.suggestions = Array.isArray(e.suggestions) ? e.suggestions : []
    this.serverMessage = e.message || ''
  }
}

export function getToken() {
  try { return localStorage.getItem(TOKEN_KEY) || '' } catch { return '' }
}
export function setToken(tok) {
  try {
    if (tok) localStorage.setItem(TOKEN_KEY, tok)
    else localStorage.removeItem(TOKEN_KEY)
  } catch { /* storage disabled */ }
  auth.hasToken = !!tok
}

/** State of the token dialog (rendered by AuthDialog.vue). */
export const auth = reactive({ open: false, rejected: false, hasToken: !!getToken() })
let pending = null // one dialog for all the requests that got a 401 at the same time

function askToken(rejected) {
  if (!pending) {
    auth.rejected = rejected
    auth.open = true
    pending = new Promise((resolve) => { auth._resolve = resolve })
  }
  return pending
}
/** Called by the dialog: a token string, or null when the user cancels. */
export function answerToken(tok) {
  auth.open = false
  const r = auth._resolve
  pending = null
  auth._resolve = null
  if (tok) setToken(tok)
  if (r) r(tok || null)
}

/** Append ?token= for URLs the browser fetches by itself. */
export function withToken(url) {
  const tok = getToken()
  if (!tok) return url
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(tok)
}

async function request(method, path, body, { raw = false, retried = false } = {}) {
  const headers = { Accept: raw ? 'text/plain' : 'application/json' }
  const tok = getToken()
  if (tok) headers.Authorization = `Bearer ${tok}`
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let res
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  } catch {
    throw new ApiError(0, null)
  }
  if (res.status === 401 && !retried) {
    const given = await askToken(!!tok)
    if (given) return request(method, path, body, { raw, retried: false })
  }
  if (!res.ok) {
    let data = null
    try { data = await res.json() } catch { /* not JSON */ }
    throw new ApiError(res.status, data)
  }
  if (res.status === 204) return null
  if (raw) return res.text()
  const text = await res.text()
  return text ? JSON.parse(text) : null
}

const enc = encodeURIComponent
export const api = {
  distros: () => request('GET', u('api/distros')),
  presets: (distro) => request('GET', u(`api/presets?distro=${enc(distro)}`)),
  packages: (distro, arch, q, limit = 20) =>
    request('GET', u(`api/packages?distro=${enc(distro)}&arch=${enc(arch)}&q=${enc(q)}&limit=${limit}`)),
  resolve: (body) => request('POST', u('api/resolve'), body),
  createJob: (body) => request('POST', u('api/jobs'), body),
  jobs: (page = 1, perPage = 20) => request('GET', u(`api/jobs?page=${page}&per_page=${perPage}`)),
  job: (id) => request('GET', u(`api/jobs/${enc(id)}`)),
  log: (id) => request('GET', u(`api/jobs/${enc(id)}/log`), undefined, { raw: true }),
  manifest: (id) => request('GET', u(`api/jobs/${enc(id)}/manifest`)),
  cancel: (id) => request('POST', u(`api/jobs/${enc(id)}/cancel`)),
  remove: (id) => request('DELETE', u(`api/jobs/${enc(id)}`)),
  collectScript: () => request('GET', u('api/collect-script'), undefined, { raw: true }),
  collectScriptUrl: () => withToken(u('api/collect-script')),
  eventsUrl: (id) => withToken(u(`api/jobs/${enc(id)}/events`)),
  logUrl: (id) => withToken(u(`api/jobs/${enc(id)}/log`)),
  bundleUrl: (id) => withToken(u(`api/jobs/${enc(id)}/bundle`)),
  sbomUrl: (id) => withToken(u(`api/jobs/${enc(id)}/sbom`)),
}

/** The request body of a job, for re-running it (null when it cannot be re-sent as is). */
export function jobRequest(job) {
  const b = job.baseline
  const baselineOk = b === 'minimal' || b === 'none' || (b && typeof b === 'object' && typeof b.status === 'string')
  if (!baselineOk) return null
  const body = { distro: job.distro, arch: job.arch, packages: job.packages, recommends: job.recommends, baseline: b }
  if (job.format) body.format = job.format
  return body
}
