/**
 * One rule for numbers, the same as the notebook panels' (jupyreg/widgets/numbers.py):
 * 4 significant digits, shown right-aligned in tabular figures (style/base.css), one
 * metric per row; deltas against Production with their direction. No DOM, no Lab imports:
 * unit-tested by jest.
 */

export const SIGNIFICANT = 4;

const LOWER_IS_BETTER = ['loss', 'error', 'rmse', 'mae', 'mse', 'latency'];

export type Direction = 'better' | 'worse' | 'same';

export interface IDelta {
  value: number;
  baseline: number;
  difference: number;
  direction: Direction;
}

/** Losses, errors and latencies improve downwards (jupyreg.lifecycle.lower_is_better). */
export function lowerIsBetter(metric: string): boolean {
  const name = metric.toLowerCase();
  return LOWER_IS_BETTER.some(word => name.includes(word));
}

/** Python's `f"{value:.4g}"`: 0.92741 -> "0.9274", 1234567 -> "1.235e+06", 3 -> "3". */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) {
    return '—';
  }
  if (!Number.isFinite(value)) {
    return value > 0 ? 'inf' : '-inf';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e15) {
    return String(value);
  }
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  if (exponent < -4 || exponent >= SIGNIFICANT) {
    const [mantissa, power] = value.toExponential(SIGNIFICANT - 1).split('e');
    const exp = Number(power);
    const sign = exp < 0 ? '-' : '+';
    return `${trimZeros(mantissa)}e${sign}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return trimZeros(value.toPrecision(SIGNIFICANT));
}

/** Days as a person reads them: one decimal, through `formatNumber` ("3.1", "0"). */
export function formatDays(days: number | null | undefined): string {
  if (days === null || days === undefined || !Number.isFinite(days)) {
    return formatNumber(days);
  }
  return formatNumber(Math.round(days * 10) / 10);
}

/** A signed difference, 4 significant digits: "+0.0008603", "-0.01", "±0". */
export function formatDelta(difference: number): string {
  if (difference === 0) {
    return '±0';
  }
  const text = formatNumber(difference);
  return difference > 0 ? `+${text}` : text;
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

/** `value` against `baseline` for `metric`; null when either is not a number. */
export function metricDelta(
  metric: string,
  value: unknown,
  baseline: unknown
): IDelta | null {
  if (!isNumber(value) || !isNumber(baseline)) {
    return null;
  }
  const difference = value - baseline;
  let direction: Direction = 'same';
  if (difference !== 0) {
    const improved = lowerIsBetter(metric) ? difference < 0 : difference > 0;
    direction = improved ? 'better' : 'worse';
  }
  return { value, baseline, difference, direction };
}

/** Every metric both have, sorted by name, against `baseline`. */
export function metricDeltas(
  metrics: Record<string, number>,
  baseline: Record<string, number>
): Record<string, IDelta> {
  const deltas: Record<string, IDelta> = {};
  for (const metric of Object.keys(metrics).sort()) {
    if (metric in baseline) {
      const delta = metricDelta(metric, metrics[metric], baseline[metric]);
      if (delta) {
        deltas[metric] = delta;
      }
    }
  }
  return deltas;
}

/** The arrow shown next to a delta. */
export function arrow(direction: Direction): string {
  return direction === 'better' ? '▲' : direction === 'worse' ? '▼' : '=';
}

/** Metrics worth a glance first: test.* then val.* then the rest, by name. */
export function orderMetrics(keys: string[]): string[] {
  const rank = (key: string): number =>
    key.startsWith('test.') ? 0 : key.startsWith('val.') ? 1 : 2;
  return [...keys].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && !Number.isNaN(value);
}
