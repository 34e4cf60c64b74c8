/**
 * Doors with built-in firewall rules (`allow:`), for each backend: the rule lets a real
 * connection in and goes after close_after while a connection opened meanwhile lives on; what
 * a door opened is closed across kill -9, late restarts, a failing firewall command and a
 * corrupt state file; strays in tumbler's chain and sets are removed; status and revoke work.
 * Knocks come through /dev/kmsg, so no rsyslog is needed here.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, Lab, SERVICE_PORT, TUMBLERD, describeLab, sleep, waitFor } from '../support/lab';

type Backend = 'iptables' | 'nftables';
const CLOSE_AFTER_S = 4;

function knock(lab: Lab, target = lab.serverIp): void {
  lab.inCli('knock', ...(target.includes(':') ? ['-6'] : []), '-d', '50', target, '42', '196', '69');
}

for (const backend of ['iptables', 'nftables'] as Backend[]) {
  describeLab(
    `doors with allow: rules (${backend})`,
    () => {
      const lab = new Lab();
      let config: string;
      let stateDir: string;
      let d: Daemon | null = null;

      const start = async (env: NodeJS.ProcessEnv = process.env) => (d = await new Daemon(lab, config, [], env).started());
      const entries = (): string =>
        backend === 'iptables'
          ? lab.inSrv('ipset', 'list', 'tumbler4') + lab.inSrv('ipset', 'list', 'tumbler6')
          : lab.inSrv('nft', 'list', 'set', 'inet', 'filter', 'tumbler4') + lab.inSrv('nft', 'list', 'set', 'inet', 'filter', 'tumbler6');
      const chain = (): string =>
        backend === 'iptables' ? lab.inSrv('iptables', '-S', 'TUMBLER') : lab.inSrv('nft', 'list', 'chain', 'inet', 'filter', 'tumbler');
      const chainExists = (): boolean => {
        try {
          chain();
          return true;
        } catch {
          return false;
        }
      };

      beforeAll(() => {
        if (backend === 'iptables') lab.up();
        else lab.upWithNftables();
        stateDir = path.join(lab.dir, 'state');
        config = path.join(lab.dir, 'tumblerd.yaml');
        fs.writeFileSync(
          config,
          `state_dir: ${stateDir}
firewall: ${backend}
sources:
  - kmsg: /dev/kmsg
    prefix: "${lab.prefix}"
doors:
  ssh:
    sequence: [42, 196, 69]
    allow: [tcp/${SERVICE_PORT}]
    close_after: ${CLOSE_AFTER_S}s
`,
        );
      });
      afterEach(async () => {
        /* each test starts with every door shut and no state, whatever the last one left */
        await d?.stop('SIGTERM');
        d = null;
        fs.rmSync(stateDir, { recursive: true, force: true });
      });
      afterAll(() => lab.destroy());

      it('lets a connection in while the door is open; a session opened then outlives the rule', async () => {
        const daemon = await start();
        expect(lab.connects()).toBe(false);
        knock(lab);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        await waitFor('the connection to get through', () => lab.connects(), 2000);
        expect(entries()).toContain(lab.clientIp);
        const session = await lab.holdConnection();
        await waitFor('the door to close', () => daemon.count('door closed') === 1, (CLOSE_AFTER_S + 2) * 1000);
        expect(entries()).not.toContain(lab.clientIp);
        expect(lab.connects()).toBe(false);
        expect(await session.alive()).toBe(true);
        expect(await daemon.stop()).toBe(0);
        expect(chainExists()).toBe(false); /* SIGTERM takes tumbler's chain and sets away */
      });

      it('opens for IPv6 sources', async () => {
        const daemon = await start();
        knock(lab, lab.serverIp6);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        await waitFor('the connection to get through', () => lab.connects(lab.serverIp6), 2000);
        expect(lab.connects(lab.serverIp)).toBe(false);
        await waitFor('the door to close', () => daemon.count('door closed') === 1, (CLOSE_AFTER_S + 2) * 1000);
        expect(lab.connects(lab.serverIp6)).toBe(false);
      });

      it('closes on time after kill -9 and a restart, and at once when restarted too late', async () => {
        let daemon = await start();
        knock(lab);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        const openedAt = Date.now();
        await daemon.stop('SIGKILL');
        daemon = await start();
        expect(daemon.output).toMatch(/open doors restored from the state file doors=1 overdue=0/);
        await waitFor('the door to close', () => daemon.count('door closed') === 1, (CLOSE_AFTER_S + 2) * 1000);
        expect(Date.now() - openedAt).toBeGreaterThanOrEqual(CLOSE_AFTER_S * 1000 - 500);
        expect(lab.connects()).toBe(false);

        knock(lab);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        await daemon.stop('SIGKILL');
        await sleep(CLOSE_AFTER_S * 1000 + 500);
        daemon = await start();
        expect(daemon.output).toMatch(/overdue=1/);
        await waitFor('the overdue door to close', () => daemon.output.includes('reason="overdue at start-up"'), 3000);
        expect(entries()).not.toContain(lab.clientIp);
      });

      it('removes strays from its chain and sets at start-up', async () => {
        const daemon0 = await start();
        await daemon0.stop('SIGKILL'); /* leaves the chain and sets behind, as a crash would */
        if (backend === 'iptables') {
          lab.inSrv('iptables', '-A', 'TUMBLER', '-s', lab.otherIp, '-j', 'ACCEPT');
          lab.inSrv('ipset', 'add', 'tumbler4', `${lab.otherIp},tcp:${SERVICE_PORT}`);
        } else {
          lab.inSrv('nft', 'add', 'rule', 'inet', 'filter', 'tumbler', 'ip', 'saddr', lab.otherIp, 'accept');
          lab.inSrv('nft', 'add', 'element', 'inet', 'filter', 'tumbler4', `{ ${lab.otherIp} . tcp . ${SERVICE_PORT} }`);
        }
        expect(chain()).toContain(lab.otherIp);
        expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(true);
        const daemon = await start();
        expect(daemon.output).toContain(`removing a firewall entry no open door accounts for src=${lab.otherIp}`);
        expect(chain()).not.toContain(lab.otherIp);
        expect(entries()).not.toContain(lab.otherIp);
        expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(false);
      });

      it('puts its chain back when someone flushes it while a door is open', async () => {
        const daemon = await start();
        if (backend === 'iptables') lab.inSrv('iptables', '-F', 'TUMBLER');
        else lab.inSrv('nft', 'flush', 'chain', 'inet', 'filter', 'tumbler');
        knock(lab);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        await waitFor('the connection to get through', () => lab.connects(), 2000);
        /* stderr and stdout arrive on two pipes: wait for the warning rather than race it */
        await waitFor('the repair warning', () => daemon.output.includes('was missing: put back'), 2000);
      });

      it('keeps running when the firewall command fails, and closes the door once it works again', async () => {
        const stubs = path.join(lab.dir, 'stubs');
        const broken = path.join(lab.dir, 'firewall-broken');
        fs.mkdirSync(stubs, { recursive: true });
        const real = backend === 'iptables' ? 'ipset' : 'nft';
        const realPath = lab.sh(['sh', '-c', `command -v ${real}`]).trim();
        fs.writeFileSync(
          path.join(stubs, real),
          `#!/bin/sh\nif [ -e ${broken} ]; then echo "${real}: stub: the firewall is broken" >&2; exit 1; fi\nexec ${realPath} "$@"\n`,
          { mode: 0o755 },
        );
        const daemon = await start({ ...process.env, PATH: `${stubs}:${process.env.PATH}` });
        knock(lab);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        fs.writeFileSync(broken, '');
        await waitFor('the close to fail', () => daemon.output.includes('door not closed: retrying'), (CLOSE_AFTER_S + 2) * 1000);
        expect(daemon.output).toContain('stub: the firewall is broken');
        const status = lab.inSrv(process.execPath, TUMBLERD, 'status', '-c', config);
        expect(status).toContain(`ssh  ${lab.clientIp}`);
        fs.rmSync(broken);
        await waitFor('the retried close to succeed', () => daemon.count('door closed') === 1, 5000);
        expect(entries()).not.toContain(lab.clientIp);
      });

      it('shows open doors in status and closes one with revoke', async () => {
        const daemon = await start();
        knock(lab);
        await waitFor('the door to open', () => daemon.count('door opened') === 1, 5000);
        await waitFor('the connection to get through', () => lab.connects(), 2000);
        const json = JSON.parse(lab.inSrv(process.execPath, TUMBLERD, 'status', '--json', '-c', config));
        expect(json).toEqual([expect.objectContaining({ door: 'ssh', src: lab.clientIp, via: 'sequence' })]);
        expect(lab.inSrv(process.execPath, TUMBLERD, 'revoke', 'ssh', lab.clientIp, '-c', config)).toContain('closed ssh');
        expect(lab.connects()).toBe(false);
        expect(lab.inSrv(process.execPath, TUMBLERD, 'status', '-c', config)).toContain('no door is open');
        expect(fs.statSync(path.join(stateDir, 'tumblerd.sock')).mode & 0o777).toBe(0o600);
      });

      it('moves a corrupt state file aside and starts clean', async () => {
        fs.mkdirSync(stateDir, { recursive: true });
        fs.writeFileSync(path.join(stateDir, 'state.json'), '{"version":1,"doors":[{"door":"ssh","src":"1.2.3.4;id"');
        const daemon = await start();
        expect(daemon.output).toMatch(/state: .*state\.json is unreadable .* moved to .*corrupt-\d+; no door is taken from it/);
        expect(fs.readdirSync(stateDir).some((f) => f.startsWith('state.json.corrupt-'))).toBe(true);
      });
    },
    ['ip', 'knock', backend === 'iptables' ? 'ipset' : 'nft', 'iptables'],
  );
}
