/**
 * Tumbler v2 for real: tumblerd in the server namespace with a gateway key from `tumblerd
 * keygen`, users' keys from `tumbler keygen`, knocks from `tumbler open`, `tumbler proxy` and the
 * independent Python client in the client namespace; a knock captured off the wire with tcpdump
 * and re-sent as an attacker would; a key removed from the keys file while the daemon runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Daemon, Lab, SERVICE_PORT, TUMBLER, TUMBLERD, describeLab, sleep, waitFor } from '../support/lab';

const PYTHON = '/usr/bin/python3';
const PY_CLIENT = path.join(__dirname, '..', 'interop', 'tumbler2.py');
const hasPython = spawnSync(PYTHON, ['-c', 'import cryptography.hazmat.primitives.ciphers.aead']).status === 0;

/** The UDP payload of the first packet in a pcap file written by tcpdump on a veth (Ethernet, IPv4). */
function firstUdpPayload(pcap: Buffer): Buffer {
  const caplen = pcap.readUInt32LE(24 + 8);
  const frame = pcap.subarray(24 + 16, 24 + 16 + caplen);
  const ihl = (frame[14] & 0x0f) * 4;
  const udp = frame.subarray(14 + ihl);
  return udp.subarray(8, udp.readUInt16BE(4));
}

describeLab(
  'Tumbler v2 end to end',
  () => {
    const lab = new Lab();
    let config: string;
    let keysFile: string;
    let d: Daemon;
    let gwKey: string;
    let aliceLine: string;
    let bobLine: string;
    let captured: Buffer;

    const client = (args: string[], env: NodeJS.ProcessEnv = {}) =>
      spawnSync('ip', ['netns', 'exec', lab.cli, process.execPath, TUMBLER, ...args], {
        encoding: 'utf8',
        env: { ...process.env, XDG_CONFIG_HOME: path.join(lab.dir, 'cfg'), ...env },
      });
    const url = (door: string, host = lab.serverIp) => `tumbler2://${host.includes(':') ? `[${host}]` : host}:8675/${door}?key=${gwKey}`;
    const knock = (user: string, door: string, ...more: string[]) => {
      const r = client(['open', url(door), '--identity', path.join(lab.dir, user), ...more]);
      if (r.status !== 0) throw new Error(`tumbler open failed: ${r.stderr}`);
      return r.stdout;
    };
    const opened = () => d.count('door opened');
    const doorCommands = (port: number) => {
      const rule = `INPUT -p tcp -s %IP% --dport ${port} -j ACCEPT`;
      return `    open: iptables -I ${rule}\n    close: iptables -D ${rule}\n    open6: ip6tables -I ${rule}\n    close6: ip6tables -D ${rule}\n    close_after: 8s\n`;
    };
    const writeConfig = () =>
      fs.writeFileSync(
        config,
        `state_dir: ${lab.dir}/state
tumbler:
  listen: ["${lab.serverIp}:8675", "[${lab.serverIp6}]:8675"]
  window: 60s
doors:
  ssh:
    keys_file: users.keys
${doorCommands(SERVICE_PORT)}  db:
    keys: ["${bobLine}"]
${doorCommands(SERVICE_PORT)}${(['strict', 'declared', 'packet'] as const)
          .map((m) => `  nat-${m}:\n    keys_file: users.keys\n    nat: ${m}\n${doorCommands(SERVICE_PORT)}`)
          .join('')}  subnet:
    keys_file: users.keys
    grant_prefix4: 24
${doorCommands(SERVICE_PORT)}  closed:
    keys_file: users.keys
    open: "true"
`,
      );

    beforeAll(async () => {
      lab.up();
      config = path.join(lab.dir, 'tumblerd.yaml');
      keysFile = path.join(lab.dir, 'users.keys');
      for (const u of ['alice', 'bob']) {
        const r = spawnSync(process.execPath, [TUMBLER, 'keygen', '-f', path.join(lab.dir, u), '-C', u], { encoding: 'utf8' });
        expect(r.status).toBe(0);
      }
      aliceLine = fs.readFileSync(path.join(lab.dir, 'alice.pub'), 'utf8').trim();
      bobLine = fs.readFileSync(path.join(lab.dir, 'bob.pub'), 'utf8').trim();
      fs.writeFileSync(keysFile, `# who may knock\n${aliceLine}\n`);
      writeConfig();
      /* the config names its state_dir, where keygen puts the key (it does not validate yet: no key) */
      const keygen = spawnSync(process.execPath, [TUMBLERD, 'keygen', '-c', config], { encoding: 'utf8' });
      expect(keygen.status).toBe(0);
      gwKey = /gateway public key: (\S+)/.exec(keygen.stdout)![1];
      expect(keygen.stdout).toContain(`client URL: tumbler2://`);
      expect(fs.statSync(path.join(lab.dir, 'state', 'gateway.key')).mode & 0o777).toBe(0o600);
      d = await new Daemon(lab, config).started();
    });
    afterAll(async () => {
      await d?.stop();
      lab.destroy();
    });

    it("alice's knock opens the port for alice's address only, and names her in the log and in status", async () => {
      expect(lab.connects()).toBe(false);
      const pcap = path.join(lab.dir, 'knock.pcap');
      const dump = spawn('ip', ['netns', 'exec', lab.srv, 'tcpdump', '-n', '-U', '-c', '1', '-w', pcap, '-i', lab.serverDev, 'udp', 'port', '8675'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      dump.stderr.on('data', (b: Buffer) => (err += b.toString()));
      try {
        await waitFor('tcpdump to listen', () => err.includes('listening on'), 5000);
        expect(knock('alice', 'ssh')).toBe(`knocked on ${lab.serverIp}:8675 for door ssh (tumbler2)\n`);
        await waitFor('tcpdump to write the knock', () => dump.exitCode !== null, 5000);
      } finally {
        dump.kill();
      }
      captured = firstUdpPayload(fs.readFileSync(pcap));
      expect(captured.length).toBeGreaterThanOrEqual(256);
      await waitFor('the door to open', () => opened() === 1, 5000);
      expect(d.output).toContain(`Tumbler knock accepted door=ssh src=${lab.clientIp} protocol=tumbler2 user=alice`);
      expect(d.output).toContain(`door opened door=ssh src=${lab.clientIp} via=tumbler2 user=alice`);
      const status = spawnSync(process.execPath, [TUMBLERD, 'status', '-c', config], { encoding: 'utf8' });
      expect(status.stdout + status.stderr).toContain(`ssh  ${lab.clientIp}  via tumbler2  user alice`);
      expect(lab.connects()).toBe(true);
      expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(false);
      await waitFor('the door to close', () => d.count('door closed') === 1, 12000);
      expect(d.output).toMatch(new RegExp(`door closed door=ssh src=${lab.clientIp.replace(/\./g, '\\.')} user=alice`));
      expect(lab.connects()).toBe(false);
    });

    it('the captured datagram re-sent is refused, from the same source and from another', async () => {
      lab.udpFrom(lab.clientIp, lab.serverIp, 8675, captured);
      await waitFor('the replay to be refused', () => d.count('tumbler2 knock refused: replayed') === 1, 3000);
      await sleep(1100); /* refusals are logged at most once a second */
      lab.udpFrom(lab.otherIp, lab.serverIp, 8675, captured);
      await waitFor('the replay to be refused', () => d.count('tumbler2 knock refused: replayed') === 2, 3000);
      expect(opened()).toBe(1);
      expect(lab.connects()).toBe(false);
      expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(false);
    });

    it('a captured knock is still refused after a restart (within its window)', async () => {
      await d.stop();
      d = await new Daemon(lab, config).started();
      lab.udpFrom(lab.clientIp, lab.serverIp, 8675, captured);
      await waitFor('the replay to be noticed', () => d.count('Tumbler knock replayed') === 1, 3000);
      expect(opened()).toBe(0);
      expect(lab.connects()).toBe(false);
    });

    it('a wrong-door and a stale knock are refused and diagnosed, never answered', async () => {
      const before = opened();
      await sleep(1100);
      knock('alice', 'db');
      await waitFor('the refusal', () => d.output.includes('tumbler2 knock refused: user not allowed on this door'), 3000);
      expect(d.output).toContain(`user not allowed on this door src=${lab.clientIp} user=alice door=db`);
      await sleep(1100);
      knock('alice', 'ssh', '--at', new Date(Date.now() - 5 * 60_000).toISOString());
      await waitFor('the refusal', () => /tumbler2 knock refused: clock off by -3\d\d\.\d s \(window ±60 s\) src=\S+ user=alice clock=behind/.test(d.output), 3000);
      expect(opened()).toBe(before);
      expect(lab.connects()).toBe(false);
    });

    it('opens for an IPv6 client over IPv6 only', async () => {
      client(['open', url('ssh', lab.serverIp6), '--identity', path.join(lab.dir, 'alice')]);
      await waitFor('the door to open', () => d.output.includes(`door opened door=ssh src=${lab.clientIp6} via=tumbler2 user=alice`), 5000);
      expect(lab.connects(lab.serverIp6)).toBe(true);
      expect(lab.connects(lab.serverIp)).toBe(false);
    });

    describe('NAT modes, each with a source other than the declared address', () => {
      /* the client sends from clientIp and declares otherIp, an address it also has */
      const declaring = (door: string) => knock('alice', door, '--declare', lab.otherIp);

      it('auto (default): refused, diagnosed as an address mismatch', async () => {
        await sleep(1100);
        const before = opened();
        declaring('ssh');
        await waitFor('the refusal', () => d.output.includes(`address mismatch: sent from ${lab.clientIp}, declared ${lab.otherIp}/32`), 3000);
        expect(opened()).toBe(before);
      });

      it('strict: refused', async () => {
        await sleep(1100);
        const before = d.count('address mismatch');
        declaring('nat-strict');
        await waitFor('the refusal', () => d.count('address mismatch') === before + 1, 3000);
        expect(d.output).toContain('door=nat-strict nat=strict');
      });

      it('declared: opens for the declared address, not the source', async () => {
        declaring('nat-declared');
        await waitFor('the door to open', () => d.output.includes(`door opened door=nat-declared src=${lab.otherIp} via=tumbler2 user=alice`), 5000);
        expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(true);
        expect(lab.connects(lab.serverIp, lab.clientIp)).toBe(false);
        await waitFor('the door to close', () => !lab.connects(lab.serverIp, lab.otherIp), 12000);
      });

      it('packet: opens for the source, whatever was declared', async () => {
        declaring('nat-packet');
        await waitFor('the door to open', () => d.output.includes(`door opened door=nat-packet src=${lab.clientIp} via=tumbler2 user=alice`), 5000);
        expect(lab.connects()).toBe(true);
        expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(false);
        await waitFor('the door to close', () => !lab.connects(), 12000);
      });
    });

    it('a door with grant_prefix4: 24 opens for the whole /24 of the source', async () => {
      await waitFor('earlier doors to close', () => !lab.connects() && !lab.connects(lab.serverIp, lab.otherIp), 12000);
      knock('alice', 'subnet');
      const net = `${lab.clientIp.replace(/\.2$/, '.0')}/24`;
      await waitFor('the door to open', () => d.output.includes(`door opened door=subnet src=${net} via=tumbler2 user=alice`), 5000);
      expect(lab.connects()).toBe(true);
      expect(lab.connects(lab.serverIp, lab.otherIp)).toBe(true);
      await waitFor('the door to close', () => !lab.connects(), 12000);
    });

    it('tumbler proxy knocks, waits for the port and relays stdin/stdout, quiet otherwise; clear exit codes', async () => {
      fs.mkdirSync(path.join(lab.dir, 'cfg', 'tumbler'), { recursive: true });
      fs.writeFileSync(
        path.join(lab.dir, 'cfg', 'tumbler', 'hosts.yaml'),
        `lab:\n  host: ${lab.serverIp}\n  key: ${gwKey}\n  door: ssh\n  identity: ${path.join(lab.dir, 'alice')}\n` +
          `shut:\n  host: 127.0.0.9\n  key: ${gwKey}\n  door: closed\n  identity: ${path.join(lab.dir, 'alice')}\n`,
      );
      expect(lab.connects()).toBe(false);
      const proxy = lab.spawn(lab.cli, [process.execPath, TUMBLER, 'proxy', 'lab', String(SERVICE_PORT)], {
        ...process.env,
        XDG_CONFIG_HOME: path.join(lab.dir, 'cfg'),
      });
      let out = '';
      let err = '';
      proxy.stdout!.on('data', (b: Buffer) => (out += b.toString()));
      proxy.stderr!.on('data', (b: Buffer) => (err += b.toString()));
      await waitFor('the service to greet through the proxy', () => out.includes('hello'), 8000);
      proxy.stdin!.write('ping\n');
      await waitFor('the echo', () => out.includes('ping'), 3000);
      const code = new Promise<number | null>((r) => proxy.once('exit', (c) => r(c)));
      proxy.stdin!.end();
      expect(await code).toBe(0);
      expect(out).toBe('hello\nping\n');
      expect(err).toBe('');
      expect(client(['proxy', 'nowhere', '22']).status).toBe(2);
      const shut = client(['proxy', 'shut', '9', '--wait', '1']);
      expect(shut.status).toBe(4);
      expect(shut.stdout).toBe('');
      expect(shut.stderr).toContain('did not accept a connection within 1 s');
    });

    (hasPython ? it : it.skip)('the independent Python client knocks the daemon', async () => {
      await waitFor('the door to close', () => !lab.connects(), 12000);
      const seedHex = Buffer.from(fs.readFileSync(path.join(lab.dir, 'alice'), 'utf8').trim(), 'base64').toString('hex');
      const before = d.count('door opened door=ssh');
      lab.inCli(PYTHON, PY_CLIENT, 'knock', lab.serverIp, '8675', 'ssh', gwKey, seedHex);
      await waitFor('the door to open', () => d.count('door opened door=ssh') === before + 1, 5000);
      expect(lab.connects()).toBe(true);
    });

    it('removing a key line revokes the user live: her open door closes, her knocks no longer open', async () => {
      knock('alice', 'ssh');
      await waitFor('the door to be open', () => lab.connects(), 5000);
      const reloads = d.count('config reloaded');
      fs.writeFileSync(keysFile, '# alice left\n');
      await waitFor('the reload', () => d.count('config reloaded') === reloads + 1, 8000);
      await waitFor('her door to close', () => d.output.includes('reason="user alice no longer has a key on this door"'), 3000);
      expect(lab.connects()).toBe(false);
      const before = opened();
      knock('alice', 'ssh');
      await sleep(700);
      expect(opened()).toBe(before);
      expect(lab.connects()).toBe(false);
    });

  },
  ['ip', 'iptables', 'ip6tables', 'tcpdump'],
);
