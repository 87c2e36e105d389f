/** The jupyreg JupyterLab extension: the "Model Registry" left sidebar. */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';

import { RegistryPanel } from './panel';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyreg:sidebar',
  description: 'Model Registry sidebar: models, versions and an approvals inbox.',
  autoStart: true,
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null) => {
    const panel = new RegistryPanel();
    app.shell.add(panel, 'left', { rank: 650 });
    restorer?.add(panel, panel.id);
    app.commands.addCommand('jupyreg:open', {
      label: 'Open the Model Registry',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

export default plugin;
