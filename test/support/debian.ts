/**
 * A real Debian 12 with systemd as PID 1, booted with systemd-nspawn inside one of a Lab's
 * network namespaces, and the Debian root filesystem it boots (shared with the podman test).
 */
import { ChildProcess, SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, waitFor } from './lab';

export const ROOTFS = process.env.TUMBLER_TEST_ROOTFS ?? '/var/cache/tumbler-test/bookworm';

/** Why the Debian-based tests cannot run here, or null. */
export function debianUnavailable(tools: string[]): string | null {
  if (process.getuid?.() !== 0) return 'not root';
  for (const t of ['mmdebstrap', ...tools]) {
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed`;
  }
  return null;
}

/**
 * The root filesystem, built on first use (minutes: debootstrap) and kept in a cache folder for
 * every later run. The script holds a lock, so two tests asking at once build it once.
 */
export function debianRootfs(): string {
  const r = spawnSync('bash', [path.join(ROOT, 'test', 'support', 'debian-rootfs.sh'), ROOTFS], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the Debian rootfs failed:\n${r.stderr}`);
  if (r.stderr.trim()) process.stderr.write(r.stderr);
  return ROOTFS;
}

/** Builds the .deb from this checkout into `dir`; returns its path. */
export function buildDeb(dir: string): string {
  const r = spawnSync('bash', [path.join(ROOT, 'packaging', 'build-deb.sh'), dir], { encoding: 'utf8', cwd: ROOT });
  if (r.status !== 0) throw new Error(`packaging/build-deb.sh failed:\n${r.stderr}`);
  return r.stdout.trim().split('\n').pop()!;
}

/**
 * A booted container. Its root is the shared rootfs under a throwaway overlay (--volatile=overlay),
 * so nothing it does reaches the cache. nspawn runs in cgroups of its own, made here and removed
 * by destroy(): this host's hybrid hierarchy has no unit to place it in.
 */
export class DebianMachine {
  private nspawn: ChildProcess | null = null;
  private leader = 0;
  output = '';
  private readonly cgroups: string[];

  constructor(
    readonly name: string,
    private readonly netns: string,
    private readonly binds: string[] = [],
  ) {
    this.cgroups = ['/sys/fs/cgroup/systemd', '/sys/fs/cgroup/unified']
      .filter((h) => fs.existsSync(h))
      .map((h) => path.join(h, name));
  }

  async boot(rootfs: string): Promise<this> {
    for (const c of this.cgroups) fs.mkdirSync(c, { recursive: true });
    const join = this.cgroups.map((c) => `echo $$ > ${c}/cgroup.procs`).join('; ');
    const argv = [
      'systemd-nspawn', '--quiet', '-b', '-D', rootfs, '--volatile=overlay', '-M', this.name,
      '--register=no', '--keep-unit', `--network-namespace-path=/run/netns/${this.netns}`,
      '--capability=CAP_NET_ADMIN,CAP_SYSLOG', '--bind=/dev/kmsg',
      ...this.binds.map((b) => `--bind-ro=${b}`),
    ];
    this.nspawn = spawn('sh', ['-c', `${join}; exec "$@"`, 'sh', ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' } });
    this.nspawn.stdout!.on('data', (b: Buffer) => (this.output += b.toString()));
    this.nspawn.stderr!.on('data', (b: Buffer) => (this.output += b.toString()));
    await waitFor('the container to start', () => {
      if (this.nspawn!.exitCode !== null) throw new Error(`systemd-nspawn exited: ${this.output}`);
      this.leader = this.findLeader();
      return this.leader > 0;
    }, 30_000);
    await waitFor('systemd in the container to finish booting', () => {
      const s = this.exec(['systemctl', 'is-system-running']).stdout.trim();
      return s === 'running' || s === 'degraded';
    }, 60_000);
    return this;
  }

  /** The container's PID 1, as this host sees it: the process whose root is the container's. */
  private findLeader(): number {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'systemd') continue;
        const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
        /* PID 1 inside its own PID namespace: the last NSpid column */
        const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1].trim().split(/\s+/);
        if (!nspid || nspid.length < 2 || nspid[nspid.length - 1] !== '1') continue;
        const cg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
        if (cg.includes(`/${this.name}`)) return Number(pid);
      } catch {
        /* gone meanwhile */
      }
    }
    return 0;
  }

  /** Runs a command inside the container (all its namespaces), as root. */
  exec(argv: string[], input?: string): SpawnSyncReturns<string> {
    return spawnSync('nsenter', ['-t', String(this.leader), '-m', '-u', '-i', '-n', '-p', '--', ...argv], {
      encoding: 'utf8',
      input,
      timeout: 60_000,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    });
  }

  /** exec() that must succeed; returns stdout. */
  run(argv: string[], input?: string): string {
    const r = this.exec(argv, input);
    if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
    return r.stdout;
  }

  writeFile(file: string, text: string): void {
    this.run(['sh', '-c', 'cat > "$0"', file], text);
  }

  async destroy(): Promise<void> {
    if (this.nspawn && this.nspawn.exitCode === null && this.nspawn.signalCode === null) {
      if (this.leader) this.exec(['systemctl', 'poweroff', '--no-block']);
      const exited = new Promise((r) => this.nspawn!.once('exit', r));
      const timer = setTimeout(() => this.nspawn?.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    /* cgroups empty once the container is gone; the deepest first */
    for (const top of this.cgroups) {
      const dirs: string[] = [];
      const walk = (d: string) => {
        if (!fs.existsSync(d)) return;
        for (const e of fs.readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
        dirs.push(d);
      };
      walk(top);
      for (const d of dirs) {
        try {
          fs.rmdirSync(d);
        } catch {
          /* still populated: reported by the next run's mkdir */
        }
      }
    }
  }
}
