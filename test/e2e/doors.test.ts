/**
 * Doors that never lie, on real processes and a real firewall (iptables in the lab's server
 * namespace): a door opens only once its record and its replay claim are on disk (a full tmpfs,
 * an immutable folder); a slow open against a short close_after and against revoke; revoke of a
 * failing close, status, --forget; a rule deleted under tumbler, then a knock (also across kill -9
 * and a restart, and a restart "after a reboot"); stop waits for its close commands; a 30-day door.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, Lab, SERVICE_PORT, TUMBLERD, TUMBLER_PORT, describeLab, sleep, waitFor } from '../support/lab';
import { formatDatagram, knockDigest } from '../../src/tumbler/protocol';

const SECRET = 'doors-test-secret-0123456789';

describeLab(
  'doors that never lie (iptables)',
  () => {
    const lab = new Lab();
    let stateDir: string;
    let d: Daemon | null = null;
    let mounted: string | null = null;
    let immutable: string | null = null;

    const rule = (ip: string) => ['INPUT', '-s', ip, '-p', 'tcp', '--dport', String(SERVICE_PORT), '-j', 'ACCEPT'];
    const ruleCount = (ip: string) => lab.inSrv('iptables', '-S', 'INPUT').split('\n').filter((l) => l.includes(`-s ${ip}/32`) && l.includes(`--dport ${SERVICE_PORT}`)).length;
    /** A config with one door `ssh` opened by a Tumbler knock; `door` adds or overrides its keys. */
    const configWith = (door: string, extra = ''): string => {
      const file = path.join(lab.dir, 'tumblerd.yaml');
      fs.writeFileSync(
        file,
        `state_dir: ${stateDir}\n${extra}sources:\n  - kmsg: /dev/kmsg\n    prefix: "${lab.prefix}"\ntumbler:\n  listen: ["0.0.0.0:${TUMBLER_PORT}"]\n` +
          `doors:\n  ssh:\n    secret: ${SECRET}\n    sequence: [42, 196, 69]\n${door}`,
      );
      return file;
    };
    const script = (name: string, body: string): string => {
      const file = path.join(lab.dir, name);
      fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
      return file;
    };
    const tumblerKnock = (from = lab.clientIp) =>
      lab.udpFrom(from, lab.serverIp, TUMBLER_PORT, Buffer.from(formatDatagram(knockDigest(Date.now(), from, SECRET))));
    const classicKnock = () => lab.inCli('knock', '-d', '50', lab.serverIp, '42', '196', '69');
    const cli = (config: string, ...args: string[]) =>
      spawnSync('ip', ['netns', 'exec', lab.srv, process.execPath, TUMBLERD, ...args, '-c', config], { encoding: 'utf8' });
    const commandDoor = (closeAfter: string, open = `iptables -I ${rule('%IP%').join(' ')}`) =>
      `    open: ${open}\n    close: iptables -D ${rule('%IP%').join(' ')}\n    close_after: ${closeAfter}\n`;

    beforeAll(() => {
      lab.up();
      stateDir = path.join(lab.dir, 'state');
    });
    afterEach(async () => {
      await d?.stop('SIGKILL');
      d = null;
      if (immutable) spawnSync('chattr', ['-i', immutable]);
      immutable = null;
      if (mounted) spawnSync('umount', ['-l', mounted]);
      mounted = null;
      fs.rmSync(stateDir, { recursive: true, force: true });
      /* every rule a test left: the next one starts with none */
      for (const ip of [lab.clientIp, lab.otherIp]) while (ruleCount(ip) > 0) lab.inSrv('iptables', '-D', ...rule(ip));
    });
    afterAll(() => lab.destroy());

    it('fails closed on a full disk: the knock is refused, nothing opens, and it opens once there is room', async () => {
      fs.mkdirSync(stateDir, { mode: 0o700 });
      lab.sh(['mount', '-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tumbler-doors-tmpfs', stateDir]);
      mounted = stateDir;
      const config = configWith(commandDoor('30s'));
      d = await new Daemon(lab, config).started();
      const filler = path.join(stateDir, 'filler');
      spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
      tumblerKnock();
      await waitFor('the refusal', () => d!.output.includes('replay store failed: Tumbler knock refused'), 5000);
      expect(d.output).toContain('ENOSPC');
      classicKnock();
      await waitFor('the refusal of the classic knock', () => d!.output.includes('knock refused: the door could not be recorded'), 5000);
      await sleep(300);
      expect(ruleCount(lab.clientIp)).toBe(0);
      expect(d.output).not.toContain('door opened');
      expect(lab.connects()).toBe(false);
      fs.rmSync(filler);
      tumblerKnock(); /* the same minute's digest: refused before, so not a replay now */
      await waitFor('the door to open', () => d!.output.includes('door opened'), 5000);
      expect(ruleCount(lab.clientIp)).toBe(1);
      const saved = JSON.parse(fs.readFileSync(path.join(stateDir, 'doors.json'), 'utf8'));
      expect(saved.doors).toEqual([expect.objectContaining({ door: 'ssh', src: lab.clientIp })]);
    });

    it('fails closed on an immutable state folder', async () => {
      const config = configWith(commandDoor('30s'));
      d = await new Daemon(lab, config).started();
      lab.sh(['chattr', '+i', stateDir]);
      immutable = stateDir;
      classicKnock();
      await waitFor('the refusal', () => d!.output.includes('knock refused: the door could not be recorded'), 5000);
      expect(d.output).toMatch(/EPERM|EACCES/);
      expect(ruleCount(lab.clientIp)).toBe(0);
      expect(lab.connects()).toBe(false);
    });

    it('a close_after of 1 s against an open that takes 3 s: the close waits, the rule goes, status is empty', async () => {
      const slow = script('slow-open.sh', `sleep 3\nexec iptables -I ${rule('"$1"').join(' ')}`);
      const config = configWith(commandDoor('1s', `${slow} %IP%`));
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the door to close', () => d!.output.includes('door closed'), 8000);
      expect(d.output.indexOf('door closed')).toBeGreaterThan(d.output.indexOf('door opened'));
      expect(ruleCount(lab.clientIp)).toBe(0);
      expect(lab.connects()).toBe(false);
      expect(cli(config, 'status').stdout).toContain('no door is open');
    });

    it('revoke during a 3 s open waits for it and then closes it', async () => {
      const slow = script('slow-open.sh', `sleep 3\nexec iptables -I ${rule('"$1"').join(' ')}`);
      const config = configWith(commandDoor('60s', `${slow} %IP%`));
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the door to be on record', () => cli(config, 'status').stdout.includes(lab.clientIp), 3000);
      const r = cli(config, 'revoke', 'ssh', lab.clientIp);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`closed ssh for ${lab.clientIp}`);
      expect(ruleCount(lab.clientIp)).toBe(0);
      await sleep(500);
      expect(ruleCount(lab.clientIp)).toBe(0);
      expect(lab.connects()).toBe(false);
    });

    it('revoke of a failing close exits non-zero with the reason; status shows it; a knock opens again; --forget drops it', async () => {
      const config = configWith(commandDoor('60s'));
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the door to open', () => ruleCount(lab.clientIp) === 1, 5000);
      lab.inSrv('iptables', '-D', ...rule(lab.clientIp)); /* a firewall reload took the rule away */
      const r = cli(config, 'revoke', 'ssh', lab.clientIp);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/the close failed: iptables -D .*Bad rule/);
      expect(r.stderr).toContain(`tumblerd revoke --forget ssh ${lab.clientIp}`);
      const status = cli(config, 'status').stdout;
      expect(status).toMatch(new RegExp(`ssh  ${lab.clientIp.replace(/\./g, '\\.')} .* CLOSE FAILING since \\d{4}-.*Bad rule`));
      /* no lockout: the user knocks again and gets in */
      classicKnock();
      await waitFor('the rule to be back', () => ruleCount(lab.clientIp) === 1, 5000);
      expect(lab.connects()).toBe(true);
      await waitFor('the log of it', () => d!.output.includes('door on record but its rule may be gone: opening it afresh'), 2000);
      expect(cli(config, 'revoke', 'ssh', lab.clientIp).status).toBe(0);
      expect(ruleCount(lab.clientIp)).toBe(0);
      /* and a close that can never work is dropped by hand */
      tumblerKnock(lab.otherIp);
      await waitFor('the second door to open', () => ruleCount(lab.otherIp) === 1, 5000);
      lab.inSrv('iptables', '-D', ...rule(lab.otherIp));
      const f = cli(config, 'revoke', '--forget', 'ssh', lab.otherIp);
      expect(f.status).toBe(3);
      expect(f.stdout).toContain(`forgot ssh for ${lab.otherIp}; its close failed`);
      expect(cli(config, 'status').stdout).toContain('no door is open');
      await waitFor('the log of it', () => /door record forgotten .*--forget/.test(d!.output), 2000);
    });

    it('a rule deleted while tumblerd was down (kill -9): after the restart a knock opens again, without doubling the rule', async () => {
      const config = configWith(commandDoor('60s'));
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the door to open', () => ruleCount(lab.clientIp) === 1, 5000);
      await d.stop('SIGKILL');
      lab.inSrv('iptables', '-D', ...rule(lab.clientIp));
      d = await new Daemon(lab, config).started();
      expect(d.output).toMatch(/open doors restored from the state file doors=1 overdue=0/);
      classicKnock();
      await waitFor('the rule to be back', () => ruleCount(lab.clientIp) === 1, 5000);
      expect(lab.connects()).toBe(true);
      /* restored with its rule still in place: the knock neither doubles nor loses it */
      await d.stop('SIGKILL');
      d = await new Daemon(lab, config).started();
      classicKnock();
      await waitFor('the reopening', () => d!.count('door opened') === 1, 5000);
      expect(ruleCount(lab.clientIp)).toBe(1);
      expect(cli(config, 'revoke', 'ssh', lab.clientIp).status).toBe(0);
      expect(ruleCount(lab.clientIp)).toBe(0);
    });

    it('a restart after a reboot (another boot id on record) runs each close once and forgets the door', async () => {
      const config = configWith(commandDoor('60s'));
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the door to open', () => ruleCount(lab.clientIp) === 1, 5000);
      await d.stop('SIGKILL');
      const file = path.join(stateDir, 'doors.json');
      const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
      fs.writeFileSync(file, JSON.stringify({ ...saved, boot: '00000000-0000-0000-0000-000000000000' }));
      lab.inSrv('iptables', '-D', ...rule(lab.clientIp)); /* what a reboot does to a rule */
      d = await new Daemon(lab, config).started();
      expect(d.output).toContain('rebootedSince=true');
      expect(d.output).toMatch(/door record forgotten .*the machine rebooted since it opened; its close failed/);
      expect(cli(config, 'status').stdout).toContain('no door is open');
      await sleep(1500);
      expect(d.count('close command failed')).toBe(1); /* once, not retried */
    });

    it('SIGTERM waits for the close commands before tumblerd exits', async () => {
      const slowClose = script('slow-close.sh', `sleep 2\nexec iptables -D ${rule('"$1"').join(' ')}`);
      const config = configWith(`    open: iptables -I ${rule('%IP%').join(' ')}\n    close: ${slowClose} %IP%\n    close_after: 60s\n`);
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the door to open', () => ruleCount(lab.clientIp) === 1, 5000);
      const t0 = Date.now();
      expect(await d.stop('SIGTERM')).toBe(0);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1800);
      expect(ruleCount(lab.clientIp)).toBe(0);
      expect(d.output).toContain('door closed');
    });

    it('a 30-day close_after (allow:) keeps the door open, with a kernel timeout ipset takes', async () => {
      const config = configWith(`    allow: [tcp/${SERVICE_PORT}]\n    close_after: 720h\n`, 'firewall: iptables\n');
      d = await new Daemon(lab, config).started();
      tumblerKnock();
      await waitFor('the connection to get through', () => lab.connects(), 5000);
      await sleep(2000);
      expect(lab.connects()).toBe(true);
      const status = JSON.parse(cli(config, 'status', '--json').stdout);
      expect(status[0].closesAt - Date.now()).toBeGreaterThan(29.9 * 86_400_000);
      const timeout = Number(/timeout (\d+)/.exec(lab.inSrv('ipset', 'list', 'tumbler4').split('Members:')[1])![1]);
      expect(timeout).toBeGreaterThan(20 * 86_400);
      expect(timeout).toBeLessThanOrEqual(21 * 86_400);
      expect(await d.stop('SIGTERM')).toBe(0);
    });
  },
  ['ip', 'iptables', 'ipset', 'knock', 'chattr'],
);
