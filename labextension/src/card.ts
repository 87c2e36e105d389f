/** A version's model card in the main area: its Markdown body rendered by Lab's own
 * `text/markdown` renderer (sanitised, themed), its YAML front matter folded above. */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { getModelCard } from './api';
import { h } from './elements';
import { trans } from './i18n';

const MARKDOWN = 'text/markdown';

/** The widget id of a version's card: opening it again shows the same tab. */
export function cardId(name: string, version: number): string {
  return `jupyreg-card-${encodeURIComponent(name)}-${version}`;
}

export class ModelCardWidget extends Widget {
  constructor(
    private readonly name: string,
    private readonly version: number,
    private readonly rendermime: IRenderMimeRegistry | null
  ) {
    super();
    this.addClass('jp-jupyreg-card');
    this.node.append(
      h('div', { class: 'jp-jupyreg-empty' }, trans.__('Loading the card…'))
    );
  }

  /** Fetch and render; a refusal is shown in the tab, never thrown. */
  async load(): Promise<void> {
    let card;
    try {
      card = await getModelCard(this.name, this.version);
    } catch (error) {
      this.node.replaceChildren(
        h('div', { class: 'jp-jupyreg-inline-error' }, (error as Error).message)
      );
      return;
    }
    const meta = h(
      'details',
      { class: 'jp-jupyreg-card-meta' },
      h('summary', {}, trans.__('Front matter (YAML)')),
      h('pre', {}, card.front_matter)
    );
    const body = h('div', { class: 'jp-jupyreg-card-body' });
    this.node.replaceChildren(...(card.front_matter ? [meta] : []), body);
    const factory = this.rendermime?.getFactory(MARKDOWN);
    if (!this.rendermime || !factory) {
      body.append(h('pre', {}, card.body));
      return;
    }
    const renderer = this.rendermime.createRenderer(MARKDOWN);
    const model = this.rendermime.createModel({
      data: { [MARKDOWN]: card.body },
      trusted: false
    });
    await renderer.renderModel(model);
    body.append(renderer.node);
  }
}

/** Open (or show again) the card of `version` of `name` as a main-area tab. */
export function openModelCard(
  app: JupyterFrontEnd,
  rendermime: IRenderMimeRegistry | null,
  name: string,
  version: number,
  open: Map<string, MainAreaWidget>
): MainAreaWidget {
  const id = cardId(name, version);
  const existing = open.get(id);
  if (existing && !existing.isDisposed) {
    app.shell.activateById(id);
    return existing;
  }
  const content = new ModelCardWidget(name, version, rendermime);
  const widget = new MainAreaWidget({ content });
  widget.id = id;
  widget.title.label = trans.__('Model card: %1 v%2', name, version);
  widget.title.caption = widget.title.label;
  widget.title.closable = true;
  open.set(id, widget);
  widget.disposed.connect(() => open.delete(id));
  app.shell.add(widget, 'main');
  app.shell.activateById(id);
  void content.load();
  return widget;
}
