import { describe, it, expect } from 'vitest'
import { bundleDir, installCommand, checksumCommand, shellQuote, mergeLogLine } from '../../src/format.js'
import { countInstalled } from '../../src/store.js'
import { parseHash } from '../../src/router.js'

describe('install commands', () => {
  it('are the README commands', () => {
    expect(bundleDir('offline_pkg_debian-12_amd64_1a2b3c4d.tar.gz')).toBe('offline_pkg_debian-12_amd64_1a2b3c4d')
    expect(installCommand('offline_pkg_debian-12_amd64_1a2b3c4d.tar.gz'))
      .toBe('tar -xzf offline_pkg_debian-12_amd64_1a2b3c4d.tar.gz && cd offline_pkg_debian-12_amd64_1a2b3c4d && sudo bash install.sh')
    expect(installCommand('offline_pkg_ubuntu-24.04_arm64_00ff.tar.zst'))
      .toBe('tar --zstd -xf offline_pkg_ubuntu-24.04_arm64_00ff.tar.zst && cd offline_pkg_ubuntu-24.04_arm64_00ff && sudo bash install.sh')
    expect(checksumCommand('a.tar.gz', 'ab12')).toBe("echo 'ab12  a.tar.gz' | sha256sum -c")
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
  })
})

describe('status files', () => {
  it('counts installed packages only', () => {
    const text = 'Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: deinstall ok config-files\n\nPackage: c\nVersion: 1\nStatus: install ok installed\n'
    expect(countInstalled(text)).toBe(2)
    expect(countInstalled('hello')).toBe(0)
  })
})

describe('routes', () => {
  it('parses hashes', () => {
    expect(parseHash('')).toMatchObject({ name: 'build' })
    expect(parseHash('#/history')).toMatchObject({ name: 'history' })
    expect(parseHash('#/jobs/ab12')).toMatchObject({ name: 'job', id: 'ab12' })
    expect(parseHash('#/?from=ab12')).toMatchObject({ name: 'build', params: { from: 'ab12' } })
  })
})

describe('streamed log lines', () => {
  it('count from 1 and are never added twice (backfill, replay, live)', () => {
    const lines = []
    // the service replays lines 1 and 2 to a late subscriber, then line 3 is live
    expect(mergeLogLine(lines, 'queued: hello', 1)).toBe(true)
    expect(mergeLogLine(lines, 'started', 2)).toBe(true)
    expect(lines).toEqual(['queued: hello', 'started'])
    // the same lines again (a backfill or a reconnect): nothing added
    expect(mergeLogLine(lines, 'started', 2)).toBe(false)
    expect(mergeLogLine(lines, 'queued: hello', 1)).toBe(false)
    // a gap stays empty until the backfill fills it
    expect(mergeLogLine(lines, 'fetched', 4)).toBe(true)
    expect(lines).toEqual(['queued: hello', 'started', '', 'fetched'])
    // no number: appended
    mergeLogLine(lines, 'x')
    expect(lines.length).toBe(5)
  })
})
