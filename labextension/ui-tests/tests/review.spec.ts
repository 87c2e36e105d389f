/**
 * Issue 17's sidebar and panel items, each in the light and the dark theme, with
 * screenshots (ui-tests/screenshots/, gitignored). start-server.sh seeded churn-model:
 * v1 Production (val.auc 0.92655, approved by bob with a comment), v2 Archived, v3 Staging
 * (val.auc 0.92741) with alice's pending Production request, v4 newest; and a model with a
 * long name. The server acts as bob. Tests that change the registry come last.
 */
import { expect, galata, test } from '@jupyterlab/galata';
import type { Locator, Page } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as path from 'path';

import { expandModel, openRegistry } from './sidebar';

const CHURN = 'churn-model';
const LONG_NAME = 'customer-lifetime-value-regressor-experimental';
const SCREENSHOTS = path.resolve(__dirname, '..', 'screenshots');

// A long refresh interval: whatever shows up quickly was not brought by the poll.
test.use({
  autoGoto: true,
  mockSettings: {
    ...galata.DEFAULT_SETTINGS,
    'jupyreg:sidebar': { refreshInterval: 600 }
  }
});

/** A version card's request form, opened. */
async function openRequestForm(card: Locator): Promise<Locator> {
  await card.getByRole('button', { name: 'Request promotion…' }).click();
  const form = card.locator('.jp-jupyreg-promotion-form');
  await expect(form).toBeVisible();
  return form;
}

/** Sets a model's description from outside the page, as another user would. */
function describeInPython(name: string, description: string): void {
  const code = [
    'import sys, mlflow',
    'mlflow.MlflowClient().update_registered_model(sys.argv[1], description=sys.argv[2])'
  ].join('\n');
  execFileSync(process.env.JUPYREG_PYTHON!, ['-c', code, name, description], {
    env: {
      ...process.env,
      MLFLOW_TRACKING_URI: `sqlite:///${process.env.JUPYREG_UI_RUN_DIR}/mlflow.db`
    }
  });
}

function churnCard(panel: Locator): Locator {
  return panel
    .locator('.jp-jupyreg-request')
    .filter({ hasText: `${CHURN} v3` });
}

/**
 * WCAG contrast of an element's text against what is painted behind it: translucent
 * backgrounds are composited over their ancestors' (computed colours may be rgb(),
 * rgba() or color(srgb ...), as color-mix() gives).
 */
async function contrast(locator: Locator, property = 'color'): Promise<number> {
  return locator.evaluate((element, prop) => {
    const parse = (text: string): number[] | null => {
      const srgb = text.match(/color\(srgb ([^)]+)\)/);
      if (srgb) {
        const p = srgb[1]
          .split(/[\s/]+/)
          .filter(Boolean)
          .map(Number);
        return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
      }
      const rgb = text.match(/rgba?\(([^)]+)\)/);
      if (!rgb) {
        // any other CSS colour (oklab(), lab(), ...): as the browser paints it
        const canvas = document.createElement('canvas');
        canvas.width = canvas.height = 1;
        const context = canvas.getContext('2d')!;
        context.fillStyle = text;
        context.fillRect(0, 0, 1, 1);
        const [r, g, b, alpha] = context.getImageData(0, 0, 1, 1).data;
        return [r, g, b, alpha / 255];
      }
      const p = rgb[1]
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const chain: Element[] = [];
    for (let e: Element | null = element; e; e = e.parentElement) {
      chain.unshift(e);
    }
    let back = [255, 255, 255];
    for (const e of chain) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) {
        back = back.map((v, i) => c[i] * c[3] + v * (1 - c[3]));
      }
    }
    const style = getComputedStyle(element) as any;
    const fore = parse(style[prop] as string)!;
    const luminance = (c: number[]): number => {
      const [r, g, b] = c.slice(0, 3).map(v => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [a, b] = [luminance(fore), luminance(back)];
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }, property);
}

/**
 * Wait until `locator`'s text (its `property` colour) reads at WCAG AA contrast, 4.5:1,
 * against what lies under it: a theme switch restyles the page over several frames, and a
 * check made in between measured a contrast of 1.
 */
async function expectReadable(
  locator: Locator,
  property = 'color'
): Promise<void> {
  await expect
    .poll(() => contrast(locator, property), { timeout: 15000 })
    .toBeGreaterThan(4.5);
}

/**
 * Screenshot in the light theme, switch to the dark theme, run `check` (readability
 * assertions), screenshot again. Screenshots: NAME-light.png and NAME-dark.png.
 */
async function inBothThemes(
  page: Page,
  name: string,
  check: () => Promise<void>
): Promise<void> {
  await check();
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-light.png`) });
  await page.theme.setDarkTheme();
  await check();
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-dark.png`) });
}

// Few tests, each walking through several of the items as steps: every test pays
// for a page load (and a notebook one for a kernel), and `make test` has a time budget.
test.describe('sidebar (issue 17)', () => {
  test('numbers, history with comments, long names, the refresh icon', async ({
    page
  }) => {
    const panel = await openRegistry(page);
    const model = await expandModel(panel, CHURN);
    const v3 = model.locator('.jp-jupyreg-version[data-version="3"]');
    const auc3 = v3.locator('tr[data-metric="val.auc"] td');

    await test.step('4 significant digits, right-aligned, one metric per row', async () => {
      const auc1 = model.locator(
        '.jp-jupyreg-version[data-version="1"] tr[data-metric="val.auc"] td'
      );
      await expect(auc3).toHaveText('0.9274');
      await expect(auc1).toHaveText('0.9265'); // no longer both "0.927"
      await expect(auc3).toHaveCSS('text-align', 'right');
      await expect(auc3).toHaveCSS('font-variant-numeric', 'tabular-nums');
      await expect(v3.locator('tr[data-metric]')).toHaveCount(3);
    });

    const comment = model
      .locator('.jp-jupyreg-history-event')
      .filter({ hasText: 'Staging → Production' })
      .locator('.jp-jupyreg-history-comment');
    await test.step('the history shows approval comments', async () => {
      await model.locator('.jp-jupyreg-history summary').click();
      await expect(comment).toHaveText('bob: solid baseline, test AUC checked');
    });

    const name = panel.locator(
      `.jp-jupyreg-model[data-model="${LONG_NAME}"] .jp-jupyreg-model-name`
    );
    await test.step('a long model name ends in an ellipsis, never breaks mid-word', async () => {
      await expect(name).toHaveCSS('white-space', 'nowrap');
      await expect(name).toHaveCSS('text-overflow', 'ellipsis');
      await expect(name).toHaveAttribute('title', LONG_NAME);
      expect(await name.evaluate(e => e.getClientRects().length)).toBe(1);
    });

    await test.step("the refresh button is Lab's refreshIcon", async () => {
      const refresh = panel.locator('.jp-jupyreg-refresh');
      await expect(refresh.locator('svg')).toHaveCount(1);
      await expect(refresh).not.toContainText('⟳');
    });

    await inBothThemes(page, 'sidebar-numbers-history', async () => {
      await expectReadable(auc3);
      await expectReadable(comment);
      await expectReadable(name);
    });
  });

  test('inbox: metrics and deltas vs Production, Compare, confirmation', async ({
    page
  }) => {
    const panel = await openRegistry(page);
    const card = churnCard(panel);
    await test.step('the candidate against Production, with deltas', async () => {
      const auc = card.locator(
        '.jp-jupyreg-request-metrics tr[data-metric="val.auc"]'
      );
      await expect(auc.locator('td')).toHaveText(['0.9274', '+0.00086 ▲']);
      await expect(auc.locator('.jp-jupyreg-delta')).toHaveAttribute(
        'title',
        'Production v1: 0.9265 (better)'
      );
      await expect(card.locator('thead th').last()).toHaveText('Δ vs v1');
      await expect(auc.locator('.jp-jupyreg-delta')).toHaveAttribute(
        'data-direction',
        'better'
      );
      const loss = card.locator(
        'tr[data-metric="val.log_loss"] .jp-jupyreg-delta'
      );
      await expect(loss).toHaveAttribute('data-direction', 'worse'); // a loss went up
    });

    const table = card.locator('.jp-jupyreg-compare-table');
    const differs = table
      .locator('tr.jp-mod-differs[data-field="val.auc"] td')
      .first();
    await test.step('Compare: side by side with Production, differences highlighted', async () => {
      await card.getByRole('button', { name: 'Compare' }).click();
      await expect(table.locator('thead th')).toHaveText(['', 'v1', 'v3']);
      await expect(differs).toBeVisible();
      await expect(table.locator('tr[data-field="test.auc"]')).not.toHaveClass(
        /jp-mod-differs/
      );
    });

    await inBothThemes(page, 'sidebar-inbox-compare', async () => {
      await expectReadable(differs); // no cream under white text
    });

    await test.step('a Production approval is confirmed first', async () => {
      await card.getByRole('button', { name: 'Approve' }).click();
      const dialog = page.locator('.jp-Dialog');
      await expect(dialog).toContainText(
        `Approve ${CHURN} v3 into Production?`
      );
      await expect(dialog).toContainText('Production v1 is archived');
      await expect(dialog).toContainText('val.auc: +0.00086 ▲ (better)');
      await page.screenshot({
        path: path.join(SCREENSHOTS, 'sidebar-confirm-dark.png')
      });
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await expect(dialog).toHaveCount(0);
      await expect(churnCard(panel)).toBeVisible(); // nothing was approved
    });
  });

  test('version cards and the request form', async ({ page }) => {
    const panel = await openRegistry(page);
    const model = await expandModel(panel, CHURN);
    const v3 = model.locator('.jp-jupyreg-version[data-version="3"]');
    const v2 = model.locator('.jp-jupyreg-version[data-version="2"]');

    await test.step('older versions fold; a pending request shows on its card', async () => {
      // v4 and v3 (newest), v1 (Production); v2 (Archived, older) folded
      await expect(model.locator('.jp-jupyreg-version:visible')).toHaveCount(3);
      await expect(v3.locator('.jp-jupyreg-pending-badge')).toHaveText(
        'pending → Production'
      );
      const more = model.locator('.jp-jupyreg-more');
      await expect(more).toHaveText('Show 1 older version');
      await more.click();
      await expect(v2).toBeVisible();
    });

    await test.step('only the moves the lifecycle allows are offered', async () => {
      await expect(
        v2.getByRole('button', { name: 'Request promotion…' })
      ).toHaveCount(0);
      await v2
        .getByRole('button', { name: 'Request restore to Staging…' })
        .click();
      await expect(v2.getByLabel('target stage').locator('option')).toHaveText([
        'Staging'
      ]);
      // v3 already asks for Production: only Archived is left to request
      await v3.getByRole('button', { name: 'Request promotion…' }).click();
      await expect(v3.getByLabel('target stage').locator('option')).toHaveText([
        'Archived'
      ]);
    });

    const v4 = model.locator('.jp-jupyreg-version[data-version="4"]');
    const form = v4.locator('.jp-jupyreg-promotion-form');
    await test.step('the form preselects; Request waits for a reason', async () => {
      await openRequestForm(v4);
      await expect(form.getByLabel('target stage')).toHaveValue('Staging');
      await expect(
        form.getByLabel('target stage').locator('option')
      ).toHaveText(['Staging', 'Archived']);
      const submit = form.getByRole('button', { name: 'Request', exact: true });
      await expect(submit).toBeDisabled();
      await form.getByLabel('reason').fill('   ');
      await expect(submit).toBeDisabled();
      await form.getByLabel('reason').fill('A/B test');
      await expect(submit).toBeEnabled();
      await expect(panel.locator('.jp-jupyreg-status')).toBeHidden(); // no top banner
    });

    // issue 15: seed.py committed code after churn-model v1 was trained, and recorded
    // v1's reproduction as passed and v3's as failed
    const v1 = model.locator('.jp-jupyreg-version[data-version="1"]');
    const staleBadge = model.locator(
      '.jp-jupyreg-model-header .jp-jupyreg-stale-badge'
    );
    const staleLine = v1.locator('.jp-jupyreg-staleness');
    await test.step('a stale Production: a badge on the model, a line on its card', async () => {
      await expect(staleBadge).toHaveText('stale');
      await expect(staleBadge).toHaveAttribute(
        'title',
        /churn-model Production v1 may be stale: 1 commit touching code/
      );
      await expect(staleLine).toHaveAttribute('data-stale', 'true');
      await expect(staleLine).toContainText(
        'May be stale: 1 commit touching code since training; data unchanged'
      );
      await expect(v3.locator('.jp-jupyreg-staleness')).toHaveCount(0);
    });

    const passed = v1.locator('.jp-jupyreg-reproduced-badge');
    const failed = v3.locator('.jp-jupyreg-reproduced-badge');
    await test.step('reproduction status on the version cards', async () => {
      await expect(passed).toHaveText('✓ reproduced');
      await expect(passed).toHaveAttribute('data-reproduced', 'passed');
      await expect(failed).toHaveText('✗ reproduction failed');
      await expect(v4.locator('.jp-jupyreg-reproduced-badge')).toHaveCount(0); // never reproduced
    });

    const card = page.locator('#jupyreg-card-churn-model-1');
    await test.step('the model card opens rendered in the main area', async () => {
      await v1.getByRole('button', { name: 'Model card' }).click();
      // Lab's renderer adds a "¶" anchor to headings
      await expect(card.locator('.jp-RenderedMarkdown h1')).toContainText(
        `${CHURN} v1`
      );
      await expect(card.locator('.jp-RenderedMarkdown h2')).toContainText([
        'Reproduction'
      ]);
      await expect(
        card.locator('.jp-RenderedMarkdown table').first()
      ).toBeVisible();
      await expect(card.locator('.jp-jupyreg-card-body')).not.toContainText(
        'library_name:'
      ); // the front matter is folded apart, not shown as text
      await expect(card.locator('.jp-jupyreg-card-meta pre')).toContainText(
        'library_name:'
      );
    });

    await inBothThemes(page, 'sidebar-version-cards', async () => {
      await expectReadable(v3.locator('.jp-jupyreg-pending-badge'));
      await expectReadable(form.getByLabel('reason'));
      for (const text of [staleBadge, staleLine, passed, failed]) {
        await expectReadable(text);
      }
      await expectReadable(card.locator('.jp-RenderedMarkdown h2').first());
    });
  });
});

test.describe('the sidebar while its poll runs every 2 s', () => {
  test.use({
    mockSettings: {
      ...galata.DEFAULT_SETTINGS,
      'jupyreg:sidebar': { refreshInterval: 2 }
    }
  });

  test('a refresh moves no field and loses no click', async ({ page }) => {
    const panel = await openRegistry(page);
    const model = await expandModel(panel, CHURN);
    let loads = 0; // versions reloads answered (each poll's refresh has one)
    page.on('requestfinished', request => {
      if (/\/jupyreg\/api\/models\/[^/]+\/versions/.test(request.url())) {
        loads += 1;
      }
    });
    const twoRefreshes = async (): Promise<void> => {
      const before = loads;
      await expect
        .poll(() => loads, { timeout: 30_000 })
        .toBeGreaterThanOrEqual(before + 2);
    };

    /** Half the text typed before two refreshes, half after: all of it lands. */
    const typeAcrossRefreshes = async (
      field: Locator,
      before: string,
      after: string
    ): Promise<void> => {
      await field.click();
      await page.keyboard.type(before);
      await twoRefreshes();
      await page.keyboard.type(after);
      await expect(field).toBeFocused();
      await expect(field).toHaveValue(before + after);
    };

    await test.step('a reason or a comment being typed keeps the focus', async () => {
      const v4 = model.locator('.jp-jupyreg-version[data-version="4"]');
      const reason = (await openRequestForm(v4)).getByLabel('reason');
      await typeAcrossRefreshes(reason, 'canary for ', 'the EU region');
      const comment = churnCard(panel).locator('.jp-jupyreg-comment');
      await typeAcrossRefreshes(comment, 'checked the ', 'drift report');
    });

    await test.step('a click whose button is down across a refresh counts', async () => {
      const more = model.locator('.jp-jupyreg-more');
      await expect(more).toHaveText('Show 1 older version');
      await more.scrollIntoViewIfNeeded();
      const box = (await more.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
      await page.mouse.down();
      await twoRefreshes();
      await page.mouse.up();
      await expect(more).toHaveText('Hide older versions');
      await expect(
        model.locator('.jp-jupyreg-version[data-version="2"]')
      ).toBeVisible();
    });

    await test.step('so does one on a model whose header changes meanwhile', async () => {
      const row = panel.locator(`.jp-jupyreg-model[data-model="${LONG_NAME}"]`);
      const header = row.locator('.jp-jupyreg-model-header');
      const name = row.locator('.jp-jupyreg-model-name');
      await name.scrollIntoViewIfNeeded();
      const box = (await name.boundingBox())!;
      await page.mouse.move(box.x + 10, box.y + box.height / 2);
      await page.mouse.down();
      // the long-named model's description is not looked at after this test
      describeInPython(LONG_NAME, 'held across a refresh');
      await expect(header).toHaveAttribute('title', 'held across a refresh');
      await page.mouse.up();
      await expect(header).toHaveAttribute('aria-expanded', 'true');
    });
  });
});

test.describe('notebook panels (issue 17)', () => {
  test('compare and promotion panels; a %%register cell refreshes the sidebar', async ({
    page
  }) => {
    // two kernels' work (the panels, then a %%register cell that imports MLflow and
    // trains): beside CI's end-to-end stage it outlasted the 90 s default
    test.slow();
    const panel = await openRegistry(page);
    await expect(
      panel.locator(`.jp-jupyreg-model[data-model="${CHURN}"]`)
    ).toBeVisible();
    await page.notebook.createNew('review.ipynb');
    await page.notebook.setCell(
      0,
      'code',
      `%load_ext jupyreg\n%registry compare ${CHURN}`
    );
    await page.notebook.addCell('code', `%registry panel ${CHURN}`);
    await page.notebook.run();
    const outputs = page.locator('.jp-OutputArea-output');
    const compare = outputs
      .locator('.widget-vbox')
      .filter({ hasText: `Compare ${CHURN}` })
      .first();
    const highlighted = compare.locator('td[style*="color-mix"]').first();
    const chartText = compare.locator('svg.jupyreg-chart text').first();

    await test.step('compare: Production vs the version up for approval, only differences', async () => {
      await expect(compare).toBeVisible({ timeout: 60_000 });
      // Production v1 against v3, the version up for approval (not v4, the newest)
      await expect(compare.locator('th')).toContainText([
        'v1 (Production)',
        'v3 (Staging)'
      ]);
      await expect(compare.locator('input[type="checkbox"]')).toBeChecked();
      await expect(highlighted).toBeVisible();
      const number = compare.locator('td', { hasText: /^0\.9274/ }).first();
      await expect(number).toHaveCSS('text-align', 'right');
      await expect(compare.locator('td', { hasText: /^C$/ })).toHaveCount(1); // params: C only
      await expect(chartText).toBeAttached();
    });

    const promotions = outputs
      .locator('.widget-vbox')
      .filter({ hasText: `Promotions of ${CHURN}` })
      .first();
    await test.step('promotions: metrics vs Production, confirmation, comments, defaults', async () => {
      await expect(promotions).toBeVisible({ timeout: 60_000 });
      await expect(promotions).toContainText('+0.00086 ▲');
      await expect(promotions).toContainText(
        'bob: solid baseline, test AUC checked'
      );
      await promotions
        .getByRole('button', { name: 'Approve', exact: true })
        .click();
      await expect(promotions).toContainText('Approve v3 into Production?');
      await promotions
        .getByRole('button', { name: 'Cancel', exact: true })
        .click();
      await expect(
        promotions.getByRole('button', { name: 'Request', exact: true })
      ).toBeDisabled();
    });

    const stale = promotions.locator('.jupyreg-staleness');
    const cardOutput = promotions.locator('.jp-RenderedMarkdown');
    await test.step('issue 15: stale Production, reproduction status, the model card', async () => {
      await expect(stale).toHaveAttribute('data-stale', 'true');
      await expect(stale).toContainText(
        'may be stale: 1 commit touching code since training'
      );
      await expect(
        promotions
          .locator('.jupyreg-reproduced[data-reproduced="passed"]')
          .first()
      ).toHaveText('✓ reproduced'); // Production v1 among the stage holders
      await expect(
        promotions
          .locator('.jupyreg-reproduced[data-reproduced="failed"]')
          .first()
      ).toBeVisible(); // v3: on the holders line and its pending request
      await promotions
        .locator('select')
        .first()
        .selectOption({ label: 'v1 (Production, reproduced)' });
      await promotions.getByRole('button', { name: 'Model card' }).click();
      await expect(cardOutput.locator('h1')).toContainText(`${CHURN} v1`);
      await expect(cardOutput.locator('h2')).toContainText(['Reproduction']);
    });

    await expect(
      page.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.error"]'
      )
    ).toHaveCount(0);
    await inBothThemes(page, 'notebook-panels', async () => {
      await expectReadable(highlighted);
      await expectReadable(chartText, 'fill'); // not a white block
      await expectReadable(stale);
      await expectReadable(cardOutput.locator('h2').first());
    });

    await test.step('%%register: the sidebar shows the version without waiting for the poll', async () => {
      await page.notebook.addCell(
        'code',
        [
          '%%register notebook-model --model clf --metrics metrics',
          'import numpy as np',
          'from sklearn.linear_model import LogisticRegression',
          'X = np.random.default_rng(0).normal(size=(60, 3)); y = (X[:, 0] > 0).astype(int)',
          'clf = LogisticRegression().fit(X, y)',
          'metrics = {"val": {"auc": 0.91234}}'
        ].join('\n')
      );
      await page.sidebar.openTab('jupyreg-registry');
      await page.notebook.runCell(2);
      // the poll is 600 s (mockSettings): only the executed-cell hook brings it this soon
      const registered = panel.locator(
        '.jp-jupyreg-model[data-model="notebook-model"]'
      );
      await expect(registered).toBeVisible({ timeout: 30_000 });
      await page.screenshot({
        path: path.join(SCREENSHOTS, 'sidebar-after-register-dark.png')
      });
    });
  });
});

test.describe('sidebar actions that change the registry (issue 17)', () => {
  test('refusals are shown in GUI words where they happen', async ({
    page
  }) => {
    const panel = await openRegistry(page);
    const model = await expandModel(panel, CHURN);
    const v4 = model.locator('.jp-jupyreg-version[data-version="4"]');
    const requestForm = await openRequestForm(v4);
    await requestForm.getByLabel('reason').fill('second candidate');
    await v4.getByRole('button', { name: 'Request', exact: true }).click();

    // bob may not approve his own request: the card says so before any click, in the
    // lifecycle's words (issue 26: the inbox says who may), the panel top stays clean
    const own = panel
      .locator('.jp-jupyreg-request')
      .filter({ hasText: `${CHURN} v4` });
    const blocker = own.locator('.jp-jupyreg-request-blocker');
    await expect(blocker).toContainText('own request');
    await expect(blocker).not.toContainText('reg.');
    await expect(own.getByRole('button', { name: 'Approve' })).toBeHidden();
    await expect(v4.locator('.jp-jupyreg-pending-badge')).toHaveText(
      'pending → Staging'
    );
    await expect(panel.locator('.jp-jupyreg-status')).toContainText(
      `requested ${CHURN} v4 → Staging`
    );
    await inBothThemes(page, 'sidebar-refusal', async () => {
      await expectReadable(blocker);
    });
  });
});
