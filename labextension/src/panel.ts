/** The "Model Registry" sidebar: approvals inbox and models, refreshed by a Poll (standby
 * while the page is hidden, backing off while the registry fails), after every action, when
 * the panel is shown, and when a notebook cell that ran %%register finishes (index.ts). */

import { refreshIcon } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';
import { ServerConnection } from '@jupyterlab/services';

import { IRegistryActions } from './actions';
import {
  decide,
  fileRequest,
  listModels,
  listPendingRequests,
  whoAmI
} from './api';
import { h } from './elements';
import { trans } from './i18n';
import { registryIcon } from './icon';
import { InboxView } from './inbox';
import { ModelsView } from './models';
import { Decision } from './types';

/** The default of the `refreshInterval` setting (schema/sidebar.json), in ms. */
export const REFRESH_MS = 10_000;
/** The longest wait between polls while the registry keeps failing. */
export const MAX_BACKOFF_MS = 5 * 60_000;

export class RegistryPanel extends Widget implements IRegistryActions {
  private readonly status: HTMLElement;
  private readonly user: HTMLElement;
  private readonly inbox: InboxView;
  private readonly models: ModelsView;
  private readonly poll: Poll;
  private refreshing: Promise<void> | null = null;
  private queued: Promise<void> | null = null;
  /** Bumped when a message is shown: a load begun after it clears it. */
  private messageEpoch = 0;
  /** Bumped when the user opens or changes a view: an action begun before it
   * reports nothing at the top any more. */
  private viewEpoch = 0;

  constructor(
    refreshMs: number = REFRESH_MS,
    private readonly cardOpener: (name: string, version: number) => void = () =>
      undefined
  ) {
    super();
    this.id = 'jupyreg-registry';
    this.addClass('jp-jupyreg-panel');
    this.title.icon = registryIcon;
    this.title.caption = trans.__('Model Registry');
    this.status = h('div', { class: 'jp-jupyreg-status', role: 'status' });
    this.user = h('span', { class: 'jp-jupyreg-user' });
    const refresh = h('button', {
      class:
        'jp-ToolbarButtonComponent jp-mod-minimal jp-Button jp-jupyreg-refresh',
      title: trans.__('Refresh'),
      'aria-label': trans.__('Refresh')
    });
    refresh.append(
      refreshIcon.element({
        tag: 'span',
        className: 'jp-ToolbarButtonComponent-icon'
      })
    );
    refresh.addEventListener('click', () => {
      this.viewChanged();
      void this.refresh();
    });
    this.inbox = new InboxView(this);
    this.models = new ModelsView(this);
    this.node.append(
      h(
        'header',
        { class: 'jp-jupyreg-header' },
        h('h2', {}, trans.__('Model Registry')),
        this.user,
        refresh
      ),
      this.status,
      this.inbox.node,
      this.models.node
    );
    void whoAmI()
      .then(user => (this.user.textContent = trans.__('as %1', user)))
      .catch(() => undefined);
    this.poll = new Poll({
      auto: true,
      factory: () => this.tick(),
      frequency: { interval: refreshMs, backoff: true, max: MAX_BACKOFF_MS },
      name: 'jupyreg:registry',
      // Standby while the browser tab is hidden; not while the sidebar is collapsed, as
      // the pending count on the sidebar's tab must stay current.
      standby: 'when-hidden'
    });
  }

  /** The `refreshInterval` setting changed. */
  set refreshMs(ms: number) {
    this.poll.frequency = { interval: ms, backoff: true, max: MAX_BACKOFF_MS };
  }

  dispose(): void {
    this.poll.dispose();
    super.dispose();
  }

  /** Reload inbox, models and expanded versions (one refresh at a time); never rejects. */
  refresh(): Promise<void> {
    return this.load().catch(() => undefined);
  }

  /** The user opened or changed a view: a message about an earlier one goes. */
  viewChanged(): void {
    this.viewEpoch += 1;
    this.showStatus('', false);
  }

  openCard(name: string, version: number): void {
    this.viewChanged();
    this.cardOpener(name, version);
  }

  async decide(
    requestId: string,
    decision: Decision,
    comment: string
  ): Promise<string | null> {
    return this.act(async () => {
      const request = await decide(requestId, decision, comment);
      return `${request.name} v${request.version} → ${request.to_stage}: ${trans.__(request.status)}`;
    });
  }

  async request(
    name: string,
    version: number,
    stage: string,
    reason: string
  ): Promise<string | null> {
    return this.act(async () => {
      const request = await fileRequest(name, version, stage, reason);
      return trans.__(
        'requested %1 v%2 → %3 (%4)',
        request.name,
        request.version,
        request.to_stage,
        request.id
      );
    });
  }

  protected onAfterShow(): void {
    void this.poll.refresh();
  }

  /** The action's refusal is returned for the view to show where it happened. Its
   * success is shown at the top once the panel shows its outcome, unless the user has
   * moved on meanwhile (the refresh can end after the next click). */
  private async act(action: () => Promise<string>): Promise<string | null> {
    const view = this.viewEpoch;
    let message: string;
    try {
      message = await action();
    } catch (error) {
      return describe(error);
    }
    await this.refresh();
    if (view === this.viewEpoch) {
      this.showStatus(message, false);
    }
    return null;
  }

  /** The Poll's tick: rejects when the registry failed, so that the Poll backs off. */
  private tick(): Promise<void> {
    return this.load();
  }

  /** One load at a time. A load asked for while one runs waits for it, then loads again:
   * the running one began before what the caller just changed (a request filed) and may
   * miss it. At most one such load is queued. */
  private load(): Promise<void> {
    if (this.refreshing) {
      this.queued ??= this.refreshing
        .catch(() => undefined)
        .then(() => {
          this.queued = null;
          return this.load();
        });
      return this.queued;
    }
    this.refreshing = this.loadOnce().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  private async loadOnce(): Promise<void> {
    const epoch = this.messageEpoch;
    try {
      const [requests, models] = await Promise.all([
        listPendingRequests(),
        listModels()
      ]);
      this.inbox.update(requests);
      this.models.update(models);
      this.showPending(requests.filter(r => !r.blocked).length);
      await this.models.refreshExpanded();
      if (epoch === this.messageEpoch) {
        this.showStatus('', false); // shown before this load began: stale now
      }
    } catch (error) {
      this.showStatus(describe(error), true);
      throw error;
    }
  }

  /** The count on the sidebar tab (style/base.css draws it from data-jupyreg-pending). */
  private showPending(count: number): void {
    this.title.dataset = {
      ...this.title.dataset,
      'jupyreg-pending': String(count)
    };
    this.title.caption =
      count > 0
        ? trans._n(
            'Model Registry (%1 pending approval)',
            'Model Registry (%1 pending approvals)',
            count
          )
        : trans.__('Model Registry');
  }

  private showStatus(message: string, isError: boolean): void {
    this.messageEpoch += 1;
    this.status.textContent = message;
    this.status.classList.toggle('jp-mod-error', isError && message !== '');
  }
}

/** An error in words for the GUI (the server words registry errors; see request.ts). */
function describe(error: unknown): string {
  if (error instanceof ServerConnection.NetworkError) {
    return trans.__('Cannot reach the Jupyter server; retrying.');
  }
  return (error as Error).message || trans.__('Something went wrong.');
}
