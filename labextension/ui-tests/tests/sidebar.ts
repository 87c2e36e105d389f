/**
 * What both specs do with the Model Registry sidebar: open it, and expand a model until
 * its version cards show (on a busy machine its first loads can take many seconds, and a
 * click that lands while the list re-renders is lost: the header is clicked again only
 * while it is not expanded, so an expanded model is never collapsed).
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
  const header = model.locator('.jp-jupyreg-model-header');
  await expect(async () => {
    if ((await header.getAttribute('aria-expanded')) !== 'true') {
      await header.click();
    }
    await expect(model.locator('.jp-jupyreg-version').first()).toBeVisible({
      timeout: 10_000
    });
  }).toPass({ timeout: 90_000 });
  return model;
}
