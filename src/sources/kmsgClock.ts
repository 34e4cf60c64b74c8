/** The clock kmsg records are stamped with, apart from the source so that `scan` can date them without loading it. */

/**
 * Microseconds since boot now, on the clock /dev/kmsg stamps records with: CLOCK_MONOTONIC
 * (checked here against a record written to /dev/kmsg; /proc/uptime also counts time suspended).
 */
export function uptimeUsec(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * Wall-clock time of a kmsg stamp, from the offset between the wall clock and the stamps' clock as
 * it is when the record is read: a wall clock that steps (an NTP step after boot, a VM restored,
 * a resume) is followed from the next record on, instead of every knock looking stale.
 */
export function kmsgWallTime(now: () => number = Date.now, monotonicUsec: () => number = uptimeUsec): (usec: number) => number {
  return (usec) => Math.floor(now() - Math.max(0, monotonicUsec() - usec) / 1000);
}
