/**
 * The Debian package and its systemd unit under a real systemd: a Debian 12 booted with
 * systemd-nspawn in the lab's server namespace installs the .deb, runs the unit as shipped and
 * reads knocks from /dev/kmsg, while the client namespace knocks through the container's network.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Lab, SERVICE_PORT, describeLab, sleep, waitFor } from '../support/lab';
import { DebianMachine, buildDeb, debianRootfs, debianUnavailable } from '../support/debian';

const why = debianUnavailable(['systemd-nspawn', 'nsenter', 'dpkg-deb']);
const CONFIG = '/etc/tumblerd/tumblerd.yaml';
const LOG = '/var/log/tumblerd/tumblerd.log';

/*
 * The close command is slow on purpose: a stop that arrives while it runs must let it finish
 * (KillMode=mixed, and tumblerd waiting for it) or the door stays open after the service stopped.
 */
function config(prefix: string, sequence: number[]): string {
  const rule = `INPUT -s %IP% -p tcp --dport ${SERVICE_PORT} -j ACCEPT`;
  return [
    'log:',
    `  file: ${LOG}`,
    'sources:',
    '  - kmsg: /dev/kmsg',
    `    prefix: "${prefix}"`,
    'doors:',
    '  service:',
    `    sequence: [${sequence.join(', ')}]`,
    `    open: iptables -I ${rule}`,
    `    close: sh -c "sleep 3 && iptables -D ${rule}"`,
    '    close_after: 2s',
    '',
  ].join('\n');
}

(why ? describe.skip : describeLab)(`tumblerd.deb under systemd (systemd-nspawn)${why ? ` (skipped: ${why})` : ''}`, () => {
  const lab = new Lab();
  let machine: DebianMachine;
  const mainPid = () => Number(machine.run(['systemctl', 'show', '-p', 'MainPID', '--value', 'tumblerd']).trim());
  const logText = () => machine.exec(['cat', LOG]).stdout;
  const ruleFor = (ip: string) => lab.inSrv('iptables', '-S', 'INPUT').includes(`-s ${ip}/32`);

  beforeAll(async () => {
    const rootfs = debianRootfs();
    lab.up();
    const deb = buildDeb(lab.dir);
    machine = new DebianMachine(`tumbler-deploy-${lab.id}`, lab.srv, [`${deb}:/tmp/tumblerd.deb`]);
    await machine.boot(rootfs);
    /* as the README says (apt resolves the dependencies from what is installed) */
    machine.run(['apt-get', 'install', '-y', '/tmp/tumblerd.deb']);
  }, 900_000);

  afterAll(async () => {
    await machine?.destroy();
    lab.destroy();
  }, 60_000);

  it('the package installs the unit, the bins, the config, the man pages and the state folder', () => {
    expect(machine.run(['systemctl', 'cat', 'tumblerd'])).toContain('ExecStart=tumblerd --config /etc/tumblerd/tumblerd.yaml');
    expect(machine.run(['tumblerd', '--version']).trim()).toBe(JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version);
    expect(machine.run(['tumbler', '--version']).trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(machine.run(['stat', '-c', '%a', CONFIG]).trim()).toBe('600');
    expect(machine.run(['stat', '-c', '%a', '/var/lib/tumblerd']).trim()).toBe('700');
    for (const page of ['man8/tumblerd.8.gz', 'man1/tumbler.1.gz', 'man5/tumblerd.yaml.5.gz']) {
      expect(machine.exec(['test', '-s', `/usr/share/man/${page}`]).status).toBe(0);
    }
    /* installed, not started: the shipped config carries an example secret */
    expect(machine.exec(['systemctl', 'is-active', 'tumblerd']).stdout.trim()).toBe('inactive');
  });

  it('starts, reads knocks from /dev/kmsg and logs to log.file', async () => {
    machine.writeFile(CONFIG, config(lab.prefix, [7101, 7102, 7103]));
    machine.run(['systemctl', 'start', 'tumblerd']);
    await waitFor('tumblerd started in log.file', () => logText().includes('tumblerd started'), 20_000);
    expect(lab.connects()).toBe(false);
    lab.synsFrom(lab.clientIp, lab.serverIp, [7101, 7102, 7103]);
    await waitFor('the door to open', () => lab.connects(), 10_000);
    expect(logText()).toContain(`door opened door=service src=${lab.clientIp}`);
    await waitFor('the door to close', () => !ruleFor(lab.clientIp), 15_000);
  }, 60_000);

  it('reload applies a good config and fails on a bad one, leaving the daemon as it was', async () => {
    const pid = mainPid();
    machine.writeFile(CONFIG, config(lab.prefix, [7201, 7202, 7203]));
    const good = machine.exec(['systemctl', 'reload', 'tumblerd']);
    expect(good.status).toBe(0);
    await waitFor('the reload', () => logText().includes('config reloaded (SIGHUP)'), 10_000);
    lab.synsFrom(lab.clientIp, lab.serverIp, [7201, 7202, 7203]);
    await waitFor('the door to open on the new sequence', () => lab.connects(), 10_000);

    machine.writeFile(CONFIG, config(lab.prefix, [7201, 7202, 7203]).replace('close_after: 2s', 'close_after: soon'));
    const bad = machine.exec(['systemctl', 'reload', 'tumblerd']);
    expect(bad.status).not.toBe(0);
    expect(machine.run(['journalctl', '-u', 'tumblerd', '--no-pager'])).toMatch(/close_after/);
    expect(machine.exec(['systemctl', 'is-active', 'tumblerd']).stdout.trim()).toBe('active');
    expect(mainPid()).toBe(pid);
    machine.writeFile(CONFIG, config(lab.prefix, [7201, 7202, 7203]));
    await waitFor('the door to close', () => !ruleFor(lab.clientIp), 15_000);
  }, 60_000);

  it('restarts after a crash (kill -9)', async () => {
    const pid = mainPid();
    const starts = () => logText().split('tumblerd started').length - 1;
    const before = starts();
    machine.run(['kill', '-9', String(pid)]);
    await waitFor('systemd to restart tumblerd', () => starts() > before, 20_000);
    expect(mainPid()).not.toBe(pid);
    expect(machine.exec(['systemctl', 'is-active', 'tumblerd']).stdout.trim()).toBe('active');
  }, 60_000);

  it('stop while a close command runs lets it finish: the door is closed when the service has stopped', async () => {
    lab.synsFrom(lab.clientIp, lab.serverIp, [7201, 7202, 7203]);
    await waitFor('the door to open', () => lab.connects(), 10_000);
    /* close_after (2 s) has passed: the close command is in its sleep when the stop comes */
    await sleep(2500);
    expect(ruleFor(lab.clientIp)).toBe(true);
    machine.run(['systemctl', 'stop', 'tumblerd']);
    expect(ruleFor(lab.clientIp)).toBe(false);
    expect(lab.connects()).toBe(false);
    expect(logText()).toMatch(/door closed door=service/);
    expect(logText()).toContain('tumblerd stopped');
  }, 60_000);
});
