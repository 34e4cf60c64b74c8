/**
 * A fleet lab: a hub namespace with a bridge and a real redis-server, gateways each in a
 * namespace of its own (default-drop firewall, the protected service, tumblerd with `allow:`),
 * and a client namespace with several addresses, all on one bridged /24. Everything it makes is
 * recorded and undone by destroy(), which tests call from afterAll.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SERVICE_PORT, TUMBLER_PORT, waitFor } from './lab';

let fleetLabs = 0;

/** A TCP port free on 127.0.0.1 now, for a server of a test's own (never Redis's default 6379). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Why a fleet lab cannot run here, or null. */
export function fleetLabUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'not root: network namespaces and firewalls need root';
  for (const c of ['ip', 'iptables', 'ipset', 'redis-server', 'redis-cli']) {
    if (spawnSync('sh', ['-c', `command -v ${c}`]).status !== 0) return `${c} is not installed (bash .ci/run installs it)`;
  }
  return null;
}

export class FleetLab {
  readonly id: string;
  readonly hub: string;
  readonly cli: string;
  readonly net: number;
  /** Not Redis's default port: a Redis someone runs on this machine is never touched. */
  readonly redisPort = 7391;
  dir = '';
  private readonly gateways: string[] = [];
  private readonly procs: ChildProcess[] = [];
  private redis: ChildProcess | null = null;
  private redisArgs: string[] = [];
  /** The default user's: the lab's administrator (and the attacker who can write to Redis). */
  private readonly adminPassword = crypto.randomBytes(12).toString('hex');

  constructor() {
    fleetLabs++;
    this.id = `${process.pid % 10000}${fleetLabs}`;
    this.hub = `fleet${this.id}h`;
    this.cli = `fleet${this.id}c`;
    this.net = 100 + ((process.pid + fleetLabs) % 150);
  }

  get redisIp(): string {
    return `10.79.${this.net}.1`;
  }
  /** The client's addresses: one per scenario, so that each knock is a different one. */
  clientIp(n: number): string {
    return `10.79.${this.net}.${2 + n}`;
  }
  gatewayIp(i: number): string {
    return `10.79.${this.net}.${101 + i}`;
  }
  gatewayNs(i: number): string {
    return this.gateways[i];
  }

  sh(args: string[], input?: string): string {
    return execFileSync(args[0], args.slice(1), { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], input });
  }

  /** Builds the hub, `gateways` gateway hosts and a client with `clientAddresses` addresses. */
  up(gateways: number, clientAddresses: number): this {
    if (clientAddresses > 90 || gateways > 100) throw new Error('the lab has room for 90 client addresses and 100 gateways');
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-fleet-lab-'));
    fs.chmodSync(this.dir, 0o755);
    const br = `fbr${this.id}`;
    this.sh(['ip', 'netns', 'add', this.hub]);
    this.sh(['ip', '-n', this.hub, 'link', 'set', 'lo', 'up']);
    this.sh(['ip', '-n', this.hub, 'link', 'add', br, 'type', 'bridge']);
    this.sh(['ip', '-n', this.hub, 'addr', 'add', `${this.redisIp}/24`, 'dev', br]);
    this.sh(['ip', '-n', this.hub, 'link', 'set', br, 'up']);
    const attach = (ns: string, tag: string, addrs: string[]) => {
      const inner = `fv${this.id}${tag}`;
      const outer = `fh${this.id}${tag}`;
      this.sh(['ip', 'netns', 'add', ns]);
      this.sh(['ip', 'link', 'add', inner, 'type', 'veth', 'peer', 'name', outer]);
      this.sh(['ip', 'link', 'set', inner, 'netns', ns]);
      this.sh(['ip', 'link', 'set', outer, 'netns', this.hub]);
      this.sh(['ip', '-n', this.hub, 'link', 'set', outer, 'master', br]);
      this.sh(['ip', '-n', this.hub, 'link', 'set', outer, 'up']);
      this.sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      for (const a of addrs) this.sh(['ip', '-n', ns, 'addr', 'add', `${a}/24`, 'dev', inner]);
      this.sh(['ip', '-n', ns, 'link', 'set', inner, 'up']);
    };
    attach(this.cli, 'c', Array.from({ length: clientAddresses }, (_, n) => this.clientIp(n)));
    for (let i = 0; i < gateways; i++) {
      const ns = `fleet${this.id}g${i + 1}`;
      attach(ns, `g${i + 1}`, [this.gatewayIp(i)]);
      this.gateways.push(ns);
      const fw = (...a: string[]) => this.sh(['ip', 'netns', 'exec', ns, 'iptables', ...a]);
      fw('-P', 'INPUT', 'DROP');
      fw('-A', 'INPUT', '-i', 'lo', '-j', 'ACCEPT');
      fw('-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT');
      fw('-A', 'INPUT', '-p', 'udp', '--dport', String(TUMBLER_PORT), '-j', 'ACCEPT');
      this.spawn(ns, [process.execPath, '-e',
        `require('net').createServer((s) => { s.on('error', () => {}); s.write('hello\\n'); s.end(); }).listen(${SERVICE_PORT}, '0.0.0.0')`]);
    }
    return this;
  }

  /** Runs a long-lived process inside a namespace; destroy() kills it. */
  spawn(ns: string, argv: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.procs.push(child);
    return child;
  }

  /**
   * Starts redis-server in the hub, its data in the lab's folder, every write on disk before it
   * answers (so that a SIGKILL loses no claim). Resolves when it answers PING.
   */
  async startRedis(extra: string[] = []): Promise<void> {
    this.redisArgs = [
      'redis-server', '--bind', this.redisIp, '--port', String(this.redisPort), '--dir', this.dir,
      '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--daemonize', 'no',
      '--requirepass', this.adminPassword, ...extra,
    ];
    await this.restartRedis();
  }

  async restartRedis(): Promise<void> {
    const child = this.spawn(this.hub, this.redisArgs);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    this.redis = child;
    await waitFor('redis-server to listen', () => {
      if (child.exitCode !== null) throw new Error(`redis-server exited:\n${out}`);
      return out.includes('Ready to accept connections');
    });
  }

  /** Kills redis-server the hard way (no shutdown, no save). */
  async killRedis(): Promise<void> {
    const r = this.redis;
    if (!r || r.exitCode !== null) return;
    const gone = new Promise((res) => r.once('exit', res));
    /* `ip netns exec` execs redis-server: the child's pid is the server's */
    r.kill('SIGKILL');
    await gone;
  }

  /** redis-cli in the hub, as the administrator. */
  redisCli(...args: string[]): string {
    return this.redisCliAs('default', this.adminPassword, ...args);
  }

  redisCliAs(user: string, password: string, ...args: string[]): string {
    return this.sh([
      'ip', 'netns', 'exec', this.hub, 'redis-cli', '-h', this.redisIp, '-p', String(this.redisPort),
      '--user', user, '--pass', password, '--no-auth-warning', ...args,
    ]);
  }

  /** Sends one UDP datagram with exactly these bytes from a client address. */
  udp(from: string, target: string, payload: Buffer): void {
    const script =
      `const s = require('dgram').createSocket('udp4');` +
      `s.bind(0, '${from}', () => s.send(Buffer.from('${payload.toString('hex')}', 'hex'), ${TUMBLER_PORT}, '${target}', () => s.close()));`;
    this.sh(['ip', 'netns', 'exec', this.cli, process.execPath, '-e', script]);
  }

  /** Can the client reach the protected service on gateway `i` from `from`? */
  connects(i: number, from: string): boolean {
    const script =
      `const s = require('net').connect({ host: '${this.gatewayIp(i)}', port: ${SERVICE_PORT}, localAddress: '${from}' });` +
      `s.on('data', () => process.exit(0)); s.on('error', () => process.exit(1)); setTimeout(() => process.exit(2), 700);`;
    return spawnSync('ip', ['netns', 'exec', this.cli, process.execPath, '-e', script]).status === 0;
  }

  destroy(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    for (const ns of [...this.gateways, this.cli, this.hub]) spawnSync('ip', ['netns', 'del', ns]);
    if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
