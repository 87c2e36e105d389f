/** A tiny DOM builder for the sidebar's views, and the pieces they share. */

import { arrow, formatDays, formatDelta, formatNumber, IDelta } from './format';
import { trans } from './i18n';
import { IStaleness, Reproduced } from './types';

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

/**
 * Make `nodes` the first children of `parent`, in this order, moving only those out of
 * place: moving a node takes the focus from a field being typed in and drops a click
 * whose button is down, so a refresh that changes nothing must move nothing.
 */
export function placeInOrder(parent: HTMLElement, nodes: HTMLElement[]): void {
  let next: ChildNode | null = parent.firstChild;
  for (const node of nodes) {
    if (node === next) {
      next = node.nextSibling;
    } else {
      parent.insertBefore(node, next);
    }
  }
}

/** A stage badge, coloured per stage by style/base.css. */
export function stageBadge(stage: string): HTMLSpanElement {
  return h(
    'span',
    {
      class: 'jp-jupyreg-stage-badge',
      'data-stage': stage,
      title: trans.__('stage: %1', stage)
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

/** A number cell: 4 significant digits, right-aligned, tabular figures (base.css). */
export function numberCell(
  value: number | null | undefined
): HTMLTableCellElement {
  return h(
    'td',
    {
      class: 'jp-jupyreg-num',
      title: value === null || value === undefined ? '' : String(value)
    },
    formatNumber(value)
  );
}

/** A delta cell: signed, with its direction's arrow and colour; the baseline's value in
 * its title. */
export function deltaCell(
  delta: IDelta | undefined,
  baselineLabel = 'Production'
): HTMLTableCellElement {
  if (!delta) {
    return h('td', { class: 'jp-jupyreg-num' }, '—');
  }
  return h(
    'td',
    {
      class: 'jp-jupyreg-num jp-jupyreg-delta',
      'data-direction': delta.direction,
      title: trans.__(
        '%1: %2 (%3)',
        baselineLabel,
        formatNumber(delta.baseline),
        trans.__(delta.direction)
      )
    },
    `${formatDelta(delta.difference)} ${arrow(delta.direction)}`
  );
}

/**
 * One metric per row: name, then a number per column, then (when `delta` names the
 * baseline, e.g. "v1") the delta against it.
 */
export function metricsTable(
  columns: string[],
  rows: {
    metric: string;
    values: (number | null | undefined)[];
    delta?: IDelta;
  }[],
  delta: string | null
): HTMLTableElement {
  const head = h(
    'tr',
    {},
    h('th', { scope: 'col' }, trans.__('metric')),
    ...columns.map(c => h('th', { scope: 'col', class: 'jp-jupyreg-num' }, c)),
    delta !== null &&
      h(
        'th',
        { scope: 'col', class: 'jp-jupyreg-num' },
        trans.__('Δ vs %1', delta)
      )
  );
  return h(
    'table',
    { class: 'jp-jupyreg-metrics' },
    h('thead', {}, head),
    h(
      'tbody',
      {},
      ...rows.map(row =>
        h(
          'tr',
          { 'data-metric': row.metric },
          h(
            'th',
            {
              scope: 'row',
              class: 'jp-jupyreg-metric-name',
              title: row.metric
            },
            row.metric
          ),
          ...row.values.map(numberCell),
          delta !== null &&
            deltaCell(row.delta, trans.__('Production %1', delta))
        )
      )
    )
  );
}

/** An inline error under a form or card; empty (hidden) until set. */
export function inlineError(): HTMLDivElement {
  return h('div', { class: 'jp-jupyreg-inline-error', role: 'alert' });
}

/** "stale" on a model whose Production is behind the repository's code or data; the
 * measurement (and its warnings) in the title. Nothing when up to date or unknown. */
export function staleBadge(
  staleness: IStaleness | null
): HTMLSpanElement | null {
  if (!staleness?.stale) {
    return null;
  }
  return h(
    'span',
    {
      class: 'jp-jupyreg-stale-badge',
      title: stalenessTooltip(staleness)
    },
    trans.__('stale')
  );
}

/** One line for the Production card: stale (code, data, age) or up to date. */
export function stalenessLine(staleness: IStaleness): HTMLDivElement {
  const state = staleness.stale === null ? 'unknown' : String(staleness.stale);
  let text: string;
  if (staleness.stale === null) {
    text = trans.__('Staleness unknown: %1', staleness.summary);
  } else {
    const n = staleness.commits_behind;
    const parts = [
      n === null
        ? trans.__('code changes unknown')
        : trans._n(
            '%1 commit touching code since training',
            '%1 commits touching code since training',
            n
          ),
      staleness.changed_data.length > 0
        ? trans.__('data changed: %1', staleness.changed_data.join(', '))
        : trans.__('data unchanged'),
      trans.__('%1 days in Production', formatDays(staleness.age_days))
    ];
    text = staleness.stale
      ? trans.__('May be stale: %1', parts.join('; '))
      : trans.__('Up to date: %1', parts.join('; '));
  }
  return h(
    'div',
    {
      class: 'jp-jupyreg-staleness',
      'data-stale': state,
      title: stalenessTooltip(staleness)
    },
    text
  );
}

function stalenessTooltip(staleness: IStaleness): string {
  return [staleness.summary, ...staleness.warnings].join('\n');
}

/** A version's latest reproduction: "✓ reproduced" / "✗ reproduction failed". */
export function reproducedBadge(
  reproduced: Reproduced | undefined
): HTMLSpanElement | null {
  if (reproduced !== 'passed' && reproduced !== 'failed') {
    return null;
  }
  const passed = reproduced === 'passed';
  return h(
    'span',
    {
      class: 'jp-jupyreg-reproduced-badge',
      'data-reproduced': reproduced,
      title: passed
        ? trans.__('its latest reproduction matched the recorded metrics')
        : trans.__('its latest reproduction did not match the recorded metrics')
    },
    passed
      ? `✓ ${trans.__('reproduced')}`
      : `✗ ${trans.__('reproduction failed')}`
  );
}
