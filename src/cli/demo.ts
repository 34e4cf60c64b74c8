/**
 * `tumblerd demo`: the whole job on any Linux host, in a minute, without touching its firewall.
 * Two throwaway network namespaces (a server with a default-drop nftables firewall that logs
 * what it drops, and a client), tumblerd on an embedded config reading /dev/kmsg in the server,
 * a TCP service behind the firewall; then a classic knock (`tumbler knock`) and a Tumbler knock
 * (`tumbler open`, over IPv4 and IPv6) from the client, each shown opening the service to a real
 * connection and closing it again. Everything made is removed at the end, on failure and on
 * Ctrl-C. Every name it makes starts with `tbdemo`.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const TUMBLERD = path.join(__dirname, 'tumblerd.js');
const TUMBLER = path.join(__dirname, 'tumbler.js');
const NF_LOG_ALL_NETNS = '/proc/sys/net/netfilter/nf_log_all_netns';
const SERVICE_PORT = 2222;
const KNOCK_PORT = 8675;
const SEQUENCE = [7000, 8000, 9000];
const CLOSE_AFTER_S = 4;
const PREFIX = 'tbdemo: ';

class DemoError extends Error {}

/** What `demo` needs that a host may lack, or null. */
export function demoUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'the demo builds network namespaces and firewalls in them: run it as root';
  for (const program of ['ip', 'nft']) {
    if (spawnSync(program, ['-V'], { stdio: 'ignore' }).error) return `${program} is not installed (apt-get install ${program === 'ip' ? 'iproute2' : 'nftables'})`;
  }
  if (!fs.existsSync(NF_LOG_ALL_NETNS)) return `${NF_LOG_ALL_NETNS} is missing: this is not the host's network namespace`;
  return null;
}

function demoConfig(dir: string, secret: string, server: { v4: string; v6: string }): string {
  return `# tumblerd demo: written by tumblerd demo, removed when it ends
state_dir: ${dir}/state
log:
  level: info
sources:
  - kmsg: /dev/kmsg
    prefix: "${PREFIX}"
tumbler:
  listen: ["${server.v4}:${KNOCK_PORT}", "[${server.v6}]:${KNOCK_PORT}"]
firewall: nftables
nftables:
  table: inet tbdemo
  chain: input
doors:
  demo:
    sequence: [${SEQUENCE.join(', ')}]
    secret: ${secret}
    allow: [tcp/${SERVICE_PORT}]
    close_after: ${CLOSE_AFTER_S}s
`;
}

function firewall(): string {
  return `table inet tbdemo {
  chain input {
    type filter hook input priority 0; policy drop;
    iif lo accept
    ct state established,related accept
    meta l4proto ipv6-icmp accept
    ip protocol icmp accept
    udp dport ${KNOCK_PORT} accept
    log prefix "${PREFIX}" level warn
  }
}
`;
}

export class Demo {
  private readonly id = `${process.pid % 1_000_000}`;
  readonly srv = `tbdemo${this.id}s`;
  readonly cli = `tbdemo${this.id}c`;
  private readonly net = 10 + (process.pid % 200);
  readonly server = { v4: `10.86.${this.net}.1`, v6: `fd00:86:${this.net}::1` };
  readonly client = { v4: `10.86.${this.net}.2`, v6: `fd00:86:${this.net}::2` };
  private dir = '';
  private nfLogWas: string | null = null;
  private readonly made: string[] = [];
  private readonly children: ChildProcess[] = [];
  private daemon: ChildProcess | null = null;
  private daemonOut = '';
  private cleaned = false;

  constructor(private readonly say: (line: string) => void) {}

  private sh(argv: string[], input?: string): string {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input, timeout: 20_000 });
    if (r.status !== 0) throw new DemoError(`${argv.join(' ')}: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`);
    return r.stdout;
  }

  private inNs(ns: string, argv: string[], input?: string): string {
    return this.sh(['ip', 'netns', 'exec', ns, ...argv], input);
  }

  private spawnIn(ns: string, argv: string[]): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    return child;
  }

  /** Builds the two hosts; each thing is recorded as it is made, for cleanup(). */
  private build(secret: string): string {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tbdemo-'));
    this.nfLogWas = fs.readFileSync(NF_LOG_ALL_NETNS, 'utf8').trim();
    /* LOG rules in a namespace other than the host's log nothing without it; put back at the end */
    fs.writeFileSync(NF_LOG_ALL_NETNS, '1');
    for (const ns of [this.srv, this.cli]) {
      this.sh(['ip', 'netns', 'add', ns]);
      this.made.push(ns);
    }
    const [s, c] = [`tbdemo${this.id}a`, `tbdemo${this.id}b`];
    this.sh(['ip', 'link', 'add', s, 'netns', this.srv, 'type', 'veth', 'peer', 'name', c, 'netns', this.cli]);
    for (const [ns, dev, a] of [[this.srv, s, this.server], [this.cli, c, this.client]] as const) {
      this.sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      this.sh(['ip', '-n', ns, 'addr', 'add', `${a.v4}/24`, 'dev', dev]);
      this.sh(['ip', '-n', ns, 'addr', 'add', `${a.v6}/64`, 'dev', dev, 'nodad']);
      this.sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    this.inNs(this.srv, ['nft', '-f', '-'], firewall());
    const config = path.join(this.dir, 'tumblerd.yaml');
    fs.writeFileSync(config, demoConfig(this.dir, secret, this.server), { mode: 0o600 });
    return config;
  }

  private async startService(): Promise<void> {
    const service = this.spawnIn(this.srv, [
      process.execPath,
      '-e',
      `require('net').createServer((s) => { s.on('error', () => {}); s.end('hello from the service behind the firewall\\n'); })` +
        `.listen(${SERVICE_PORT}, '::', () => console.log('ready'))`,
    ]);
    await new Promise<void>((resolve, reject) => {
      service.stdout!.once('data', () => resolve());
      service.once('exit', () => reject(new DemoError('the demo service did not start')));
    });
  }

  private async startDaemon(config: string): Promise<void> {
    const d = this.spawnIn(this.srv, [process.execPath, TUMBLERD, '--config', config]);
    this.daemon = d;
    const collect = (b: Buffer) => {
      for (const line of b.toString().split('\n')) {
        if (!line) continue;
        this.daemonOut += line + '\n';
        if (/door opened|door closed|knock sequence completed|Tumbler knock accepted|matched no door|error/.test(line)) {
          this.say(`    tumblerd | ${line.replace(/^\S+ /, '')}`);
        }
      }
    };
    d.stdout!.on('data', collect);
    d.stderr!.on('data', collect);
    await this.until('tumblerd to start', () => {
      if (d.exitCode !== null) throw new DemoError(`tumblerd exited:\n${this.daemonOut}`);
      return this.daemonOut.includes('tumblerd started');
    }, 15_000);
  }

  private async until(what: string, test: () => boolean | Promise<boolean>, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (await test()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new DemoError(`timed out waiting for ${what}`);
  }

  /** A real TCP connection from the client to the service: the greeting, or null if the firewall drops it. */
  private connect(target: string): Promise<string | null> {
    /* not spawnSync: tumblerd's lines must keep flowing in while the client waits */
    const child = spawn('ip', ['netns', 'exec', this.cli, process.execPath, '-e',
      `const s = require('net').connect({ host: process.argv[1], port: ${SERVICE_PORT} });` +
        `s.on('data', (d) => { process.stdout.write(d); process.exit(0); }); s.on('error', () => process.exit(1));` +
        `setTimeout(() => process.exit(2), 800);`, target], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise((resolve) => child.once('close', (code) => resolve(code === 0 ? out.trim() : null)));
  }

  private async expectOpen(target: string): Promise<void> {
    let greeting: string | null = null;
    await this.until(`the door to open for ${target}`, async () => (greeting = await this.connect(target)) !== null, 10_000);
    this.say(`  ✓ connected to ${target} port ${SERVICE_PORT}: "${greeting}"`);
  }

  private async expectClosed(target: string, when: string): Promise<void> {
    if ((await this.connect(target)) !== null) throw new DemoError(`${target} port ${SERVICE_PORT} answered ${when}`);
    this.say(`  ✓ ${target} port ${SERVICE_PORT} is dark ${when}`);
  }

  private async expectClosesAgain(target: string): Promise<void> {
    const closes = this.daemonOut.split('door closed').length;
    this.say(`  … waiting for close_after (${CLOSE_AFTER_S}s)`);
    await this.until('the door to close', () => this.daemonOut.split('door closed').length > closes, (CLOSE_AFTER_S + 5) * 1000);
    await this.expectClosed(target, 'again: the door closed');
  }

  private async tumbler(...args: string[]): Promise<string> {
    const child = this.spawnIn(this.cli, [process.execPath, TUMBLER, ...args]);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const code = await new Promise((resolve) => child.once('close', resolve));
    if (code !== 0) throw new DemoError(`tumbler ${args[0]} failed: ${out.trim()}`);
    return out.trim();
  }

  async run(): Promise<void> {
    const secret = crypto.randomBytes(12).toString('base64url');
    this.say(`tumblerd demo: two network namespaces, ${this.srv} (server) and ${this.cli} (client); your firewall is not touched`);
    const config = this.build(secret);
    this.say(`  server ${this.server.v4} / ${this.server.v6}: nftables drops everything new and logs it with "${PREFIX.trim()}"; ` +
      `a service listens on port ${SERVICE_PORT}`);
    await this.startService();
    await this.startDaemon(config);
    this.say(`  tumblerd runs in the server on ${config}: door "demo" opens tcp/${SERVICE_PORT} for ${CLOSE_AFTER_S}s ` +
      `to a knock on ${SEQUENCE.join(', ')} or a Tumbler knock`);
    await this.expectClosed(this.server.v4, 'before any knock');

    this.say(`\n1. A classic knock: tumbler knock ${this.server.v4} ${SEQUENCE.join(' ')}`);
    this.say(`  ${await this.tumbler('knock', this.server.v4, ...SEQUENCE.map(String))}`);
    await this.expectOpen(this.server.v4);
    await this.expectClosesAgain(this.server.v4);

    this.say(`\n2. A Tumbler knock: tumbler open tumbler://SECRET@${this.server.v4}/ (one UDP datagram, never answered)`);
    this.say(`  ${await this.tumbler('open', `tumbler://${secret}@${this.server.v4}/`)}`);
    await this.expectOpen(this.server.v4);
    await this.expectClosesAgain(this.server.v4);

    this.say(`\n3. The same over IPv6: tumbler open tumbler://SECRET@[${this.server.v6}]/`);
    this.say(`  ${await this.tumbler('open', `tumbler://${secret}@[${this.server.v6}]/`)}`);
    await this.expectOpen(this.server.v6);
    await this.expectClosed(this.server.v4, 'over IPv4 meanwhile: the door is open for the address that knocked');
    await this.expectClosesAgain(this.server.v6);

    this.say('\ndemo passed: both kinds of knock opened the door and it closed again.');
    this.say('Next: copy config/tumblerd.yaml to /etc/tumblerd.yaml, set up your firewall (README, "Firewall recipes"), run tumblerd doctor.');
  }

  /** Removes everything run() made, in reverse; safe to call twice and after a failed build. */
  async cleanup(): Promise<void> {
    if (this.cleaned) return;
    this.cleaned = true;
    const d = this.daemon;
    if (d && d.exitCode === null && d.signalCode === null) {
      /* SIGTERM: tumblerd closes its doors and removes its sets before it exits */
      const exited = new Promise((r) => d.once('exit', r));
      d.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    }
    for (const c of this.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    /* deleting a namespace takes its veth end, addresses and firewall with it */
    for (const ns of this.made.reverse()) spawnSync('ip', ['netns', 'del', ns]);
    if (this.nfLogWas !== null) fs.writeFileSync(NF_LOG_ALL_NETNS, this.nfLogWas);
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs the demo; 0 if it passed. Ctrl-C and SIGTERM end it with everything removed. */
export async function runDemo(say: (line: string) => void): Promise<number> {
  const why = demoUnavailable();
  if (why) {
    say(`tumblerd demo: ${why}`);
    return 2;
  }
  const demo = new Demo(say);
  const interrupted = async (signal: NodeJS.Signals) => {
    say(`\n${signal}: removing the demo's namespaces`);
    await demo.cleanup();
    process.exit(130);
  };
  const onInt = () => void interrupted('SIGINT');
  const onTerm = () => void interrupted('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await demo.run();
    return 0;
  } catch (err) {
    say(`\ndemo failed: ${(err as Error).message}`);
    if (!(err instanceof DemoError)) throw err;
    return 1;
  } finally {
    await demo.cleanup();
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
    say('cleaned up: the demo namespaces are gone');
  }
}
