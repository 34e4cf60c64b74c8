/**
 * The two configs tumbler replaces: the original tumblerd.conf (`[common]` port and log,
 * `[door-NAME]` secret and command) and knockd.conf (`[options]`, then a section per door with
 * sequence, seq_timeout, tcpflags, start_command/stop_command/cmd_timeout and their `_6`
 * variants). Each becomes the equivalent tumblerd YAML, with a comment on whatever has none.
 */
import { Document, YAMLMap } from 'yaml';
import { splitCommand } from '../doors/commandTemplate';

interface IniSection {
  name: string;
  line: number;
  /** By lower-cased key, as knockd reads them; `key` keeps the spelling of the file. */
  values: Map<string, { key: string; value: string; line: number }>;
  flags: string[];
}

export type LegacyKind = 'tumblerd' | 'knockd';

function parseIni(text: string): IniSection[] {
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
    if (!current) throw new Error(`line ${i + 1}: "${line}" is outside any [section]`);
    const eq = line.indexOf('=');
    if (eq < 0) (current as IniSection).flags.push(line);
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
  try {
    splitCommand(value);
    return value;
  } catch {
    /* wrapped below */
  }
  notes.push(`${where}: the command uses shell syntax, so it runs under /bin/sh -c here; %IP% is always a plain address`);
  return `/bin/sh -c '${value.replace(/'/g, `'\\''`)}'`;
}

function seconds(value: string, where: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${where}: "${value}" is not a number of seconds`);
  return n;
}

/** Converts a legacy config to tumblerd YAML text. Throws with the line of anything it cannot read. */
export function convertLegacy(text: string, file: string): string {
  const kind = detectLegacy(text);
  if (!kind) throw new Error(`${file}: not a tumblerd.conf or knockd.conf`);
  const sections = parseIni(text);
  const doc = new Document();
  const root = new YAMLMap();
  doc.contents = root;
  const doors = new YAMLMap();
  const notes: string[] = [];
  const set = (map: YAMLMap, key: string, value: unknown, comment?: string) => {
    const node = doc.createNode(value, { flow: Array.isArray(value) });
    if (comment) node.comment = ` ${comment}`;
    map.set(doc.createNode(key), node);
  };
  const at = (s: IniSection, key?: string) => `${file}:${key ? s.values.get(key)?.line ?? s.line : s.line}`;

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
      const secret = s.values.get('secret')?.value;
      if (secret) set(door, 'secret', secret);
      const cmd = s.values.get('command')?.value;
      if (cmd) set(door, 'open', command(cmd, notes, at(s, 'command')));
      for (const k of s.values.keys()) {
        if (k !== 'secret' && k !== 'command') notes.push(`${at(s, k)}: "${k}" has no equivalent: left out`);
      }
      set(doors, doorName(m[1]), door);
    }
    root.set('tumbler', doc.createNode({ listen: listen.length ? listen : ['0.0.0.0:8675'] }));
  } else {
    const prefix = 'FIREWALL: ';
    for (const s of sections) {
      if (s.name.toLowerCase() === 'options') {
        const logFile = s.values.get('logfile')?.value;
        if (logFile) set(root, 'log', { level: 'info', file: logFile });
        for (const [k, v] of s.values) {
          if (k === 'logfile') continue;
          notes.push(`${at(s, k)}: [options] ${v.key} = ${v.value}: no equivalent (tumblerd reads the firewall log, on every interface)`);
        }
        for (const f of s.flags) notes.push(`${file}:${s.line}: [options] ${f}: no equivalent (tumblerd logs with winston: log.file or stdout)`);
        continue;
      }
      const door = new YAMLMap();
      const v = (k: string) => s.values.get(k)?.value;
      const seq = v('sequence');
      if (seq) set(door, 'sequence', seq.split(',').map((p) => p.trim()).map((p) => (/^\d+$/.test(p) ? Number(p) : p.replace(':', '/'))));
      if (v('seq_timeout')) set(door, 'sequence_timeout', `${seconds(v('seq_timeout')!, at(s, 'seq_timeout'))}s`);
      if (v('tcpflags')) set(door, 'tcpflags', v('tcpflags'), 'tumblerd also resets an attempt on a knock out of order, where knockd waited');
      const start = v('start_command') ?? v('command');
      if (start) set(door, 'open', command(start, notes, at(s, s.values.has('start_command') ? 'start_command' : 'command')));
      if (v('start_command_6')) set(door, 'open6', command(v('start_command_6')!, notes, at(s, 'start_command_6')));
      const stop = v('stop_command');
      if (stop) set(door, 'close', command(stop, notes, at(s, 'stop_command')));
      if (v('stop_command_6')) set(door, 'close6', command(v('stop_command_6')!, notes, at(s, 'stop_command_6')));
      /* knockd runs stop_command cmd_timeout seconds (10 by default) after start_command */
      if (stop || v('stop_command_6')) set(door, 'close_after', `${v('cmd_timeout') ? seconds(v('cmd_timeout')!, at(s, 'cmd_timeout')) : 10}s`);
      const known = ['sequence', 'seq_timeout', 'tcpflags', 'start_command', 'command', 'start_command_6', 'stop_command', 'stop_command_6', 'cmd_timeout'];
      for (const k of s.values.keys()) if (!known.includes(k)) notes.push(`${at(s, k)}: [${s.name}] ${k} has no equivalent: left out`);
      set(doors, doorName(s.name), door);
    }
    const sources = doc.createNode([{ file: '/var/log/kern.log', prefix }]);
    sources.commentBefore =
      ' knockd sniffed the interface; tumblerd reads the firewall log. Log what INPUT drops with this prefix:\n' +
      ` iptables -A INPUT -m conntrack --ctstate NEW -j LOG --log-prefix "${prefix}" --log-level warning`;
    root.set('sources', sources);
  }
  root.set('doors', doors);
  if (doors.items.length === 0) notes.push(`${file}: no doors found`);
  doc.commentBefore =
    ` Converted by tumblerd convert from ${file} (${kind === 'tumblerd' ? 'the original tumblerd.conf' : 'knockd.conf'}).` +
    (notes.length ? '\n\n What has no exact equivalent:\n' + notes.map((n) => ` - ${n}`).join('\n') : '');
  return doc.toString({ lineWidth: 0 });
}
