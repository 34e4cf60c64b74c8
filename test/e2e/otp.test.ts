/**
 * Classic knocks a sniffer cannot replay, for real: a door whose sequence is derived from a TOTP
 * code, opened by `tumbler knock URI` and by a sequence computed by hand (oathtool, as a phone
 * app shows the code, knocked with Debian's knock client); refused for an old step and for a
 * second use, also after a restart. And knockd's one-time sequences file, used up line by line
 * across a restart.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, Lab, SERVICE_PORT, TUMBLER, TUMBLERD, describeLab, sleep, waitFor } from '../support/lab';

const SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
const STEP_S = 10;

describeLab('time-derived and one-time knock sequences end to end', () => {
  const lab = new Lab();
  let d: Daemon;
  let config: string;
  let uri: string;
  let oneTime: string;

  const start = async () => (d = await new Daemon(lab, config).started());
  const knock = (ports: string[]) => lab.inCli('knock', '-d', '100', lab.serverIp, ...ports);
  const tumblerKnock = (...extra: string[]) => lab.inCli(process.execPath, TUMBLER, 'knock', uri, ...extra);
  /* what a phone's TOTP app shows, cut into groups of three digits, each added to 40000 */
  const byHand = (atMs = Date.now()): string[] => {
    const code = execFileSync('oathtool', ['--totp', '-b', '--digits=6', `--time-step-size=${STEP_S}s`, '-N', `@${Math.floor(atMs / 1000)}`, SECRET], { encoding: 'utf8' }).trim();
    return [String(40000 + Number(code.slice(0, 3))), String(40000 + Number(code.slice(3)))];
  };
  const stepNow = () => Math.floor(Date.now() / 1000 / STEP_S);
  /* knocks begun this late in a step could straddle two; wait for the next one to begin */
  const earlyInStep = async () => {
    if ((Date.now() / 1000) % STEP_S > STEP_S - 3) await sleep(3000);
  };
  const opensAndCloses = async (door: string, before: number) => {
    await waitFor(`${door} to open`, () => d.count(`door opened door=${door}`) > before, 5000);
    expect(lab.connects()).toBe(true);
    await waitFor(`${door} to close`, () => d.count(`door closed door=${door}`) > before, 6000);
  };

  beforeAll(async () => {
    lab.up();
    const log = lab.startRsyslog('rfc3339');
    fs.writeFileSync(path.join(lab.dir, 'otp.key'), `${SECRET}\n`, { mode: 0o600 });
    oneTime = path.join(lab.dir, 'sequences');
    fs.writeFileSync(oneTime, ' 6001,6002,6003\n 6101,6102:udp,6103\n');
    const rule = `INPUT -p tcp -s %IP% --dport ${SERVICE_PORT} -j ACCEPT`;
    const doorCommands = `    open: iptables -I ${rule}\n    close: iptables -D ${rule}\n    close_after: 2s\n`;
    config = path.join(lab.dir, 'tumblerd.yaml');
    fs.writeFileSync(
      config,
      `state_dir: ${lab.dir}/state\nsources:\n  - file: ${log}\n    prefix: "${lab.prefix}"\ndoors:\n` +
        `  ssh:\n    otp: { secret_file: otp.key, ports: 40000-40999, length: 2, step: ${STEP_S}s }\n    sequence_timeout: 3s\n${doorCommands}` +
        `  smtp:\n    one_time_sequences: sequences\n    sequence_timeout: 3s\n${doorCommands}`,
    );
    uri = execFileSync(process.execPath, [TUMBLERD, 'otp-uri', 'ssh', '--host', lab.serverIp, '--config', config], { encoding: 'utf8' }).trim();
    await start();
  });
  afterAll(async () => {
    await d?.stop();
    lab.destroy();
  });

  it('otp-uri prints everything a client needs', () => {
    expect(uri).toBe(`tumbler-otp://${lab.serverIp}/ssh?secret=${SECRET}&ports=40000-40999&length=2&step=${STEP_S}&digits=6&algorithm=SHA1`);
  });

  it('opens for tumbler knock URI, refuses the same sequence a second time, and a sequence of an old step', async () => {
    await earlyInStep();
    expect(lab.connects()).toBe(false);
    const knockedAt = Date.now();
    tumblerKnock();
    await opensAndCloses('ssh', 0);
    expect(d.output).toMatch(/door opened door=ssh src=10\.77\.\d+\.2 via=sequence/);

    /* a sniffer replays what it saw (the step may have turned since: its sequence is still accepted) */
    const seen = byHand(knockedAt);
    knock(seen);
    await waitFor('the replay to be refused', () => d.count('knock sequence refused door=ssh') === 1, 5000);
    expect(d.output).toContain('was already used');
    expect(d.count('door opened door=ssh')).toBe(1);
    expect(lab.connects()).toBe(false);

    /* a sequence recorded three steps ago */
    tumblerKnock('--at', new Date(Date.now() - 3 * STEP_S * 1000).toISOString());
    await sleep(1500);
    expect(d.count('door opened door=ssh')).toBe(1);
    expect(lab.connects()).toBe(false);
  });

  it('opens for a sequence computed by hand in the next step, and still refuses its replay after a restart', async () => {
    const used = stepNow();
    await waitFor('the next time step', () => stepNow() > used, (STEP_S + 1) * 1000);
    const handMade = byHand();
    const handStep = stepNow();
    knock(handMade);
    await opensAndCloses('ssh', 1);

    await d.stop();
    await start();
    knock(handMade);
    await waitFor('the replay to be refused after the restart', () => d.count('knock sequence refused door=ssh') === 1, 5000);
    expect(d.count('door opened door=ssh')).toBe(0);
    expect(lab.connects()).toBe(false);
    /* kept until the step can no longer be accepted */
    expect(fs.readFileSync(path.join(lab.dir, 'state', 'otp-used'), 'utf8')).toContain(`${(handStep + 2) * STEP_S * 1000} ssh@${handStep}\n`);
  });

  it('uses a one-time sequences file line by line, marking each as knockd does, across a restart', async () => {
    knock(['6001', '6002', '6003']);
    await opensAndCloses('smtp', 0);
    expect(fs.readFileSync(oneTime, 'utf8')).toBe('#6001,6002,6003\n 6101,6102:udp,6103\n');
    knock(['6001', '6002', '6003']);
    await sleep(1500);
    expect(d.count('door opened door=smtp')).toBe(1);

    await d.stop();
    await start();
    knock(['6001', '6002', '6003']);
    await sleep(1500);
    expect(d.count('door opened door=smtp')).toBe(0);
    knock(['6101', '6102:udp', '6103']);
    await opensAndCloses('smtp', 0);
    expect(fs.readFileSync(oneTime, 'utf8')).toBe('#6001,6002,6003\n#6101,6102:udp,6103\n');
    await waitFor('the used-up warning', () => d.output.includes('every sequence in'), 3000);
  });
});
