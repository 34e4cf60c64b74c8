/**
 * Is a logged packet one that came to this host? With `net.netfilter.nf_log_all_netns=1` every
 * network namespace writes into the same kernel log (an unprivileged user's own user+network
 * namespace included), and a syslog file may hold other hosts' lines: a knock must have come in
 * (`IN=` set, `OUT=` empty) on an interface of the namespace tumblerd runs in, from elsewhere (not
 * loopback, not one of our own addresses), to one of its addresses.
 *
 * `hostRefusal` is the pure rule; `HostFilter` keeps the namespace's interfaces and addresses
 * current (a poll, and a re-read when a packet names one it does not know, at most once a second).
 */
import fs from 'node:fs';
import os from 'node:os';
import { canonicalIPv4, canonicalIPv6 } from '../model/address';

export interface HostView {
  /** null: not checked (scan given addresses only). */
  interfaces: ReadonlySet<string> | null;
  /** Canonical addresses of those interfaces; null: not checked. */
  addresses: ReadonlySet<string> | null;
  loopback: ReadonlySet<string>;
}

/** What the host check reads of a packet (a PacketEvent has it; the byte path gives it without one). */
export interface HostFacts {
  iface: string;
  out?: string;
  dst: string;
  src: string;
}

export type HostRefusal =
  /** `IN=` empty: a packet this host sent (OUTPUT chain). */
  | 'outgoing'
  /** `OUT=` set: a packet routed through (FORWARD chain), or sent. */
  | 'forwarded'
  /** Came in on an interface this namespace does not have: logged by another namespace or host. */
  | 'foreign interface'
  /** Came in on loopback, where only this host's own packets arrive. */
  | 'loopback'
  /** Sent to an address that is not ours. */
  | 'foreign address'
  /** Sent from one of our own addresses. */
  | 'own source'
  /** Not on one of the interfaces the `interfaces:` setting lists. */
  | 'interface not listed';

/**
 * Why a packet is not a knock for this host, or null. Without a view only the direction is
 * checked (what `scan` does for logs of unknown origin); `only` narrows the interfaces further.
 */
export function hostRefusal(e: HostFacts, view: HostView | null, only: ReadonlySet<string> | null = null): HostRefusal | null {
  if (e.iface === '') return 'outgoing';
  if (e.out) return 'forwarded';
  if (only && !only.has(e.iface)) return 'interface not listed';
  if (!view) return null;
  if (view.interfaces && !view.interfaces.has(e.iface)) return 'foreign interface';
  if (view.loopback.has(e.iface)) return 'loopback';
  if (view.addresses && !view.addresses.has(e.dst)) return 'foreign address';
  if (view.addresses?.has(e.src)) return 'own source';
  return null;
}

/** A view from lists (for `scan --address/--interface`): an empty list checks nothing of its kind. */
export function staticView(interfaces: string[], addresses: string[]): HostView | null {
  if (interfaces.length === 0 && addresses.length === 0) return null;
  const canon = addresses.map((a) => {
    const c = canonicalIPv4(a) ?? canonicalIPv6(a);
    if (!c) throw new Error(`"${a}" is not an IP address`);
    return c;
  });
  return {
    interfaces: interfaces.length > 0 ? new Set(interfaces) : null,
    addresses: canon.length > 0 ? new Set(canon) : null,
    loopback: new Set(['lo']),
  };
}

/** The interfaces and addresses of the network namespace this process runs in. */
export function readHostView(): HostView {
  const interfaces = new Set<string>();
  const addresses = new Set<string>();
  const loopback = new Set<string>(['lo']);
  /* /proc/net is this process's namespace; it lists interfaces that have no address too */
  try {
    for (const line of fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
      const colon = line.indexOf(':');
      if (colon > 0) interfaces.add(line.slice(0, colon).trim());
    }
  } catch {
    /* not Linux: the addresses' interfaces below are all we know */
  }
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    interfaces.add(name);
    for (const a of list ?? []) {
      const c = a.family === 'IPv4' ? canonicalIPv4(a.address) : canonicalIPv6(a.address);
      if (c) addresses.add(c);
      if (a.internal) loopback.add(name);
    }
  }
  return { interfaces, addresses, loopback };
}

const POLL_MS = 5000;
const REREAD_AT_MOST_EVERY_MS = 1000;

export class HostFilter {
  private view: HostView;
  private readAt: number;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private only: ReadonlySet<string> | null,
    private readonly read: () => HostView = readHostView,
    private readonly clock: () => number = Date.now,
  ) {
    this.view = read();
    this.readAt = clock();
  }

  start(): void {
    this.timer = setInterval(() => this.reread(), POLL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The `interfaces:` setting changed (a reload). */
  setOnly(only: ReadonlySet<string> | null): void {
    this.only = only;
  }

  /** Why `e` is not for this host, or null. */
  refuse(e: HostFacts): HostRefusal | null {
    const r = hostRefusal(e, this.view, this.only);
    /* an address or interface added since the last read: read again before refusing */
    if ((r === 'foreign interface' || r === 'foreign address') && this.clock() - this.readAt >= REREAD_AT_MOST_EVERY_MS) {
      this.reread();
      return hostRefusal(e, this.view, this.only);
    }
    return r;
  }

  private reread(): void {
    this.view = this.read();
    this.readAt = this.clock();
  }
}

/** The `interfaces:` setting as the filter wants it. */
export function interfaceSet(list: string[] | undefined): ReadonlySet<string> | null {
  return list && list.length > 0 ? new Set(list) : null;
}

/**
 * `net.netfilter.nf_log_all_netns`: when 1, every network namespace's LOG rules write into this
 * kernel log. Only the first namespace has the setting; in any other (a container), the firewall's
 * own LOG lines reach the log only if it is 1, so it is taken to be.
 */
export function otherNamespacesLog(file = '/proc/sys/net/netfilter/nf_log_all_netns'): boolean {
  try {
    return fs.readFileSync(file, 'utf8').trim() === '1';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync('/proc/sys/net/netfilter');
  }
}

export const ALL_NETNS_WARNING =
  'net.netfilter.nf_log_all_netns is 1 (or tumblerd runs in a network namespace other than the first, whose LOG lines reach the log only then): every network namespace on this host writes LOG lines into the kernel log, ' +
  "including one an unprivileged user makes (unshare -rn) with its own log rule. tumblerd refuses lines for interfaces and addresses that are not this namespace's, " +
  'but a user who recreates this namespace\'s interface name and address inside their own can still forge a knock: set it to 0 where no container firewall needs it, ' +
  'or forbid unprivileged user namespaces (user.max_user_namespaces=0), or use Tumbler knocks';
