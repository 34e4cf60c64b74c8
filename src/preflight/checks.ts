/**
 * Every way a setup can be dead while the daemon looks alive, as a named check that says what
 * is wrong and how to fix it. `tumblerd doctor` prints them all, `tumblerd --check` and the
 * daemon's start print the ones that are not OK. The checks only look, through a PreflightEnv,
 * so they are tested on recorded outputs and run the same everywhere.
 */
import type { TumblerdConfig } from '../config/types';
import { formatListen } from '../model/address';
import { TCP_FLAGS } from '../model/packet';
import type { FlagFilter } from '../model/door';
import { PrefixCensus, netfilterPrefixOf } from '../netfilter/prefixCensus';
import { PreflightEnv, hostEnv } from './env';
import { CheckResult, PreflightCheck } from './preflight';
import { Family, FwRule, InputPath, InputView, allRules, coversProto, inputPath, parseIptablesSave, parseNftJson, samePrefix } from './ruleset';

const ok = (message: string): CheckResult => ({ status: 'ok', message });
const warn = (message: string, fix?: string): CheckResult => ({ status: 'warn', message, fix });
const fail = (message: string, fix?: string): CheckResult => ({ status: 'fail', message, fix });
/** A check says nothing ([]) where it does not apply; else one result, or one per problem. */
type Outcome = CheckResult | CheckResult[];

function check(name: string, run: (config: TumblerdConfig, env: PreflightEnv) => Outcome | Promise<Outcome>): PreflightCheck {
  return {
    name,
    async run(config, env = hostEnv()) {
      const r = await run(config, env);
      return Array.isArray(r) ? r : [r];
    },
  };
}

/* ---- the host's firewall, read once per env ---- */

export interface HostFirewall {
  views: InputView[];
  /** `iptables --version`: which iptables this host runs, if any. */
  iptablesVariant: 'nf_tables' | 'legacy' | null;
  /** Rules in the other iptables (legacy beside nf_tables, or the reverse) that this iptables does not show. */
  otherIptablesHasRules: boolean;
  /** Why part of the ruleset could not be read (not root, tools missing). */
  unreadable: string[];
}

const firewalls = new WeakMap<PreflightEnv, HostFirewall>();

const hasRules = (save: string) => /^-A /m.test(save) || /^:INPUT DROP/m.test(save);

export function readHostFirewall(env: PreflightEnv): HostFirewall {
  const cached = firewalls.get(env);
  if (cached) return cached;
  const fw: HostFirewall = { views: [], iptablesVariant: null, otherIptablesHasRules: false, unreadable: [] };
  const version = env.run(['iptables', '--version']);
  if (version.status === 0) fw.iptablesVariant = version.stdout.includes('legacy') ? 'legacy' : 'nf_tables';
  const iptFilterTables: string[] = [];
  for (const family of [4, 6] as Family[]) {
    const tool = family === 4 ? 'iptables-save' : 'ip6tables-save';
    const out = env.run([tool]);
    if (out.status === null) continue;
    if (out.status !== 0) {
      fw.unreadable.push(`${tool}: ${out.stderr.trim().split('\n')[0] || `exit ${out.status}`}`);
      continue;
    }
    if (/legacy tables present/.test(out.stdout + out.stderr)) fw.otherIptablesHasRules = true;
    const view = parseIptablesSave(out.stdout, family);
    if (view) {
      fw.views.push(view);
      if (fw.iptablesVariant === 'nf_tables') iptFilterTables.push(family === 4 ? 'ip filter' : 'ip6 filter');
    }
  }
  if (fw.iptablesVariant) {
    const other = env.run([fw.iptablesVariant === 'legacy' ? 'iptables-nft-save' : 'iptables-legacy-save']);
    if (other.status === 0 && hasRules(other.stdout)) fw.otherIptablesHasRules = true;
  }
  const nft = env.run(['nft', '-j', 'list', 'ruleset']);
  if (nft.status === 0) fw.views.push(...parseNftJson(nft.stdout, iptFilterTables));
  else if (nft.status !== null) fw.unreadable.push(`nft: ${nft.stderr.trim().split('\n')[0]}`);
  firewalls.set(env, fw);
  return fw;
}

const familyName = (f: Family) => (f === 4 ? 'IPv4' : 'IPv6');
const prefixesOf = (config: TumblerdConfig) => [...new Set(config.sources.flatMap((s) => s.prefixes))];
const sequenceDoors = (config: TumblerdConfig) => config.doors.filter((d) => d.sequence);

/** The first LOG rule with one of the prefixes that a packet can reach, per input path. */
function reachedLog(path: InputPath, prefixes: string[]): { rule: FwRule; index: number } | null {
  const index = path.reached.findIndex((r) => r.rule.action === 'log' && prefixes.some((p) => samePrefix(r.rule.logPrefix ?? '', p)));
  return index < 0 ? null : { rule: path.reached[index].rule, index };
}

function logRuleFix(prefix: string, family: Family): string {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  return (
    `log what the firewall drops, before the drop: ${tool} -A INPUT -j LOG --log-prefix "${prefix}" --log-level warning ` +
    `(or in nft: log prefix "${prefix}" level warn, as the input chain's last rule); README "Firewall recipes"`
  );
}

const logRule = check('log-rule', (config, env) => {
  if (sequenceDoors(config).length === 0) return []; // no door has a knock sequence: nothing needs the firewall log
  const fw = readHostFirewall(env);
  const prefixes = prefixesOf(config);
  const shown = prefixes.map((p) => `"${p}"`).join(' or ');
  if (fw.views.length === 0) {
    return warn(`cannot read the firewall's ruleset${fw.unreadable.length ? ` (${fw.unreadable.join('; ')})` : ''}`, 'run tumblerd doctor as root');
  }
  const found: string[] = [];
  const problems: CheckResult[] = [];
  for (const family of [4, 6] as Family[]) {
    const views = fw.views.filter((v) => v.family === family);
    const paths = views.map(inputPath);
    const hit = paths.map((p) => reachedLog(p, prefixes)).find((h) => h);
    if (hit) {
      found.push(`${hit.rule.where} (${familyName(family)})`);
      continue;
    }
    const late = views.flatMap(allRules).find((r) => r.action === 'log' && prefixes.some((p) => samePrefix(r.logPrefix ?? '', p)));
    const drop = paths.find((p) => p.dropRule)?.dropRule;
    const message = late
      ? `${familyName(family)}: ${late.where} logs with ${shown} but no packet reaches it${drop ? ` (${drop.where} drops first)` : ''}`
      : `${familyName(family)}: no firewall rule logs with ${shown}${views.length ? '' : ' (no input chain)'}: knocks are never seen`;
    /* classic knocks are mostly IPv4; an IPv6 hole is worth a warning, an IPv4 one kills every door */
    problems.push(family === 4 ? fail(message, logRuleFix(prefixes[0], 4)) : warn(message, logRuleFix(prefixes[0], 6)));
  }
  const failed = problems.find((p) => p.status === 'fail') ?? problems[0];
  if (failed) return { ...failed, message: [failed.message, ...problems.filter((p) => p !== failed).map((p) => p.message), ...found.map((f) => `${f} logs`)].join('; ') };
  return ok(`${found.join(', ')} log with ${shown}`);
});

/** Would this door count a plain SYN as a knock? If not, its knocks are first packets conntrack calls INVALID. */
const acceptsPlainSyn = (f: FlagFilter) => (TCP_FLAGS.SYN & f.require) === f.require && (TCP_FLAGS.SYN & f.forbid) === 0;

const tcpflagsLog = check('tcpflags-log', (config, env) => {
  const doors = sequenceDoors(config).filter((d) => d.sequence!.some((k) => k.proto === 'tcp') && !acceptsPlainSyn(d.flags));
  if (doors.length === 0) return []; // every door knocks with SYNs, which conntrack calls NEW
  const prefixes = prefixesOf(config);
  const names = doors.map((d) => d.name).join(', ');
  const fix =
    `log INVALID packets too, before any ctstate filter: iptables -I INPUT -m conntrack --ctstate INVALID -j LOG --log-prefix "${prefixes[0]}" ` +
    `--log-level warning (nft: ct state invalid log prefix "${prefixes[0]}" level warn)`;
  for (const path of readHostFirewall(env).views.filter((v) => v.family === 4).map(inputPath)) {
    const hit = reachedLog(path, prefixes);
    if (!hit) continue;
    if (hit.rule.ctstates && !hit.rule.ctstates.includes('invalid')) {
      return fail(`door(s) ${names} knock with non-SYN packets, which conntrack marks INVALID; ${hit.rule.where} logs only ${hit.rule.ctstates.join(',')}`, fix);
    }
    const dropInvalid = path.reached.slice(0, hit.index).find((r) => r.rule.action === 'drop' && r.rule.ctstates?.includes('invalid'));
    if (dropInvalid) return fail(`door(s) ${names} knock with non-SYN packets, which conntrack marks INVALID; ${dropInvalid.rule.where} drops them before ${hit.rule.where} logs`, fix);
    return ok(`${hit.rule.where} logs the non-SYN knocks of ${names}`);
  }
  return []; // no LOG rule with the prefix (see log-rule)
});

const RECENT_FILE_BYTES = 1 << 20;

/** Recent kernel lines from a source, or why they could not be read. */
function recentLines(source: TumblerdConfig['sources'][number], env: PreflightEnv): string[] | string {
  try {
    if (source.kind === 'file') return env.tail(source.path, RECENT_FILE_BYTES);
    if (source.kind === 'kmsg') return env.kmsgRecords(source.path);
    const out = env.run(['journalctl', '-k', '-n', '5000', '-o', 'short-iso', '--no-pager']);
    return out.status === 0 ? out.stdout.split('\n') : `journalctl: ${out.stderr.trim() || 'not installed'}`;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  }
}

function sourceName(s: TumblerdConfig['sources'][number]): string {
  return s.kind === 'journald' ? 'journald' : `${s.kind} ${s.path}`;
}

const logSource = check('log-source', (config, env) => {
  if (config.sources.length === 0) return []; // no log source configured
  const bad: CheckResult[] = [];
  for (const s of config.sources) {
    if (s.kind === 'journald') {
      const out = env.run(['journalctl', '-k', '-n', '1', '-o', 'json', '--no-pager']);
      if (out.status === null) bad.push(fail('journald: journalctl is not installed', 'use kmsg: /dev/kmsg instead'));
      else if (out.status !== 0 || !out.stdout.includes('"_TRANSPORT":"kernel"')) {
        bad.push(fail(`journald: no kernel messages (${(out.stderr.trim() || 'none found').split('\n')[0]}): is systemd-journald running here?`, 'use kmsg: /dev/kmsg instead'));
      }
      continue;
    }
    const problem = env.readProblem(s.path);
    if (problem === null) continue;
    if (problem === 'ENOENT') {
      bad.push(
        s.kind === 'file'
          ? fail(`${s.path} does not exist: tumblerd would wait for it forever (no rsyslog on this host?)`, 'use kmsg: /dev/kmsg (needs no syslog daemon), or install rsyslog')
          : fail(`${s.path} does not exist`, 'the kernel log device is /dev/kmsg'),
      );
    } else if (s.kind === 'kmsg' && (problem === 'EPERM' || problem === 'EACCES')) {
      bad.push(fail(`${s.path}: ${problem}: reading the kernel log needs CAP_SYSLOG (kernel.dmesg_restrict=1)`, 'run as root, or give the service AmbientCapabilities=CAP_SYSLOG'));
    } else {
      bad.push(fail(`${sourceName(s)}: cannot read it: ${problem}`, 'run tumblerd as a user that can read it (root, or the adm group for syslog files)'));
    }
  }
  if (bad.length) return { ...bad[0], message: bad.map((b) => b.message).join('; ') };
  return ok(`${config.sources.map(sourceName).join(', ')} readable`);
});

const prefixSeen = check('prefix-seen', (config, env) => {
  if (config.sources.length === 0) return []; // no log source configured
  const census = new PrefixCensus();
  let readable = 0;
  for (const s of config.sources) {
    const lines = recentLines(s, env);
    if (typeof lines === 'string') continue;
    readable++;
    for (const l of lines) census.add(l);
  }
  if (readable === 0) return []; // no source could be read (see log-source)
  const prefixes = prefixesOf(config);
  const ours = census.matching(prefixes);
  const others = census.others(prefixes);
  const otherText = others.slice(0, 5).map((o) => `"${o.prefix}" (${o.lines})`).join(', ');
  if (ours > 0) return ok(`${ours} recent kernel line(s) carry ${prefixes.map((p) => `"${p.trimEnd()}"`).join(' or ')}`);
  if (others.length > 0) {
    return warn(
      `recent netfilter lines carry other prefixes: ${otherText}; none carries ${prefixes.map((p) => `"${p.trimEnd()}"`).join(' or ')}`,
      `set sources[].prefix to the prefix your LOG rule uses, or change the rule's --log-prefix`,
    );
  }
  return warn('no netfilter line in the recent kernel log: nothing was dropped lately, or nothing logs', 'knock once (tumbler knock HOST PORT) and run tumblerd doctor again');
});

function wantedBackend(config: TumblerdConfig, env: PreflightEnv): 'iptables' | 'nftables' | null {
  if (!config.doors.some((d) => d.allow.length > 0)) return null;
  return config.firewall ?? (env.which('ipset') && env.which('iptables') ? 'iptables' : 'nftables');
}

const usesIptablesCommands = (config: TumblerdConfig) =>
  config.doors.some((d) => [...d.open, ...d.close, ...d.open6, ...d.close6].some((c) => /^(ip6?tables)$/.test(c[0]?.split('/').pop() ?? '')));

const firewallBackend = check('firewall-backend', (config, env) => {
  const backend = wantedBackend(config, env);
  const iptables = backend === 'iptables' || usesIptablesCommands(config);
  if (!backend && !iptables) return []; // tumbler does not change the firewall (no allow:, no iptables commands)
  const fw = readHostFirewall(env);
  if (iptables) {
    if (!env.which('iptables')) return fail('doors use iptables, which is not installed', 'apt-get install iptables, or use firewall: nftables');
    if (fw.otherIptablesHasRules) {
      const other = fw.iptablesVariant === 'legacy' ? 'nf_tables' : 'legacy';
      return fail(
        `this host has rules in iptables-${other}, but iptables here is the ${fw.iptablesVariant} variant: what tumbler adds lands in the other ruleset and opens nothing`,
        `use the host's variant: update-alternatives --set iptables /usr/sbin/iptables-${other} (and ip6tables)`,
      );
    }
    if (backend === 'iptables' && !env.which('ipset')) return fail('firewall: iptables needs ipset, which is not installed', 'apt-get install ipset');
    if (fw.iptablesVariant === 'nf_tables') {
      /* iptables-nft's accept lives in its own table: a drop in a native nftables table still drops */
      const nativeDrop = fw.views.find((v) => v.origin.startsWith('nft ') && inputPath(v).dropsByDefault);
      if (nativeDrop) {
        return fail(
          `${nativeDrop.origin} drops by default, and an accept that iptables adds (in its own table) cannot override it`,
          `use firewall: nftables with nftables.table/nftables.chain naming that chain, and nft commands in doors`,
        );
      }
    }
  }
  if (backend === 'nftables') {
    if (!env.which('nft')) return fail('firewall: nftables needs nft, which is not installed', 'apt-get install nftables');
    if (fw.iptablesVariant === 'legacy' && fw.views.some((v) => v.origin === 'iptables' && inputPath(v).dropsByDefault)) {
      return fail('the host filters with iptables-legacy: an nftables accept cannot override its drop', 'use firewall: iptables');
    }
  }
  return ok(`${backend ?? 'iptables commands'}${fw.iptablesVariant ? ` (iptables is the ${fw.iptablesVariant} variant)` : ''} matches the host's firewall`);
});

const icmpv6 = check('icmpv6', (_config, env) => {
  if (env.sysctl('net/ipv6/conf/all/disable_ipv6') === '1') return []; // IPv6 is disabled
  const views = readHostFirewall(env).views.filter((v) => v.family === 6);
  for (const path of views.map(inputPath)) {
    if (!path.dropsByDefault) continue;
    const accepted = path.reached.some((r) => r.rule.action === 'accept' && r.rule.protos?.includes('ipv6-icmp'));
    if (!accepted) {
      return fail(
        `${path.view.origin} drops ICMPv6, neighbour discovery with it: IPv6 stops working on this host`,
        path.view.origin === 'ip6tables' ? 'ip6tables -I INPUT -p ipv6-icmp -j ACCEPT' : 'add "meta l4proto ipv6-icmp accept" before the drop',
      );
    }
  }
  return views.length ? ok('ICMPv6 is accepted') : []; // no IPv6 input firewall
});

const NF_LOG_ALL_NETNS = 'net/netfilter/nf_log_all_netns';

const nfLogAllNetns = check('nf-log-all-netns', (config, env) => {
  if (sequenceDoors(config).length === 0) return []; // no door has a knock sequence
  const initial = env.inInitialNetns();
  if (initial === true) return ok("tumblerd runs in the host's network namespace, where LOG rules log");
  const value = env.sysctl(NF_LOG_ALL_NETNS) ?? env.hostSysctl(NF_LOG_ALL_NETNS);
  const fix = 'on the host: sysctl -w net.netfilter.nf_log_all_netns=1, and put it in /etc/sysctl.d/ to keep it';
  if (value === '1') return ok('nf_log_all_netns is 1: LOG rules in this network namespace log');
  if (value === '0') return fail('tumblerd runs in a network namespace of its own, where LOG rules log nothing while nf_log_all_netns is 0', fix);
  /* the host's value is out of sight (a container): a recent line logged here answers the question */
  const here = new Set(env.interfaces());
  const prefixes = prefixesOf(config).map((p) => p.trimEnd());
  for (const s of config.sources) {
    const lines = recentLines(s, env);
    if (typeof lines === 'string') continue;
    const seen = lines.find((l) => prefixes.includes(netfilterPrefixOf(l) ?? '\0') && here.has(/ IN=(\S+)/.exec(l)?.[1] ?? ''));
    if (seen) return ok(`LOG rules in this network namespace log: a recent line with the prefix came in on ${/ IN=(\S+)/.exec(seen)![1]}`);
  }
  return warn("tumblerd runs in a network namespace of its own; cannot read the host's nf_log_all_netns, which must be 1 for LOG rules here to log, and no recent line with the prefix came in here", fix);
});

const doorPrograms = check('door-programs', (config, env) => {
  const missing: string[] = [];
  let count = 0;
  for (const d of config.doors) {
    for (const c of [...d.open, ...d.close, ...d.open6, ...d.close6]) {
      const program = c[0];
      if (!program || program.includes('%')) continue;
      count++;
      if (!env.which(program)) missing.push(`${d.name}: ${program}`);
    }
  }
  if (missing.length) return fail(`door commands name programs that cannot be run: ${[...new Set(missing)].join(', ')}`, 'install them, or give the full path of an executable');
  return count ? ok(`every door program is installed (${count} command(s))`) : []; // no door runs commands
});

const nftablesChain = check('nftables-chain', (config, env) => {
  if (wantedBackend(config, env) !== 'nftables') return []; // the nftables backend is not used
  const [family, table] = config.nftables.table.split(' ');
  const where = `${config.nftables.table} ${config.nftables.chain}`;
  const out = env.run(['nft', '-j', 'list', 'chain', family, table, config.nftables.chain]);
  const fix =
    `create it (nft add table ${config.nftables.table}; nft add chain ${where} '{ type filter hook input priority 0; }'), ` +
    `or set nftables.table and nftables.chain to your input chain`;
  if (out.status !== 0) return fail(`nftables chain ${where} does not exist: tumbler cannot add its sets and jump`, fix);
  const chain = (JSON.parse(out.stdout).nftables as Record<string, Record<string, unknown>>[]).find((i) => i.chain)?.chain;
  if (chain?.hook !== 'input') return fail(`${where} exists but is not hooked to input: the jump tumbler adds there is never taken`, fix);
  return ok(`${where} exists and filters input`);
});

function acceptsUdp(path: InputPath, port: number): boolean {
  if (!path.dropsByDefault) return true;
  return path.reached.some((r) => r.rule.action === 'accept' && coversProto(r.rule, 'udp') && r.rule.dports?.includes(port));
}

const listener = check('listener', async (config, env) => {
  const listen = config.tumbler.listen;
  if (listen.length === 0) return []; // no Tumbler listener
  const problems: CheckResult[] = [];
  for (const l of listen) {
    const problem = await env.bindProblem(l.host, l.port);
    /* EADDRINUSE: the daemon itself (preflight runs after it binds), or one running while doctor does;
     * the default [::] on a kernel without IPv6 is left out, which the daemon says when it starts */
    if (problem === 'EAFNOSUPPORT' && l.ifAvailable) continue;
    if (problem && problem !== 'EADDRINUSE') problems.push(fail(`cannot listen on udp ${l.host}:${l.port}: ${problem}`, 'listen on an address of this host, or on 0.0.0.0 / [::]'));
  }
  const families = new Set(listen.map((l) => (l.host.includes(':') ? 6 : 4) as Family));
  /* only a wildcard listener is meant for every client; 127.0.0.1 or one address is a choice */
  if (!families.has(6) && listen.some((l) => l.host === '0.0.0.0') && env.hasRoutableIPv6()) {
    problems.push(warn('this host has IPv6 addresses but Tumbler listens on IPv4 only: IPv6 clients knock into nothing', `add "[::]:${listen[0].port}" to tumbler.listen`));
  }
  const views = readHostFirewall(env).views;
  for (const l of listen) {
    const family: Family = l.host.includes(':') ? 6 : 4;
    const blocking = views.filter((v) => v.family === family).map(inputPath).find((p) => !acceptsUdp(p, l.port));
    if (blocking) {
      problems.push(
        fail(
          `${blocking.view.origin} drops udp/${l.port} (${familyName(family)}) before it reaches the Tumbler listener`,
          `${family === 4 ? 'iptables' : 'ip6tables'} -I INPUT -p udp --dport ${l.port} -j ACCEPT (tumblerd never answers, the port stays dark)`,
        ),
      );
    }
  }
  const worst = problems.find((p) => p.status === 'fail') ?? problems[0];
  if (worst) return { ...worst, message: problems.map((p) => p.message).join('; ') };
  return ok(`Tumbler knocks reach ${listen.map((l) => formatListen(l.host, l.port)).join(' and ')}`);
});

/** Every check, in the order a sysadmin would fix things. */
export const HOST_CHECKS: readonly PreflightCheck[] = [
  logSource,
  nfLogAllNetns,
  firewallBackend,
  logRule,
  tcpflagsLog,
  prefixSeen,
  icmpv6,
  nftablesChain,
  doorPrograms,
  listener,
];
