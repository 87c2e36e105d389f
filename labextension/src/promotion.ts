/** The small form that requests a move of one version: target stage and reason. Only the
 * moves the lifecycle allows from the version's stage are offered; Request stays disabled
 * until a reason is typed; a refusal is shown in the form, not at the top of the panel. */

import { IRegistryActions } from './actions';
import { h, inlineError } from './elements';
import { trans } from './i18n';
import { IModelVersion } from './types';

/** The lifecycle's moves (jupyreg.lifecycle.ALLOWED_MOVES), for a server that does not
 * send `targets`. */
const ALLOWED_MOVES: Record<string, string[]> = {
  None: ['Staging', 'Archived'],
  Staging: ['Production', 'Archived'],
  Production: ['Staging', 'Archived'],
  Archived: ['Staging']
};

export function allowedTargets(version: IModelVersion): string[] {
  const pending = new Set(
    (version.pending_requests ?? []).map(r => r.to_stage)
  );
  const targets = version.targets ?? ALLOWED_MOVES[version.stage] ?? [];
  return targets.filter(t => !pending.has(t));
}

/** Forward first: Staging -> Production, None -> Staging; Archived never by default. */
export function defaultTarget(targets: string[]): string | undefined {
  return targets.find(t => t !== 'Archived') ?? targets[0];
}

export class PromotionForm {
  readonly node: HTMLFormElement;

  constructor(
    name: string,
    version: IModelVersion,
    actions: IRegistryActions,
    onClose: () => void
  ) {
    const targets = allowedTargets(version);
    const stage = h(
      'select',
      { class: 'jp-mod-styled', 'aria-label': trans.__('target stage') },
      ...targets.map(s => h('option', { value: s }, s))
    );
    stage.value = defaultTarget(targets) ?? '';
    const reason = h('input', {
      class: 'jp-mod-styled jp-jupyreg-reason',
      type: 'text',
      placeholder: trans.__('Reason (required)'),
      'aria-label': trans.__('reason'),
      required: 'true'
    });
    const submit = h(
      'button',
      {
        class: 'jp-Button jp-mod-styled jp-mod-accept',
        type: 'submit',
        title: trans.__('Say why first')
      },
      trans.__('Request')
    );
    const cancel = h(
      'button',
      { class: 'jp-Button jp-mod-styled jp-mod-reject', type: 'button' },
      trans.__('Cancel')
    );
    const error = inlineError();
    const sync = (): void => {
      const missing = reason.value.trim().length === 0;
      submit.disabled = missing || !stage.value;
      submit.title = missing ? trans.__('Say why first') : '';
    };
    reason.addEventListener('input', () => {
      error.textContent = '';
      sync();
    });
    sync();
    cancel.addEventListener('click', onClose);
    this.node = h(
      'form',
      { class: 'jp-jupyreg-promotion-form' },
      h('label', {}, trans.__('To'), ' ', stage),
      reason,
      error,
      h('div', { class: 'jp-jupyreg-actions' }, submit, cancel)
    );
    this.node.addEventListener('submit', async event => {
      event.preventDefault();
      if (!reason.value.trim()) {
        error.textContent = trans.__('Give a reason for this move.');
        reason.focus();
        return;
      }
      submit.disabled = true;
      const refused = await actions.request(
        name,
        version.version,
        stage.value,
        reason.value.trim()
      );
      sync();
      if (refused === null) {
        onClose();
      } else {
        error.textContent = refused;
      }
    });
  }
}
