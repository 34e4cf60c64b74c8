/**
 * The daemon's control socket, `state_dir/tumblerd.sock`: what `tumblerd status` and
 * `tumblerd revoke` talk to. A Unix socket with mode 0600 in a 0700 folder, so only root can
 * use it (the daemon refuses a state folder others can write: see util/trustedDir.ts, and so does
 * a client run as root, so that no one can answer in tumblerd's place). One JSON request per line,
 * one JSON answer per line.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DoorDispatcher } from '../doors/dispatcher';
import { canonicalSource } from '../model/address';
import { untrustedReason } from '../util/trustedDir';

const MAX_REQUEST = 4096;

export function socketPath(stateDir: string): string {
  return path.join(stateDir, 'tumblerd.sock');
}

export async function startControlServer(
  stateDir: string,
  dispatcher: DoorDispatcher,
  /** The fleet's state, for status, where this gateway is in one. */
  fleet: (() => Promise<object>) | null = null,
): Promise<net.Server> {
  const file = socketPath(stateDir);
  fs.rmSync(file, { force: true }); /* left by a daemon that was killed */
  const server = net.createServer((conn) => {
    let buf = '';
    conn.on('error', () => undefined);
    conn.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl >= 0) void answer(buf.slice(0, nl)).then((reply) => conn.end(JSON.stringify(reply) + '\n'));
      else if (buf.length > MAX_REQUEST) conn.destroy();
    });
  });
  const answer = async (line: string): Promise<Record<string, unknown>> => {
    let req: { cmd?: unknown; door?: unknown; src?: unknown; forget?: unknown };
    try {
      req = JSON.parse(line);
    } catch {
      return { ok: false, error: 'not JSON' };
    }
    if (req.cmd === 'status') return { ok: true, doors: dispatcher.list(), ...(fleet ? { fleet: await fleet() } : {}) };
    if (req.cmd === 'revoke' && typeof req.door === 'string' && typeof req.src === 'string') {
      const src = canonicalSource(req.src);
      if (!src) return { ok: false, error: `${req.src} is not an address` };
      const forget = req.forget === true;
      const r = await dispatcher.closeDoor(req.door, src.address, forget ? 'revoked by tumblerd revoke --forget' : 'revoked by tumblerd revoke', forget);
      if (!r.found) return { ok: false, error: `door ${req.door} is not open for ${src.address}` };
      if (r.closed) return { ok: true, closed: true };
      if (r.forgotten) return { ok: true, closed: false, forgotten: true, error: r.error };
      return {
        ok: false,
        error: `the close failed: ${r.error}. The door stays on record and its close is retried; ` +
          `tumblerd revoke --forget ${req.door} ${src.address} drops the record`,
      };
    }
    return { ok: false, error: 'unknown request' };
  };
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(file, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(file, 0o600);
  return server;
}

/** Sends one request to a running daemon and returns its answer. */
export function controlRequest(stateDir: string, request: object): Promise<Record<string, unknown>> {
  if (process.getuid?.() === 0) {
    let why: string | null;
    try {
      why = untrustedReason(stateDir);
    } catch {
      why = null; /* missing: connecting says so */
    }
    if (why) return Promise.reject(new Error(`not asking ${socketPath(stateDir)}: ${why}, so the answer could come from anyone`));
  }
  return new Promise((resolve, reject) => {
    const conn = net.connect(socketPath(stateDir));
    let buf = '';
    conn.on('connect', () => conn.write(JSON.stringify(request) + '\n'));
    conn.on('data', (c) => (buf += c.toString('utf8')));
    conn.on('end', () => {
      try {
        resolve(JSON.parse(buf));
      } catch {
        reject(new Error('the daemon gave an answer that is not JSON'));
      }
    });
    conn.on('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`cannot reach tumblerd at ${socketPath(stateDir)} (${err.code ?? err.message}): is it running?`)),
    );
  });
}
