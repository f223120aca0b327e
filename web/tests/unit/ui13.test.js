// Issue #13: the log buffer (a window of lines, one flush per frame), autocomplete order, the
// page-path routes and the target labels.
import { describe, expect, it } from 'vitest'
import { createLogBuffer } from '../../src/logbuffer.js'
import { prefixFirst } from '../../src/format.js'
import { pathRoute } from '../../src/router.js'
import { targetLabel } from '../../src/store.js'
import { appRoot } from '../../src/api.js'

describe('log buffer', () => {
  it('batches the lines of a frame into one update and keeps only a window', () => {
    const frames = []
    const views = []
    const buf = createLogBuffer((v) => views.push(v), { windowSize: 100, schedule: (f) => frames.push(f) })
    for (let n = 1; n <= 700; n++) buf.push(`line ${n}`, n)
    expect(frames.length).toBe(1) // one frame scheduled for 700 lines
    expect(views.length).toBe(0)
    frames.shift()()
    expect(views.length).toBe(1)
    const v = views[0]
    expect(v.total).toBe(700)
    expect(v.hidden).toBe(600)
    expect(v.lines.length).toBe(100)
    expect(v.lines[0]).toBe('line 601')
    expect(v.lines[99]).toBe('line 700')
  })
  it('drops lines it already has and lets the full log replace the stream', () => {
    const frames = []
    const views = []
    const buf = createLogBuffer((v) => views.push(v), { windowSize: 10, schedule: (f) => frames.push(f) })
    buf.push('a', 1); buf.push('b', 2); buf.push('b', 2)
    frames.shift()()
    expect(views.at(-1).lines).toEqual(['a', 'b'])
    buf.replace(['a', 'b', 'c'])
    expect(views.at(-1).lines).toEqual(['a', 'b', 'c'])
    buf.replace(['a']) // shorter: ignored
    expect(buf.length).toBe(3)
  })
})

describe('autocomplete order', () => {
  it('lists the names that start with the term first', () => {
    const hits = ['cfengine3', 'nginx-common', 'gtk2-engines', 'nginx', 'libnginx-mod-http'].map((name) => ({ name }))
    expect(prefixFirst(hits, 'ngi').map((h) => h.name)).toEqual(['nginx-common', 'nginx', 'cfengine3', 'gtk2-engines', 'libnginx-mod-http'])
    expect(prefixFirst(hits, '')).toBe(hits)
  })
})

describe('page paths', () => {
  it('the root uses the hash, jobs/ and history lead to their hash, the rest is not found', () => {
    expect(pathRoute('/', '/')).toBe(null)
    expect(pathRoute('/index.html', '/')).toBe(null)
    expect(pathRoute('/jobs/abc', '/')).toEqual({ hash: '#/jobs/abc' })
    expect(pathRoute('/history/', '/')).toEqual({ hash: '#/history' })
    expect(pathRoute('/foo/bar', '/')).toEqual({ notFound: true })
    expect(pathRoute('/opaas/jobs/x', '/opaas/')).toEqual({ hash: '#/jobs/x' })
    expect(pathRoute('/other/', '/opaas/')).toEqual({ notFound: true })
  })
  it('the API root comes from the script URL, not from the page', () => {
    expect(appRoot('http://h:1/assets/index-abc.js')).toBe('http://h:1/')
    expect(appRoot('http://h/prefix/assets/index-abc.js')).toBe('http://h/prefix/')
    expect(appRoot('http://h:1/src/api.js')).toBe('http://h:1/')
  })
})

describe('target labels', () => {
  it('names the release and codename', () => {
    const distros = [{ id: 'debian-12', name: 'Debian 12', codename: 'bookworm' }]
    expect(targetLabel('debian-12', 'amd64', distros)).toBe('Debian 12 (bookworm) · amd64')
    expect(targetLabel('ubuntu-99', 'arm64', distros)).toBe('ubuntu-99 · arm64')
  })
})

describe('zh-CN texts of the server', async () => {
  const { supportText, whyText, fieldName } = await import('../../src/format.js')
  it('translates the support text, keeping its dates', () => {
    expect(supportText('oldstable, LTS until 2028-06', 'zh-CN')).toBe('旧稳定版，LTS 支持至 2028-06')
    expect(supportText('LTS, standard support until 2029-05', 'zh-CN')).toBe('LTS，标准支持至 2029-05')
    expect(supportText('stable', 'zh-CN')).toBe('稳定版')
    expect(supportText('oldoldstable, Debian LTS ended 2026-08', 'zh-CN')).toBe('旧旧稳定版，Debian LTS 已于 2026-08 结束')
    expect(supportText('stable', 'en')).toBe('stable')
  })

  it('words a structured lifecycle in each language (issue 13 item 12)', async () => {
    const { distroSupport } = await import('../../src/format.js')
    const d11 = { support: 'x', lifecycle: { release: 'oldoldstable', until: '2026-08', ended: true } }
    expect(distroSupport(d11, 'zh-CN')).toBe('旧旧稳定版，Debian LTS 已于 2026-08 结束')
    expect(distroSupport(d11, 'en')).toBe('oldoldstable, Debian LTS ended 2026-08')
    const lts = { support: 'x', lifecycle: { release: 'lts', until: '2029-05', ended: false } }
    expect(distroSupport(lts, 'zh-CN')).toBe('LTS，标准支持至 2029-05')
    expect(distroSupport({ support: 'x', lifecycle: { release: 'stable', until: null, ended: false } }, 'zh-CN')).toBe('稳定版')
    // an older server without lifecycle: the English text, translated where known
    expect(distroSupport({ support: 'stable' }, 'zh-CN')).toBe('稳定版')
  })
  it('translates the dependency fields of a why', () => {
    expect(whyText('nginx 1.22.1-9 Depends: nginx-common (= 1.22.1-9)', 'zh-CN')).toBe('nginx 1.22.1-9 依赖：nginx-common (= 1.22.1-9)')
    expect(whyText('nginx 1.22.1-9 Recommends: x', 'en')).toBe('nginx 1.22.1-9 Recommends: x')
    expect(fieldName('Recommends', 'zh-CN')).toBe('推荐')
  })
})

describe('zh-CN log lines', async () => {
  const { logLineText } = await import('../../src/format.js')
  it('translates the known lines by their pattern', () => {
    expect(logLineText('started (attempt 1 of 2)', 'zh-CN')).toBe('开始（第 1 次尝试，共 2 次）')
    expect(logLineText('resolved 721 packages, 481238 bytes to bundle', 'zh-CN')).toBe('已解析 721 个软件包，需打包 481238 字节')
    expect(logLineText('fetched big-app_1.0_amd64.deb', 'zh-CN')).toBe('已下载 big-app_1.0_amd64.deb')
    expect(logLineText('  big-mid-00 1.0 <- big-app 1.0 Depends: big-mid-00', 'zh-CN')).toBe('  big-mid-00 1.0 <- big-app 1.0 依赖：big-mid-00')
    expect(logLineText('  big-app 1.0 <- requested', 'zh-CN')).toBe('  big-app 1.0 <- 用户请求')
    expect(logLineText('done: x.tar.gz (742524 bytes, 721 packages; downloaded 481238 bytes in 721 files, 0 from the cache)', 'zh-CN'))
      .toBe('完成：x.tar.gz（742524 字节，721 个软件包；下载 481238 字节，共 721 个文件，0 个来自缓存）')
    expect(logLineText('something new', 'zh-CN')).toBe('something new')
    expect(logLineText('started (attempt 1 of 2)', 'en')).toBe('started (attempt 1 of 2)')
  })
})
