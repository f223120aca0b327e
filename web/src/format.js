// Number, size, time formatting in the current locale.
import { locale, t, messages, format } from './i18n.js'

/** Decimal units like apt (kB, MB, GB). */
export function formatBytes(n) {
  if (n == null || !Number.isFinite(Number(n))) return '–'
  n = Number(n)
  const units = ['B', 'kB', 'MB', 'GB', 'TB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++ }
  const digits = i === 0 ? 0 : n < 10 ? 1 : 0
  return `${new Intl.NumberFormat(locale.value, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n)} ${units[i]}`
}

export function formatNumber(n) {
  return new Intl.NumberFormat(locale.value).format(n ?? 0)
}

export function formatDate(iso) {
  if (!iso) return '–'
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return String(iso)
  return new Intl.DateTimeFormat(locale.value, { dateStyle: 'medium', timeStyle: 'short' }).format(d)
}

/** "in 23 hours", "5 minutes ago". */
export function formatRelative(iso, now = Date.now()) {
  if (!iso) return ''
  const d = new Date(iso).getTime()
  if (Number.isNaN(d)) return ''
  const diff = (d - now) / 1000
  const abs = Math.abs(diff)
  const rtf = new Intl.RelativeTimeFormat(locale.value, { numeric: 'auto' })
  if (abs < 60) return rtf.format(Math.round(diff), 'second')
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute')
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour')
  return rtf.format(Math.round(diff / 86400), 'day')
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return ''
  if (seconds < 60) return t('unit.s', { n: Math.max(1, Math.round(seconds)) })
  if (seconds < 3600) return t('unit.min', { n: Math.round(seconds / 60) })
  return t('unit.h', { n: Math.round(seconds / 360) / 10 })
}

export function isTerminal(state) {
  return state === 'done' || state === 'failed' || state === 'cancelled'
}

/** The directory a bundle unpacks to: the file name without .tar.gz / .tar.zst. */
export function bundleDir(fileName) {
  return String(fileName || '').replace(/\.tar\.(gz|zst|xz)$/, '')
}

/** Single-quote for a POSIX shell when needed (file names are safe, but be correct anyway). */
export function shellQuote(s) {
  s = String(s)
  return /^[A-Za-z0-9_./:=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/** The exact commands for the offline machine. */
export function installCommand(fileName) {
  const f = shellQuote(fileName)
  const d = shellQuote(bundleDir(fileName))
  const unpack = /\.tar\.zst$/.test(fileName) ? `tar --zstd -xf ${f}` : `tar -xzf ${f}`
  return `${unpack} && cd ${d} && sudo bash install.sh`
}

export function checksumCommand(fileName, sha256) {
  return `echo '${sha256}  ${fileName}' | sha256sum -c`
}

// Puts a streamed log line where it belongs: `n` counts from 1 (line n is lines[n - 1]), so a
// line the backfill (GET /log) or the stream's replay already gave is not added twice, and a gap
// is kept as empty lines until the backfill fills it. Returns false when it was already there.
export function mergeLogLine(lines, line, n) {
  if (Number.isInteger(n) && n >= 1) {
    if (n <= lines.length) return false
    while (lines.length < n - 1) lines.push('')
  }
  lines.push(line)
  return true
}

/** Search hits with the names that start with `term` first (in their order), then the others. */
export function prefixFirst(items, term) {
  const q = String(term || '').toLowerCase()
  if (!q) return items
  const pre = []
  const rest = []
  for (const it of items) (String(it.name).toLowerCase().startsWith(q) ? pre : rest).push(it)
  return pre.concat(rest)
}

// The catalog's support text ("oldstable, LTS until 2028-06") and the `why` of a package
// ("nginx 1.22.1-9 Depends: nginx-common") are English from the server: their known words are
// translated here (dates and names stay).
const SUPPORT_ZH = [
  [/^LTS, standard support until (\d{4}-\d{2})$/, 'LTS，标准支持至 $1'],
  [/^oldoldstable, Debian LTS ended (\d{4}-\d{2})$/, '旧旧稳定版，Debian LTS 已于 $1 结束'],
  [/^oldstable, LTS until (\d{4}-\d{2})$/, '旧稳定版，LTS 支持至 $1'],
  [/^stable$/, '稳定版'],
]
/**
 * A distro's support status in the current language: from its structured `lifecycle`
 * ({release, until, ended}) when the server sends one, else from the English `support` text.
 */
export function distroSupport(distro, loc = locale.value) {
  const lc = distro && distro.lifecycle
  if (!lc || !lc.release) return supportText(distro && distro.support, loc)
  const msgs = (messages[loc] || messages.en).build.lifecycle || messages.en.build.lifecycle
  const key = lc.release === 'oldoldstable' && lc.ended ? 'oldoldstableEnded' : lc.release
  const tpl = msgs[key] || messages.en.build.lifecycle[key]
  if (typeof tpl !== 'string') return supportText(distro.support, loc)
  return format(tpl, { until: lc.until || '' }, loc)
}

export function supportText(text, loc = locale.value) {
  if (loc !== 'zh-CN' || typeof text !== 'string') return text
  for (const [re, zh] of SUPPORT_ZH) if (re.test(text)) return text.replace(re, zh)
  return text
}
const FIELD_ZH = { 'Pre-Depends': '预依赖', Depends: '依赖', Recommends: '推荐', Suggests: '建议' }
/** A dependency field name in the current language (Depends → 依赖). */
export function fieldName(field, loc = locale.value) {
  return loc === 'zh-CN' && FIELD_ZH[field] ? FIELD_ZH[field] : field
}
/** A package's `why` in the current language. */
export function whyText(why, loc = locale.value) {
  if (why === 'requested') return loc === locale.value ? t('table.requested') : (messages[loc] || messages.en).table.requested
  if (loc !== 'zh-CN') return why
  return String(why || '').replace(/ (Pre-Depends|Depends|Recommends|Suggests): /, (m, f) => ` ${FIELD_ZH[f]}：`)
}

// The job log's lines, written in English by the service, translated by their pattern (names,
// numbers and file names stay). Lines of no known pattern are shown as they are.
const LOG_ZH = [
  [/^queued: (.+) for (\S+) (\S+) \(recommends: (yes|no), baseline: (.+), format: (.+)\)$/,
    (m) => `已排队：${m[1]}，目标 ${m[2]} ${m[3]}（推荐：${m[4] === 'yes' ? '是' : '否'}，基础：${m[5]}，格式：${m[6]}）`],
  [/^started \(attempt (\d+) of (\d+)\)$/, (m) => `开始（第 ${m[1]} 次尝试，共 ${m[2]} 次）`],
  [/^resolved (\d+) packages, (\d+) bytes to bundle$/, (m) => `已解析 ${m[1]} 个软件包，需打包 ${m[2]} 字节`],
  [/^fetched (\S+)$/, (m) => `已下载 ${m[1]}`],
  [/^cached +(\S+)$/, (m) => `来自缓存 ${m[1]}`],
  [/^Get: (.+) \((\d+) bytes\)$/, (m) => `下载：${m[1]}（${m[2]} 字节）`],
  [/^wrote (\S+) \((\d+) bytes\)$/, (m) => `已写入 ${m[1]}（${m[2]} 字节）`],
  [/^reusing (\S+), verified$/, (m) => `复用已校验的 ${m[1]}`],
  [/^done: (\S+) \((\d+) bytes, (\d+) packages; downloaded (\d+) bytes in (\d+) files, (\d+) from the cache\)$/,
    (m) => `完成：${m[1]}（${m[2]} 字节，${m[3]} 个软件包；下载 ${m[4]} 字节，共 ${m[5]} 个文件，${m[6]} 个来自缓存）`],
  [/^refreshing the package indices$/, () => '正在刷新软件包索引'],
  [/^cancelled$/, () => '已取消'],
  [/^( +\S+ \S+(?: \S+ \[\S+\])?) <- (.+)$/, (m) => `${m[1]} <- ${whyText(m[2], 'zh-CN')}`],
]
/** A log line in the current language (zh-CN: the known patterns). */
export function logLineText(line, loc = locale.value) {
  if (loc !== 'zh-CN') return line
  for (const [re, f] of LOG_ZH) {
    const m = re.exec(line)
    if (m) return f(m)
  }
  return line
}

/**
 * The collect script of patch bundles as one line to paste into a root or user shell on the
 * offline server (base64, so no quoting can break it; nothing is fetched there): it writes
 * `<hostname>.opaas` in the current directory.
 */
export function collectOneLiner(script) {
  const bytes = new TextEncoder().encode(script)
  let bin = ''
  for (const b of bytes) bin += String.fromCharCode(b)
  return `echo ${btoa(bin)} | base64 -d | sh > "$(hostname).opaas"`
}
