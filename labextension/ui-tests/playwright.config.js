/**
 * Galata in Debian's Chromium (see /work/shared/FACTS.md): no browser download, no video,
 * no trace. The server is seeded and started by start-server.sh on 127.0.0.1.
 */
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

// Chosen once in the runner process; the workers inherit the environment.
if (!process.env.JUPYREG_PYTHON) {
  const venv = path.resolve(__dirname, '../../.venv/bin/python');
  process.env.JUPYREG_PYTHON = fs.existsSync(venv) ? venv : 'python3';
}
if (!process.env.JUPYREG_UI_RUN_DIR) {
  process.env.JUPYREG_UI_RUN_DIR = fs.mkdtempSync(
    path.join(os.tmpdir(), 'jupyreg-ui-')
  );
}
if (!process.env.JUPYREG_UI_PORT) {
  // A free port, so that parallel runs on a shared machine do not collide.
  process.env.JUPYREG_UI_PORT = execFileSync(process.env.JUPYREG_PYTHON, [
    '-c',
    'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
  ])
    .toString()
    .trim();
}
const port = process.env.JUPYREG_UI_PORT;

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: './test-results',
  workers: 1,
  retries: 0,
  timeout: 90_000,
  // CI runs these beside the end-to-end stage, where a sidebar load can take more than
  // Playwright's default 5 s.
  expect: { timeout: 15_000 },
  reporter: [['list']],
  globalTeardown: require.resolve('./teardown.js'),
  use: {
    ...baseConfig.use,
    baseURL: `http://127.0.0.1:${port}`,
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath: '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update'
      ]
    }
  },
  webServer: {
    command: './start-server.sh',
    url: `http://127.0.0.1:${port}/lab`,
    timeout: 180_000,
    reuseExistingServer: false,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
