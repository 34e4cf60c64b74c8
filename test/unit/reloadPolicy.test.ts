import { parseConfig } from '../../src/config/load';
import { applyLive, configChange } from '../../src/config/reloadPolicy';

const base = 'sources:\n  - kmsg: /dev/kmsg\n    prefix: "F: "\ndoors:\n  ssh:\n    sequence: [1, 2, 3]\n    open: /bin/true\n';
const change = (before: string, after: string) => configChange(parseConfig(base + before, 'a.yaml'), parseConfig(base + after, 'a.yaml'));

describe('the reload policy', () => {
  it('finds nothing to do in the same config', () => {
    expect(change('', '')).toEqual({ live: [], restart: [] });
  });

  it('applies log, max_sources, sources, listeners and doors live', () => {
    expect(change('', 'log:\n  level: debug\n  format: json\nmax_sources: 5\ntumbler:\n  listen: ["127.0.0.1:9"]\n')).toEqual({
      live: ['log.level', 'log.format', 'max_sources', 'tumbler.listen'],
      restart: [],
    });
    expect(change('', '  web:\n    sequence: [4, 5]\n    open: /bin/true\n').live).toEqual(['doors']);
  });

  it('names by key what needs a restart', () => {
    expect(change('', 'state_dir: /tmp/x\nfirewall: nftables\nnftables:\n  table: inet fw\n')).toEqual({
      live: [],
      restart: ['state_dir', 'firewall', 'nftables.table'],
    });
  });

  it('runs on the new live keys and the old restart-only ones until a restart', () => {
    const before = parseConfig(base + 'state_dir: /tmp/a\n', 'a.yaml');
    const after = parseConfig(base + 'state_dir: /tmp/b\nmetrics:\n  listen: "127.0.0.1:9675"\nlog:\n  level: debug\n', 'a.yaml');
    const running = applyLive(before, after);
    expect(running.stateDir).toBe('/tmp/a');
    expect(running.metrics).toEqual(before.metrics);
    expect(running.log.level).toBe('debug');
  });
});
