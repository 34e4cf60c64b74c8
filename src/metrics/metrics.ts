/**
 * The metrics port: components count into a `Metrics` they are given, and never expose counters
 * for others to read. Every metric is declared here once, with its help text and labels, so
 * that an exporter (Prometheus) and a dashboard can be checked against one list.
 */

export const METRICS = {
  tumbler_knocks_total: { type: 'counter', help: 'Knocks by protocol (sequence, tumbler1, tumbler2) and result', labels: ['protocol', 'result'] },
  tumbler_doors_open: { type: 'gauge', help: 'Doors open now', labels: [] },
  tumbler_door_opens_total: { type: 'counter', help: 'Doors opened, by door', labels: ['door'] },
  tumbler_door_closes_total: { type: 'counter', help: 'Doors closed, by door', labels: ['door'] },
  tumbler_door_failures_total: { type: 'counter', help: 'Open or close steps that failed, by door and step', labels: ['door', 'step'] },
  tumbler_lines_total: { type: 'counter', help: 'Log lines read, by source and what became of them (knock, stale, not_for_host, malformed, other_protocol, fragment, passed_over, overlong, other)', labels: ['source', 'outcome'] },
  tumbler_source_lag_seconds: { type: 'gauge', help: 'Age of the newest line read from each source', labels: ['source'] },
  tumbler_datagrams_total: { type: 'counter', help: 'Tumbler datagrams by verdict', labels: ['verdict'] },
  tumbler_replay_entries: { type: 'gauge', help: 'Entries in the replay cache', labels: [] },
  tumbler_fleet_up: { type: 'gauge', help: '1 while the fleet store (Redis) answers', labels: [] },
  tumbler_fleet_members: { type: 'gauge', help: 'Gateways of the fleet seen recently', labels: [] },
} as const;

export type MetricName = keyof typeof METRICS;
export type Labels = Record<string, string>;

export interface Metrics {
  /** Adds `by` (default 1) to a counter. */
  inc(name: MetricName, labels?: Labels, by?: number): void;
  /** Sets a gauge. */
  set(name: MetricName, value: number, labels?: Labels): void;
}

/** For components run without an exporter (tests, scan). */
export const NO_METRICS: Metrics = { inc() {}, set() {} };
