/**
 * The two configs tumbler replaces: the original tumblerd.conf (`[common]` port and log,
 * `[door-NAME]` secret and command) and knockd.conf (`[options]`, then a section per door with
 * sequence or one_time_sequences, seq_timeout, tcpflags, start_command/stop_command/cmd_timeout,
 * their `_6` variants and knockd's aliases). Each becomes the equivalent tumblerd YAML, keeping
 * knockd's meaning (its defaults, its shell, its empty IPv6 commands), with a comment on whatever
 * has no exact equivalent; what knockd itself would refuse, or a fork's key, is an error at its line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Document, YAMLMap } from 'yaml';
import { splitCommand } from '../doors/commandTemplate';
import { parseOneTimeFile } from '../knock/oneTime';
import { flagsPass, parseFlagFilter, parseSequence } from '../knock/sequence';
import { PacketEvent, TCP_FLAGS } from '../model/packet';

interface IniValue {
  key: string;
  value: string;
  line: number;
}

interface IniSection {
  name: string;
  line: number;
  /** By lower-cased key, as knockd reads them (the last of a repeated key wins, as in knockd); `key` keeps the spelling of the file. */
  values: Map<string, IniValue>;
  /** Lines without `=`. */
  flags: { text: string; line: number }[];
}

export type LegacyKind = 'tumblerd' | 'knockd';

/** A legacy config that cannot be converted: every problem at its line of the legacy file. */
export class LegacyError extends Error {
  constructor(
    readonly file: string,
    readonly problems: { line: number; key: string; message: string }[],
  ) {
    super(problems.map((p) => `${file}:${p.line}: ${p.key ? `${p.key}: ` : ''}${p.message}`).join('\n'));
    this.name = 'LegacyError';
  }
}

function parseIni(text: string, file: string): IniSection[] {
  const sections: IniSection[] = [];
  let current: IniSection | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = { name: header[1].trim(), line: i + 1, values: new Map(), flags: [] };
      sections.push(current);
      return;
    }
    if (!current) throw new LegacyError(file, [{ line: i + 1, key: '', message: `"${line}" is outside any [section]` }]);
    const eq = line.indexOf('=');
    if (eq < 0) (current as IniSection).flags.push({ text: line, line: i + 1 });
    else {
      const key = line.slice(0, eq).trim();
      (current as IniSection).values.set(key.toLowerCase(), { key, value: line.slice(eq + 1).trim(), line: i + 1 });
    }
  });
  return sections;
}

/** Which legacy format a config text is in, or null for YAML. */
export function detectLegacy(text: string): LegacyKind | null {
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '' && !l.startsWith('#') && !l.startsWith(';'));
  if (!first || !/^\[[^\]]+\]$/.test(first)) return null;
  return /^\s*\[(common|door-[^\]]+)\]\s*$/m.test(text) && !/^\s*\[options\]\s*$/m.test(text) ? 'tumblerd' : 'knockd';
}

const doorName = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64) || 'door';

/**
 * A legacy command ran through /bin/sh; tumblerd runs argv. One that tumblerd's own splitter
 * refuses (shell syntax) keeps a shell, and the note says so.
 */
function command(value: string, notes: string[], where: string): string {
  let why: string;
  try {
    splitCommand(value);
    return value;
  } catch (err) {
    why = (err as Error).message.replace(/, but commands run without one.*$/, '');
  }
  notes.push(`${where}: the command needs a shell (${why}), so it runs under /bin/sh -c here, as knockd ran it; %IP% is always a plain address`);
  return `/bin/sh -c '${value.replace(/'/g, `'\\''`)}'`;
}

/** knockd reads numbers with atoi(): leading digits count, the rest is ignored. */
function seconds(value: string): number {
  const m = /^\s*([0-9]+)/.exec(value);
  if (!m) throw new Error(`"${value}" is not a number of seconds`);
  return Number(m[1]);
}

/** knockd's keys, as it reads them (upper-cased there, lower-cased here). Anything else makes knockd stop with "syntax error". */
const KNOCKD_DOOR_KEYS = [
  'target', 'sequence', 'one_time_sequences', 'seq_timeout', 'timeout', 'start_command', 'command',
  'start_command_6', 'command_6', 'cmd_timeout', 'stop_command', 'stop_command_6', 'tcpflags',
];
/** knockd's defaults (knockd.c: SEQ_TIMEOUT, CMD_TIMEOUT). */
const KNOCKD_SEQ_TIMEOUT = 25;
const KNOCKD_CMD_TIMEOUT = 10;
/* Left in from an example: `<your-ip>`, `<port1>` (the man page writes its syntax this way). */
const PLACEHOLDER = /<[A-Za-z][A-Za-z0-9_.-]*>/;

export interface ConvertedLegacy {
  yaml: string;
  /** Where a key of the converted YAML (`doors.NAME.open`, `doors.NAME.sequence[1]`) came from in the legacy file. */
  origin(key: string): { line: number; key: string } | null;
}

/** Converts a legacy config to tumblerd YAML text. Throws LegacyError with the line of everything it cannot read. */
export function convertLegacy(text: string, file: string): string {
  return convertLegacyMapped(text, file).yaml;
}

export function convertLegacyMapped(text: string, file: string): ConvertedLegacy {
  const kind = detectLegacy(text);
  if (!kind) throw new LegacyError(file, [{ line: 1, key: '', message: 'not a tumblerd.conf or knockd.conf' }]);
  const sections = parseIni(text, file);
  const doc = new Document();
  const root = new YAMLMap();
  doc.contents = root;
  const doors = new YAMLMap();
  const notes: string[] = [];
  const errors: { line: number; key: string; message: string }[] = [];
  const origins = new Map<string, { line: number; key: string }>();
  const set = (map: YAMLMap, key: string, value: unknown, comment?: string) => {
    const node = doc.createNode(value, { flow: Array.isArray(value) });
    if (comment) node.comment = ` ${comment}`;
    map.set(doc.createNode(key), node);
  };
  const at = (s: IniSection, key?: string) => `${file}:${key ? s.values.get(key)?.line ?? s.line : s.line}`;
  const used = new Map<string, string>();
  /* Distinct sections may sanitise to one name ([open ssh], [open-ssh]): each stays its own door. */
  const nameFor = (s: IniSection, wanted: string): string => {
    let name = doorName(wanted);
    for (let n = 2; used.has(name); n++) name = `${doorName(wanted).slice(0, 60)}-${n}`;
    if (name !== wanted) {
      const clash = used.get(doorName(wanted));
      notes.push(`${at(s)}: [${s.name}] is door "${name}"` + (clash ? `: "${doorName(wanted)}" is already [${clash}]` : ' (door names are letters, digits, -, _ and .)'));
    }
    used.set(name, s.name);
    return name;
  };

  if (kind === 'tumblerd') {
    const listen: string[] = [];
    for (const s of sections) {
      if (s.name === 'common') {
        const port = s.values.get('port')?.value ?? '8675';
        listen.push(`0.0.0.0:${port}`);
        const log = s.values.get('log')?.value;
        if (log) set(root, 'log', { level: 'info', file: log });
        continue;
      }
      const m = /^door-(.+)$/.exec(s.name);
      if (!m) {
        notes.push(`${at(s)}: section [${s.name}] means nothing to tumblerd: left out`);
        continue;
      }
      const door = new YAMLMap();
      const name = nameFor(s, m[1]);
      origins.set(`doors.${name}`, { line: s.line, key: `[${s.name}]` });
      for (const [k, v] of s.values) origins.set(`doors.${name}.${k === 'command' ? 'open' : k}`, { line: v.line, key: `[${s.name}] ${v.key}` });
      const secret = s.values.get('secret')?.value;
      if (secret) set(door, 'secret', secret);
      const cmd = s.values.get('command')?.value;
      if (cmd) set(door, 'open', command(cmd, notes, at(s, 'command')));
      for (const k of s.values.keys()) {
        if (k !== 'secret' && k !== 'command') notes.push(`${at(s, k)}: "${k}" has no equivalent: left out`);
      }
      set(doors, name, door);
    }
    root.set('tumbler', doc.createNode({ listen: listen.length ? listen : ['0.0.0.0:8675'] }));
  } else {
    const prefix = 'FIREWALL: ';
    /* [options] may come after the doors it applies to */
    const iface = sections.find((x) => x.name.toLowerCase() === 'options')?.values.get('interface')?.value ?? null;
    /* doors whose knocks are not plain SYNs: conntrack calls such first packets INVALID, which a --ctstate NEW rule never logs */
    const nonSyn: { name: string; ports: number[] }[] = [];
    for (const s of sections) {
      const problem = (key: string, message: string) => errors.push({ line: s.values.get(key)?.line ?? s.line, key: `[${s.name}] ${s.values.get(key)?.key ?? key}`, message });
      for (const [k, v] of s.values) {
        if (PLACEHOLDER.test(v.value)) problem(k, `"${PLACEHOLDER.exec(v.value)![0]}" looks like a placeholder left from an example: fill in the real value`);
      }
      for (const f of s.flags) {
        if (f.text.toLowerCase() === 'usesyslog') {
          notes.push(`${file}:${f.line}: UseSyslog: tumblerd logs to stdout/stderr (the journal under systemd) and to log.file; it has no syslog output of its own`);
        } else errors.push({ line: f.line, key: `[${s.name}]`, message: `"${f.text}" is not a knockd directive (knockd itself stops with "syntax error")` });
      }
      if (s.name.toLowerCase() === 'options') {
        for (const [k, v] of s.values) {
          if (k === 'logfile') set(root, 'log', { level: 'info', file: v.value });
          else if (k === 'pidfile') notes.push(`${at(s, k)}: PidFile = ${v.value}: tumblerd writes no pid file; it runs in the foreground (systemd, contrib/tumblerd.service, tracks it)`);
          else if (k === 'interface') {
            notes.push(
              `${at(s, k)}: Interface = ${v.value}: knockd saw only this interface; each door has interfaces: [${v.value}], and the LOG rule below logs only what arrives on it`,
            );
          } else problem(k, `not a knockd option (knockd knows LogFile, PidFile, Interface and UseSyslog, and stops with "syntax error" on anything else); a fork's key, perhaps: convert it by hand`);
        }
        continue;
      }
      const door = new YAMLMap();
      const name = nameFor(s, s.name);
      origins.set(`doors.${name}`, { line: s.line, key: `[${s.name}]` });
      for (const k of s.values.keys()) {
        if (!KNOCKD_DOOR_KEYS.includes(k)) {
          problem(k, 'not a knockd key (knockd itself stops with "syntax error"); a fork\'s key, perhaps: convert it by hand');
        }
      }
      /* knockd's aliases share one setting, and the later line wins */
      const last = (...keys: string[]) =>
        keys.map((k) => s.values.get(k)).filter((v): v is IniValue => !!v).sort((a, b) => b.line - a.line)[0];
      const put = (yamlKey: string, from: IniValue, value: unknown, comment?: string) => {
        set(door, yamlKey, value, comment);
        origins.set(`doors.${name}.${yamlKey}`, { line: from.line, key: `[${s.name}] ${from.key}` });
      };
      const cmd = (v: IniValue) => {
        for (const macro of v.value.match(/%[A-Za-z_]+%/g) ?? []) {
          if (macro !== '%IP%') problem(v.key.toLowerCase(), `${macro}: knockd replaces only %IP%; this is a fork's macro or a placeholder (knockd would pass it on as it is)`);
        }
        return command(v.value, notes, `${file}:${v.line}`);
      };

      const seq = s.values.get('sequence');
      const oneTime = s.values.get('one_time_sequences');
      let ports: number[] = [];
      if (seq && oneTime) problem('one_time_sequences', 'a door has a sequence or one_time_sequences, not both');
      else if (seq && !PLACEHOLDER.test(seq.value)) {
        try {
          const knocks = parseSequence(seq.value);
          ports = knocks.filter((k) => k.proto === 'tcp').map((k) => k.port);
          put('sequence', seq, knocks.map((k) => (k.proto === 'tcp' ? k.port : `${k.port}/udp`)));
        } catch (err) {
          problem('sequence', (err as Error).message);
        }
      } else if (oneTime) {
        put('one_time_sequences', oneTime, oneTime.value, 'each line once; a used line is marked with "#", as knockd does (the file stays usable by knockd)');
        try {
          ports = parseOneTimeFile(fs.readFileSync(path.resolve(path.dirname(file), oneTime.value))).unused.flatMap((u) => u.sequence.filter((k) => k.proto === 'tcp').map((k) => k.port));
        } catch {
          /* --check reports a missing file; the LOG rule then names no ports */
        }
      } else if (!seq) errors.push({ line: s.line, key: `[${s.name}]`, message: 'no sequence and no one_time_sequences (knockd refuses an empty knock sequence)' });

      const timeout = last('seq_timeout', 'timeout');
      try {
        if (timeout) put('sequence_timeout', timeout, `${seconds(timeout.value)}s`);
        else set(door, 'sequence_timeout', `${KNOCKD_SEQ_TIMEOUT}s`, "knockd's default");
      } catch (err) {
        problem(timeout!.key.toLowerCase(), (err as Error).message);
      }
      const flags = s.values.get('tcpflags');
      try {
        const filter = parseFlagFilter(flags?.value ?? '');
        if (flags) put('tcpflags', flags, flags.value);
        else set(door, 'tcpflags', '', "knockd's default: TCP packets with any flags are knocks");
        if (!flagsPass(filter, { proto: 'tcp', flags: TCP_FLAGS.SYN } as PacketEvent) && ports.length > 0) nonSyn.push({ name, ports: [...new Set(ports)] });
      } catch (err) {
        problem('tcpflags', (err as Error).message);
      }
      const target = s.values.get('target');
      if (target) {
        notes.push(
          `${at(s, 'target')}: [${s.name}] Target = ${target.value}: knockd counted only packets to that address; tumblerd counts what the LOG rule logs, ` +
            `so log only packets to it (-d ${target.value}; in FORWARD for a routed host)`,
        );
      }

      const start = last('start_command', 'command');
      const start6 = last('start_command_6', 'command_6');
      const stop = s.values.get('stop_command');
      const stop6 = s.values.get('stop_command_6');
      if (start && start.value !== '') put('open', start, cmd(start));
      else {
        set(door, 'open', '/bin/true', 'knockd ran nothing for this door (no start_command)');
        if (stop?.value) notes.push(`${at(s, 'stop_command')}: knockd runs stop_command only after a start_command: left out`);
      }
      const runsStart = !!start?.value;
      if (start6?.value) put('open6', start6, cmd(start6));
      else if (start6) put('open6', start6, [], 'knockd: an empty start_command_6 runs nothing for IPv6 (not the IPv4 command)');
      if (runsStart && stop?.value) put('close', stop, cmd(stop));
      if (start6 && !start6.value) {
        if (runsStart && stop?.value) set(door, 'close6', [], 'nothing was opened for IPv6');
      } else if (stop6?.value) put('close6', stop6, cmd(stop6));
      else if (stop6 && runsStart && stop?.value) put('close6', stop6, [], 'knockd: an empty stop_command_6 runs nothing for IPv6 (not the IPv4 command)');
      const cmdTimeout = s.values.get('cmd_timeout');
      if (runsStart && (stop?.value || stop6?.value)) {
        try {
          if (cmdTimeout) put('close_after', cmdTimeout, `${seconds(cmdTimeout.value)}s`);
          else set(door, 'close_after', `${KNOCKD_CMD_TIMEOUT}s`, "knockd's default cmd_timeout");
        } catch (err) {
          problem('cmd_timeout', (err as Error).message);
        }
      }
      if (iface) set(door, 'interfaces', [iface], 'knockd: Interface');
      set(doors, name, door);
    }
    const on = iface ? ` -i ${iface}` : '';
    const sources = doc.createNode([{ file: '/var/log/kern.log', prefix }]);
    sources.commentBefore =
      ' knockd sniffed the interface; tumblerd reads the firewall log. Log what INPUT drops with this prefix\n' +
      ' (and the same with ip6tables), as the last rule of INPUT:\n' +
      ` iptables -A INPUT${on} -m conntrack --ctstate NEW -j LOG --log-prefix "${prefix}" --log-level warning` +
      nonSyn
        .map(
          (d) =>
            `\n Door ${d.name} knocks with other packets than SYNs, which conntrack marks INVALID and the rule above never logs;\n` +
            ' log them too, before any rule that drops INVALID packets:\n' +
            chunks(d.ports, 15)
              .map((p) => ` iptables -I INPUT${on} -p tcp -m multiport --dports ${p.join(',')} -m conntrack --ctstate INVALID -j LOG --log-prefix "${prefix}" --log-level warning`)
              .join('\n'),
        )
        .join('');
    root.set('sources', sources);
    notes.push(
      `${file}: knockd and tumblerd both start a knock over on a wrong port with matching flags; knockd only saw the ports of its sequences ` +
        '(its capture filter), tumblerd sees every port the firewall logs, so a packet to any other port also starts the knock over. ' +
        'tumblerd tolerates a repeat of the last knock (a retransmitted SYN), which knockd counts as a wrong port.',
    );
  }
  if (errors.length) throw new LegacyError(file, errors.sort((a, b) => a.line - b.line));
  root.set('doors', doors);
  if (doors.items.length === 0) notes.push(`${file}: no doors found`);
  doc.commentBefore =
    ` Converted by tumblerd convert from ${file} (${kind === 'tumblerd' ? 'the original tumblerd.conf' : 'knockd.conf'}).` +
    (notes.length ? '\n\n What has no exact equivalent:\n' + notes.map((n) => ` - ${n}`).join('\n') : '');
  return {
    yaml: doc.toString({ lineWidth: 0 }),
    origin(key: string) {
      for (let k = key; k; k = k.replace(/(\[[0-9]+\]|\.[^.[]*)$/, '')) {
        const o = origins.get(k);
        if (o) return o;
        if (!/(\[[0-9]+\]|\.[^.[]*)$/.test(k)) break;
      }
      return null;
    },
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
