/** The pending-approvals inbox: one card per request, Approve / Reject with a comment. */

import { IRegistryActions } from './actions';
import { h, shortTime } from './elements';
import { Decision, IPromotionRequest } from './types';

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
      h('h3', { class: 'jp-jupyreg-section-title' }, 'Pending approvals ', this.badge),
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
    for (const request of requests) {
      let card = this.cards.get(request.id);
      if (!card) {
        card = new RequestCard(request, this.actions);
        this.cards.set(request.id, card);
      }
      this.list.append(card.node); // keeps server order
    }
    this.badge.textContent = String(requests.length);
    this.badge.dataset.count = String(requests.length);
    if (requests.length === 0) {
      this.list.replaceChildren(
        h('div', { class: 'jp-jupyreg-empty' }, 'No pending requests.')
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

  constructor(
    request: IPromotionRequest,
    private readonly actions: IRegistryActions
  ) {
    this.comment = h('input', {
      class: 'jp-mod-styled jp-jupyreg-comment',
      type: 'text',
      placeholder: 'Comment (optional)',
      'aria-label': `comment on request ${request.id}`
    });
    this.buttons = [
      this.button(request, 'approve', 'Approve', 'jp-mod-accept'),
      this.button(request, 'reject', 'Reject', 'jp-mod-warn')
    ];
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
      this.comment,
      h('div', { class: 'jp-jupyreg-actions' }, ...this.buttons)
    );
  }

  private button(
    request: IPromotionRequest,
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
      this.buttons.forEach(b => (b.disabled = true));
      const done = await this.actions.decide(
        request.id,
        decision,
        this.comment.value
      );
      if (!done) {
        this.buttons.forEach(b => (b.disabled = false));
      }
    });
    return button;
  }
}
