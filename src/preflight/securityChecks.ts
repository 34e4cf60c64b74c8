/** Start-up checks about who else could read a secret or forge a knock. */
import fs from 'node:fs';
import { TumblerdConfig } from '../config/types';
import { fleetKeyPrivate } from '../fleet/key';
import { isSyslogKernelLine } from '../netfilter/logLine';
import { CheckResult, PreflightCheck } from './preflight';

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

export const PREFLIGHT_CHECKS: readonly PreflightCheck[] = [secretsReadable, fileSourcesKernelOnly, fleetKeyPrivate];
