import { describe, it, expect } from 'vitest'
import { parseWhy, buildTree, countDescendants } from '../../src/tree.js'

describe('parseWhy', () => {
  it('reads the forms the engine writes', () => {
    expect(parseWhy('requested')).toEqual({ kind: 'requested' })
    expect(parseWhy('nginx 1.22.1-9 Depends: nginx-common (= 1.22.1-9)')).toEqual({ kind: 'dependency', parent: 'nginx', field: 'Depends', relation: 'nginx-common (= 1.22.1-9)' })
    expect(parseWhy('libfoo:i386 1.0 Pre-Depends: libc6 | libc6.1 [first alternative]')).toMatchObject({ parent: 'libfoo:i386', field: 'Pre-Depends', relation: 'libc6 | libc6.1 [first alternative]' })
    expect(parseWhy('upgraded with libssl3 (same source package)')).toMatchObject({ kind: 'same-source', parent: 'libssl3' })
    expect(parseWhy('upgraded because curl 7.88 Breaks: libcurl4 (<< 7.88)')).toMatchObject({ kind: 'upgrade', parent: 'curl', field: 'Breaks' })
  })
})

describe('buildTree', () => {
  const pk = (name, why, arch = 'amd64') => ({ name, version: '1', arch, size: 1, why })
  it('nests packages under the package that pulled them in', () => {
    const list = [
      pk('nginx', 'requested'),
      pk('htop', 'requested'),
      pk('nginx-common', 'nginx 1 Depends: nginx-common (= 1)'),
      pk('ssl-cert', 'nginx-common 1 Recommends: ssl-cert'),
      pk('openssl', 'ssl-cert 1 Depends: openssl'),
      pk('libnl-3-200', 'htop 1 Depends: libnl-3-200'),
      pk('zz-orphan', 'baseline-pkg 1 Depends: zz-orphan'),
      pk('weird', 'something else'),
    ]
    const forest = buildTree(list)
    expect(forest.map((n) => (n.other ? '*' : n.pkg.name))).toEqual(['htop', 'nginx', '*'])
    const nginx = forest[1]
    expect(countDescendants(nginx)).toBe(3)
    expect(nginx.children[0].children[0].children[0].pkg.name).toBe('openssl')
    expect(forest[2].children.map((n) => n.pkg.name).sort()).toEqual(['weird', 'zz-orphan'])
  })
  it('matches a parent written with its architecture', () => {
    const forest = buildTree([pk('wine', 'requested'), pk('libwine', 'wine:i386 1 Depends: libwine', 'i386')])
    expect(forest).toHaveLength(1)
    expect(forest[0].children[0].pkg.name).toBe('libwine')
  })
  it('breaks cycles and still lists every package once', () => {
    const list = [pk('a', 'b 1 Depends: a'), pk('b', 'a 1 Depends: b'), pk('c', 'requested')]
    const forest = buildTree(list)
    const names = []
    const walk = (ns) => ns.forEach((n) => { if (!n.other) names.push(n.pkg.name); walk(n.children) })
    walk(forest)
    expect(names.sort()).toEqual(['a', 'b', 'c'])
  })
})
