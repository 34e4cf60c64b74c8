/**
 * The Docker image, built from the Dockerfile with podman and run as the README says, inside the
 * lab's server namespace (--network ns:...): a knock through the running container opens a door,
 * an edit by rename of the mounted config folder is seen, door commands' orphans are reaped, the
 * healthcheck answers, a stop closes tumbler's firewall, and a legacy-iptables host is refused.
 */
import { SpawnSyncReturns, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Lab, ROOT, SERVICE_PORT, describeLab, sleep, waitFor } from '../support/lab';
import { debianRootfs, debianUnavailable } from '../support/debian';

const why = debianUnavailable(['podman', 'buildah', 'runc']);
const IMAGE = 'localhost/tumblerd-test:latest';
const BASE = 'localhost/tumbler-test-node:20-bookworm';

(why ? describe.skip : describeLab)(`the Docker image under podman${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab = new Lab();
  let store = '';
  let conf = '';
  const name = () => `tumbler-deploy-${lab.id}`;

  /*
   * podman with a store of its own (removed afterwards) and this host's quirks: crun refuses its
   * hybrid cgroups, and root lacks CAP_SYS_RESOURCE for podman's default ulimits.
   */
  const podman = (args: string[], input?: string | Buffer): SpawnSyncReturns<string> =>
    spawnSync('podman', ['--root', path.join(store, 'root'), '--runroot', path.join(store, 'run'), ...args], {
      encoding: 'utf8',
      input,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 600_000,
      env: { ...process.env, CONTAINERS_CONF: path.join(store, 'containers.conf') },
    });
  const ok = (args: string[]): string => {
    const r = podman(args);
    if (r.status !== 0) throw new Error(`podman ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const logs = () => {
    const r = podman(['logs', name()]);
    return r.stdout + r.stderr;
  };
  const config = (sequence: number[], extra = '') =>
    [
      'firewall: iptables',
      'sources:',
      '  - kmsg: /dev/kmsg',
      `    prefix: "${lab.prefix}"`,
      'doors:',
      '  service:',
      `    sequence: [${sequence.join(', ')}]`,
      `    allow: [tcp/${SERVICE_PORT}]`,
      '    close_after: 60s',
      extra,
    ].join('\n');
  /* an editor's save: a new file renamed over the old one (a new inode) */
  const saveByRename = (text: string) => {
    fs.writeFileSync(path.join(conf, '.tumblerd.yaml.swp'), text);
    fs.renameSync(path.join(conf, '.tumblerd.yaml.swp'), path.join(conf, 'tumblerd.yaml'));
  };
  /*
   * The README's `docker run` line for the kmsg source, as written there, but with the lab's
   * namespace for the host network, the test's config folder, names and image.
   */
  const runArgs = (container: string) => {
    const line = /^docker run .*--device \/dev\/kmsg.*$/m.exec(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
    if (!line) throw new Error('the README has no docker run line for the kmsg source');
    const words = line[0].split(/\s+/).slice(2);
    const args: string[] = [];
    for (let i = 0; i < words.length - 1; i++) {
      const [w, v] = [words[i], words[i + 1]];
      if (w === '-d') continue;
      if (w === '--name') args.push(w, container);
      else if (w === '--network' && v === 'host') args.push(w, `ns:/run/netns/${lab.srv}`);
      else if (w === '-v' && v.startsWith('/etc/tumblerd:')) args.push(w, v.replace('/etc/tumblerd', conf));
      else if (w === '-v' && v.startsWith('tumblerd-state:')) args.push(w, v.replace('tumblerd-state', `${container}-state`));
      else if (w.startsWith('-')) args.push(w, v);
      else continue;
      i++;
    }
    expect(words[words.length - 1]).toBe('tumblerd');
    return [...args, IMAGE];
  };

  beforeAll(() => {
    const rootfs = debianRootfs();
    lab.up();
    store = path.join(lab.dir, 'podman');
    conf = path.join(lab.dir, 'etc-tumblerd');
    fs.mkdirSync(store);
    fs.mkdirSync(conf);
    fs.writeFileSync(
      path.join(store, 'containers.conf'),
      '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n',
    );
    /* the base image is the shared rootfs: node 20 on Debian 12, like node:20-bookworm-slim */
    const tarball = path.join(lab.dir, 'base.tar');
    const tar = spawnSync('tar', ['-C', rootfs, '--exclude=./.complete', '-cf', tarball, '.']);
    if (tar.status !== 0) throw new Error(`tar of ${rootfs} failed: ${tar.stderr}`);
    ok(['import', tarball, BASE]);
    fs.rmSync(tarball);
  }, 900_000);

  afterAll(() => {
    if (store) {
      podman(['rm', '-f', '-t', '0', '-v', name(), `${name()}-legacy`]);
      podman(['system', 'reset', '-f']);
    }
    lab.destroy();
  }, 120_000);

  it('builds with the README command (npm ci, npm run build) on a Debian 12 node image', () => {
    /* a bridge network would change this host's firewall; the trust store and npm settings are
     * this host's, for the registry */
    /* docker's image format: OCI images have no HEALTHCHECK; no cache of intermediate layers to commit */
    const args = ['build', '--format', 'docker', '--layers=false', '--network', 'host', '--build-arg', `BASE=${BASE}`, '-v', '/etc/ssl/certs:/etc/ssl/certs:ro'];
    for (const rc of ['/etc/npmrc', '/usr/etc/npmrc']) if (fs.existsSync(rc)) args.push('-v', `${rc}:${rc}:ro`);
    ok([...args, '-t', IMAGE, '-f', path.join(ROOT, 'Dockerfile'), ROOT]);
    expect(ok(['run', '--rm', IMAGE, '--version']).trim()).toMatch(/^\d+\.\d+\.\d+$/);
  }, 600_000);

  it('runs in the lab namespace and opens a door for a knock read from /dev/kmsg', async () => {
    saveByRename(config([7301, 7302, 7303]));
    ok(['run', '-d', ...runArgs(name())]);
    await waitFor('tumblerd started in the container', () => logs().includes('tumblerd started'), 30_000);
    const health = podman(['healthcheck', 'run', name()]);
    expect({ status: health.status, out: health.stdout + health.stderr }).toEqual({ status: 0, out: '' });
    expect(lab.connects()).toBe(false);
    lab.synsFrom(lab.clientIp, lab.serverIp, [7301, 7302, 7303]);
    await waitFor('the door to open', () => lab.connects(), 10_000);
  }, 60_000);

  it('sees an edit of the mounted config folder made by rename', async () => {
    const reaper = "  reap:\n    sequence: [7401, 7402, 7403]\n    open: sh -c \"sleep 0.2 & exit 0\"\n";
    saveByRename(config([7311, 7312, 7313], reaper));
    await waitFor('the reload', () => logs().includes('config reloaded'), 10_000);
    lab.synsFrom(lab.otherIp, lab.serverIp, [7311, 7312, 7313]);
    await waitFor('the door to open for the new sequence', () => lab.connects(lab.serverIp, lab.otherIp), 10_000);
  }, 60_000);

  it("reaps the orphans door commands leave (PID 1 is an init)", async () => {
    lab.synsFrom(lab.clientIp, lab.serverIp, [7401, 7402, 7403]);
    await waitFor('the reap door to open', () => /door opened door=reap/.test(logs()), 10_000);
    await sleep(1000);
    const states = ok(['exec', name(), 'sh', '-c', 'cat /proc/[0-9]*/stat']);
    expect(states).not.toMatch(/\) Z /);
    expect(states).toContain('(tini)');
  }, 60_000);

  it("stops on SIGTERM and takes tumbler's firewall chain and sets with it", () => {
    expect(lab.inSrv('iptables', '-S')).toContain('TUMBLER');
    ok(['stop', '-t', '20', name()]);
    expect(ok(['inspect', '-f', '{{.State.ExitCode}}', name()]).trim()).toBe('0');
    expect(logs()).toContain('tumblerd stopped');
    expect(lab.inSrv('iptables', '-S')).not.toContain('TUMBLER');
    expect(lab.connects()).toBe(false);
  }, 60_000);

  it('refuses to start, saying why, on a host whose firewall is iptables-legacy', () => {
    lab.inSrv('iptables-legacy', '-A', 'INPUT', '-s', '192.0.2.1', '-j', 'DROP');
    try {
      const r = podman(['run', ...runArgs(`${name()}-legacy`)]);
      expect(r.status).toBe(78);
      expect(r.stderr).toContain('IPTABLES_BACKEND=legacy');
      expect(lab.inSrv('iptables', '-S')).not.toContain('TUMBLER');
    } finally {
      lab.inSrv('iptables-legacy', '-F', 'INPUT');
    }
  }, 60_000);
});
