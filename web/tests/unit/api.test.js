import { describe, expect, it } from 'vitest'
import { ApiError } from '../../src/api.js'

describe('ApiError', () => {
  it('keeps the entry index and package the server names', () => {
    const e = new ApiError(400, { error: { code: 'unknown_package', message: "unknown package 'helo'", field: 'packages[1]', index: 1, package: 'helo', suggestions: ['hello'] } })
    expect(e.index).toBe(1)
    expect(e.package).toBe('helo')
    expect(e.field).toBe('packages[1]')
    expect(e.suggestions).toEqual(['hello'])
  })
  it('has no index when the error is not about an entry', () => {
    const e = new ApiError(400, { error: { code: 'unknown_distro', message: 'x', field: 'distro', index: null, package: null, suggestions: [] } })
    expect(e.index).toBe(null)
    expect(e.package).toBe(null)
    expect(new ApiError(0, null).index).toBe(null)
  })
})
