import {
  formatDays,
  formatDelta,
  formatNumber,
  lowerIsBetter,
  metricDelta,
  metricDeltas,
  orderMetrics
} from '../format';

describe('formatNumber', () => {
  it('keeps 4 significant digits, so close versions stay distinguishable', () => {
    expect(formatNumber(0.92741)).toBe('0.9274');
    expect(formatNumber(0.92655)).toBe('0.9265'); // 0.92654999… in binary, as in Python
    expect(formatNumber(0.92741)).not.toBe(formatNumber(0.92655));
  });

  it('writes numbers the way the Python panels do ({:.4g})', () => {
    expect(formatNumber(0.5)).toBe('0.5');
    expect(formatNumber(12.3456)).toBe('12.35');
    expect(formatNumber(1234.56)).toBe('1235');
    expect(formatNumber(12345.6)).toBe('1.235e+04');
    expect(formatNumber(0.000123456)).toBe('0.0001235');
    expect(formatNumber(0.0000123456)).toBe('1.235e-05');
    expect(formatNumber(-0.92741)).toBe('-0.9274');
    expect(formatNumber(42)).toBe('42');
  });

  it('says so for what is not a number', () => {
    expect(formatNumber(NaN)).toBe('—');
    expect(formatNumber(null)).toBe('—');
    expect(formatNumber(Infinity)).toBe('inf');
  });
});

describe('formatDelta', () => {
  it('signs differences', () => {
    expect(formatDelta(0.00086)).toBe('+0.00086');
    expect(formatDelta(-0.0123456)).toBe('-0.01235');
    expect(formatDelta(0)).toBe('±0');
  });
});

describe('metricDelta', () => {
  it('is better when a score goes up', () => {
    const delta = metricDelta('val.auc', 0.92741, 0.92655)!;
    expect(delta.difference).toBeCloseTo(0.00086);
    expect(delta.direction).toBe('better');
    expect(metricDelta('val.auc', 0.9, 0.92)!.direction).toBe('worse');
  });

  it('is better when a loss, error or latency goes down', () => {
    expect(lowerIsBetter('val.log_loss')).toBe(true);
    expect(lowerIsBetter('test.RMSE')).toBe(true);
    expect(metricDelta('val.loss', 0.4, 0.5)!.direction).toBe('better');
    expect(metricDelta('latency_ms', 12, 10)!.direction).toBe('worse');
  });

  it('is the same for equal values and null without two numbers', () => {
    expect(metricDelta('test.auc', 0.79, 0.79)!.direction).toBe('same');
    expect(metricDelta('test.auc', 0.79, undefined)).toBeNull();
    expect(metricDelta('test.auc', 'x', 0.79)).toBeNull();
  });
});

describe('metricDeltas', () => {
  it('covers the metrics both versions have, by name', () => {
    const deltas = metricDeltas(
      { 'val.auc': 0.81, 'test.auc': 0.79, 'val.loss': 0.3 },
      { 'val.auc': 0.8, 'test.auc': 0.79 }
    );
    expect(Object.keys(deltas)).toEqual(['test.auc', 'val.auc']);
    expect(deltas['val.auc'].direction).toBe('better');
    expect(deltas['test.auc'].direction).toBe('same');
  });
});

describe('orderMetrics', () => {
  it('puts test metrics first, then validation, then the rest', () => {
    expect(orderMetrics(['rmse', 'val.auc', 'test.auc', 'test.acc'])).toEqual([
      'test.acc',
      'test.auc',
      'val.auc',
      'rmse'
    ]);
  });
});

describe('formatDays', () => {
  it('rounds to one decimal, then writes it as formatNumber does', () => {
    expect(formatDays(3.14159)).toBe('3.1');
    expect(formatDays(0.0001)).toBe('0');
    expect(formatDays(12)).toBe('12');
    expect(formatDays(null)).toBe('—');
  });
});
