import { describe, it, expect } from 'vitest'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import en from '../../src/locales/en.js'
import zh from '../../src/locales/zh-CN.js'
import { detectLocale, format, messages } from '../../src/i18n.js'

const flat = (o, p = '') => Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' ? flat(v, `${p}${k}.`) : [[`${p}${k}`, v]]))
const params = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort()

describe('messages', () => {
  it('zh-CN and en have the same keys', () => {
    expect(flat(zh).map(([k]) => k).sort()).toEqual(flat(en).map(([k]) => k).sort())
  })
  it('every string of both languages is non-empty and uses the same parameters', () => {
    const z = Object.fromEntries(flat(zh))
    for (const [k, v] of flat(en)) {
      expect(v.trim(), k).not.toBe('')
      expect(z[k].trim(), k).not.toBe('')
      const pe = [...new Set(params(v))]
      const pz = [...new Set(params(z[k]))]
      expect(pz, k).toEqual(pe)
    }
  })
  it('zh-CN strings are translated (contain CJK) unless they are names or commands', () => {
    const allowed = /^(app\.name|format\.|job\.of|job\.rate|table\.showing|presets?\.)/
    const untranslated = flat(zh).filter(([k, v]) => !allowed.test(k) && !/[\u4e00-\u9fff]/.test(v)).map(([k]) => k)
    expect(untranslated).toEqual([])
  })
  it('every key used in the source exists', () => {
    const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src')
    const files = fs.readdirSync(src, { recursive: true }).filter((f) => /\.(vue|js)$/.test(f) && !f.startsWith('locales'))
    const keys = new Set(flat(en).map(([k]) => k))
    const missing = []
    for (const f of files) {
      const text = fs.readFileSync(path.join(src, f), 'utf8')
      for (const m of text.matchAll(/\bt\('([a-zA-Z0-9_.-]+)'/g)) if (!keys.has(m[1])) missing.push(`${f}: ${m[1]}`)
    }
    expect(missing).toEqual([])
  })
})

describe('detectLocale', () => {
  it('picks the first supported browser language', () => {
    expect(detectLocale(['zh-TW', 'en'])).toBe('zh-CN')
    expect(detectLocale(['de-DE', 'en-US', 'zh-CN'])).toBe('en')
    expect(detectLocale(['fr'])).toBe('en')
    expect(detectLocale(['zh'])).toBe('zh-CN')
    expect(detectLocale([])).toBe('en')
  })
  it('knows both locales', () => expect(Object.keys(messages).sort()).toEqual(['en', 'zh-CN']))
})

describe('format', () => {
  it('interpolates and pluralizes', () => {
    expect(format('1 package | {n} packages', { n: 1 }, 'en')).toBe('1 package')
    expect(format('1 package | {n} packages', { n: 3 }, 'en')).toBe('3 packages')
    expect(format('已选 {n} 个', { n: 1 }, 'zh-CN')).toBe('已选 1 个')
    expect(format('{a} and {b}', { a: 'x' }, 'en')).toBe('x and {b}')
  })
})
