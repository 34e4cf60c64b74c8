/**
 * The Prometheus exporter, scraped for real over HTTP (TCP and a Unix socket), and the Grafana
 * dashboard in contrib/, which may only query metrics that exist.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { loadConfigFile, parseConfig } from '../../src/config/load';
import { Daemon } from '../../src/daemon';
import { METRICS } from '../../src/metrics/metrics';
import { PrometheusExporter } from '../../src/metrics/prometheus';

function get(options: http.RequestOptions): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(options, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

describe('the Prometheus exporter', () => {
  const exporters: PrometheusExporter[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-metrics-'));
  afterAll(async () => {
    for (const e of exporters) await e.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const exporter = () => {
    const e = new PrometheusExporter();
    exporters.push(e);
    return e;
  };

  it('serves every declared metric on /metrics, with what components counted', async () => {
    const e = exporter();
    await e.start({ host: '127.0.0.1', port: 0 });
    e.inc('tumbler_knocks_total', { protocol: 'tumbler1', result: 'opened' });
    e.inc('tumbler_knocks_total', { protocol: 'tumbler1', result: 'opened' }, 2);
    e.set('tumbler_doors_open', 3);
    e.set('tumbler_source_lag_seconds', 0.25, { source: 'kmsg /dev/kmsg' });
    const r = await get({ host: '127.0.0.1', port: e.port()!, path: '/metrics' });
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/plain');
    for (const name of Object.keys(METRICS)) expect(r.body).toContain(`# HELP ${name} `);
    expect(r.body).toContain('tumbler_knocks_total{protocol="tumbler1",result="opened"} 3');
    expect(r.body).toContain('tumbler_doors_open 3');
    expect(r.body).toContain('tumbler_source_lag_seconds{source="kmsg /dev/kmsg"} 0.25');
    expect((await get({ host: '127.0.0.1', port: e.port()!, path: '/' })).status).toBe(404);
  });

  it('has a registry of its own: two exporters do not share counts', async () => {
    const a = exporter();
    const b = exporter();
    a.inc('tumbler_door_opens_total', { door: 'ssh' });
    expect(await a.metrics()).toContain('tumbler_door_opens_total{door="ssh"} 1');
    expect(await b.metrics()).not.toContain('door="ssh"');
  });

  it('refuses a label a metric does not declare, and a gauge used as a counter', () => {
    const e = exporter();
    expect(() => e.inc('tumbler_knocks_total', { src: '192.0.2.1' })).toThrow();
    expect(() => e.inc('tumbler_doors_open')).toThrow('tumbler_doors_open is not a counter');
  });

  it('serves on a Unix socket, replaces a stale one, and removes it in stop()', async () => {
    const sock = path.join(dir, 'metrics.sock');
    /* a daemon killed without stop() leaves its socket file behind */
    const killed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`, sock]);
    expect(killed.signal).toBe('SIGKILL');
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    const e = exporter();
    await e.start({ path: sock });
    const r = await get({ socketPath: sock, path: '/metrics' });
    expect(r.status).toBe(200);
    expect(r.body).toContain('# TYPE tumbler_doors_open gauge');
    await e.stop();
    expect(fs.existsSync(sock)).toBe(false);
    await expect(get({ socketPath: sock, path: '/metrics' })).rejects.toThrow();
  });

  it('stops listening in stop(), even with a scraper connected', async () => {
    const e = exporter();
    await e.start({ host: '127.0.0.1', port: 0 });
    const port = e.port()!;
    const agent = new http.Agent({ keepAlive: true });
    await get({ host: '127.0.0.1', port, path: '/metrics', agent });
    await e.stop();
    agent.destroy();
    await expect(get({ host: '127.0.0.1', port, path: '/metrics' })).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('the daemon with metrics.listen', () => {
  it('serves /metrics while it runs, and closes the endpoint when it stops', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'doctor-metrics-daemon-'));
    const sock = path.join(dir, 'metrics.sock');
    const file = path.join(dir, 'tumblerd.yaml');
    const port = 20000 + ((process.pid + 57) % 20000);
    fs.writeFileSync(
      file,
      `state_dir: ${dir}/state\nlog:\n  level: error\nmetrics:\n  listen: ${sock}\ntumbler:\n  listen: ["127.0.0.1:${port}"]\n` +
        `doors:\n  d:\n    secret: a-long-enough-test-secret\n    open: /bin/true\n`,
      { mode: 0o600 },
    );
    const daemon = new Daemon({ configFile: file, config: loadConfigFile(file), dryRun: false, watchConfig: false });
    try {
      await daemon.start();
      const r = await get({ socketPath: sock, path: '/metrics' });
      expect(r.status).toBe(200);
      expect(r.body).toContain('# TYPE tumbler_knocks_total counter');
    } finally {
      await daemon.stop('test');
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(fs.existsSync(sock)).toBe(false);
  });
});

describe('the metrics config key', () => {
  const base = 'doors:\n  d:\n    secret: s\n    open: "true"\n';
  it('is off by default', () => {
    expect(parseConfig(base, 'm.yaml').metrics).toBeNull();
  });
  it('takes an address and port, or a Unix socket path', () => {
    expect(parseConfig(`metrics:\n  listen: "127.0.0.1:9675"\n${base}`, 'm.yaml').metrics).toEqual({ listen: { host: '127.0.0.1', port: 9675 } });
    expect(parseConfig(`metrics:\n  listen: "[::1]:9675"\n${base}`, 'm.yaml').metrics).toEqual({ listen: { host: '::1', port: 9675 } });
    expect(parseConfig(`metrics:\n  listen: /run/tumblerd/metrics.sock\n${base}`, 'm.yaml').metrics).toEqual({ listen: { path: '/run/tumblerd/metrics.sock' } });
  });
  it('names the file, line and key of a bad one', () => {
    expect(() => parseConfig(`${base}metrics:\n  listen: "localhost"\n`, 'm.yaml')).toThrow(/^m\.yaml:6:\d+: metrics\.listen: /);
    expect(() => parseConfig(`${base}metrics:\n  port: 9675\n`, 'm.yaml')).toThrow(/metrics\.port: unknown key/);
  });
});

describe('the Grafana dashboard', () => {
  const dashboard = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'contrib', 'grafana-dashboard.json'), 'utf8'));
  const exprs: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if ((k === 'expr' || k === 'query') && typeof x === 'string') exprs.push(x);
        else walk(x);
      }
    }
  };
  walk(dashboard);
  const used = new Set(exprs.flatMap((e) => e.match(/\btumbler_[a-z0-9_]+/g) ?? []));

  it('queries only metrics the exporter declares', () => {
    expect(exprs.length).toBeGreaterThan(5);
    expect([...used].filter((m) => !(m in METRICS))).toEqual([]);
  });

  it('shows every declared metric', () => {
    expect(Object.keys(METRICS).filter((m) => !used.has(m))).toEqual([]);
  });

  it('groups only by labels the metric has', () => {
    for (const e of exprs) {
      const by = /by \(([^)]*)\) \([a-z]+\((tumbler_[a-z_]+)/.exec(e);
      if (!by) continue;
      const labels: readonly string[] = METRICS[by[2] as keyof typeof METRICS].labels;
      for (const l of by[1].split(',').map((s) => s.trim())) expect(labels).toContain(l);
    }
  });
});
