/**
 * What both specs do with the Model Registry sidebar: open it, and expand a model until
 * its version cards show (on a busy machine the run's first registry calls, MLflow
 * imported in the server, can take many seconds).
 */
import { expect, type IJupyterLabPageFixture } from '@jupyterlab/galata';
import type { Locator } from '@playwright/test';

export async function openRegistry(
  page: IJupyterLabPageFixture
): Promise<Locator> {
  await page.sidebar.openTab('jupyreg-registry');
  const panel = page.locator('#jupyreg-registry');
  await expect(panel).toBeVisible();
  return panel;
}

export async function expandModel(
  panel: Locator,
  name: string
): Promise<Locator> {
  const model = panel.locator(`.jp-jupyreg-model[data-model="${name}"]`);
  await model.locator('.jp-jupyreg-model-header').click({ timeout: 60_000 });
  await expect(model.locator('.jp-jupyreg-version').first()).toBeVisible({
    timeout: 60_000
  });
  return model;
}
