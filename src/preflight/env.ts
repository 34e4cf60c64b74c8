/**
 * What the preflight checks may look at on the host, behind one interface, so that the checks
 * themselves are pure and tested on recorded outputs. `hostEnv()` is the real thing.
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface CommandOutput {
  /** null: the program does not exist or was killed. */
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface PreflightEnv {
  /** Runs a program without a shell; a missing program gives status null. */
  run(argv: string[]): CommandOutput;
  /** The full path of a program as the daemon would find it (PATH), or null. */
  which(program: string): string | null;
  /** Why the daemon could not read this file or device, or null if it can: `ENOENT`, `EACCES`, ... */
  readProblem(file: string): string | null;
  /** The last lines of a file, at most `bytes` of them. */
  tail(file: string, bytes: number): string[];
  /** The records still in the kernel's ring buffer (/dev/kmsg), oldest first; throws if unreadable. */
  kmsgRecords(device: string): string[];
  /** A sysctl as this process sees it (`net/netfilter/nf_log_all_netns`), or null if absent here. */
  sysctl(name: string): string | null;
  /** The same sysctl in PID 1's network namespace (the host's, outside containers), or null. */
  hostSysctl(name: string): string | null;
  /** Is this process in PID 1's network namespace? null if it cannot tell. */
  inInitialNetns(): boolean | null;
  /** Names of this network namespace's interfaces that have an address. */
  interfaces(): string[];
  /** Does this host have IPv6 addresses beyond loopback and link-local? */
  hasRoutableIPv6(): boolean;
  /** Tries to bind a UDP socket there: null if it can, else the error code (`EADDRINUSE` means someone listens). */
  bindProblem(host: string, port: number): Promise<string | null>;
}

const RUN_TIMEOUT_MS = 5000;
const KMSG_MAX_RECORDS = 20_000;

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export function hostEnv(): PreflightEnv {
  return {
    run(argv) {
      const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: RUN_TIMEOUT_MS, maxBuffer: 64 << 20 });
      return { status: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
    which(program) {
      if (program.includes('/')) return isExecutable(program) ? program : null;
      for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
        const candidate = path.join(dir || '.', program);
        if (isExecutable(candidate)) return candidate;
      }
      return null;
    },
    readProblem(file) {
      try {
        /* open for real: access() would answer for the real uid, not for the capabilities the daemon runs with */
        fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
        return null;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      }
    },
    tail(file, bytes) {
      const fd = fs.openSync(file, 'r');
      try {
        const size = fs.fstatSync(fd).size;
        const buf = Buffer.alloc(Math.min(size, bytes));
        fs.readSync(fd, buf, 0, buf.length, size - buf.length);
        const lines = buf.toString('utf8').split('\n');
        /* the first line is cut unless the read began at the start of the file */
        return (buf.length < size ? lines.slice(1) : lines).filter((l) => l.length > 0);
      } finally {
        fs.closeSync(fd);
      }
    },
    kmsgRecords(device) {
      const fd = fs.openSync(device, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
      const out: string[] = [];
      const buf = Buffer.alloc(8192);
      try {
        while (out.length < KMSG_MAX_RECORDS) {
          let n: number;
          try {
            n = fs.readSync(fd, buf, 0, buf.length, null);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            /* EPIPE: records were overwritten while we read; the next read goes on with the oldest left */
            if (code === 'EPIPE') continue;
            if (code === 'EAGAIN') break;
            throw err;
          }
          if (n === 0) break;
          out.push(buf.toString('utf8', 0, n).split('\n')[0]);
        }
      } finally {
        fs.closeSync(fd);
      }
      return out;
    },
    sysctl(name) {
      try {
        return fs.readFileSync(path.join('/proc/sys', name), 'utf8').trim();
      } catch {
        return null;
      }
    },
    hostSysctl(name) {
      /* /proc/sys/net shows the reader's network namespace: read it from one that is in PID 1's */
      const r = spawnSync('nsenter', ['--net=/proc/1/ns/net', 'cat', path.join('/proc/sys', name)], { encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
      return r.status === 0 ? r.stdout.trim() : null;
    },
    inInitialNetns() {
      try {
        return fs.readlinkSync('/proc/self/ns/net') === fs.readlinkSync('/proc/1/ns/net');
      } catch {
        return null;
      }
    },
    interfaces() {
      return Object.keys(os.networkInterfaces());
    },
    hasRoutableIPv6() {
      return Object.values(os.networkInterfaces())
        .flat()
        .some((a) => a && a.family === 'IPv6' && !a.internal && !a.address.toLowerCase().startsWith('fe80'));
    },
    async bindProblem(host, port) {
      const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', ipv6Only: host.includes(':') });
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind(port, host, () => resolve());
        });
        return null;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      } finally {
        try {
          socket.close();
        } catch {
          /* never bound */
        }
      }
    },
  };
}
