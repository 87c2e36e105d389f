/** The pending-approvals inbox: one card per request with the candidate's metrics against
 * the current Production (one metric per row, with deltas), Compare (side by side with
 * Production, differences highlighted), and Approve / Reject with a comment. Approving a
 * move into Production asks for confirmation first. */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IRegistryActions } from './actions';
import { listVersions } from './api';
import {
  h,
  inlineError,
  metricsTable,
  numberCell,
  placeInOrder,
  shortTime
} from './elements';
import { arrow, formatDelta, orderMetrics } from './format';
import { trans } from './i18n';
import { Decision, IModelVersion, IPromotionRequest } from './types';

export class InboxView {
  readonly node: HTMLElement;
  private readonly badge: HTMLSpanElement;
  private readonly list: HTMLElement;
  private readonly cards = new Map<string, RequestCard>();

  constructor(private readonly actions: IRegistryActions) {
    this.badge = h('span', { class: 'jp-jupyreg-count-badge' }, '0');
    this.list = h('div', { class: 'jp-jupyreg-inbox-list' });
    this.node = h(
      'section',
      { class: 'jp-jupyreg-inbox' },
      h(
        'h3',
        { class: 'jp-jupyreg-section-title' },
        trans.__('Pending approvals'),
        ' ',
        this.badge
      ),
      this.list
    );
    this.update([]);
  }

  /** Replace the shown requests, keeping the cards (and typed comments) still pending. */
  update(requests: IPromotionRequest[]): void {
    const ids = new Set(requests.map(r => r.id));
    for (const [id, card] of this.cards) {
      if (!ids.has(id)) {
        card.node.remove();
        this.cards.delete(id);
      }
    }
    const inServerOrder = requests.map(request => {
      let card = this.cards.get(request.id);
      if (!card) {
        card = new RequestCard(request, this.actions);
        this.cards.set(request.id, card);
      } else {
        card.update(request);
      }
      return card.node;
    });
    placeInOrder(this.list, inServerOrder);
    // the count is of what the reader may decide; the others say who may
    const decidable = requests.filter(r => !r.blocked).length;
    this.badge.textContent = String(decidable);
    this.badge.dataset.count = String(decidable);
    if (requests.length === 0) {
      this.list.replaceChildren(
        h(
          'div',
          { class: 'jp-jupyreg-empty' },
          trans.__('No pending requests.')
        )
      );
    } else {
      this.list.querySelector('.jp-jupyreg-empty')?.remove();
    }
  }
}

class RequestCard {
  readonly node: HTMLElement;
  private readonly comment: HTMLInputElement;
  private readonly buttons: HTMLButtonElement[];
  private readonly metrics: HTMLElement;
  private readonly comparison: HTMLElement;
  private readonly error: HTMLElement;
  private readonly compareButton: HTMLButtonElement;
  private readonly blocked: HTMLElement;
  private shown = '';

  constructor(
    private request: IPromotionRequest,
    private readonly actions: IRegistryActions
  ) {
    this.comment = h('input', {
      class: 'jp-mod-styled jp-jupyreg-comment',
      type: 'text',
      placeholder: trans.__('Comment (optional)'),
      'aria-label': trans.__('comment on request %1', request.id)
    });
    this.buttons = [
      this.button('approve', trans.__('Approve'), 'jp-mod-accept'),
      this.button('reject', trans.__('Reject'), 'jp-mod-warn')
    ];
    this.compareButton = h(
      'button',
      {
        class:
          'jp-Button jp-mod-styled jp-mod-reject jp-jupyreg-compare-button',
        'aria-expanded': 'false',
        title: trans.__('Side by side with the current Production')
      },
      trans.__('Compare')
    );
    this.compareButton.addEventListener(
      'click',
      () => void this.toggleCompare()
    );
    this.comment.addEventListener('input', () => (this.error.textContent = ''));
    this.metrics = h('div', { class: 'jp-jupyreg-request-metrics' });
    this.comparison = h('div', { class: 'jp-jupyreg-comparison' });
    this.comparison.hidden = true;
    this.error = inlineError();
    this.blocked = h('div', { class: 'jp-jupyreg-request-blocker' });
    this.node = h(
      'div',
      { class: 'jp-jupyreg-request', 'data-request-id': request.id },
      h(
        'div',
        { class: 'jp-jupyreg-request-title' },
        h('strong', {}, `${request.name} v${request.version}`),
        ` → ${request.to_stage}`
      ),
      h(
        'div',
        { class: 'jp-jupyreg-request-meta' },
        `${request.requested_by}, ${shortTime(request.created_at)}`
      ),
      h('div', { class: 'jp-jupyreg-request-reason' }, request.reason),
      this.metrics,
      this.comparison,
      this.blocked,
      this.comment,
      this.error,
      h(
        'div',
        { class: 'jp-jupyreg-actions' },
        ...this.buttons,
        this.compareButton
      )
    );
    this.update(request);
  }

  update(request: IPromotionRequest): void {
    this.request = request;
    // a request the reader may not decide shows who may instead of the decision controls
    const blocked = request.blocked ?? '';
    this.node.classList.toggle('jp-jupyreg-request-blocked', blocked !== '');
    this.blocked.textContent = blocked;
    this.blocked.hidden = blocked === '';
    this.comment.hidden = blocked !== '';
    this.buttons.forEach(b => (b.hidden = blocked !== ''));
    // A poll that brings nothing new leaves the table's DOM alone (selections, hovers).
    const shown = JSON.stringify(request);
    if (shown !== this.shown) {
      this.shown = shown;
      this.metrics.replaceChildren(reviewTable(request));
    }
  }

  private button(
    decision: Decision,
    label: string,
    mod: string
  ): HTMLButtonElement {
    const button = h(
      'button',
      { class: `jp-Button jp-mod-styled ${mod}`, 'data-decision': decision },
      label
    );
    button.addEventListener('click', async () => {
      this.actions.viewChanged();
      this.error.textContent = '';
      if (decision === 'approve' && !(await this.confirmed())) {
        return;
      }
      this.buttons.forEach(b => (b.disabled = true));
      const refused = await this.actions.decide(
        this.request.id,
        decision,
        this.comment.value
      );
      if (refused !== null) {
        this.buttons.forEach(b => (b.disabled = false));
        this.error.textContent = refused;
      }
    });
    return button;
  }

  /** A move into Production is confirmed in a dialog that shows what changes. */
  private async confirmed(): Promise<boolean> {
    const r = this.request;
    if (r.to_stage !== 'Production') {
      return true;
    }
    const production = r.production;
    const replaced =
      production && production.version !== r.version
        ? trans.__(
            'Production v%1 is archived; services loading %2/Production switch to v%3.',
            production.version,
            r.name,
            r.version
          )
        : trans.__(
            'Services loading %1/Production get v%2.',
            r.name,
            r.version
          );
    const changes = orderMetrics(Object.keys(r.deltas ?? {})).map(metric => {
      const d = r.deltas![metric];
      return h(
        'li',
        { 'data-direction': d.direction },
        `${metric}: ${formatDelta(d.difference)} ${arrow(d.direction)} (${trans.__(d.direction)})`
      );
    });
    const body = h(
      'div',
      { class: 'jp-jupyreg-confirm' },
      h('p', {}, replaced),
      changes.length > 0 && h('ul', {}, ...changes),
      this.comment.value &&
        h('p', {}, trans.__('Comment: %1', this.comment.value))
    );
    const result = await showDialog({
      title: trans.__('Approve %1 v%2 into Production?', r.name, r.version),
      body: new WidgetBody(body),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Approve into Production') })
      ]
    });
    return result.button.accept;
  }

  private async toggleCompare(): Promise<void> {
    this.actions.viewChanged();
    this.error.textContent = ''; // the next view clears an earlier refusal
    const open = this.comparison.hidden;
    this.comparison.hidden = !open;
    this.compareButton.setAttribute('aria-expanded', String(open));
    if (!open) {
      return;
    }
    this.comparison.replaceChildren(
      h('div', { class: 'jp-jupyreg-empty' }, trans.__('Loading…'))
    );
    try {
      const versions = await listVersions(this.request.name);
      this.comparison.replaceChildren(compareTable(this.request, versions));
    } catch (error) {
      this.comparison.replaceChildren(
        h('div', { class: 'jp-jupyreg-error' }, (error as Error).message)
      );
    }
  }
}

/** A dialog body from a plain element. */
class WidgetBody extends Widget {
  constructor(content: HTMLElement) {
    super({ node: content });
  }
}

/** The candidate's metrics, one per row; with the delta against Production when there is
 * one (Production's value in the delta's title; Compare shows both side by side). */
function reviewTable(request: IPromotionRequest): HTMLElement {
  const metrics = request.metrics ?? {};
  const keys = orderMetrics(Object.keys(metrics));
  if (keys.length === 0) {
    return h(
      'div',
      { class: 'jp-jupyreg-empty' },
      trans.__('no metrics recorded')
    );
  }
  const production = request.production;
  const against = !!production && production.version !== request.version;
  return metricsTable(
    [`v${request.version}`],
    keys.map(metric => ({
      metric,
      values: [metrics[metric]],
      delta: request.deltas?.[metric]
    })),
    against ? `v${production!.version}` : null
  );
}

const LINEAGE_FIELDS: [keyof IModelVersion, string][] = [
  ['stage', 'stage'],
  ['author', 'author'],
  ['git_commit', 'git'],
  ['git_dirty', 'dirty'],
  ['data', 'data'],
  ['gpu', 'GPU']
];

/** The candidate next to Production: every metric and lineage field, one per row, the
 * cells that differ highlighted (theme colours: style/base.css). */
function compareTable(
  request: IPromotionRequest,
  versions: IModelVersion[]
): HTMLElement {
  const candidate = versions.find(v => v.version === request.version);
  const production = versions.find(v => v.stage === 'Production');
  const shown = [production, candidate].filter(
    (v, i, all): v is IModelVersion => !!v && all.indexOf(v) === i
  );
  if (!candidate) {
    return h(
      'div',
      { class: 'jp-jupyreg-error' },
      trans.__('v%1 is gone', request.version)
    );
  }
  const metrics = orderMetrics([
    ...new Set(shown.flatMap(v => Object.keys(v.metrics)))
  ]);
  const header = h(
    'tr',
    {},
    h('th', {}, ''),
    ...shown.map(v => h('th', { class: 'jp-jupyreg-num' }, `v${v.version}`))
  );
  const rows: HTMLTableRowElement[] = [];
  for (const metric of metrics) {
    const values = shown.map(v => v.metrics[metric]);
    const differs = new Set(values.map(String)).size > 1;
    rows.push(
      h(
        'tr',
        { 'data-field': metric, class: differs ? 'jp-mod-differs' : undefined },
        h('th', { scope: 'row', class: 'jp-jupyreg-metric-name' }, metric),
        ...values.map(numberCell)
      )
    );
  }
  for (const [field, label] of LINEAGE_FIELDS) {
    const values = shown.map(v => (v[field] === null ? '—' : String(v[field])));
    const differs = new Set(values).size > 1;
    rows.push(
      h(
        'tr',
        { 'data-field': label, class: differs ? 'jp-mod-differs' : undefined },
        h('th', { scope: 'row', class: 'jp-jupyreg-metric-name' }, label),
        ...values.map(value =>
          h('td', { class: 'jp-jupyreg-text', title: value }, value)
        )
      )
    );
  }
  return h(
    'table',
    { class: 'jp-jupyreg-compare-table' },
    h('thead', {}, header),
    h('tbody', {}, ...rows),
    h(
      'caption',
      {},
      production
        ? trans.__(
            'Highlighted: differs from Production v%1',
            production.version
          )
        : trans.__('No version is in Production yet')
    )
  );
}
