import { chromium } from '@playwright/test'
import { AxeBuilder } from '@axe-core/playwright'
import { startMockServer } from './mock/server.mjs'
const s = await startMockServer({ port: 0, host: '127.0.0.1' })
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--headless'] })
const ctx = await b.newContext()
const page = await ctx.newPage()
async function check(name) {
  const r = await new AxeBuilder({ page }).analyze()
  for (const v of r.violations) console.log(name, v.id, v.impact, v.nodes.length, v.nodes.slice(0, 3).map((n) => n.target.join(' ') + ' :: ' + n.failureSummary.split('\n').slice(1, 2).join('')).join(' | '))
  console.log(name, 'violations', r.violations.length)
}
await page.goto(`${s.url}/`)
await page.waitForSelector('#distro option', { state: 'attached' })
await page.fill('#pkg-input', 'nginx'); await page.press('#pkg-input', 'Enter')
await page.click('[data-testid=preview]'); await page.waitForSelector('[data-testid=preview-summary]')
await check('build')
await page.goto(`${s.url}/#/history`); await page.waitForSelector('[data-job]')
await check('history')
const id = await page.$eval('[data-job]', (e) => e.dataset.job)
await page.goto(`${s.url}/#/jobs/${id}`); await page.waitForSelector('[data-testid=stepper]'); await page.waitForTimeout(1500)
await check('job')
await b.close(); await s.close()
