/** Tumbler v2 in the config: keys:, keys_file:, nat:, tumbler.window/gateway/key_file, and their errors (file, line, key). */
import crypto from 'node:crypto';
import { ConfigError, parseConfig } from '../../src/config/load';
import { verifiersOf } from '../../src/daemon';
import { ed25519PublicRaw, formatKeyLine } from '../../src/tumbler/v2/keys';

const line = (user: string) => formatKeyLine(ed25519PublicRaw(crypto.createHash('sha256').update(user).digest()), user);
const GW = crypto.randomBytes(32).toString('base64');
const files: Record<string, string> = {
  '/etc/tumbler/gateway.key': `${GW}\n`,
  '/var/lib/tumblerd/gateway.key': `${GW}\n`,
  '/etc/tumbler/users.keys': `# staff\n${line('alice')}\n\n${line('bob')}\n`,
  '/etc/tumbler/bad.keys': `${line('alice')}\nssh-ed25519 AAAA carol\n`,
};
const readFile = (f: string) => {
  if (!(f in files)) throw Object.assign(new Error(`ENOENT: ${f}`), { code: 'ENOENT' });
  return files[f];
};
const parse = (text: string) => parseConfig(text, '/etc/tumbler/tumblerd.yaml', { env: {}, readFile });
function problems(text: string): string[] {
  try {
    parse(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.message.split('\n');
    throw e;
  }
  throw new Error('config was accepted');
}

describe('Tumbler v2 config', () => {
  it('reads inline keys and keys files, NAT modes, the window, the gateway name and its key', () => {
    const c = parse(`tumbler:
  window: 30s
  gateway: gw-east
doors:
  ssh:
    keys_file: users.keys
    open: /bin/true %IP%
  db:
    keys: ["${line('carol')}"]
    nat: declared
    open: /bin/true %IP%
`);
    expect(c.doors[0].keys!.map((k) => k.user)).toEqual(['alice', 'bob']);
    expect(c.doors[0]).toMatchObject({ nat: 'auto', keysFiles: ['/etc/tumbler/users.keys'] });
    expect(c.doors[1]).toMatchObject({ nat: 'declared', keys: [{ user: 'carol' }] });
    expect(c.tumbler).toMatchObject({ windowMs: 30_000, gateway: 'gw-east', gatewayKey: GW, keyFile: null });
    expect(c.tumbler.listen).toEqual([{ host: '0.0.0.0', port: 8675 }, { host: '::', port: 8675, ifAvailable: true }]);
    const v = verifiersOf(c);
    expect(v.map((x) => x.protocol)).toEqual(['tumbler1', 'tumbler2']);
  });

  it('without v2 doors, no gateway key is read and there is no v2 verifier', () => {
    const c = parse('doors:\n  ssh:\n    secret: s3cret-enough\n    open: /bin/true\n');
    expect(c.tumbler.gatewayKey).toBeNull();
    expect(verifiersOf(c).map((x) => x.protocol)).toEqual(['tumbler1']);
  });

  it('names the file, line and key of every problem', () => {
    expect(problems('tumbler:\n  window: soon\ndoors:\n  ssh:\n    keys_file: users.keys\n    open: /bin/true\n')).toEqual([
      '/etc/tumbler/tumblerd.yaml:2:11: tumbler.window: should be a duration: a number of seconds, or a number with a unit: 500ms, 30s, 5m, 1h',
    ]);
    expect(
      problems(`tumbler:
  key_file: gateway.key
doors:
  ssh:
    keys_file: [bad.keys, missing.keys]
    open: /bin/true
  web:
    keys: ["tumbler-ed25519 AAAA"]
    open: /bin/true
  mail:
    secret: a-secret-of-mail
    nat: strict
    open: /bin/true
`),
    ).toEqual([
      '/etc/tumbler/tumblerd.yaml:5:17: doors.ssh.keys_file[0]: /etc/tumbler/bad.keys: line 2: a key line is "tumbler-ed25519 <base64> <user>"',
      '/etc/tumbler/tumblerd.yaml:5:27: doors.ssh.keys_file[1]: ENOENT: /etc/tumbler/missing.keys',
      '/etc/tumbler/tumblerd.yaml:8:12: doors.web.keys[0]: the key is not 32 bytes of base64',
      '/etc/tumbler/tumblerd.yaml:12:10: doors.mail.nat: nat is for Tumbler v2 knocks: the door has no keys',
    ]);
  });

  it('takes prefix grants for doors with commands, not with allow:', () => {
    const c = parse(`doors:\n  ssh:\n    keys_file: users.keys\n    grant_prefix6: 64\n    open: /bin/true %IP%\n`);
    expect(c.doors[0].grantPrefix).toEqual({ 4: 32, 6: 64 });
    expect(problems(`doors:\n  ssh:\n    keys_file: users.keys\n    grant_prefix4: 24\n    allow: [tcp/22]\n    close_after: 30s\n`)).toEqual([
      '/etc/tumbler/tumblerd.yaml:4:20: doors.ssh.grant_prefix4: prefix grants need open/close commands: allow: opens single addresses',
    ]);
  });

  it('refuses one key under two names, and a missing gateway key with the command that makes it', () => {
    const alice = line('alice').split(' ')[1];
    expect(problems(`doors:\n  ssh:\n    keys: ["tumbler-ed25519 ${alice} alice", "tumbler-ed25519 ${alice} mallory"]\n    open: /bin/true\n`)).toEqual([
      '/etc/tumbler/tumblerd.yaml:3:82: doors.ssh.keys[1]: the key of "mallory" is also listed as "alice"',
    ]);
    expect(problems(`state_dir: /nowhere\ndoors:\n  ssh:\n    keys_file: users.keys\n    open: /bin/true\n`)).toEqual([
      '/etc/tumbler/tumblerd.yaml:1:1: tumbler.key_file: cannot read the gateway key /nowhere/gateway.key (ENOENT): run tumblerd keygen',
    ]);
  });
});
