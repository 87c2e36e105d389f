/**
 * The Model Registry sidebar in real JupyterLab + Chromium.
 * The notebook panels (%registry compare / panel) are tested in review.spec.ts.
 * start-server.sh seeded fraud-detector v1 (Staging, alice's pending Production request)
 * and v2 (and churn-model, with one more pending request: see review.spec.ts); the server
 * acts as bob.
 */
import { expect, galata, test } from '@jupyterlab/galata';
import { execFileSync } from 'child_process';
import * as path from 'path';

import { expandModel, openRegistry } from './sidebar';

const MODEL = 'fraud-detector';
const SCREENSHOTS = path.resolve(__dirname, '..', 'screenshots');

test.use({ autoGoto: true });

function stageInPython(version: number): string {
  const code = [
    'import os, jupyreg',
    `print(jupyreg.Registry(os.environ["MLFLOW_TRACKING_URI"]).get("${MODEL}", ${version}).stage)`
  ].join('\n');
  return execFileSync(process.env.JUPYREG_PYTHON!, ['-c', code], {
    env: {
      ...process.env,
      MLFLOW_TRACKING_URI: `sqlite:///${process.env.JUPYREG_UI_RUN_DIR}/mlflow.db`
    },
    encoding: 'utf-8'
  }).trim();
}

test('the sidebar lists the seeded model and its versions', async ({
  page
}) => {
  const panel = await openRegistry(page);
  const model = panel.locator(`.jp-jupyreg-model[data-model="${MODEL}"]`);
  // the run's first registry call (MLflow imported in the server) can be slow
  await expect(model).toBeVisible({ timeout: 30_000 });
  await expect(model.locator('.jp-jupyreg-model-meta')).toContainText(
    'Staging v1'
  );
  await expect(panel.locator('.jp-jupyreg-count-badge')).toHaveText('2');
  await expect(
    page.locator('.lm-TabBar-tab[data-id="jupyreg-registry"]')
  ).toHaveAttribute('data-jupyreg-pending', '2');

  await expandModel(panel, MODEL);
  const v1 = model.locator('.jp-jupyreg-version[data-version="1"]');
  await expect(v1.locator('.jp-jupyreg-stage-badge')).toHaveText('Staging');
  await expect(v1.locator('.jp-jupyreg-metrics')).toContainText('test.auc');
  await expect(
    model.locator('.jp-jupyreg-version[data-version="2"]')
  ).toBeVisible();
  await page.screenshot({ path: path.join(SCREENSHOTS, 'sidebar-models.png') });
});

test('a request the reader may not approve says who may, without controls', async ({
  page
}) => {
  // seed.py: credit-risk's Production approvers are dana alone; the server acts as bob
  const panel = await openRegistry(page);
  const card = panel
    .locator('.jp-jupyreg-request')
    .filter({ hasText: 'credit-risk v1' });
  await expect(card).toHaveClass(/jp-jupyreg-request-blocked/, {
    timeout: 30_000
  });
  await expect(card.locator('.jp-jupyreg-request-blocker')).toContainText(
    'Production approvers are dana'
  );
  await expect(card.getByRole('button', { name: 'Approve' })).toBeHidden();
  await expect(card.locator('.jp-jupyreg-comment')).toBeHidden();
  // the badge counts what bob may decide: fraud-detector's and churn-model's requests
  await expect(panel.locator('.jp-jupyreg-count-badge')).toHaveText('2');
  await card.screenshot({
    path: path.join(SCREENSHOTS, 'inbox-approvers.png')
  });
});

test('approving the pending request moves v1 to Production', async ({
  page,
  request
}) => {
  const panel = await openRegistry(page);
  const model = await expandModel(panel, MODEL);
  const badge = model.locator(
    '.jp-jupyreg-version[data-version="1"] .jp-jupyreg-stage-badge'
  );
  await expect(badge).toHaveText('Staging');

  const card = panel
    .locator('.jp-jupyreg-request')
    .filter({ hasText: `${MODEL} v1` });
  await card.locator('.jp-jupyreg-comment').fill('looks good');
  await card.getByRole('button', { name: 'Approve' }).click();
  // a move into Production is confirmed in a dialog first
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText(`Approve ${MODEL} v1 into Production?`);
  await dialog.getByRole('button', { name: 'Approve into Production' }).click();

  await expect(badge).toHaveText('Production');
  await expect(panel.locator('.jp-jupyreg-count-badge')).toHaveText('1');
  await expect(panel.locator('.jp-jupyreg-status')).toContainText('approved');
  await page.screenshot({
    path: path.join(SCREENSHOTS, 'sidebar-approved.png')
  });

  const reply = await request.get(`/jupyreg/api/models/${MODEL}/versions`);
  expect(reply.ok()).toBeTruthy();
  const { versions } = await reply.json();
  expect(versions.find((v: any) => v.version === 1).stage).toBe('Production');
  expect(stageInPython(1)).toBe('Production');
});

test('requesting a promotion from a version adds it to the inbox', async ({
  page
}) => {
  const panel = await openRegistry(page);
  const model = await expandModel(panel, MODEL);
  const v2 = model.locator('.jp-jupyreg-version[data-version="2"]');
  await v2.getByRole('button', { name: 'Request promotion…' }).click();
  const form = v2.locator('.jp-jupyreg-promotion-form');
  await form.getByLabel('target stage').selectOption('Staging');
  await form.getByLabel('reason').fill('second model for A/B');
  await form.getByRole('button', { name: 'Request' }).click();

  await expect(form).toHaveCount(0);
  const card = panel
    .locator('.jp-jupyreg-request')
    .filter({ hasText: `${MODEL} v2` });
  await expect(card).toContainText('→ Staging');
  await expect(card).toContainText('second model for A/B');
  await expect(panel.locator('.jp-jupyreg-count-badge')).not.toHaveText('0');
  await page.screenshot({
    path: path.join(SCREENSHOTS, 'sidebar-requested.png')
  });
});
