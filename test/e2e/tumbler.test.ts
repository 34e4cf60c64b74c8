/**
 * Tumbler knocks for real: `tumbler --open` from the client namespace, tumblerd in the server
 * namespace, a datagram captured off the wire with tcpdump and re-sent as an attacker would.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, Lab, SERVICE_PORT, TUMBLER, describeLab, sleep, waitFor } from '../support/lab';

const SECRET = 'open-Random-Secret-42';

describeLab(
  'Tumbler knocks end to end',
  () => {
    const lab = new Lab();
    let config: string;
    let d: Daemon;
    let captured: Buffer;

    beforeAll(async () => {
      lab.up();
      config = path.join(lab.dir, 'tumblerd.yaml');
      const rule = `INPUT -p tcp -s %IP% --dport ${SERVICE_PORT} -j ACCEPT`;
      fs.writeFileSync(
        config,
        `state_dir: ${lab.dir}/state
tumbler:
  listen: ["${lab.serverIp}:8675", "[${lab.serverIp6}]:8675"]
doors:
  ssh:
    secret: ${SECRET}
    open: iptables -I ${rule}
    close: iptables -D ${rule}
    open6: ip6tables -I ${rule}
    close6: ip6tables -D ${rule}
    close_after: 3s
`,
      );
      d = await new Daemon(lab, config).started();
    });
    afterAll(async () => {
      await d?.stop();
      lab.destroy();
    });

    const tumbler = (...args: string[]) =>
      lab.inCli(process.execPath, TUMBLER, ...args);

    it('opens the door for `tumbler --open`, and closes it after close_after', async () => {
      expect(lab.connects()).toBe(false);
      const dump = spawn('ip', ['netns', 'exec', lab.srv, 'tcpdump', '-l', '-n', '-A', '-c', '1', '-i', lab.serverDev, 'udp', 'port', '8675'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      dump.stdout.on('data', (b: Buffer) => (out += b.toString('latin1')));
      dump.stderr.on('data', (b: Buffer) => (err += b.toString()));
      try {
        await waitFor('tcpdump to listen', () => err.includes('listening on'), 5000);
        const secretFile = path.join(lab.dir, 'secret');
        fs.writeFileSync(secretFile, `${SECRET}\n`);
        expect(tumbler('--open', `tumbler://${lab.serverIp}:8675/`, '--secret-file', secretFile)).toContain(`as ${lab.clientIp}`);
      } catch (e) {
        dump.kill();
        throw e;
      }
      await waitFor('tcpdump to see the knock', () => /TUMBLER1: [0-9a-f]{64}/.test(out), 5000);
      captured = Buffer.from(/TUMBLER1: [0-9a-f]{64}/.exec(out)![0]);
      await waitFor('the door to open', () => d.count('door opened') === 1, 5000);
      expect(d.output).toContain(`door opened door=ssh src=${lab.clientIp} via=tumbler`);
      expect(lab.connects()).toBe(true);
      await waitFor('the door to close', () => d.count('door closed') === 1, 6000);
      expect(lab.connects()).toBe(false);
    });

    it('ignores the captured datagram sent again, and sent from another address', async () => {
      lab.udpFrom(lab.clientIp, lab.serverIp, 8675, captured);
      await waitFor('the replay to be noticed', () => d.count('Tumbler knock replayed') === 1, 3000);
      lab.udpFrom(lab.otherIp, lab.serverIp, 8675, captured);
      await sleep(500);
      expect(d.count('door opened')).toBe(1);
      expect(lab.connects()).toBe(false);
      expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(false);
    });

    it('ignores a knock made for a minute outside the window', async () => {
      const past = new Date(Date.now() - 5 * 60_000).toISOString();
      tumbler('--open', `tumbler://${SECRET}@${lab.serverIp}/`, '--at', past);
      await sleep(500);
      expect(d.count('door opened')).toBe(1);
      expect(lab.connects()).toBe(false);
    });

    it('opens for an IPv6 client', async () => {
      tumbler('--open', `tumbler://${SECRET}@[${lab.serverIp6}]/`);
      await waitFor('the door to open', () => d.count('door opened') === 2, 5000);
      expect(d.output).toContain(`door opened door=ssh src=${lab.clientIp6} via=tumbler`);
      expect(lab.connects(lab.serverIp6)).toBe(true);
      expect(lab.connects(lab.serverIp)).toBe(false);
    });

    it('still refuses the captured datagram after a daemon restart', async () => {
      await d.stop();
      d = await new Daemon(lab, config).started();
      lab.udpFrom(lab.clientIp, lab.serverIp, 8675, captured);
      await waitFor('the replay to be noticed', () => d.count('Tumbler knock replayed') === 1, 3000);
      expect(d.count('door opened')).toBe(0);
      expect(lab.connects()).toBe(false);
    });
  },
  ['ip', 'iptables', 'ip6tables', 'tcpdump'],
);
