/**
 * The fleet key: 32 random bytes shared by a group's gateways, written as 64 hex digits so that
 * it can be copied between hosts as text. It authenticates every grant a gateway publishes.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type { TumblerdConfig } from '../config/types';
import type { CheckResult, PreflightCheck } from '../preflight/preflight';

export const FLEET_KEY_BYTES = 32;

export function parseFleetKey(text: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`a fleet key is ${FLEET_KEY_BYTES} bytes written as 64 hex digits (make one with tumblerd keygen --fleet FILE)`);
  return Buffer.from(hex, 'hex');
}

/** Writes a new key to `file`, readable by its owner only; refuses to replace an existing file. */
export function writeNewFleetKey(file: string): void {
  const fd = fs.openSync(file, 'wx', 0o600);
  try {
    fs.writeSync(fd, crypto.randomBytes(FLEET_KEY_BYTES).toString('hex') + '\n');
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  /* the umask could have narrowed it further, never widened it: make it exactly 0600 */
  fs.chmodSync(file, 0o600);
}

/** Whoever can read the key can make grants every gateway of the group applies. */
export const fleetKeyPrivate: PreflightCheck = {
  name: 'fleet-key',
  run(config: TumblerdConfig): CheckResult[] {
    if (!config.fleet) return [];
    const file = config.fleet.keyFile;
    let mode: number;
    try {
      mode = fs.statSync(file).mode;
    } catch {
      return [];
    }
    if ((mode & 0o077) === 0) return [{ status: 'ok', message: `${file} (the fleet key) is readable by its owner only` }];
    return [{
      status: 'warn',
      message: `${file} (the fleet key) can be read by other users: with it they can make grants every gateway of fleet ${config.fleet.group} applies`,
      fix: `chmod 600 ${file}`,
    }];
  },
};
