/** The "Model Registry" sidebar: approvals inbox and models, refreshed on a timer and
 * after every action. */

import { Widget } from '@lumino/widgets';

import { IRegistryActions } from './actions';
import {
  decide,
  fileRequest,
  listModels,
  listPendingRequests,
  whoAmI
} from './api';
import { h } from './elements';
import { registryIcon } from './icon';
import { InboxView } from './inbox';
import { ModelsView } from './models';
import { Decision } from './types';

export const REFRESH_MS = 10_000;

export class RegistryPanel extends Widget implements IRegistryActions {
  private readonly status: HTMLElement;
  private readonly user: HTMLElement;
  private readonly inbox: InboxView;
  private readonly models: ModelsView;
  private timer: number | undefined;
  private refreshing: Promise<void> | null = null;

  constructor() {
    super();
    this.id = 'jupyreg-registry';
    this.addClass('jp-jupyreg-panel');
    this.title.icon = registryIcon;
    this.title.caption = 'Model Registry';
    this.status = h('div', { class: 'jp-jupyreg-status', role: 'status' });
    this.user = h('span', { class: 'jp-jupyreg-user' });
    const refresh = h(
      'button',
      { class: 'jp-Button jp-mod-minimal jp-jupyreg-refresh', title: 'Refresh' },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this.inbox = new InboxView(this);
    this.models = new ModelsView(this);
    this.node.append(
      h(
        'header',
        { class: 'jp-jupyreg-header' },
        h('h2', {}, 'Model Registry'),
        this.user,
        refresh
      ),
      this.status,
      this.inbox.node,
      this.models.node
    );
    void whoAmI()
      .then(user => (this.user.textContent = `as ${user}`))
      .catch(() => undefined);
    void this.refresh();
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
  }

  dispose(): void {
    window.clearInterval(this.timer);
    super.dispose();
  }

  /** Reload inbox, models and expanded versions (one refresh at a time). */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.load().finally(() => (this.refreshing = null));
    }
    return this.refreshing;
  }

  async decide(
    requestId: string,
    decision: Decision,
    comment: string
  ): Promise<boolean> {
    return this.act(async () => {
      const request = await decide(requestId, decision, comment);
      return `${request.name} v${request.version} → ${request.to_stage}: ${request.status}`;
    });
  }

  async request(
    name: string,
    version: number,
    stage: string,
    reason: string
  ): Promise<boolean> {
    return this.act(async () => {
      const request = await fileRequest(name, version, stage, reason);
      return `requested ${request.name} v${request.version} → ${request.to_stage} (${request.id})`;
    });
  }

  private async act(action: () => Promise<string>): Promise<boolean> {
    try {
      const message = await action();
      await this.refresh();
      this.showStatus(message, false);
      return true;
    } catch (error) {
      this.showStatus((error as Error).message, true);
      return false;
    }
  }

  private async load(): Promise<void> {
    try {
      const [requests, models] = await Promise.all([
        listPendingRequests(),
        listModels()
      ]);
      this.inbox.update(requests);
      this.models.update(models);
      this.showPending(requests.length);
      await this.models.refreshExpanded();
      if (this.status.classList.contains('jp-mod-unreachable')) {
        this.showStatus('', false);
      }
    } catch (error) {
      this.showStatus((error as Error).message, true);
      this.status.classList.add('jp-mod-unreachable');
    }
  }

  /** The count on the sidebar tab (style/base.css draws it from data-jupyreg-pending). */
  private showPending(count: number): void {
    this.title.dataset = { ...this.title.dataset, 'jupyreg-pending': String(count) };
    this.title.caption =
      count > 0 ? `Model Registry (${count} pending approvals)` : 'Model Registry';
  }

  private showStatus(message: string, isError: boolean): void {
    this.status.textContent = message;
    this.status.classList.toggle('jp-mod-error', isError);
    this.status.classList.remove('jp-mod-unreachable');
  }
}
