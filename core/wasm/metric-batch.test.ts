import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metricBatchProblem } from './metric-batch.js';

const good = {
  source: 'wasm:meter',
  time: 1,
  metrics: [
    {
      name: 'meter.calls',
      type: 'counter',
      unit: '{call}',
      description: 'd',
      points: [{ attributes: { a: 'b' }, value: 1 }],
    },
    {
      name: 'meter.time',
      type: 'histogram',
      unit: 's',
      description: 'd',
      points: [{ attributes: {}, count: 2, sum: 0.5, bounds: [0.1, 1], buckets: [1, 1, 0] }],
    },
  ],
};

describe('MetricBatch from a Wasm plugin', () => {
  it('accepts a well-formed batch under the plugin own source', () => {
    assert.equal(metricBatchProblem('meter', good), undefined);
    assert.equal(metricBatchProblem('meter', { ...good, source: 'wasm:meter:instance-1' }), undefined);
  });
  it('names what is wrong', () => {
    const cases: [unknown, RegExp][] = [
      [{ ...good, source: 'host-metrics' }, /^source must be "wasm:meter"/],
      [{ ...good, source: 'wasm:meterx' }, /^source must be/],
      [{ ...good, time: 'now' }, /^time must be Unix ms/],
      [
        { ...good, metrics: [{ ...good.metrics[0], name: 'Bad Name' }] },
        /^metrics\[0\]\.name must be a dotted lower-case name/,
      ],
      [
        { ...good, metrics: [{ ...good.metrics[0], name: 'agent.bus.published' }] },
        /names under agent\. belong to the agent/,
      ],
      [{ ...good, metrics: [{ ...good.metrics[0], type: 'summary' }] }, /type must be counter, gauge or histogram/],
      [
        { ...good, metrics: [{ ...good.metrics[0], points: [{ attributes: { a: 1 }, value: 1 }] }] },
        /points\[0\]\.attributes must map strings to strings/,
      ],
      [
        { ...good, metrics: [{ ...good.metrics[0], points: [{ attributes: {}, value: 'x' }] }] },
        /points\[0\]\.value must be a number/,
      ],
      [
        {
          ...good,
          metrics: [{ ...good.metrics[1], points: [{ attributes: {}, count: 1, sum: 1, bounds: [1], buckets: [1] }] }],
        },
        /buckets must have one more entry than bounds/,
      ],
      [[], /not a MetricBatch object/],
    ];
    for (const [d, re] of cases) assert.match(String(metricBatchProblem('meter', d)), re);
  });
});
