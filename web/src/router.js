// Hash routing: #/ (build), #/jobs/{id}, #/history. `#/?from=ID` pre-fills the build form from a job.
import { ref } from 'vue'

function parse(hash) {
  const h = (hash || '').replace(/^#/, '') || '/'
  const [path, query = ''] = h.split('?')
  const params = Object.fromEntries(new URLSearchParams(query))
  let m
  if ((m = path.match(/^\/jobs\/([^/]+)\/?$/))) return { name: 'job', id: decodeURIComponent(m[1]), params }
  if (/^\/history\/?$/.test(path)) return { name: 'history', params }
  return { name: 'build', params }
}

export const route = ref(parse(typeof location !== 'undefined' ? location.hash : ''))

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
