/** A tiny DOM builder for the sidebar's views. */

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value !== undefined) {
      element.setAttribute(key, value);
    }
  }
  for (const child of children) {
    if (child) {
      element.append(child);
    }
  }
  return element;
}

/** A stage badge, coloured per stage by style/base.css. */
export function stageBadge(stage: string): HTMLSpanElement {
  return h(
    'span',
    {
      class: 'jp-jupyreg-stage-badge',
      'data-stage': stage,
      title: `stage: ${stage}`
    },
    stage
  );
}

export function shortTime(iso: string | null): string {
  if (!iso) {
    return '';
  }
  const moment = new Date(iso);
  return isNaN(moment.getTime()) ? iso : moment.toLocaleString();
}
