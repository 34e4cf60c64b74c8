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
