/** Knock sequences and TCP flag filters: their text forms and how an event matches them. */
import type { FlagFilter, Knock } from '../model/door';
import { PacketEvent, TCP_FLAGS, TcpFlagName } from '../model/packet';

/** A SYN without ACK: what a client's connect() sends, and not what a reply or a scan of ACKs is. */
export const DEFAULT_FLAGS: FlagFilter = { require: TCP_FLAGS.SYN, forbid: TCP_FLAGS.ACK };

function parsePortNumber(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

/**
 * One knock from its config form: a number (TCP), `"8000"`, `"8000/udp"` or knockd's `"8000:udp"`.
 * Throws with a message fit for a config error.
 */
export function parseKnock(spec: unknown): Knock {
  if (typeof spec === 'number') {
    if (Number.isInteger(spec) && spec >= 1 && spec <= 65535) return { port: spec, proto: 'tcp' };
    throw new Error(`port ${spec} is not a whole number from 1 to 65535`);
  }
  if (typeof spec !== 'string') throw new Error('a knock is a port number or a string like "8000/udp"');
  const text = spec.trim().toLowerCase();
  const sep = Math.max(text.indexOf('/'), text.indexOf(':'));
  const portText = sep < 0 ? text : text.slice(0, sep);
  const protoText = sep < 0 ? 'tcp' : text.slice(sep + 1);
  const port = parsePortNumber(portText);
  if (port === null) throw new Error(`"${spec}": port must be a whole number from 1 to 65535`);
  if (protoText !== 'tcp' && protoText !== 'udp') throw new Error(`"${spec}": protocol must be tcp or udp`);
  return { port, proto: protoText };
}

/** A whole sequence: a list of knocks, or knockd's comma-separated string. */
export function parseSequence(spec: unknown): Knock[] {
  const items = typeof spec === 'string' ? spec.split(',').filter((s) => s.trim() !== '') : spec;
  if (!Array.isArray(items) || items.length === 0) {
    throw new Error('a sequence is a non-empty list of ports, like [42, 196, "69/udp"]');
  }
  return items.map(parseKnock);
}

/** knockd's `tcpflags` form: `syn`, `syn,!ack`, `fin,psh,urg`. */
export function parseFlagFilter(spec: string): FlagFilter {
  const filter: FlagFilter = { require: 0, forbid: 0 };
  for (const raw of spec.split(',')) {
    const word = raw.trim();
    if (word === '') continue;
    const negated = word.startsWith('!');
    const name = (negated ? word.slice(1) : word).toUpperCase();
    const bit = (TCP_FLAGS as Record<string, number>)[name as TcpFlagName];
    if (bit === undefined) throw new Error(`"${word}" is not a TCP flag (fin, syn, rst, psh, ack, urg, ece, cwr)`);
    if (negated) filter.forbid |= bit;
    else filter.require |= bit;
  }
  if (filter.require & filter.forbid) throw new Error(`"${spec}" both requires and forbids a flag`);
  return filter;
}

export function formatKnock(k: Knock): string {
  return k.proto === 'tcp' ? String(k.port) : `${k.port}/udp`;
}

export function flagsPass(filter: FlagFilter, e: Pick<PacketEvent, 'proto' | 'flags'>): boolean {
  return e.proto !== 'tcp' || ((e.flags & filter.require) === filter.require && (e.flags & filter.forbid) === 0);
}
