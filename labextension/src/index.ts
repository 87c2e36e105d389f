/** The jupyreg JupyterLab extension: the "Model Registry" left sidebar. */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { NotebookActions } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator } from '@jupyterlab/translation';

import { openModelCard } from './card';
import { setTranslator, trans } from './i18n';
import { RegistryPanel, REFRESH_MS } from './panel';
import { setRegistryUri } from './request';

const PLUGIN_ID = 'jupyreg:sidebar';

/** A cell that registers a model: `%%register NAME ...` or `%register NAME ...`. */
export const REGISTER_CELL = /^\s*%{1,2}register(\s|$)/;

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'Model Registry sidebar: models, versions and an approvals inbox.',
  autoStart: true,
  optional: [
    ILayoutRestorer,
    ISettingRegistry,
    ITranslator,
    IRenderMimeRegistry
  ],
  activate: async (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    setTranslator(translator);
    let settings: ISettingRegistry.ISettings | null = null;
    if (settingRegistry) {
      try {
        settings = await settingRegistry.load(PLUGIN_ID);
      } catch (error) {
        console.warn('jupyreg: settings not loaded', error);
      }
    }
    const intervalMs = (): number =>
      Math.max(
        2,
        Number(settings?.get('refreshInterval').composite ?? REFRESH_MS / 1000)
      ) * 1000;
    setRegistryUri(String(settings?.get('registryUri').composite ?? ''));

    const cards = new Map<string, MainAreaWidget>();
    const panel = new RegistryPanel(intervalMs(), (name, version) => {
      openModelCard(app, rendermime, name, version, cards);
    });
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, panel.id);
    settings?.changed.connect(() => {
      setRegistryUri(String(settings?.get('registryUri').composite ?? ''));
      panel.refreshMs = intervalMs();
      void panel.refresh();
    });

    // A %%register cell that finished: show the new version now, not at the next poll.
    NotebookActions.executed.connect((_, { cell, success }) => {
      if (
        success &&
        cell.model.type === 'code' &&
        REGISTER_CELL.test(cell.model.sharedModel.getSource())
      ) {
        void panel.refresh();
      }
    });

    app.commands.addCommand('jupyreg:open', {
      label: trans.__('Open the Model Registry'),
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

export default plugin;
