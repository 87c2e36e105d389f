/** The small form that requests a promotion of one version: target stage and reason. */

import { IRegistryActions } from './actions';
import { h } from './elements';
import { IModelVersion, STAGES } from './types';

export class PromotionForm {
  readonly node: HTMLFormElement;

  constructor(
    name: string,
    version: IModelVersion,
    actions: IRegistryActions,
    onClose: () => void
  ) {
    // Every other stage is offered; the registry says which moves it allows.
    const stage = h(
      'select',
      { class: 'jp-mod-styled', 'aria-label': 'target stage' },
      ...STAGES.filter(s => s !== version.stage).map(s =>
        h('option', { value: s }, s)
      )
    );
    const preferred = version.stage === 'Staging' ? 'Production' : 'Staging';
    if (preferred !== version.stage) {
      stage.value = preferred;
    }
    const reason = h('input', {
      class: 'jp-mod-styled jp-jupyreg-reason',
      type: 'text',
      placeholder: 'Reason (required)',
      'aria-label': 'reason'
    });
    const submit = h(
      'button',
      { class: 'jp-Button jp-mod-styled jp-mod-accept', type: 'submit' },
      'Request'
    );
    const cancel = h(
      'button',
      { class: 'jp-Button jp-mod-styled jp-mod-reject', type: 'button' },
      'Cancel'
    );
    cancel.addEventListener('click', onClose);
    this.node = h(
      'form',
      { class: 'jp-jupyreg-promotion-form' },
      h('label', {}, 'To ', stage),
      reason,
      h('div', { class: 'jp-jupyreg-actions' }, submit, cancel)
    );
    this.node.addEventListener('submit', async event => {
      event.preventDefault();
      submit.disabled = true;
      const done = await actions.request(
        name,
        version.version,
        stage.value,
        reason.value
      );
      submit.disabled = false;
      if (done) {
        onClose();
      }
    });
  }
}
