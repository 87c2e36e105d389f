import { LabIcon } from '@jupyterlab/ui-components';

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M4 4h16v4H4zm0 6h16v4H4zm0 6h10v4H4zm13 .5 2 2 3.5-3.5 1 1L19 20.5l-3-3z"/>
</svg>`;

export const registryIcon = new LabIcon({
  name: 'jupyreg:registry',
  svgstr: svg
});
