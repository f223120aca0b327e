// The job log as the page keeps it: every line in a plain (non-reactive) array, new lines
// batched and applied in an animation frame at most every `interval` ms, and only the last
// `window` lines handed to the DOM. A big job writes a line per package (700+ lines in a few seconds): one re-render and one
// scroll per line froze the page for seconds (issue #13, item 1).
import { mergeLogLine } from './format.js'

export const LOG_WINDOW = 200
export const LOG_INTERVAL = 100

/**
 * `onFlush(view)` is called at most once per frame with {lines, total, hidden}: the last
 * `windowSize` lines, the number of lines and how many are not shown.
 * `schedule(f)` runs `f` later: by default in the first animation frame `interval` ms after the
 * previous flush (a fake in the unit tests).
 */
export function createLogBuffer(onFlush, { windowSize = LOG_WINDOW, interval = LOG_INTERVAL, schedule } = {}) {
  const all = []
  let pending = []
  let queued = false
  let last = 0
  const frame = (f) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(f) : setTimeout(f, 16))
  const raf = schedule || ((f) => {
    const wait = last + interval - Date.now()
    if (wait > 0) setTimeout(() => frame(f), wait)
    else frame(f)
  })

  function view() {
    const start = Math.max(0, all.length - windowSize)
    return { lines: all.slice(start), total: all.length, hidden: start }
  }
  function flush() {
    queued = false
    last = Date.now()
    let changed = false
    for (const [line, n] of pending) changed = mergeLogLine(all, line, n) || changed
    pending = []
    if (changed) onFlush(view())
  }
  function queue() {
    if (!queued) { queued = true; raf(flush) }
  }
  return {
    /** A streamed line (`n` counts from 1, see mergeLogLine). */
    push(line, n) { pending.push([line, n]); queue() },
    /** The whole log (GET /log): replaces what the stream gave when it is at least as long. */
    replace(lines) {
      if (lines.length < all.length) return
      all.length = 0
      for (const l of lines) all.push(l)
      // lines streamed meanwhile that are beyond the backfill stay pending
      queue()
      onFlush(view())
    },
    get length() { return all.length },
    text() { return all.join('\n') },
    flush,
  }
}
