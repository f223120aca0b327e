// A small hand-written i18n: two locales, `{param}` interpolation, "one | other" plurals (from `n`).
import { ref, watchEffect } from 'vue'
import en from './locales/en.js'
import zh from './locales/zh-CN.js'

export const messages = { en, 'zh-CN': zh }
export const LOCALES = [
  { id: 'en', label: 'English' },
  { id: 'zh-CN', label: '简体中文' },
]
const STORAGE_KEY = 'opaas.locale'

/** The first supported language among the browser's preferences (navigator.languages). */
export function detectLocale(languages) {
  for (const l of languages || []) {
    const low = String(l).toLowerCase()
    if (low.startsWith('zh')) return 'zh-CN'
    if (low.startsWith('en')) return 'en'
  }
  return 'en'
}

function initialLocale() {
  try {
    const saved = localStorage.getItem(STORAGE_KEY)
    if (saved && messages[saved]) return saved
  } catch { /* storage disabled */ }
  if (typeof navigator === 'undefined') return 'en'
  return detectLocale(navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language])
}

export const locale = ref(initialLocale())

export function setLocale(id) {
  if (!messages[id]) return
  locale.value = id
  try { localStorage.setItem(STORAGE_KEY, id) } catch { /* storage disabled */ }
}

if (typeof document !== 'undefined') {
  watchEffect(() => { document.documentElement.lang = locale.value })
}

function lookup(dict, key) {
  let v = dict
  for (const part of key.split('.')) {
    if (v == null || typeof v !== 'object') return undefined
    v = v[part]
  }
  return v
}

/** Interpolate `{name}` and choose a plural form. Exported for the tests. */
export function format(template, params = {}, loc = 'en') {
  let s = template
  if (s.includes(' | ')) {
    const forms = s.split(' | ')
    const n = Number(params.n)
    const rule = new Intl.PluralRules(loc).select(Number.isFinite(n) ? n : 0)
    s = rule === 'one' ? forms[0] : forms[forms.length - 1]
  }
  return s.replace(/\{(\w+)\}/g, (m, k) => (params[k] === undefined ? m : String(params[k])))
}

/** Translate `key` in the current locale (falls back to English, then to the key itself). */
export function t(key, params) {
  const loc = locale.value
  let v = lookup(messages[loc], key)
  if (typeof v !== 'string') v = lookup(en, key)
  if (typeof v !== 'string') return key
  return format(v, params, loc)
}

/** True when `key` exists (used for optional per-code texts). */
export function has(key) {
  return typeof lookup(messages[locale.value], key) === 'string'
}

/** Pick a localized value from a server object such as {"en": "…", "zh-CN": "…"}, or a plain string. */
export function pick(v) {
  if (v == null) return ''
  if (typeof v === 'string') return v
  return v[locale.value] ?? v[locale.value.split('-')[0]] ?? v.en ?? Object.values(v)[0] ?? ''
}
