import type { Family } from './address';

export type Protocol = 'tcp' | 'udp';

/** TCP flag bits as the kernel's LOG target names them. */
export const TCP_FLAGS = {
  FIN: 1,
  SYN: 2,
  RST: 4,
  PSH: 8,
  ACK: 16,
  URG: 32,
  ECE: 64,
  CWR: 128,
} as const;

export type TcpFlagName = keyof typeof TCP_FLAGS;

/** One packet that the firewall logged, as far as knocking cares. */
export interface PacketEvent {
  /** Milliseconds since the epoch, from the log record itself. */
  time: number;
  src: string;
  family: Family;
  dst: string;
  proto: Protocol;
  sport: number;
  dport: number;
  /** Bitmask of TCP_FLAGS; 0 for UDP. */
  flags: number;
  /** The interface the packet came in on (`IN=`); empty for packets this host sent. */
  iface: string;
  /** The interface it was routed out of (`OUT=`): set only for forwarded and outgoing packets. */
  out?: string;
  /** The configured prefix the line matched. */
  prefix: string;
}

/**
 * The fields of a logged packet that knock tracking reads, written in place by the byte-level
 * parser into one object it is given, so that a line costs no allocation: an IPv4 source as an
 * unsigned integer, an IPv6 one as canonical text.
 */
export interface PacketFields {
  time: number;
  family: Family;
  /** The IPv4 source as an unsigned 32-bit integer (family 4). */
  v4: number;
  /** The canonical IPv6 source (family 6). */
  v6: string;
  /** 0 TCP, 1 UDP (the tracker's PROTO_TCP, PROTO_UDP). */
  proto: number;
  dport: number;
  flags: number;
  /** `IN=` and `OUT=`, one string per interface name (the parser keeps them), so a line costs none. */
  iface: string;
  out: string;
  /** The destination, canonical; the same string while it stays the same address. */
  dst: string;
}

export function packetFields(): PacketFields {
  return { time: 0, family: 4, v4: 0, v6: '', proto: 0, dport: 0, flags: 0, iface: '', out: '', dst: '' };
}
