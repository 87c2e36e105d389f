/** The versions of one model: stage badge, aliases, pending requests, key metrics (one
 * per row), git / data / GPU summary. The stage holders, versions with a pending request
 * and the newest few are shown; older ones fold behind "Show N older versions". */

import { IRegistryActions } from './actions';
import {
  h,
  metricsTable,
  placeInOrder,
  reproducedBadge,
  shortTime,
  stageBadge,
  stalenessLine
} from './elements';
import { orderMetrics } from './format';
import { trans } from './i18n';
import { allowedTargets, PromotionForm } from './promotion';
import { IModelVersion, IStaleness } from './types';

const KEY_METRICS = 4;
/** Versions shown before "Show N older versions" (stage holders and pending always are). */
export const NEWEST_SHOWN = 2;

export class VersionsView {
  readonly node: HTMLElement;
  private readonly list: HTMLElement;
  private readonly more: HTMLButtonElement;
  private readonly cards = new Map<number, VersionCard>();
  private showAll = false;
  private staleness: IStaleness | null = null;

  constructor(
    private readonly name: string,
    private readonly actions: IRegistryActions
  ) {
    this.list = h('div', { class: 'jp-jupyreg-version-list' });
    this.more = h('button', {
      class: 'jp-Button jp-mod-minimal jp-jupyreg-more',
      type: 'button'
    });
    this.more.addEventListener('click', () => {
      this.showAll = !this.showAll;
      this.actions.viewChanged();
      this.fold();
    });
    this.node = h(
      'div',
      { class: 'jp-jupyreg-versions' },
      this.list,
      this.more
    );
  }

  /** Production's staleness (from the model listing), shown on the Production card. */
  setStaleness(staleness: IStaleness | null): void {
    this.staleness = staleness;
    for (const card of this.cards.values()) {
      card.setStaleness(this.stalenessOf(card.versionNumber));
    }
  }

  private stalenessOf(version: number): IStaleness | null {
    return this.staleness?.version === version ? this.staleness : null;
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
    const newestFirst = [...versions].sort((a, b) => b.version - a.version);
    const cards = newestFirst.map(version => {
      let card = this.cards.get(version.version);
      if (!card) {
        card = new VersionCard(this.name, this.actions);
        this.cards.set(version.version, card);
      }
      card.update(version, this.stalenessOf(version.version));
      return card.node;
    });
    placeInOrder(this.list, cards);
    if (versions.length === 0) {
      this.list.replaceChildren(
        h('div', { class: 'jp-jupyreg-empty' }, trans.__('No versions.'))
      );
    } else {
      this.list.querySelector(':scope > .jp-jupyreg-empty')?.remove();
    }
    this.fold();
  }

  showError(message: string): void {
    this.list.replaceChildren(h('div', { class: 'jp-jupyreg-error' }, message));
    this.cards.clear();
    this.more.hidden = true;
  }

  /** Hide older versions that hold no stage, have no pending request and no open form. */
  private fold(): void {
    const cards = [...this.cards.values()].sort(
      (a, b) => b.versionNumber - a.versionNumber
    );
    let folded = 0;
    cards.forEach((card, index) => {
      const keep = index < NEWEST_SHOWN || card.important;
      card.node.hidden = !keep && !this.showAll;
      if (!keep) {
        folded += 1;
      }
    });
    this.more.hidden = folded === 0;
    this.more.textContent = this.showAll
      ? trans.__('Hide older versions')
      : trans._n('Show %1 older version', 'Show %1 older versions', folded);
  }
}

class VersionCard {
  readonly node: HTMLElement;
  private readonly summary: HTMLElement;
  private readonly formSlot: HTMLElement;
  private readonly requestButton: HTMLButtonElement;
  private readonly cardButton: HTMLButtonElement;
  private readonly stalenessSlot: HTMLElement;
  private version: IModelVersion | null = null;
  private shown = '';

  constructor(
    private readonly name: string,
    private readonly actions: IRegistryActions
  ) {
    this.summary = h('div', { class: 'jp-jupyreg-version-summary' });
    this.formSlot = h('div', { class: 'jp-jupyreg-form-slot' });
    this.requestButton = h('button', {
      class: 'jp-Button jp-mod-styled jp-jupyreg-request-button'
    });
    this.requestButton.addEventListener('click', () => this.openForm());
    this.cardButton = h(
      'button',
      {
        class: 'jp-Button jp-mod-styled jp-mod-minimal jp-jupyreg-card-button',
        type: 'button'
      },
      trans.__('Model card')
    );
    this.cardButton.addEventListener('click', () => {
      if (this.version) {
        this.actions.openCard(this.name, this.version.version);
      }
    });
    this.stalenessSlot = h('div', { class: 'jp-jupyreg-staleness-slot' });
    this.node = h(
      'div',
      { class: 'jp-jupyreg-version' },
      this.summary,
      this.stalenessSlot,
      h(
        'div',
        { class: 'jp-jupyreg-actions' },
        this.requestButton,
        this.cardButton
      ),
      this.formSlot
    );
  }

  get versionNumber(): number {
    return this.version?.version ?? 0;
  }

  /** Shown even when older: a stage holder, a pending request, an open form. */
  get important(): boolean {
    const v = this.version;
    return (
      !!v &&
      (v.stage === 'Production' ||
        v.stage === 'Staging' ||
        (v.pending_requests ?? []).length > 0 ||
        this.formSlot.firstChild !== null)
    );
  }

  /** The staleness line under a Production card; none for other versions. */
  setStaleness(staleness: IStaleness | null): void {
    this.stalenessSlot.replaceChildren(
      ...(staleness && this.version?.stage === 'Production'
        ? [stalenessLine(staleness)]
        : [])
    );
  }

  update(version: IModelVersion, staleness: IStaleness | null = null): void {
    // A poll that brings nothing new leaves the card's DOM alone (selections, hovers).
    const shown = JSON.stringify([version, staleness]);
    if (shown === this.shown) {
      return;
    }
    this.shown = shown;
    this.version = version;
    this.node.dataset.version = String(version.version);
    this.node.dataset.stage = version.stage;
    const pending = version.pending_requests ?? [];
    const title = h(
      'div',
      { class: 'jp-jupyreg-version-title' },
      h('strong', {}, `v${version.version}`),
      stageBadge(version.stage),
      reproducedBadge(version.reproduced),
      ...version.aliases.map(a =>
        h('span', { class: 'jp-jupyreg-alias' }, `@${a}`)
      ),
      ...pending.map(p =>
        h(
          'span',
          {
            class: 'jp-jupyreg-pending-badge',
            'data-request-id': p.id,
            title: trans.__(
              'request %1 by %2 awaits approval',
              p.id,
              p.requested_by
            )
          },
          trans.__('pending → %1', p.to_stage)
        )
      )
    );
    const meta = h(
      'div',
      { class: 'jp-jupyreg-version-meta' },
      [version.author, shortTime(version.created)].filter(Boolean).join(', ')
    );
    const keys = orderMetrics(Object.keys(version.metrics)).slice(
      0,
      KEY_METRICS
    );
    this.summary.replaceChildren(
      title,
      meta,
      keys.length > 0
        ? metricsTable(
            [`v${version.version}`],
            keys.map(metric => ({ metric, values: [version.metrics[metric]] })),
            null
          )
        : h(
            'div',
            { class: 'jp-jupyreg-empty' },
            trans.__('no metrics recorded')
          ),
      lineageLine(version)
    );
    this.setStaleness(staleness);
    const targets = allowedTargets(version);
    this.requestButton.hidden = targets.length === 0;
    this.requestButton.textContent =
      version.stage === 'Archived'
        ? trans.__('Request restore to Staging…')
        : trans.__('Request promotion…');
  }

  private openForm(): void {
    if (!this.version || this.formSlot.firstChild) {
      return;
    }
    this.actions.viewChanged();
    const close = (): void => {
      this.formSlot.replaceChildren();
      this.requestButton.disabled = false;
    };
    this.requestButton.disabled = true;
    const form = new PromotionForm(
      this.name,
      this.version,
      this.actions,
      close
    );
    this.formSlot.replaceChildren(form.node);
    form.node.querySelector('input')?.focus();
  }
}

function lineageLine(version: IModelVersion): HTMLElement {
  const parts: string[] = [];
  if (version.git_commit) {
    parts.push(
      `git ${version.git_commit}${version.git_dirty ? trans.__(' (dirty)') : ''}`
    );
  } else {
    parts.push(trans.__('no git'));
  }
  parts.push(
    version.data
      ? trans.__('data %1', version.data)
      : trans.__('no data hashes')
  );
  parts.push(version.gpu ? `GPU ${version.gpu}` : 'CPU');
  return h(
    'div',
    { class: 'jp-jupyreg-lineage', title: parts.join('\n') },
    parts.join(' · ')
  );
}
