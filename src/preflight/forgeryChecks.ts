/**
 * Checks about who can put a knock into the log tumblerd reads, and about sequences that
 * ordinary traffic would knock by accident. Run at start and by `tumblerd --check`.
 */
import fs from 'node:fs';
import { TumblerdConfig } from '../config/types';
import { formatKnock } from '../knock/sequence';
import type { Knock } from '../model/door';
import { ALL_NETNS_WARNING, otherNamespacesLog } from '../netfilter/hostFilter';
import { CheckResult, PreflightCheck } from './preflight';

/** Where journald's syslog socket is: /dev/log links here when journald owns it. */
const JOURNALD_DEV_LOG = '/run/systemd/journal/dev-log';

export const otherNamespaces: PreflightCheck = {
  name: 'nf-log-all-netns',
  run(config: TumblerdConfig): CheckResult[] {
    if (!config.doors.some((d) => d.sequence) || !otherNamespacesLog()) return [];
    return [{
      status: 'warn',
      message: ALL_NETNS_WARNING,
      fix: 'sysctl -w net.netfilter.nf_log_all_netns=0 (if tumblerd and its firewall run in the first network namespace), or user.max_user_namespaces=0',
    }];
  },
};

/**
 * Who owns /dev/log decides whether a local user can write a kern line into a syslog file:
 * rsyslog's imuxsock files a datagram `<4>kernel: ...` from any user as kern.warning (tried with
 * rsyslog 8.2302), journald files every non-kernel sender under its own facility, user.
 */
export function devLogOwner(devLog = '/dev/log'): 'journald' | 'syslog daemon' | 'none' {
  try {
    if (fs.lstatSync(devLog).isSymbolicLink() && fs.realpathSync(devLog) === fs.realpathSync(JOURNALD_DEV_LOG)) return 'journald';
    return 'syslog daemon';
  } catch {
    return 'none';
  }
}

export const fileSourceForgery: PreflightCheck = {
  name: 'file-source-forgery',
  run(config: TumblerdConfig): CheckResult[] {
    const files = config.sources.filter((s) => s.kind === 'file').map((s) => (s.kind === 'file' ? s.path : ''));
    if (files.length === 0) return [];
    const owner = devLogOwner();
    if (owner === 'journald') return [];
    return files.map((file) => ({
      status: 'warn' as const,
      message:
        `${file}: any local user may be able to forge a knock into it: ` +
        (owner === 'syslog daemon'
          ? '/dev/log belongs to a syslog daemon, and rsyslog files a raw datagram "<4>kernel: ..." from any user as kern'
          : 'no /dev/log here now, and a syslog daemon that later owns it (rsyslog) files a raw "<4>kernel: ..." datagram from any user as kern'),
      fix: 'read the kernel log itself: kmsg: /dev/kmsg (or journald: true)',
    }));
  },
};

/** Why a sequence is one that scans and ordinary traffic hit by accident, or null. */
export function accidentalSequence(seq: readonly Knock[]): string | null {
  if (seq.length === 1) return 'a single port: any connection attempt to it opens the door';
  const ascending = seq.every((k, i) => i === 0 || (k.port === seq[i - 1].port + 1 && k.proto === seq[i - 1].proto));
  if (ascending) return 'consecutive ascending ports: a scan that walks the ports in order (nmap -r, masscan ranges) knocks it';
  return null;
}

export const accidentalSequences: PreflightCheck = {
  name: 'knock-sequences',
  run(config: TumblerdConfig): CheckResult[] {
    return config.doors.flatMap((d): CheckResult[] => {
      const why = d.sequence && accidentalSequence(d.sequence);
      return why
        ? [{
            status: 'warn',
            message: `door ${d.name}: sequence ${d.sequence!.map(formatKnock).join(',')} is ${why}`,
            fix: 'use three or more ports in no order a scan follows, or a Tumbler secret',
          }]
        : [];
    });
  },
};

export const FORGERY_CHECKS: readonly PreflightCheck[] = [otherNamespaces, fileSourceForgery, accidentalSequences];
