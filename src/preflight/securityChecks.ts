/** Start-up checks about who else could read a secret or forge a knock. */
import fs from 'node:fs';
import { TumblerdConfig } from '../config/types';
import { fleetKeyPrivate } from '../fleet/key';
import { isSyslogKernelLine } from '../netfilter/logLine';
import { HOST_CHECKS } from './checks';
import { FORGERY_CHECKS } from './forgeryChecks';
import { CheckResult, PreflightCheck } from './preflight';
import { untrustedReason } from '../util/trustedDir';

/**
 * A syslog file that holds other programs' lines lets any local user write a line that looks
 * like the kernel's (`logger -t kernel`). Looks at the file's last 64 KiB to see if it does.
 */
export function mixesFacilities(file: string): boolean {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(Math.min(size, 64 * 1024));
      fs.readSync(fd, buf, 0, buf.length, size - buf.length);
      return buf
        .toString('utf8')
        .split('\n')
        .slice(1)
        .some((l) => l.length > 0 && !isSyslogKernelLine(l));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

export const secretsReadable: PreflightCheck = {
  name: 'config-secrets',
  run(config: TumblerdConfig): CheckResult[] {
    if (!config.doors.some((d) => d.secret)) return [];
    let mode: number;
    try {
      mode = fs.statSync(config.file).mode;
    } catch {
      return [];
    }
    if ((mode & 0o004) === 0) return [{ status: 'ok', message: `${config.file} holds door secrets and only its owner and group can read it` }];
    return [{ status: 'warn', message: `${config.file} holds door secrets and any user can read it`, fix: `chmod 600 ${config.file}, or use secret_file` }];
  },
};

export const fileSourcesKernelOnly: PreflightCheck = {
  name: 'file-source-facilities',
  run(config: TumblerdConfig): CheckResult[] {
    return config.sources.flatMap((s): CheckResult[] =>
      s.kind === 'file' && mixesFacilities(s.path)
        ? [{
            status: 'warn',
            message: `${s.path} mixes kernel lines with other programs' lines: any local user can forge a knock into it (logger -t kernel)`,
            fix: 'prefer a kernel-only source: kmsg: /dev/kmsg, journald: true, or a kern.* file such as /var/log/kern.log',
          }]
        : [],
    );
  },
};

/** Below this, a sniffed knock lets a secret be guessed offline in reach of a laptop. */
export const MIN_SECRET_LENGTH = 16;

export const secretStrength: PreflightCheck = {
  name: 'secret-length',
  run(config: TumblerdConfig): CheckResult[] {
    return config.doors.flatMap((d): CheckResult[] =>
      d.secret && d.secret.length < MIN_SECRET_LENGTH
        ? [{
            status: 'warn',
            message: `door ${d.name} has a secret of ${d.secret.length} characters: anyone who sniffs one knock can guess it offline`,
            fix: `use ${MIN_SECRET_LENGTH} or more random characters (head -c 24 /dev/urandom | base64)`,
          }]
        : [],
    );
  },
};

export const secretFilesPrivate: PreflightCheck = {
  name: 'secret-file-mode',
  run(config: TumblerdConfig): CheckResult[] {
    return config.doors.flatMap((d): CheckResult[] => {
      if (!d.secretFile) return [];
      let st: fs.Stats;
      try {
        st = fs.statSync(d.secretFile);
      } catch {
        return [];
      }
      const uid = process.getuid?.();
      if ((st.mode & 0o077) === 0 && (uid === undefined || st.uid === uid || st.uid === 0)) return [];
      return [{
        status: 'warn',
        message: `${d.secretFile}, the secret of door ${d.name}, has mode ${(st.mode & 0o777).toString(8)} and owner uid ${st.uid}: others can read or change it`,
        fix: `chown root: ${d.secretFile}; chmod 600 ${d.secretFile}`,
      }];
    });
  },
};

/** The daemon refuses to start on such a folder (util/trustedDir.ts); --check says so beforehand. */
export const stateDirTrusted: PreflightCheck = {
  name: 'state-dir',
  run(config: TumblerdConfig): CheckResult[] {
    if (process.getuid?.() !== 0 || !fs.existsSync(config.stateDir)) return [];
    const why = fs.lstatSync(config.stateDir).isSymbolicLink() ? `${config.stateDir} is a symlink` : untrustedReason(config.stateDir);
    return why
      ? [{ status: 'fail', message: `state_dir ${config.stateDir} is not safe for root: ${why}`, fix: 'make it and every folder above it root\'s and writable by no one else (a sticky folder like /tmp is fine above it)' }]
      : [];
  },
};

/** What the daemon runs at start, `--check` prints when not OK, and `tumblerd doctor` prints whole. */
export const PREFLIGHT_CHECKS: readonly PreflightCheck[] = [
  secretsReadable, fileSourcesKernelOnly, fleetKeyPrivate, secretStrength, secretFilesPrivate, stateDirTrusted, ...FORGERY_CHECKS, ...HOST_CHECKS,
];
