/**
 * Forging a knock, for real, as the issue found it could be done; in each test a genuine knock
 * from the lab's client opens the same door, so a door that stays shut proves the refusal and
 * not a broken setup.
 *  1. A crashing process whose name is the LOG prefix and `IN= `, running a binary named after the
 *     fields: the kernel's own crash report (facility kern) carries them. Run by an unprivileged
 *     user the test creates.
 *  2. That user's own user+network namespace (`unshare -rn`) with an nft `log` rule, while
 *     nf_log_all_netns=1: genuine kernel LOG lines, IN=lo, any SRC and DST.
 *  3. A raw `<4>kernel: ...` datagram from that user to the syslog socket of an rsyslog (on a
 *     private path, as it would own /dev/log): filed as kern, identical to the kernel's lines.
 *     tumblerd cannot tell them apart: it warns at start instead, and the forgery works.
 *  4. A line root writes into /dev/kmsg, read through a real systemd-journald.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, Lab, describeLab, sleep, waitFor } from '../support/lab';

/* one forged source per route, so that a line replayed from an earlier route (rsyslog and journald import the ring buffer) is not taken for this one's */
const FORGED = { crash: '198.51.100.7', netns: '198.51.100.8', copy: '198.51.100.9', syslog: '198.51.100.10', journal: '198.51.100.11' };
const PORT = 4242;

describeLab(
  'forging a knock: none of the ways a local user has opens a door',
  () => {
    const lab = new Lab();
    const user = `forging${process.pid % 100000}`;
    let shared = '';
    const running: Daemon[] = [];

    const config = (name: string, source: string): string => {
      const file = path.join(lab.dir, `${name}.yaml`);
      fs.writeFileSync(
        file,
        `state_dir: ${lab.dir}/state-${name}\nsources:\n  - ${source}\n    prefix: "${lab.prefix}"\n` +
          `doors:\n  forge:\n    sequence: [${PORT}]\n    open: /usr/bin/touch ${lab.dir}/opened-${name}-%IP%\n`,
      );
      return file;
    };
    const opened = (name: string, src: string) => fs.existsSync(path.join(lab.dir, `opened-${name}-${src}`));
    const start = async (name: string, source: string, wrap: string[] = []) => {
      const d = new Daemon(lab, config(name, source), [], process.env, wrap);
      running.push(d);
      return d.started();
    };
    /** The genuine knock: a SYN from the client, dropped and logged by the server's firewall. */
    const genuine = async (name: string) => {
      lab.synsFrom(lab.clientIp, lab.serverIp, [PORT]);
      await waitFor('the genuine knock to open the door', () => opened(name, lab.clientIp), 8000);
    };
    const asUser = (args: string[]) => spawnSync('runuser', ['-u', user, '--', ...args], { encoding: 'utf8', timeout: 15_000 });
    /** An nft ruleset the user loads in their own namespace: log the knock port with the lab's prefix, and drop it. */
    const logRule = (): string => {
      const rules = path.join(shared, 'forge.nft');
      fs.writeFileSync(rules, `table ip forge {\n chain c {\n  type filter hook input priority 0;\n  tcp dport ${PORT} log prefix "${lab.prefix}" drop\n }\n}\n`);
      fs.chmodSync(rules, 0o644);
      return rules;
    };
    /** A line the kernel's logger would print for a SYN from `src` to the server, on its interface. */
    const kernelShaped = (src: string) =>
      `${lab.prefix}IN=${lab.serverDev} OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=${src} DST=${lab.serverIp} ` +
      `LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=40000 DPT=${PORT} WINDOW=64240 RES=0x00 SYN URGP=0 `;

    beforeAll(() => {
      lab.up();
      execFileSync('useradd', ['-M', '-N', '-d', '/nonexistent', '-s', '/usr/sbin/nologin', user]);
      /* a folder the user can read: the crashing binary, the nft rules, the syslog socket */
      shared = fs.mkdtempSync(path.join(os.tmpdir(), 'forging-'));
      fs.chmodSync(shared, 0o755);
    });
    afterEach(async () => {
      for (const d of running.splice(0)) await d.stop();
    });
    afterAll(() => {
      spawnSync('userdel', [user]);
      if (shared) fs.rmSync(shared, { recursive: true, force: true });
      lab.destroy();
    });

    it('1. a crash report whose process and binary names carry the prefix and the fields (kmsg source)', async () => {
      const d = await start('crash', 'kmsg: /dev/kmsg');
      const src = path.join(shared, 'crash.c');
      fs.writeFileSync(src, '#include <sys/prctl.h>\nint main(int c, char **v) { prctl(PR_SET_NAME, v[1]); *(volatile int *)0 = 0; return 0; }\n');
      const binary = path.join(
        shared,
        `SRC=${FORGED.crash} DST=${lab.serverIp} LEN=60 TOS=0x00 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=1 DPT=${PORT} WINDOW=1 RES=0x00 SYN URGP=0 `,
      );
      execFileSync('gcc', ['-O0', '-o', binary, src]);
      fs.chmodSync(binary, 0o755);
      const r = asUser([binary, `${lab.prefix}IN= `]);
      expect([139, 'SIGSEGV']).toContain(r.signal ?? r.status);
      /* the kernel did print it, prefix first, fields and all */
      await waitFor('the crash report in the kernel log', () => {
        const log = execFileSync('dmesg', { encoding: 'utf8' });
        return log.split('\n').some((l) => l.includes(`${lab.prefix}IN= [`) && l.includes(`SRC=${FORGED.crash}`) && l.includes('segfault'));
      });
      await sleep(1000);
      expect(opened('crash', FORGED.crash)).toBe(false);
      expect(d.output).not.toContain(FORGED.crash); /* refused by the grammar: never even an event */
      await genuine('crash');
    }, 40_000);

    it("2. the user's own user+network namespace with an nft log rule, nf_log_all_netns=1 (kmsg source)", async () => {
      expect(fs.readFileSync('/proc/sys/net/netfilter/nf_log_all_netns', 'utf8').trim()).toBe('1');
      const d = await start('netns', 'kmsg: /dev/kmsg');
      expect(d.output).toContain('nf_log_all_netns is 1');
      const rules = logRule();
      const script =
        `ip link set lo up && ip addr add ${lab.serverIp}/32 dev lo && ip addr add ${FORGED.netns}/32 dev lo && nft -f ${rules} && ` +
        `/usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('${FORGED.netns}', 0)); s.settimeout(1); s.connect_ex(('${lab.serverIp}', ${PORT}))"`;
      const r = asUser(['unshare', '-rn', 'sh', '-c', script]);
      expect(r.stderr).toBe('');
      /* a genuine kernel LOG line from the user's namespace reached tumblerd, and was turned away */
      await waitFor('the namespace\'s LOG line to be read', () => d.output.includes(`src=${FORGED.netns}`) && d.output.includes('not a knock for this host'));
      expect(d.output).toMatch(new RegExp(`not a knock for this host.*src=${FORGED.netns.replace(/\./g, '\\.')}.*in=lo.*why=loopback`));
      expect(opened('netns', FORGED.netns)).toBe(false);
      await genuine('netns');
    }, 40_000);

    it("2b. the same namespace with a copy of this namespace's interface and address: warned, because text cannot tell them apart", async () => {
      const d = await start('copy', 'kmsg: /dev/kmsg');
      expect(d.output).toContain('nf_log_all_netns is 1');
      const rules = logRule();
      /* a veth pair inside the user's namespace, one end named like the server's interface and given its
       * address, the other in a second namespace of the user's that sends the SYN */
      const peer =
        `ip link set lo up && ip addr add ${FORGED.copy}/32 dev fpeer && ip link set fpeer up && ip route add ${lab.serverIp}/32 dev fpeer && ` +
        `/usr/bin/python3 -c "import socket; s=socket.socket(); s.bind(('${FORGED.copy}', 0)); s.settimeout(1); s.connect_ex(('${lab.serverIp}', ${PORT}))"`;
      const script =
        `ip link set lo up && ip link add ${lab.serverDev} type veth peer name fpeer && ip addr add ${lab.serverIp}/24 dev ${lab.serverDev} && ` +
        `ip link set ${lab.serverDev} up && ip route add ${FORGED.copy}/32 dev ${lab.serverDev} && nft -f ${rules} && ` +
        `{ unshare -n sleep 5 & p=$!; sleep 0.3; ip link set fpeer netns $p && nsenter -t $p -n sh -c "${peer.replace(/"/g, '\\"')}"; kill $p; }`;
      const r = asUser(['unshare', '-rn', 'sh', '-c', script]);
      expect(r.stderr).toBe('');
      const logged = () => execFileSync('dmesg', { encoding: 'utf8' }).split('\n').find((l) => l.includes(`IN=${lab.serverDev} `) && l.includes(`SRC=${FORGED.copy}`));
      await waitFor('the copied namespace to log the SYN', () => logged() !== undefined);
      /* this is the route the start-up warning names: the line is the same as one this namespace logs */
      await waitFor('the forged knock to open the door (the warning was right)', () => opened('copy', FORGED.copy));
      await genuine('copy');
    }, 40_000);

    it('3. a raw <4>kernel: datagram to the syslog socket of rsyslog (file source): warned, because it cannot be refused', async () => {
      const socket = path.join(shared, 'log');
      const file = lab.startRsyslog('traditional', path.join(lab.dir, 'kern.log'), socket);
      await waitFor('rsyslog to make its socket', () => fs.existsSync(socket));
      const d = await start('syslog', `file: ${file}`);
      expect(d.output).toMatch(new RegExp(`WARN file-source-forgery: ${file.replace(/[.]/g, '\\.')}: any local user may be able to forge a knock`));
      const send =
        `import socket; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); ` +
        `s.sendto(b'<4>kernel: ${kernelShaped(FORGED.syslog)}', '${socket}')`;
      const r = asUser(['/usr/bin/python3', '-c', send]);
      expect(r.status).toBe(0);
      /* rsyslog filed the user's datagram exactly as it files the kernel's own lines */
      const ours = (l: string) => l.includes(`${lab.prefix}IN=${lab.serverDev} `) && l.includes(`SRC=${FORGED.syslog} `);
      await waitFor('the forged line in the file', () => fs.readFileSync(file, 'utf8').split('\n').some(ours));
      const forged = fs.readFileSync(file, 'utf8').split('\n').find(ours)!;
      expect(forged).toMatch(new RegExp(`^\\w{3} [ \\d]\\d [\\d:]{8} \\S+ kernel: ${lab.prefix}IN=`));
      /* which is why tumblerd warns: from the file alone the forgery is the kernel's word */
      await waitFor('the forged knock to open the door (the warning was right)', () => opened('syslog', FORGED.syslog));
      await genuine('syslog');
    }, 40_000);

    it('4. a line root writes into /dev/kmsg, read through systemd-journald (journald source)', async () => {
      const journald = spawn(
        'setsid',
        ['unshare', '-m', '--propagation', 'private', '/bin/sh', '-c',
          'mount -t tmpfs -o mode=755 tmpfs /run/systemd && mount -t tmpfs -o mode=755 tmpfs /run/log && ' +
          'mkdir -p /run/systemd/journal && exec /lib/systemd/systemd-journald'],
        { stdio: 'ignore' },
      );
      try {
        const pid = String(journald.pid);
        await waitFor('journald to run', () =>
          spawnSync('nsenter', ['-t', pid, '-m', '--', 'journalctl', '-k', '-n', '1', '-o', 'json'], { encoding: 'utf8' }).stdout.includes('"_TRANSPORT":"kernel"'),
        15_000);
        const d = await start('journal', 'journald: true', ['nsenter', '-t', pid, '-m', '--']);
        /* tagged as the kernel, so that journald keeps the prefix in MESSAGE and names the identifier "kernel" */
        fs.writeFileSync('/dev/kmsg', `<4>kernel: ${kernelShaped(FORGED.journal)}\n`);
        const record = () =>
          spawnSync('nsenter', ['-t', pid, '-m', '--', 'journalctl', '-k', '-o', 'json', '--no-pager', '-g', `${lab.prefix}IN=.*SRC=${FORGED.journal} `], { encoding: 'utf8' }).stdout;
        await waitFor('journald to record the line', () => record().includes('"_TRANSPORT":"kernel"'));
        const forged = JSON.parse(record().trim().split('\n').pop()!);
        expect(forged).toMatchObject({ _TRANSPORT: 'kernel', SYSLOG_IDENTIFIER: 'kernel', SYSLOG_FACILITY: '1', MESSAGE: expect.stringMatching(new RegExp(`^${lab.prefix}IN=`)) });
        await sleep(1000);
        expect(opened('journal', FORGED.journal)).toBe(false);
        expect(d.output).not.toContain(FORGED.journal);
        await genuine('journal');
      } finally {
        for (const d of running.splice(0)) await d.stop();
        journald.kill('SIGTERM');
      }
    }, 60_000);
  },
  ['ip', 'iptables', 'nft', 'rsyslogd', 'gcc', 'runuser', 'useradd', 'unshare', 'nsenter', '/lib/systemd/systemd-journald', 'python3'],
);
