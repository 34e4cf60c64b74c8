/**
 * The host's input firewall as the checks need to see it: `iptables-save`, `ip6tables-save` and
 * `nft -j list ruleset` turned into one small model (per family, the rules a packet meets on its
 * way in, in order), and the questions the checks ask of it. Pure: text in, answers out.
 *
 * The model is deliberately coarse: a rule is "guarded" when it matches anything at all, so an
 * answer such as "a LOG rule is reached before the drop" holds for some packets, not all.
 */
export type Family = 4 | 6;

export type Action = 'accept' | 'drop' | 'log' | 'jump' | 'goto' | 'return' | 'other';

export interface FwRule {
  /** Where it is, for messages: `iptables INPUT #4`, `nft inet filter input #7`. */
  where: string;
  /** The rule as the tool printed it (iptables) or a short rendering (nft). */
  text: string;
  /** Matches something: applies to some packets only. */
  guarded: boolean;
  action: Action;
  /** jump/goto target chain. */
  target?: string;
  logPrefix?: string;
  /** conntrack states the rule is limited to, lower case; null when it does not look at them. */
  ctstates: string[] | null;
  /** Layer-4 protocols it is limited to (`tcp`, `udp`, `icmp`, `ipv6-icmp`), or null. */
  protos: string[] | null;
  /** Destination ports it is limited to, or null. */
  dports: number[] | null;
  /** Family a rule in an inet chain is limited to, or null. */
  family: Family | null;
}

export interface InputView {
  family: Family;
  /** `iptables`, `ip6tables` or `nft inet filter`: for messages. */
  origin: string;
  /** The input hook's chain, and every chain it can jump to. */
  chains: Map<string, FwRule[]>;
  entry: string;
  policy: 'accept' | 'drop';
}

/** Splits an iptables-save rule into words, keeping quoted strings (`--log-prefix "FW: "`) whole. */
export function splitIptablesWords(line: string): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ') i++;
    if (i >= line.length) break;
    let word = '';
    if (line[i] === '"') {
      i++;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) i++;
        word += line[i++];
      }
      i++;
    } else {
      while (i < line.length && line[i] !== ' ') word += line[i++];
    }
    words.push(word);
  }
  return words;
}

function ports(text: string): number[] | null {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split(':').map(Number);
    if (!Number.isInteger(a)) return null;
    if (b === undefined) out.push(a);
    else if (Number.isInteger(b) && b - a <= 64) for (let p = a; p <= b; p++) out.push(p);
    else return null;
  }
  return out;
}

/** Options that only name a module or count: they match nothing by themselves. */
const NEUTRAL = new Set(['-m', '--comment']);

function iptablesRule(words: string[], where: string, family: Family, isChain: (name: string) => boolean): FwRule {
  const rule: FwRule = { where, text: words.join(' '), guarded: false, action: 'other', ctstates: null, protos: null, dports: null, family };
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    const next = words[i + 1];
    if (w === '-j' || w === '-g') {
      const t = next ?? '';
      i++;
      if (t === 'ACCEPT') rule.action = 'accept';
      else if (t === 'DROP' || t === 'REJECT') rule.action = 'drop';
      else if (t === 'LOG') rule.action = 'log';
      else if (t === 'RETURN') rule.action = 'return';
      else if (isChain(t)) {
        rule.action = w === '-j' ? 'jump' : 'goto';
        rule.target = t;
      }
    } else if (w === '--log-prefix') {
      rule.logPrefix = next;
      i++;
    } else if (w === '--log-level') {
      i++;
    } else if (w === '--log-uid' || w === '--log-tcp-options' || w === '--log-ip-options' || w === '--log-tcp-sequence') {
      /* what LOG prints, not what it matches */
    } else if (w === '-p') {
      rule.protos = [next === 'icmpv6' || next === '58' ? 'ipv6-icmp' : next];
      rule.guarded = true;
      i++;
    } else if (w === '--dport' || w === '--dports' || w === '--destination-port') {
      rule.dports = ports(next ?? '');
      rule.guarded = true;
      i++;
    } else if (w === '--ctstate' || w === '--state') {
      rule.ctstates = (next ?? '').toLowerCase().split(',');
      rule.guarded = true;
      i++;
    } else if (w === '-c') {
      i += 2;
    } else if (NEUTRAL.has(w)) {
      i++;
    } else {
      rule.guarded = true;
    }
  }
  return rule;
}

/** The filter table's INPUT chain and the chains it jumps to, from `iptables-save` (or ip6tables-save). */
export function parseIptablesSave(text: string, family: Family): InputView | null {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const chains = new Map<string, FwRule[]>();
  let policy: 'accept' | 'drop' = 'accept';
  let inFilter = false;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      inFilter = line === '*filter';
      continue;
    }
    if (!inFilter) continue;
    if (line.startsWith(':')) {
      const [name, pol] = line.slice(1).split(' ');
      chains.set(name, []);
      if (name === 'INPUT') {
        found = true;
        policy = pol === 'DROP' ? 'drop' : 'accept';
      }
    } else if (line.startsWith('-A ')) {
      const words = splitIptablesWords(line);
      const chain = words[1];
      const list = chains.get(chain) ?? [];
      chains.set(chain, list);
      list.push(iptablesRule(words.slice(2), `${tool} ${chain} #${list.length + 1}`, family, (c) => chains.has(c)));
    }
  }
  return found ? { family, origin: tool, chains, entry: 'INPUT', policy } : null;
}

/* nft -j: just the shapes the checks need. */
type Json = Record<string, unknown>;

/** `"udp"` or a set `{ icmp, ipv6-icmp }`, as protocol names. */
function nftProtos(value: unknown): string[] | null {
  const set = (value as Json | null)?.set;
  const names = typeof value === 'string' ? [value] : Array.isArray(set) && set.every((v) => typeof v === 'string') ? (set as string[]) : null;
  return names && names.map((n) => (n === 'icmpv6' ? 'ipv6-icmp' : n));
}

function nftPorts(value: unknown): number[] | null {
  if (typeof value === 'number') return [value];
  const set = (value as Json | null)?.set;
  if (Array.isArray(set)) {
    const out: number[] = [];
    for (const v of set) {
      const range = (v as Json | null)?.range;
      if (typeof v === 'number') out.push(v);
      else if (Array.isArray(range) && range[1] - range[0] <= 64) for (let p = range[0]; p <= range[1]; p++) out.push(p);
      else return null;
    }
    return out;
  }
  return null;
}

function nftRule(expr: Json[], where: string, chainFamily: string): FwRule {
  const family: Family | null = chainFamily === 'ip' ? 4 : chainFamily === 'ip6' ? 6 : null;
  const rule: FwRule = { where, text: '', guarded: false, action: 'other', ctstates: null, protos: null, dports: null, family };
  const words: string[] = [];
  for (const e of expr) {
    const [kind, body] = Object.entries(e)[0] ?? ['', null];
    const b = (body ?? {}) as Json;
    if (kind === 'counter') continue;
    if (kind === 'match') {
      rule.guarded = true;
      const left = (b.left ?? {}) as Json;
      const right = b.right;
      const payload = left.payload as Json | undefined;
      const meta = left.meta as Json | undefined;
      const ct = left.ct as Json | undefined;
      if (payload?.field === 'dport') {
        rule.protos = [String(payload.protocol)];
        rule.dports = nftPorts(right);
        words.push(`${payload.protocol} dport ${JSON.stringify(right)}`);
      } else if (payload && (payload.field === 'protocol' || payload.field === 'nexthdr')) {
        rule.protos = nftProtos(right);
        rule.family = payload.protocol === 'ip6' ? 6 : 4;
        words.push(`${payload.protocol} ${payload.field} ${JSON.stringify(right)}`);
      } else if (payload?.protocol === 'icmpv6' || payload?.protocol === 'icmp') {
        rule.protos = nftProtos(payload.protocol);
        rule.family = payload.protocol === 'icmpv6' ? 6 : 4;
        words.push(`${payload.protocol} ${payload.field} ${JSON.stringify(right)}`);
      } else if (meta?.key === 'l4proto') {
        rule.protos = nftProtos(right);
        words.push(`meta l4proto ${JSON.stringify(right)}`);
      } else if (meta?.key === 'nfproto') {
        rule.family = right === 'ipv6' ? 6 : 4;
        words.push(`meta nfproto ${right}`);
      } else if (ct?.key === 'state') {
        rule.ctstates = (Array.isArray(right) ? right : [right]).map((s) => String(s).toLowerCase());
        words.push(`ct state ${rule.ctstates.join(',')}`);
      } else {
        if (payload && (payload.protocol === 'ip' || payload.protocol === 'ip6')) rule.family = payload.protocol === 'ip6' ? 6 : 4;
        words.push(JSON.stringify(b));
      }
    } else if (kind === 'log') {
      rule.action = 'log';
      rule.logPrefix = typeof b.prefix === 'string' ? b.prefix : '';
      words.push(`log prefix "${rule.logPrefix}"`);
    } else if (kind === 'accept' || kind === 'drop' || kind === 'reject' || kind === 'return') {
      rule.action = kind === 'reject' ? 'drop' : kind;
      words.push(kind);
    } else if (kind === 'jump' || kind === 'goto') {
      rule.action = kind;
      rule.target = String(b.target);
      words.push(`${kind} ${rule.target}`);
    } else if (kind === 'xt') {
      /* a rule iptables-nft wrote: opaque here, ip(6)tables-save shows it */
      rule.guarded = true;
      words.push(`xt ${b.type} ${b.name}`);
    } else {
      /* limit, meter, set lookups, ...: they narrow the rule */
      rule.guarded = true;
      words.push(kind);
    }
  }
  rule.text = words.join(' ');
  return rule;
}

/** One view per (input base chain, family) from `nft -j list ruleset`; `skipTables` are `family name` pairs to leave out. */
export function parseNftJson(text: string, skipTables: string[] = []): InputView[] {
  let items: Json[];
  try {
    items = (JSON.parse(text) as { nftables?: Json[] }).nftables ?? [];
  } catch {
    return [];
  }
  const rulesOf = new Map<string, FwRule[]>();
  const bases: { family: string; table: string; name: string; policy: 'accept' | 'drop'; prio: number }[] = [];
  for (const item of items) {
    const chain = item.chain as Json | undefined;
    const rule = item.rule as Json | undefined;
    if (chain) {
      const key = `${chain.family} ${chain.table} ${chain.name}`;
      if (!rulesOf.has(key)) rulesOf.set(key, []);
      if (chain.hook === 'input' && chain.type === 'filter') {
        bases.push({ family: String(chain.family), table: String(chain.table), name: String(chain.name), policy: chain.policy === 'drop' ? 'drop' : 'accept', prio: Number(chain.prio) || 0 });
      }
    } else if (rule) {
      const key = `${rule.family} ${rule.table} ${rule.chain}`;
      const list = rulesOf.get(key) ?? [];
      rulesOf.set(key, list);
      list.push(nftRule((rule.expr as Json[]) ?? [], `nft ${rule.family} ${rule.table} ${rule.chain} #${list.length + 1}`, String(rule.family)));
    }
  }
  const views: InputView[] = [];
  for (const b of bases.sort((x, y) => x.prio - y.prio)) {
    if (skipTables.includes(`${b.family} ${b.table}`)) continue;
    const families: Family[] = b.family === 'inet' ? [4, 6] : b.family === 'ip' ? [4] : b.family === 'ip6' ? [6] : [];
    for (const family of families) {
      const chains = new Map<string, FwRule[]>();
      for (const [key, list] of rulesOf) {
        const [f, t, name] = key.split(' ');
        if (f === b.family && t === b.table) chains.set(name, list.filter((r) => r.family === null || r.family === family));
      }
      views.push({ family, origin: `nft ${b.family} ${b.table} ${b.name}`, chains, entry: b.name, policy: b.policy });
    }
  }
  return views;
}

export interface Reached {
  rule: FwRule;
  /** Guarded itself or reached only through a guarded jump. */
  guarded: boolean;
}

export interface InputPath {
  view: InputView;
  /** Every rule a packet may meet, in order, up to the first unguarded verdict. */
  reached: Reached[];
  /** The unguarded drop that ends the path, if any (else the policy decides). */
  dropRule: FwRule | null;
  /** Does a packet that matches no accept end up dropped? */
  dropsByDefault: boolean;
}

const MAX_JUMP_DEPTH = 8;

/** The rules a packet meets on its way through the input chain, following jumps. */
export function inputPath(view: InputView): InputPath {
  const reached: Reached[] = [];
  let end: FwRule | null = null;
  /* returns true when an unguarded verdict ended the walk */
  const walk = (chain: string, guarded: boolean, depth: number): boolean => {
    for (const rule of view.chains.get(chain) ?? []) {
      const g = guarded || rule.guarded;
      reached.push({ rule, guarded: g });
      if ((rule.action === 'jump' || rule.action === 'goto') && rule.target && depth < MAX_JUMP_DEPTH) {
        if (walk(rule.target, g, depth + 1)) return true;
        if (rule.action === 'goto' && !g) return false;
      } else if (!g && (rule.action === 'accept' || rule.action === 'drop')) {
        end = rule;
        return true;
      } else if (!g && rule.action === 'return') {
        return false;
      }
    }
    return false;
  };
  const ended = walk(view.entry, false, 0);
  const last = end as FwRule | null;
  return {
    view,
    reached,
    dropRule: last && last.action === 'drop' ? last : null,
    dropsByDefault: ended ? last?.action === 'drop' : view.policy === 'drop',
  };
}

/** Does a log prefix as written in the firewall match a configured one (trailing space optional)? */
export function samePrefix(logged: string, configured: string): boolean {
  return logged.trimEnd() === configured.trimEnd();
}

/** Is the rule limited to protocols that include `proto` (or not limited at all)? */
export function coversProto(rule: FwRule, proto: string): boolean {
  return rule.protos === null || rule.protos.includes(proto);
}

/** Every rule of the view, reached or not, for "it exists but comes too late". */
export function allRules(view: InputView): FwRule[] {
  return [...view.chains.values()].flat();
}
