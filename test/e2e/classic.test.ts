/**
 * The product's main job, for real: Debian's knock client knocks from one namespace, the
 * server's firewall logs the dropped SYNs, rsyslog writes them to a file (or tumblerd reads
 * /dev/kmsg), tumblerd opens the door with iptables, and a real TCP connection gets through,
 * until close_after shuts it again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, Lab, SERVICE_PORT, describeLab, sleep, waitFor } from '../support/lab';

function doorConfig(lab: Lab, source: string, extra = ''): string {
  const file = path.join(lab.dir, `tumblerd-${Date.now()}.yaml`);
  const rule = `INPUT -p tcp -s %IP% --dport ${SERVICE_PORT} -j ACCEPT`;
  fs.writeFileSync(
    file,
    `state_dir: ${lab.dir}/state
sources:
  - ${source}
    prefix: "${lab.prefix}"
doors:
  ssh:
    sequence: [42, 196, 69]
    sequence_timeout: 2s
    open: iptables -I ${rule}
    close: iptables -D ${rule}
    open6: ip6tables -I ${rule}
    close6: ip6tables -D ${rule}
    close_after: 3s
${extra}`,
  );
  return file;
}

/** Knocks with Debian's knock client from the client namespace. */
function knock(lab: Lab, target: string, ports: string[], delayMs = 100): void {
  lab.inCli('knock', ...(target.includes(':') ? ['-6'] : []), '-d', String(delayMs), target, ...ports);
}

async function expectOpensAndCloses(lab: Lab, d: Daemon, target: string, before: number): Promise<void> {
  await waitFor('the door to open', () => d.count('door opened') > before, 5000);
  expect(lab.connects(target)).toBe(true);
  await waitFor('the door to close', () => d.count('door closed') > before, 6000);
  expect(lab.connects(target)).toBe(false);
}

describeLab('classic knocks end to end (file source through rsyslog)', () => {
  const lab = new Lab();
  let d: Daemon;

  beforeAll(async () => {
    lab.up();
    const log = lab.startRsyslog('rfc3339');
    d = await new Daemon(lab, doorConfig(lab, `file: ${log}`)).started();
  });
  afterAll(async () => {
    await d?.stop();
    lab.destroy();
  });

  it('keeps the port closed until the right knock, then opens it, then closes it after close_after', async () => {
    expect(lab.connects()).toBe(false);
    knock(lab, lab.serverIp, ['42', '196', '69']);
    await expectOpensAndCloses(lab, d, lab.serverIp, 0);
    expect(d.output).toMatch(/door opened door=ssh src=10\.77\.\d+\.2 via=sequence/);
  });

  it('does not open on the wrong order', async () => {
    const opened = d.count('door opened');
    knock(lab, lab.serverIp, ['42', '69', '196']);
    await sleep(1500);
    expect(d.count('door opened')).toBe(opened);
    expect(lab.connects()).toBe(false);
  });

  it('does not open on a knock slower than sequence_timeout', async () => {
    const opened = d.count('door opened');
    knock(lab, lab.serverIp, ['42', '196', '69'], 2500); /* well past the 2 s timeout: rsyslog 8.2302's imkmsg stamps lines when it reads them, and a loaded host reads in bursts */
    await sleep(1500);
    expect(d.count('door opened')).toBe(opened);
    expect(lab.connects()).toBe(false);
  });

  it('opens only for the source that knocked', async () => {
    const opened = d.count('door opened');
    lab.synsFrom(lab.otherIp, lab.serverIp, [42, 196, 69]);
    await waitFor('the door to open for the other source', () => d.count('door opened') > opened, 5000);
    expect(d.output).toContain(`src=${lab.otherIp} via=sequence`);
    expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(true);
    expect(lab.connects(lab.serverIp, lab.clientIp)).toBe(false);
    await waitFor('the door to close', () => d.count('door closed') > opened, 6000);
  });

  it('opens for an IPv6 source with open6', async () => {
    const opened = d.count('door opened');
    expect(lab.connects(lab.serverIp6)).toBe(false);
    knock(lab, lab.serverIp6, ['42', '196', '69']);
    await waitFor('the door to open', () => d.count('door opened') > opened, 5000);
    expect(d.output).toContain(`door opened door=ssh src=${lab.clientIp6} via=sequence`);
    expect(lab.connects(lab.serverIp6)).toBe(true);
    expect(lab.connects(lab.serverIp)).toBe(false);
    await waitFor('the door to close', () => d.count('door closed') > opened, 6000);
    expect(lab.connects(lab.serverIp6)).toBe(false);
  });

  it('closes open doors on SIGTERM', async () => {
    const opened = d.count('door opened');
    knock(lab, lab.serverIp, ['42', '196', '69']);
    await waitFor('the door to open', () => d.count('door opened') > opened, 5000);
    expect(lab.connects()).toBe(true);
    expect(await d.stop('SIGTERM')).toBe(0);
    expect(d.output).toContain('reason="tumblerd stopping (SIGTERM)"');
    expect(lab.connects()).toBe(false);
  });
});

describeLab('classic knocks across log rotation', () => {
  const lab = new Lab();
  let log: string;
  beforeAll(() => {
    lab.up();
    log = lab.startRsyslog('traditional');
  });
  afterAll(() => lab.destroy());

  function logrotate(mode: 'create' | 'copytruncate'): void {
    const conf = path.join(lab.dir, 'logrotate.conf');
    fs.writeFileSync(
      conf,
      `${log} {\n  rotate 3\n  ${mode}\n  missingok\n` +
        (mode === 'create' ? `  postrotate\n    kill -HUP ${lab.rsyslog}\n  endscript\n` : '') +
        `}\n`,
    );
    lab.sh(['logrotate', '-f', '-s', path.join(lab.dir, 'logrotate.state'), conf]);
  }

  it.each(['create', 'copytruncate'] as const)('follows the file through logrotate %s between knocks', async (mode) => {
    const d = await new Daemon(lab, doorConfig(lab, `file: ${log}`)).started();
    try {
      knock(lab, lab.serverIp, ['42', '196']);
      await waitFor('the first two knocks to be read', () => d.output.includes('step=2/3'), 3000);
      logrotate(mode);
      await sleep(300);
      knock(lab, lab.serverIp, ['69']);
      await expectOpensAndCloses(lab, d, lab.serverIp, 0);
      expect(d.output).toMatch(mode === 'create' ? /rotated \(new file\)/ : /was truncated/);
    } finally {
      await d.stop();
    }
  });
});

describeLab('classic knocks from /dev/kmsg', () => {
  const lab = new Lab();
  beforeAll(() => lab.up());
  afterAll(() => lab.destroy());

  it('opens and closes the door', async () => {
    const d = await new Daemon(lab, doorConfig(lab, 'kmsg: /dev/kmsg')).started();
    try {
      expect(lab.connects()).toBe(false);
      knock(lab, lab.serverIp, ['42', '196', '69']);
      await expectOpensAndCloses(lab, d, lab.serverIp, 0);
    } finally {
      await d.stop();
    }
  });
});
