// Hash routing: #/ (build), #/patch (patch a server), #/jobs/{id}, #/history. `#/?from=ID` pre-fills the build form from a job.
// The page itself lives at the UI's root (ROOT, see api.js). `<root>/jobs/{id}` and `<root>/history`
// (addresses typed or shared without the `#`) are sent to their hash route; any other path is
// the not-found page (the server answers it with 404).
import { ref } from 'vue'
import { ROOT } from './api.js'

/** Where a page path leads: null (the root: use the hash), {hash} (redirect) or {notFound: true}. */
export function pathRoute(pathname, rootPath) {
  if (!pathname.startsWith(rootPath)) return { notFound: true }
  const rest = pathname.slice(rootPath.length)
  if (rest === '' || rest === 'index.html') return null
  let m
  if ((m = rest.match(/^jobs\/([^/]+)\/?$/))) return { hash: `#/jobs/${m[1]}` }
  if (/^history\/?$/.test(rest)) return { hash: '#/history' }
  if (/^patch\/?$/.test(rest)) return { hash: '#/patch' }
  return { notFound: true }
}

function initial() {
  if (typeof location === 'undefined') return parse('')
  let rootPath = '/'
  try { rootPath = new URL(ROOT).pathname } catch { /* keep / */ }
  const p = pathRoute(location.pathname, rootPath)
  if (p && p.hash) {
    location.replace(ROOT + p.hash)
    return parse(p.hash)
  }
  if (p && p.notFound) return { name: 'notFound', params: {}, path: location.pathname }
  return parse(location.hash)
}

function parse(hash) {
  const h = (hash || '').replace(/^#/, '') || '/'
  const [path, query = ''] = h.split('?')
  const params = Object.fromEntries(new URLSearchParams(query))
  let m
  if ((m = path.match(/^\/jobs\/([^/]+)\/?$/))) return { name: 'job', id: decodeURIComponent(m[1]), params }
  if (/^\/history\/?$/.test(path)) return { name: 'history', params }
  if (/^\/patch\/?$/.test(path)) return { name: 'patch', params }
  return { name: 'build', params }
}

export const route = ref(initial())

if (typeof window !== 'undefined') {
  window.addEventListener('hashchange', () => {
    route.value = parse(location.hash)
    // move focus to the new page's heading for screen readers and keyboard users
    requestAnimationFrame(() => {
      const h = document.querySelector('main h1')
      if (h) { h.setAttribute('tabindex', '-1'); h.focus({ preventScroll: true }) }
      window.scrollTo(0, 0)
    })
  })
}

export function navigate(hash) {
  if (location.hash === hash) route.value = parse(hash)
  else location.hash = hash
}

export { parse as parseHash }
