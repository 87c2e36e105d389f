/** The versions of one model: stage badge, aliases, key metrics, git / data / GPU summary. */

import { IRegistryActions } from './actions';
import { h, shortTime, stageBadge } from './elements';
import { PromotionForm } from './promotion';
import { IModelVersion } from './types';

const KEY_METRICS = 4;

export class VersionsView {
  readonly node: HTMLElement;
  private readonly cards = new Map<number, VersionCard>();

  constructor(
    private readonly name: string,
    private readonly actions: IRegistryActions
  ) {
    this.node = h('div', { class: 'jp-jupyreg-versions' });
  }

  /** Newest first; cards (and open forms) of versions still listed are kept. */
  update(versions: IModelVersion[]): void {
    const shown = new Set(versions.map(v => v.version));
    for (const [number, card] of this.cards) {
      if (!shown.has(number)) {
        card.node.remove();
        this.cards.delete(number);
      }
    }
    for (const version of [...versions].sort((a, b) => b.version - a.version)) {
      let card = this.cards.get(version.version);
      if (!card) {
        card = new VersionCard(this.name, this.actions);
        this.cards.set(version.version, card);
      }
      card.update(version);
      this.node.append(card.node);
    }
    if (versions.length === 0) {
      this.node.replaceChildren(h('div', { class: 'jp-jupyreg-empty' }, 'No versions.'));
    } else {
      this.node.querySelector(':scope > .jp-jupyreg-empty')?.remove();
    }
  }

  showError(message: string): void {
    this.node.replaceChildren(h('div', { class: 'jp-jupyreg-error' }, message));
    this.cards.clear();
  }
}

class VersionCard {
  readonly node: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly formSlot: HTMLElement;
  private readonly requestButton: HTMLButtonElement;
  private version: IModelVersion | null = null;

  constructor(
    private readonly name: string,
    private readonly actions: IRegistryActions
  ) {
    this.summary = h('div', { class: 'jp-jupyreg-version-summary' });
    this.formSlot = h('div', { class: 'jp-jupyreg-form-slot' });
    this.requestButton = h(
      'button',
      { class: 'jp-Button jp-mod-styled jp-jupyreg-request-button' },
      'Request promotion…'
    );
    this.requestButton.addEventListener('click', () => this.openForm());
    this.node = h(
      'div',
      { class: 'jp-jupyreg-version' },
      this.summary,
      h('div', { class: 'jp-jupyreg-actions' }, this.requestButton),
      this.formSlot
    );
  }

  update(version: IModelVersion): void {
    this.version = version;
    this.node.dataset.version = String(version.version);
    this.node.dataset.stage = version.stage;
    const title = h(
      'div',
      { class: 'jp-jupyreg-version-title' },
      h('strong', {}, `v${version.version}`),
      stageBadge(version.stage),
      ...version.aliases.map(a => h('span', { class: 'jp-jupyreg-alias' }, `@${a}`))
    );
    const meta = h(
      'div',
      { class: 'jp-jupyreg-version-meta' },
      [version.author, shortTime(version.created)].filter(Boolean).join(', ')
    );
    this.summary.replaceChildren(title, meta, metricsTable(version), lineageLine(version));
  }

  private openForm(): void {
    if (!this.version || this.formSlot.firstChild) {
      return;
    }
    const close = (): void => {
      this.formSlot.replaceChildren();
      this.requestButton.disabled = false;
    };
    this.requestButton.disabled = true;
    const form = new PromotionForm(this.name, this.version, this.actions, close);
    this.formSlot.replaceChildren(form.node);
    form.node.querySelector('input')?.focus();
  }
}

/** A few metrics worth a glance: test.* first, then val.*, then the rest. */
function metricsTable(version: IModelVersion): HTMLElement {
  const rank = (key: string): number =>
    key.startsWith('test.') ? 0 : key.startsWith('val.') ? 1 : 2;
  const keys = Object.keys(version.metrics)
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    .slice(0, KEY_METRICS);
  return h(
    'div',
    { class: 'jp-jupyreg-metrics' },
    ...keys.map(key =>
      h(
        'span',
        { class: 'jp-jupyreg-metric', title: key },
        h('span', { class: 'jp-jupyreg-metric-name' }, key),
        ' ',
        formatMetric(version.metrics[key])
      )
    )
  );
}

function formatMetric(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(3);
}

function lineageLine(version: IModelVersion): HTMLElement {
  const parts: string[] = [];
  if (version.git_commit) {
    parts.push(`git ${version.git_commit}${version.git_dirty ? ' (dirty)' : ''}`);
  } else {
    parts.push('no git');
  }
  parts.push(version.data ? `data ${version.data}` : 'no data hashes');
  parts.push(version.gpu ? `GPU ${version.gpu}` : 'CPU');
  return h('div', { class: 'jp-jupyreg-lineage', title: parts.join('\n') }, parts.join(' · '));
}
