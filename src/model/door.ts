/**
 * What a door is, as every part sees it: the config builds it, the knock protocols name it, the
 * dispatcher opens it. Types only, so that no part has to import another part to speak of doors.
 */
import type { Protocol } from './packet';

/** A command line split into words; `%IP%` and `%NAME%` are filled in per word. */
export type CommandTemplate = readonly string[];

export interface Knock {
  port: number;
  proto: Protocol;
}

/** Which TCP packets count as knocks: all `require` bits set, no `forbid` bit set. */
export interface FlagFilter {
  require: number;
  forbid: number;
}

export interface AllowRule {
  proto: Protocol;
  port: number;
}

export type OtpAlgorithm = 'sha1' | 'sha256' | 'sha512';

/** A sequence derived from a shared secret and the time (see knock/otp.ts). */
export interface OtpSpec {
  /** The shared secret as TOTP apps keep it: base32, upper case, no padding. */
  secret: string;
  /** First port of the range; the range holds `rangeSize` ports, a power of ten. */
  firstPort: number;
  rangeSize: number;
  length: number;
  stepMs: number;
  algorithm: OtpAlgorithm;
}

export interface DoorConfig {
  name: string;
  sequence: Knock[] | null;
  sequenceTimeoutMs: number;
  flags: FlagFilter;
  secret: string | null;
  open: CommandTemplate[];
  close: CommandTemplate[];
  open6: CommandTemplate[];
  close6: CommandTemplate[];
  closeAfterMs: number | null;
  commandTimeoutMs: number;
  allow: AllowRule[];
  /** Instead of `sequence`: a sequence derived from a secret and the time. */
  otp?: OtpSpec | null;
  /** Instead of `sequence`: knockd's one_time_sequences file (absolute path). */
  oneTimeSequences?: string | null;
  /** `open6: []` / `close6: []` (knockd's empty start_command_6 =): nothing for IPv6 sources, not open/close. */
  nothing6?: { open: boolean; close: boolean };
  /** Classic knocks count only when they came in on one of these interfaces (knockd's Interface); absent: any. */
  interfaces?: string[];
  /** Most sources the door is open for at once (`max_open`); the dispatcher's default when absent. */
  maxOpen?: number;
  /** Where the secret was read from (`secret_file`), for the permission check. */
  secretFile?: string | null;
  /** A grant here opens the door on every gateway of the fleet (config `fleet: true`). */
  fleet?: boolean;
}
