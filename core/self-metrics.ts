/** The agent's own counters, computed when read: the bus and the API report themselves here. */
import type { BusStats } from './bus/bus.js';
import { counter, gauge, type Metric } from './metrics/model.js';

export function busMetrics(st: BusStats, startTime: number): Metric[] {
  const per = (f: (s: BusStats['subscribers'][number]) => number) =>
    st.subscribers.map((s) => ({ attributes: { subscriber: s.name }, value: f(s), startTime }));
  return [
    counter({ name: 'agent.bus.published', unit: '{message}', description: 'Messages published on the bus.' }, [
      { attributes: {}, value: st.published, startTime },
    ]),
    counter(
      { name: 'agent.bus.unrouted', unit: '{message}', description: 'Published messages no subscriber matched.' },
      [{ attributes: {}, value: st.unrouted, startTime }],
    ),
    counter(
      { name: 'agent.bus.delivered', unit: '{message}', description: 'Messages handed to a subscriber.' },
      per((s) => s.delivered),
    ),
    counter(
      {
        name: 'agent.bus.dropped',
        unit: '{message}',
        description: "Messages dropped because the subscriber's queue was full (see bus.overflow).",
      },
      per((s) => s.dropped),
    ),
    counter(
      { name: 'agent.bus.errors', unit: '{error}', description: 'Messages whose handler threw or rejected.' },
      per((s) => s.errors),
    ),
    counter(
      { name: 'agent.bus.handle.time', unit: 's', description: "Time spent in the subscriber's handler." },
      per((s) => s.handleSeconds),
    ),
    gauge(
      { name: 'agent.bus.queue.depth', unit: '{message}', description: 'Messages waiting in the subscriber queue.' },
      st.subscribers.map((s) => ({ attributes: { subscriber: s.name }, value: s.queueDepth })),
    ),
    gauge(
      { name: 'agent.bus.queue.capacity', unit: '{message}', description: 'Capacity of the subscriber queue.' },
      st.subscribers.map((s) => ({ attributes: { subscriber: s.name }, value: s.queueSize })),
    ),
  ];
}

export function apiMetrics(requests: ReadonlyMap<string, number>, startTime: number): Metric[] {
  return [
    counter(
      { name: 'agent.api.requests', unit: '{request}', description: 'Local API requests served, by status class.' },
      [...requests].map(([cls, n]) => ({ attributes: { status_class: cls }, value: n, startTime })),
    ),
  ];
}

export function uncaughtMetrics(count: { exceptions: number; rejections: number }, startTime: number): Metric[] {
  return [
    counter(
      {
        name: 'agent.process.uncaught',
        unit: '{error}',
        description:
          'Uncaught exceptions and unhandled promise rejections the agent logged and survived (each is a bug to report).',
      },
      [
        { attributes: { kind: 'exception' }, value: count.exceptions, startTime },
        { attributes: { kind: 'rejection' }, value: count.rejections, startTime },
      ],
    ),
  ];
}
