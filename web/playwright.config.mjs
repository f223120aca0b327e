// @playwright/test for the browser tests (tests/e2e.pw.mjs). Debian's chromium only: no browser is
// downloaded (`npx playwright install` is never needed); CHROMIUM overrides the path.
import { defineConfig } from '@playwright/test'

export default defineConfig({
  testDir: 'tests',
  testMatch: 'e2e.pw.mjs',
  // one worker, in file order: the tests share a job and a mock server
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  retries: 0,
  timeout: 180_000,
  reporter: [['list']],
  outputDir: 'test-output/playwright',
  use: {
    launchOptions: {
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    },
  },
})
