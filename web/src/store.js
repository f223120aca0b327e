// The build form's state, kept while the user moves between pages, and the distro catalog.
import { reactive } from 'vue'
import { api } from './api.js'

/** GET /api/distros, fetched once (again after a failure). */
export const catalog = reactive({ distros: [] })
let catalogLoading = null
export function loadCatalog() {
  if (!catalogLoading) {
    catalogLoading = api.distros().then((list) => { catalog.distros = list; return list }, (e) => { catalogLoading = null; throw e })
  }
  return catalogLoading
}
/** "Debian 12 (bookworm) · amd64" (the raw ids until the catalog is there). */
export function targetLabel(distro, arch, distros = catalog.distros) {
  const d = distros.find((x) => x.id === distro)
  return d ? `${d.name} (${d.codename}) · ${arch}` : `${distro} · ${arch}`
}

export const form = reactive({
  distro: '',
  arch: 'amd64',
  packages: [], // strings as sent to the API, in order
  recommends: true,
  baseline: 'minimal', // 'minimal' | 'none' | 'status'
  statusText: '',
  statusName: '',
  statusCount: 0,
  format: 'tar.gz',
})

/** Count the installed packages of a dpkg status file. */
export function countInstalled(text) {
  let n = 0
  for (const para of String(text).split(/\n\s*\n/)) {
    if (/^Package:/m.test(para) && /^Status:\s*install ok installed\s*$/m.test(para)) n++
  }
  return n
}

/** The body of POST /api/resolve and /api/jobs. */
export function requestBody() {
  const body = {
    distro: form.distro,
    arch: form.arch,
    packages: [...form.packages],
    recommends: form.recommends,
    baseline: form.baseline === 'status' ? { status: form.statusText } : form.baseline,
  }
  return body
}

/** Fill the form from a job (Edit / "Edit the request"). */
export function fillFromJob(job) {
  form.distro = job.distro
  form.arch = job.arch
  form.packages = [...(job.packages || [])]
  form.recommends = job.recommends !== false
  form.format = job.format || 'tar.gz'
  const b = job.baseline
  if (b === 'minimal' || b === 'none') form.baseline = b
  else if (b && typeof b === 'object' && typeof b.status === 'string') {
    form.baseline = 'status'
    form.statusText = b.status
    form.statusName = 'status'
    form.statusCount = countInstalled(b.status)
  } else {
    form.baseline = 'status'
    form.statusText = ''
    form.statusName = ''
    form.statusCount = 0
  }
}
