// Patch a server (issue 10): the collect one-liner the page shows runs the real collect script
// in a plain sh and writes a collected file; routes to the page.
import { describe, it, expect } from 'vitest'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execFileSync } from 'node:child_process'
import { collectOneLiner } from '../../src/format.js'
import { collectScript } from '../../mock/server.mjs'
import { parseHash, pathRoute } from '../../src/router.js'

describe('the collect one-liner', () => {
  const script = collectScript()
  it('is the real script, base64 in one line', () => {
    expect(script).toMatch(/^#!\/bin\/sh\n# OPaaS collect script/)
    const line = collectOneLiner(script)
    expect(line).not.toContain('\n')
    const b64 = /^echo (\S+) \| base64 -d \| sh > "\$\(hostname\)\.opaas"$/.exec(line)
    expect(b64).toBeTruthy()
    expect(Buffer.from(b64[1], 'base64').toString('utf8')).toBe(script)
  })
  it('runs in sh and writes HOSTNAME.opaas (where dpkg exists)', () => {
    let dpkg = true
    try { execFileSync('dpkg', ['--print-architecture']) } catch { dpkg = false }
    if (!dpkg) return console.warn('SKIP: no dpkg on this machine')
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'opaas-collect-'))
    try {
      execFileSync('sh', ['-c', collectOneLiner(script)], { cwd: dir })
      const host = execFileSync('hostname').toString().trim()
      const text = fs.readFileSync(path.join(dir, `${host}.opaas`), 'utf8')
      expect(text.startsWith('OPaaS-Collect: 1\nHostname: ')).toBe(true)
      expect(text).toContain('### /var/lib/dpkg/status\n')
      expect(text.endsWith('### end\n')).toBe(true)
    } finally { fs.rmSync(dir, { recursive: true, force: true }) }
  })
})

describe('routes', () => {
  it('#/patch and /patch lead to the page', () => {
    expect(parseHash('#/patch').name).toBe('patch')
    expect(pathRoute('/patch', '/')).toEqual({ hash: '#/patch' })
    expect(pathRoute('/patchx', '/')).toEqual({ notFound: true })
  })
})
