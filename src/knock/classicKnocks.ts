/**
 * Classic knocks whose sequence is not fixed: time-derived (`otp:`) and knockd's one-time
 * sequences. The state machine (tracker.ts) only knows fixed sequences, so each such door is
 * given to it as the sequences it accepts right now, under internal names that map back to the
 * door; they are re-derived when the events' time crosses a step boundary and after a one-time
 * line is used. Driven by the events' own times, like the tracker, so `scan` gives the same
 * answer as the daemon. A derived sequence is claimed (durably) before its door may open.
 */
import type { Family } from '../model/address';
import type { DoorConfig, Knock } from '../model/door';
import type { PacketEvent } from '../model/packet';
import { OneTimeLine, OneTimeSequenceFile } from './oneTime';
import { acceptedSteps, base32Decode, otpSequence, stepAcceptedUntil, timeStep } from './otp';
import { Completion, KnockDoor, KnockTracker, TrackerStats, knockDoorsOf } from './tracker';
import type { UsedSequences } from './usedSequences';

export interface ClassicKnockHooks {
  /** A knock moved an attempt on (debug logs); `door` is the internal name (`door@step`, `door#line`). */
  progress?: (door: string, src: string, step: number, of: number) => void;
  /** A sequence was completed but may not open its door (already used, or could not be recorded). */
  refused?: (door: string, src: string, reason: string) => void;
  warn?: (message: string) => void;
}

type Candidate =
  | { kind: 'otp'; door: DoorConfig; step: number }
  | { kind: 'oneTime'; door: DoorConfig; entry: OneTimeLine; file: OneTimeSequenceFile };

const NONE: readonly Completion[] = Object.freeze([]);

export class ClassicKnocks {
  private readonly tracker: KnockTracker;
  private doors: DoorConfig[] = [];
  private readonly keys = new Map<string, Buffer>();
  private readonly oneTimeFiles = new Map<string, OneTimeSequenceFile>();
  /* Doors already warned about, so that a used-up file is said once, not at every step boundary. */
  private readonly warned = new Map<string, string>();
  private candidates = new Map<string, Candidate>();
  /* The derived sequences hold for events in [validFrom, validUntil). */
  private validFrom = Infinity;
  private validUntil = -Infinity;

  constructor(
    doors: readonly DoorConfig[],
    maxSources: number,
    private readonly used: UsedSequences,
    private readonly hooks: ClassicKnockHooks = {},
    /** One-time lines are used in memory only, the file left as it is (for scan). */
    private readonly simulateOneTime = false,
    now = Date.now(),
  ) {
    this.tracker = new KnockTracker([], maxSources, hooks.progress);
    this.reconfigure(doors, now);
  }

  /** Swaps in a new set of doors; attempts in progress survive where their sequence does. */
  reconfigure(doors: readonly DoorConfig[], now = Date.now()): void {
    this.doors = [...doors];
    this.keys.clear();
    for (const d of doors) if (d.otp) this.keys.set(d.name, base32Decode(d.otp.secret));
    this.rebuild(now);
  }

  setMaxSources(max: number): void {
    this.tracker.setMaxSources(max);
  }

  handle(e: PacketEvent): readonly Completion[] {
    if (e.time < this.validFrom || e.time >= this.validUntil) this.rebuild(e.time);
    return this.opened(this.tracker.handle(e));
  }

  /** The byte path's fields (see KnockTracker.knock). */
  knock(time: number, family: Family, v4: number, v6: string, proto: number, dport: number, flags: number, iface: string): readonly Completion[] {
    if (time < this.validFrom || time >= this.validUntil) this.rebuild(time);
    return this.opened(this.tracker.knock(time, family, v4, v6, proto, dport, flags, iface));
  }

  /** KnockTracker.passOver, while the derived sequences it holds are the ones for `time` (else knock() would rebuild them first). */
  passOver(time: number, family: Family, v4: number, dport: number): boolean {
    return time >= this.validFrom && time < this.validUntil && this.tracker.passOver(time, family, v4, dport);
  }

  /** The tracker's completions as doors to open: derived sequences claimed, one-time ones used. */
  private opened(done: readonly Completion[]): readonly Completion[] {
    if (done.length === 0 || this.candidates.size === 0) return done;
    let out: Completion[] | null = null;
    for (const c of done) {
      const cand = this.candidates.get(c.door);
      if (!cand) {
        (out ??= []).push(c);
        continue;
      }
      const opened = { ...c, door: cand.door.name };
      if (cand.kind === 'otp') {
        const r = this.used.claim(`${cand.door.name}@${cand.step}`, stepAcceptedUntil(cand.step, cand.door.otp!.stepMs), c.time);
        if (r === 'fresh') (out ??= []).push(opened);
        else this.hooks.refused?.(cand.door.name, c.src, r === 'replay' ? `the sequence of time step ${cand.step} was already used` : 'the used-sequence record is full or cannot be written');
        continue;
      }
      try {
        cand.file.use(cand.entry);
      } catch (err) {
        this.hooks.refused?.(cand.door.name, c.src, `could not mark ${cand.file.file}:${cand.entry.line} used: ${(err as Error).message}`);
        this.rebuild(c.time);
        continue;
      }
      (out ??= []).push(opened);
      this.rebuild(c.time);
    }
    return out ?? NONE;
  }

  get horizonMs(): number {
    return this.tracker.horizonMs;
  }

  stats(): TrackerStats {
    return this.tracker.stats();
  }

  private rebuild(time: number): void {
    const candidates = new Map<string, Candidate>();
    const knockDoors: KnockDoor[] = knockDoorsOf(this.doors);
    const add = (d: DoorConfig, name: string, sequence: Knock[], cand: Candidate) => {
      knockDoors.push({ name, sequence, timeoutMs: d.sequenceTimeoutMs, flags: d.flags });
      candidates.set(name, cand);
    };
    this.validFrom = -Infinity;
    this.validUntil = Infinity;
    for (const d of this.doors) {
      if (d.otp) {
        const t = timeStep(time, d.otp.stepMs);
        this.validFrom = Math.max(this.validFrom, t * d.otp.stepMs);
        this.validUntil = Math.min(this.validUntil, (t + 1) * d.otp.stepMs);
        for (const step of acceptedSteps(time, d.otp.stepMs)) {
          add(d, `${d.name}@${step}`, otpSequence(d.otp, step, this.keys.get(d.name)), { kind: 'otp', door: d, step });
        }
      } else if (d.oneTimeSequences) {
        let file = this.oneTimeFiles.get(d.oneTimeSequences);
        if (!file) this.oneTimeFiles.set(d.oneTimeSequences, (file = new OneTimeSequenceFile(d.oneTimeSequences, this.simulateOneTime)));
        let entry: OneTimeLine | null = null;
        let problem: string | null = null;
        try {
          entry = file.current();
          if (!entry) problem = `door ${d.name}: every sequence in ${file.file} is used: the door is disabled until lines are added`;
        } catch (err) {
          problem = `door ${d.name}: cannot read ${file.file}: ${(err as Error).message}`;
        }
        if (problem && this.warned.get(d.name) !== problem) this.hooks.warn?.(problem);
        if (problem) this.warned.set(d.name, problem);
        else this.warned.delete(d.name);
        if (entry) add(d, `${d.name}#${entry.line}`, entry.sequence, { kind: 'oneTime', door: d, entry, file });
      }
    }
    this.candidates = candidates;
    this.tracker.reconfigure(knockDoors);
  }
}
