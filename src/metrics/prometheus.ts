/**
 * The Prometheus exporter: the `Metrics` port made real, with a registry of its own (nothing
 * global, so two daemons in one process, as in tests, do not share counters) and an HTTP
 * server that serves GET /metrics on a TCP address or a Unix socket, and nothing else.
 */
import fs from 'node:fs';
import http from 'node:http';
import { Counter, Gauge, Registry } from 'prom-client';
import type { MetricsListen } from '../config/types';
import { Labels, METRICS, MetricName, Metrics } from './metrics';

export class PrometheusExporter implements Metrics {
  readonly registry = new Registry();
  private readonly counters = new Map<MetricName, Counter>();
  private readonly gauges = new Map<MetricName, Gauge>();
  private server: http.Server | null = null;
  private socketPath: string | null = null;

  constructor() {
    for (const [name, m] of Object.entries(METRICS) as [MetricName, (typeof METRICS)[MetricName]][]) {
      const spec = { name, help: m.help, labelNames: [...m.labels], registers: [this.registry] };
      if (m.type === 'counter') this.counters.set(name, new Counter(spec));
      else this.gauges.set(name, new Gauge(spec));
    }
  }

  inc(name: MetricName, labels: Labels = {}, by = 1): void {
    const c = this.counters.get(name);
    if (!c) throw new Error(`${name} is not a counter`);
    c.inc(labels, by);
  }

  set(name: MetricName, value: number, labels: Labels = {}): void {
    const g = this.gauges.get(name);
    if (!g) throw new Error(`${name} is not a gauge`);
    g.set(labels, value);
  }

  /** The text a scrape gets. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  async start(listen: MetricsListen): Promise<void> {
    const server = http.createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
        return;
      }
      this.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
    });
    /* a scraper that opens connections and never finishes them must not hold sockets forever */
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    if ('path' in listen) removeStaleSocket(listen.path);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const ready = () => {
        server.off('error', reject);
        resolve();
      };
      if ('path' in listen) server.listen(listen.path, ready);
      else server.listen(listen.port, listen.host, ready);
    });
    this.server = server;
    this.socketPath = 'path' in listen ? listen.path : null;
  }

  /** The TCP port it listens on (for port 0), or null on a Unix socket. */
  port(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (this.socketPath) removeStaleSocket(this.socketPath);
  }
}

/** A socket file left by a daemon that was killed would make listen() fail with EADDRINUSE; anything else is left alone. */
function removeStaleSocket(file: string): void {
  try {
    if (fs.lstatSync(file).isSocket()) fs.unlinkSync(file);
  } catch {
    /* absent */
  }
}
