/** The registered models; a model expands into its versions. */

import { listVersions } from './api';
import { IRegistryActions } from './actions';
import { h } from './elements';
import { IRegisteredModel } from './types';
import { VersionsView } from './versions';

export class ModelsView {
  readonly node: HTMLElement;
  private readonly list: HTMLElement;
  private readonly rows = new Map<string, ModelRow>();

  constructor(private readonly actions: IRegistryActions) {
    this.list = h('div', { class: 'jp-jupyreg-model-list' });
    this.node = h(
      'section',
      { class: 'jp-jupyreg-models' },
      h('h3', { class: 'jp-jupyreg-section-title' }, 'Models'),
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
    for (const model of models) {
      let row = this.rows.get(model.name);
      if (!row) {
        row = new ModelRow(model.name, this.actions);
        this.rows.set(model.name, row);
      }
      row.update(model);
      this.list.append(row.node);
    }
    if (models.length === 0) {
      this.list.replaceChildren(
        h('div', { class: 'jp-jupyreg-empty' }, 'No registered models yet: use %%register in a notebook.')
      );
    } else {
      this.list.querySelector(':scope > .jp-jupyreg-empty')?.remove();
    }
  }

  /** Reload the versions of every expanded model. */
  async refreshExpanded(): Promise<void> {
    await Promise.all([...this.rows.values()].map(row => row.refresh()));
  }
}

class ModelRow {
  readonly node: HTMLElement;
  private readonly header: HTMLButtonElement;
  private readonly versions: VersionsView;
  private expanded = false;

  constructor(
    private readonly name: string,
    actions: IRegistryActions
  ) {
    this.header = h('button', {
      class: 'jp-jupyreg-model-header',
      'aria-expanded': 'false'
    });
    this.header.addEventListener('click', () => this.toggle());
    this.versions = new VersionsView(name, actions);
    this.versions.node.hidden = true;
    this.node = h(
      'div',
      { class: 'jp-jupyreg-model', 'data-model': name },
      this.header,
      this.versions.node
    );
  }

  update(model: IRegisteredModel): void {
    const holders = [
      model.production !== null ? `Production v${model.production}` : '',
      model.staging !== null ? `Staging v${model.staging}` : ''
    ].filter(Boolean);
    this.header.replaceChildren(
      h('span', { class: 'jp-jupyreg-caret' }),
      h('span', { class: 'jp-jupyreg-model-name' }, model.name),
      h(
        'span',
        { class: 'jp-jupyreg-model-meta' },
        [`v${model.latest_version ?? '–'}`, ...holders].join(' · ')
      )
    );
    this.header.title = model.description || model.name;
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
  }

  private async toggle(): Promise<void> {
    this.expanded = !this.expanded;
    this.header.setAttribute('aria-expanded', String(this.expanded));
    this.node.classList.toggle('jp-mod-expanded', this.expanded);
    this.versions.node.hidden = !this.expanded;
    await this.refresh();
  }
}
