/** The registered models; a model expands into its versions and its history (stage
 * changes with their reasons and the reviewers' comments). */

import { listHistory, listVersions } from './api';
import { IRegistryActions } from './actions';
import { h, placeInOrder, shortTime, staleBadge } from './elements';
import { trans } from './i18n';
import { IHistoryEvent, IRegisteredModel, IStaleness } from './types';
import { VersionsView } from './versions';

const HISTORY_SHOWN = 10;

export class ModelsView {
  readonly node: HTMLElement;
  private readonly list: HTMLElement;
  private readonly rows = new Map<string, ModelRow>();

  constructor(private readonly actions: IRegistryActions) {
    this.list = h('div', { class: 'jp-jupyreg-model-list' });
    this.node = h(
      'section',
      { class: 'jp-jupyreg-models' },
      h('h3', { class: 'jp-jupyreg-section-title' }, trans.__('Models')),
      this.list
    );
  }

  update(models: IRegisteredModel[]): void {
    const names = new Set(models.map(m => m.name));
    for (const [name, row] of this.rows) {
      if (!names.has(name)) {
        row.node.remove();
        this.rows.delete(name);
      }
    }
    const rows = models.map(model => {
      let row = this.rows.get(model.name);
      if (!row) {
        row = new ModelRow(model.name, this.actions);
        this.rows.set(model.name, row);
      }
      row.update(model);
      return row.node;
    });
    placeInOrder(this.list, rows);
    if (models.length === 0) {
      this.list.replaceChildren(
        h(
          'div',
          { class: 'jp-jupyreg-empty' },
          trans.__('No registered models yet: use %%register in a notebook.')
        )
      );
    } else {
      this.list.querySelector(':scope > .jp-jupyreg-empty')?.remove();
    }
  }

  /** Reload the versions (and history) of every expanded model. */
  async refreshExpanded(): Promise<void> {
    await Promise.all([...this.rows.values()].map(row => row.refresh()));
  }
}

class ModelRow {
  readonly node: HTMLElement;
  private readonly header: HTMLButtonElement;
  private readonly meta: HTMLElement;
  private readonly staleSlot: HTMLElement;
  private readonly splitLine: HTMLElement;
  private readonly versions: VersionsView;
  private readonly history: HTMLDetailsElement;
  private readonly historyList: HTMLElement;
  private expanded = false;
  private staleness: IStaleness | null = null;
  private shown = '';

  constructor(
    private readonly name: string,
    private readonly actions: IRegistryActions
  ) {
    this.meta = h('span', { class: 'jp-jupyreg-model-meta' });
    this.staleSlot = h('span', { class: 'jp-jupyreg-stale-slot' });
    this.header = h(
      'button',
      { class: 'jp-jupyreg-model-header', 'aria-expanded': 'false' },
      h('span', { class: 'jp-jupyreg-caret' }),
      h('span', { class: 'jp-jupyreg-model-name', title: name }, name),
      this.meta,
      this.staleSlot
    );
    this.header.addEventListener('click', () => void this.toggle());
    this.splitLine = h('div', { class: 'jp-jupyreg-split', role: 'alert' });
    this.splitLine.hidden = true;
    this.versions = new VersionsView(name, actions);
    this.historyList = h('ol', { class: 'jp-jupyreg-history-list' });
    this.history = h(
      'details',
      { class: 'jp-jupyreg-history' },
      h('summary', {}, trans.__('History')),
      this.historyList
    );
    this.history.addEventListener('toggle', () => {
      if (this.history.open) {
        this.actions.viewChanged();
        void this.refreshHistory();
      }
    });
    const body = h(
      'div',
      { class: 'jp-jupyreg-model-body' },
      this.versions.node,
      this.history
    );
    body.hidden = true;
    this.node = h(
      'div',
      { class: 'jp-jupyreg-model', 'data-model': name },
      this.header,
      this.splitLine,
      body
    );
  }

  update(model: IRegisteredModel): void {
    // A poll that brings nothing new leaves the header's DOM alone.
    const shown = JSON.stringify(model);
    if (shown === this.shown) {
      return;
    }
    this.shown = shown;
    const stale = staleBadge(model.staleness ?? null);
    const holders = [
      model.production !== null ? `Production v${model.production}` : '',
      model.staging !== null ? `Staging v${model.staging}` : ''
    ].filter(Boolean);
    // The header's spans stay: a click on one whose button is down as data arrives counts.
    this.meta.textContent = [
      `v${model.latest_version ?? '–'}`,
      ...holders
    ].join(' · ');
    this.staleSlot.replaceChildren(...(stale ? [stale] : []));
    this.splitLine.textContent = model.split ?? '';
    this.splitLine.hidden = !model.split;
    this.header.title = model.description || model.name;
    this.staleness = model.staleness ?? null;
    this.versions.setStaleness(this.staleness);
  }

  async refresh(): Promise<void> {
    if (!this.expanded) {
      return;
    }
    try {
      this.versions.update(await listVersions(this.name));
    } catch (error) {
      this.versions.showError((error as Error).message);
    }
    if (this.history.open) {
      await this.refreshHistory();
    }
  }

  private async refreshHistory(): Promise<void> {
    let events: IHistoryEvent[];
    try {
      events = await listHistory(this.name);
    } catch (error) {
      this.historyList.replaceChildren(
        h('li', { class: 'jp-jupyreg-error' }, (error as Error).message)
      );
      return;
    }
    const newest = events.slice(-HISTORY_SHOWN).reverse();
    this.historyList.replaceChildren(
      ...(newest.length === 0
        ? [
            h(
              'li',
              { class: 'jp-jupyreg-empty' },
              trans.__('No stage changes yet.')
            )
          ]
        : newest.map(historyItem))
    );
  }

  private async toggle(): Promise<void> {
    this.actions.viewChanged();
    this.expanded = !this.expanded;
    this.header.setAttribute('aria-expanded', String(this.expanded));
    this.node.classList.toggle('jp-mod-expanded', this.expanded);
    (this.versions.node.parentElement as HTMLElement).hidden = !this.expanded;
    await this.refresh();
  }
}

function historyItem(event: IHistoryEvent): HTMLElement {
  const author = event.repaired_by
    ? trans.__('%1 (recorded by %2)', event.author, event.repaired_by)
    : event.author;
  return h(
    'li',
    {
      class: 'jp-jupyreg-history-event',
      'data-version': String(event.version)
    },
    h(
      'div',
      {},
      h('strong', {}, `v${event.version}`),
      ` ${event.from_stage} → ${event.to_stage}`
    ),
    h(
      'div',
      { class: 'jp-jupyreg-request-meta' },
      `${author}, ${shortTime(event.at)}`
    ),
    h('div', { class: 'jp-jupyreg-history-reason' }, event.reason),
    ...attested(event),
    ...(event.comments ?? []).map(c =>
      h(
        'div',
        { class: 'jp-jupyreg-history-comment' },
        h('span', { class: 'jp-jupyreg-comment-author' }, `${c.by}: `),
        c.comment
      )
    )
  );
}

/** The CI run that vouched for the author, linked, and the account that relayed it. */
function attested(event: IHistoryEvent): HTMLElement[] {
  const attestation = event.attestation;
  if (!attestation) {
    return [];
  }
  const where = attestation.run_url
    ? h(
        'a',
        { href: attestation.run_url, target: '_blank', rel: 'noopener' },
        attestation.workflow ?? attestation.run_url
      )
    : (attestation.repository ?? attestation.issuer);
  return [
    h(
      'div',
      { class: 'jp-jupyreg-history-attestation' },
      trans.__('attested by '),
      where,
      attestation.relayed_by
        ? trans.__(' (relayed by %1)', attestation.relayed_by)
        : ''
    )
  ];
}
