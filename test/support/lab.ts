/**
 * A two-host lab for real-system tests: a server and a client network namespace joined by a
 * veth pair, the server with a default-drop firewall whose last rule LOGs with a prefix unique
 * to this lab, a TCP service on the protected port, and (on demand) rsyslog writing kernel
 * lines to a file and tumblerd running inside the server namespace. Everything it makes is
 * recorded as it is made and undone by destroy(), which tests call from afterAll/afterEach.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The repository: found upwards, so that the benchmarks' compiled copy of this file finds it too. */
export const ROOT = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();
export const TUMBLERD = path.join(ROOT, 'dist', 'cli', 'tumblerd.js');
export const TUMBLER = path.join(ROOT, 'dist', 'cli', 'tumbler.js');
export const SERVICE_PORT = 2222;
export const TUMBLER_PORT = 8675;

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/** Why the lab cannot run here, or null if it can. */
export function labUnavailable(needs: string[] = ['ip', 'iptables', 'ip6tables', 'rsyslogd', 'knock', 'hping3']): string | null {
  if (process.getuid?.() !== 0) return 'not root: network namespaces and firewalls need root';
  for (const c of needs) if (!has(c)) return `${c} is not installed (bash .ci/run installs it)`;
  const probe = `tbprobe${process.pid}`;
  if (spawnSync('ip', ['netns', 'add', probe]).status !== 0) return 'cannot create network namespaces here';
  spawnSync('ip', ['netns', 'del', probe]);
  if (!fs.existsSync(TUMBLERD)) return 'dist/ is not built: run npm run build (npm test does)';
  return null;
}

/** `describe` that skips, saying why, where the lab cannot run. */
export function describeLab(name: string, fn: () => void, needs?: string[]): void {
  const why = labUnavailable(needs);
  if (why) {
    describe(name, () => {
      it.skip(`skipped: ${why}`, () => undefined);
    });
    // eslint-disable-next-line no-console
    console.warn(`SKIPPED real-system tests "${name}": ${why}`);
    return;
  }
  describe(name, fn);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitFor(what: string, test: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await test()) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
}

let labCount = 0;

export class Lab {
  readonly id: string;
  readonly srv: string;
  readonly cli: string;
  /** Third octet of 10.x.y.0/24 and of fd00:x::/64, unique per lab in this process. */
  readonly net: number;
  readonly prefix: string;
  /** Made by up(), removed by destroy(). */
  dir = '';
  private readonly procs: ChildProcess[] = [];
  private rsyslogPid: number | null = null;
  private nfLogAllNetnsWas: string | null = null;

  constructor() {
    labCount++;
    this.id = `${process.pid % 100000}${labCount}`;
    this.srv = `tbs${this.id}`;
    this.cli = `tbc${this.id}`;
    this.net = 100 + ((process.pid + labCount) % 150);
    this.prefix = `TB${this.id}: `;
  }

  get serverDev(): string {
    return `vs${this.id}`;
  }
  get serverIp(): string {
    return `10.77.${this.net}.1`;
  }
  get clientIp(): string {
    return `10.77.${this.net}.2`;
  }
  /** A second address on the client host: "another source". */
  get otherIp(): string {
    return `10.77.${this.net}.3`;
  }
  get serverIp6(): string {
    return `fd00:77:${this.net}::1`;
  }
  get clientIp6(): string {
    return `fd00:77:${this.net}::2`;
  }

  sh(args: string[]): string {
    return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  }
  inSrv(...args: string[]): string {
    return this.sh(['ip', 'netns', 'exec', this.srv, ...args]);
  }
  inCli(...args: string[]): string {
    return this.sh(['ip', 'netns', 'exec', this.cli, ...args]);
  }
  /** Sends one UDP datagram with exactly these bytes from one of the client's addresses. */
  udpFrom(from: string, target: string, port: number, payload: Buffer): void {
    const script =
      `const s = require('dgram').createSocket('${target.includes(':') ? 'udp6' : 'udp4'}');` +
      `s.bind(0, '${from}', () => s.send(Buffer.from('${payload.toString('hex')}', 'hex'), ${port}, '${target}', () => s.close()));`;
    this.inCli(process.execPath, '-e', script);
  }

  /** Sends one SYN to each port, in order, from one of the client's addresses (a connect() that is dropped). */
  synsFrom(from: string, target: string, ports: number[], delayMs = 100): void {
    const script =
      `const net = require('net'); const ports = ${JSON.stringify(ports)};` +
      `(async () => { for (const port of ports) {` +
      ` const s = net.connect({ host: '${target}', port, localAddress: '${from}' }); s.on('error', () => {});` +
      ` await new Promise((r) => setTimeout(r, ${delayMs})); s.destroy(); } })();`;
    this.inCli(process.execPath, '-e', script);
  }

  /** Builds the two hosts and the server's firewall. */
  up(): this {
    this.upHosts();
    for (const t of ['iptables', 'ip6tables']) {
      this.inSrv(t, '-P', 'INPUT', 'DROP');
      this.inSrv(t, '-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT');
      this.inSrv(t, '-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
    }
    this.inSrv('iptables', '-A', 'INPUT', '-p', 'icmp', '-j', 'ACCEPT');
    /* the Tumbler port: the daemon reads it, never answers, so it stays as dark as the rest */
    for (const t of ['iptables', 'ip6tables']) this.inSrv(t, '-A', 'INPUT', '-p', 'udp', '--dport', String(TUMBLER_PORT), '-j', 'ACCEPT');
    this.inSrv('ip6tables', '-A', 'INPUT', '-p', 'ipv6-icmp', '-j', 'ACCEPT');
    for (const t of ['iptables', 'ip6tables']) {
      this.inSrv(t, '-A', 'INPUT', '-j', 'LOG', '--log-prefix', this.prefix, '--log-level', 'warning');
    }
    return this;
  }

  /** The two hosts, their addresses and the service, with no firewall: for tests that bring their own. */
  upHosts(): this {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-lab-'));
    this.nfLogAllNetnsWas = fs.readFileSync('/proc/sys/net/netfilter/nf_log_all_netns', 'utf8').trim();
    /* LOG rules in a namespace other than the first log nothing without this */
    fs.writeFileSync('/proc/sys/net/netfilter/nf_log_all_netns', '1');
    const s = this.serverDev;
    const c = `vc${this.id}`;
    this.sh(['ip', 'netns', 'add', this.srv]);
    this.sh(['ip', 'netns', 'add', this.cli]);
    this.sh(['ip', 'link', 'add', s, 'type', 'veth', 'peer', 'name', c]);
    this.sh(['ip', 'link', 'set', s, 'netns', this.srv]);
    this.sh(['ip', 'link', 'set', c, 'netns', this.cli]);
    for (const [ns, dev, v4, v6] of [
      [this.srv, s, this.serverIp, this.serverIp6],
      [this.cli, c, this.clientIp, this.clientIp6],
    ]) {
      this.sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      this.sh(['ip', '-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev]);
      this.sh(['ip', '-n', ns, 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
      this.sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    this.sh(['ip', '-n', this.cli, 'addr', 'add', `${this.otherIp}/24`, 'dev', c]);
    /* the protected service, on IPv4 and IPv6: says hello, then echoes (a stand-in for sshd) */
    this.spawn(this.srv, [process.execPath, '-e',
      `require('net').createServer((s) => { s.on('error', () => {}); s.write('hello\\n'); s.pipe(s); }).listen(${SERVICE_PORT}, '::')`]);
    return this;
  }

  /** The same server, but with an nftables ruleset (table inet filter) instead of iptables. */
  upWithNftables(): this {
    this.up();
    for (const t of ['iptables', 'ip6tables']) {
      this.inSrv(t, '-P', 'INPUT', 'ACCEPT');
      this.inSrv(t, '-F', 'INPUT');
    }
    const rules = path.join(this.dir, 'ruleset.nft');
    fs.writeFileSync(
      rules,
      `table inet filter {\n chain input {\n  type filter hook input priority 0; policy drop;\n` +
        `  iif lo accept\n  ct state established,related accept\n  ip protocol icmp accept\n  ip6 nexthdr ipv6-icmp accept\n` +
        `  udp dport ${TUMBLER_PORT} accept\n  log prefix "${this.prefix}" level warn\n }\n}\n`,
    );
    this.inSrv('nft', '-f', rules);
    return this;
  }

  /**
   * Opens a connection from the client and keeps it; `alive()` then checks it still carries
   * data both ways (what an SSH session opened while the door was open needs after it closes).
   */
  async holdConnection(target = this.serverIp): Promise<{ alive: () => Promise<boolean> }> {
    const script =
      `const s = require('net').connect({ host: process.argv[1], port: ${SERVICE_PORT} });` +
      `let got = ''; s.on('data', (d) => { got += d; if (got.includes('ping')) console.log('alive'); else if (got.includes('hello')) console.log('connected'); });` +
      `s.on('error', (e) => console.log('error ' + e.code));` +
      `process.stdin.on('data', () => s.write('ping\\n'));`;
    const child = this.spawn(this.cli, [process.execPath, '-e', script, target]);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await waitFor('the held connection to open', () => out.includes('connected') || out.includes('error'), 3000);
    if (!out.includes('connected')) throw new Error(`connection failed: ${out}`);
    return {
      alive: async () => {
        child.stdin!.write('go\n');
        try {
          await waitFor('an echo on the held connection', () => out.includes('alive'), 2000);
          return true;
        } catch {
          return false;
        }
      },
    };
  }

  /** Runs a long-lived process inside a namespace; destroy() kills it. */
  spawn(ns: string, argv: string[], env: NodeJS.ProcessEnv = process.env, wrap: string[] = []): ChildProcess {
    /* `wrap` runs it through another command first (nsenter into journald's mount namespace) */
    const full = [...wrap, 'ip', 'netns', 'exec', ns, ...argv];
    const child = spawn(full[0], full.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.procs.push(child);
    return child;
  }

  /**
   * Starts rsyslog writing kernel lines to a file in the given format; returns the file. With
   * `socket`, it also takes local syslog datagrams on that path, as it does on /dev/log on hosts
   * where it owns that socket (the host's own /dev/log is never touched).
   */
  startRsyslog(format: 'traditional' | 'rfc3339' = 'rfc3339', file = path.join(this.dir, 'kern.log'), socket?: string): string {
    const template = format === 'traditional' ? 'RSYSLOG_TraditionalFileFormat' : 'RSYSLOG_FileFormat';
    const conf = path.join(this.dir, 'rsyslog.conf');
    const pidFile = path.join(this.dir, 'rsyslog.pid');
    const unixSocket = socket ? `module(load="imuxsock" SysSock.Use="off")\ninput(type="imuxsock" Socket="${socket}")\n` : '';
    fs.writeFileSync(
      conf,
      `module(load="imkmsg")\n${unixSocket}kern.* action(type="omfile" file="${file}" template="${template}")\n`,
    );
    this.sh(['rsyslogd', '-f', conf, '-i', pidFile]);
    const start = Date.now();
    while (!fs.existsSync(pidFile) && Date.now() - start < 5000) spawnSync('sleep', ['0.05']);
    this.rsyslogPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return file;
  }

  get rsyslog(): number {
    if (this.rsyslogPid === null) throw new Error('rsyslog is not running');
    return this.rsyslogPid;
  }

  /** Can the client open a TCP connection to the service (from `from`, if given)? */
  connects(target = this.serverIp, from?: string): boolean {
    const script =
      `const s = require('net').connect({ host: process.argv[1], port: ${SERVICE_PORT}` +
      `${from ? `, localAddress: '${from}'` : ''} });` +
      `s.on('data', () => process.exit(0)); s.on('error', () => process.exit(1));` +
      `setTimeout(() => process.exit(2), 700);`;
    return spawnSync('ip', ['netns', 'exec', this.cli, process.execPath, '-e', script, target]).status === 0;
  }

  /** Deletes everything the lab made; safe to call more than once and after a failed up(). */
  destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    if (this.rsyslogPid !== null) {
      try {
        process.kill(this.rsyslogPid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      this.rsyslogPid = null;
    }
    /* deleting a namespace takes its veth end, addresses and firewall rules with it */
    spawnSync('ip', ['netns', 'del', this.srv]);
    spawnSync('ip', ['netns', 'del', this.cli]);
    if (this.nfLogAllNetnsWas !== null) {
      fs.writeFileSync('/proc/sys/net/netfilter/nf_log_all_netns', this.nfLogAllNetnsWas);
      this.nfLogAllNetnsWas = null;
    }
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A tumblerd running in the lab's server namespace (or on this host, without a lab), with its output kept for assertions. */
export class Daemon {
  output = '';
  readonly child: ChildProcess;

  constructor(
    /** Where it runs: the lab's server namespace (or any host with a namespace and a spawn, like a fleet lab's gateway). */
    readonly lab: Pick<Lab, 'srv' | 'spawn'> | null,
    readonly configFile: string,
    extraArgs: string[] = [],
    env: NodeJS.ProcessEnv = process.env,
    wrap: string[] = [],
  ) {
    const argv = [process.execPath, TUMBLERD, '--config', configFile, '--log-level', 'debug', ...extraArgs];
    this.child = lab ? lab.spawn(lab.srv, argv, env, wrap) : spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
  }

  async started(): Promise<this> {
    await waitFor('tumblerd to start', () => {
      if (this.child.exitCode !== null) throw new Error(`tumblerd exited:\n${this.output}`);
      return this.output.includes('tumblerd started');
    });
    return this;
  }

  count(text: string): number {
    return this.output.split(text).length - 1;
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((r) => this.child.once('exit', (code) => r(code)));
    this.child.kill(signal);
    return exited;
  }
}

/**
 * A child process that sends well-formed Tumbler junk to 127.0.0.1:`port` from 64 loopback
 * addresses for `seconds`, `rate` datagrams a second (0: as fast as it can), then prints how
 * many it sent and exits. Loopback only, bounded in time.
 */
export function spawnJunkFlood(port: number, rate: number, seconds: number): ChildProcess {
  return spawn(process.execPath, ['-e', `
    const dgram = require('dgram');
    const socks = []; for (let i = 1; i <= 64; i++) { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.' + i); socks.push(s); }
    const junk = Buffer.from('TUMBLER1: ' + 'ab'.repeat(32));
    const start = Date.now(), end = start + ${seconds * 1000}; let sent = 0;
    (function burst() {
      const due = ${rate} ? Math.min(Math.floor(((Date.now() - start) / 1000) * ${rate}), ${rate * seconds}) : sent + 256;
      while (sent < due) { socks[sent & 63].send(junk, ${port}, '127.0.0.1'); sent++; }
      if (Date.now() < end) setTimeout(burst, ${rate} ? 1 : 0); else setTimeout(() => { console.log(sent); process.exit(0); }, 200);
    })();`], { stdio: ['ignore', 'pipe', 'inherit'] });
}

/** Datagrams the kernel dropped at the buffer of the UDP socket bound to 127.0.0.1:`port` (the last column of /proc/net/udp). */
export function kernelDrops(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const line = fs.readFileSync('/proc/net/udp', 'utf8').split('\n').find((l) => l.trim().split(/\s+/)[1] === local);
  return Number(line?.trim().split(/\s+/).pop() ?? NaN);
}

/** Sends one UDP datagram to a port on 127.0.0.1 from a chosen loopback address. */
/** A UDP port on 127.0.0.1 that was free a moment ago (the kernel's choice), for a daemon a test starts. */
export async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function sendUdpFrom(from: string, port: number, payload: Buffer): Promise<void> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, from, () => r()));
  await new Promise<void>((r) => s.send(payload, port, '127.0.0.1', () => r()));
  s.close();
}
