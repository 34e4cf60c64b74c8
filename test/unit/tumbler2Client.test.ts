/** The client's side of Tumbler v2: URLs, the hosts file, declarations, identity files; every bad input a clear error. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lookupHost, parseDeclared, parseTumbler2Url, readIdentity, writeIdentity } from '../../src/tumbler/v2/client';

const KEY = 'AG29B_PX0SWlxro4NsZpjD3-qRMPl3IMHcj9mbyVW0c';

describe('tumbler2 client', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-v2-client-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('reads tumbler2:// URLs, and says what is missing', () => {
    expect(parseTumbler2Url(`tumbler2://[2001:db8::1]:9000/ssh?key=${KEY}&gateway=gw-east`)).toMatchObject({
      host: '2001:db8::1',
      port: 9000,
      door: 'ssh',
      gateway: 'gw-east',
    });
    expect(parseTumbler2Url(`tumbler2://gw.example.org/ssh?key=${KEY}`)).toMatchObject({ port: 8675, gateway: null });
    expect(() => parseTumbler2Url(`tumbler2://gw.example.org/?key=${KEY}`)).toThrow(/names no door/);
    expect(() => parseTumbler2Url('tumbler2://gw.example.org/ssh')).toThrow(/no gateway key.*tumblerd pubkey/);
    expect(() => parseTumbler2Url('tumbler2://gw.example.org/ssh?key=short')).toThrow(/43 characters of base64url/);
    expect(() => parseTumbler2Url(`tumbler://gw/ssh?key=${KEY}`)).toThrow(/scheme must be tumbler2/);
  });

  it('parses declarations with and without a prefix', () => {
    expect(parseDeclared('192.0.2.7')).toEqual({ address: '192.0.2.7', family: 4, prefix: 32 });
    expect(parseDeclared('2001:DB8::/48')).toEqual({ address: '2001:db8::', family: 6, prefix: 48 });
    expect(() => parseDeclared('192.0.2.7/33')).toThrow(/prefix must be 1 to 32/);
    expect(() => parseDeclared('example.org')).toThrow(/not an IPv4 or IPv6 address/);
    expect(() => parseDeclared('::ffff:192.0.2.7')).toThrow(/not an IPv4 or IPv6 address/);
  });

  it('finds hosts by entry name or by host, with paths relative to the file', () => {
    const file = path.join(dir, 'hosts.yaml');
    fs.writeFileSync(file, `myserver:\n  host: gw.example.org\n  key: ${KEY}\n  door: ssh\n  identity: keys/id\n  declare: 192.0.2.0/24\nother:\n  key: ${KEY}\n  door: web\n  port: 9999\n  passphrase: true\n`);
    expect(lookupHost('myserver', file)).toMatchObject({ host: 'gw.example.org', port: 8675, door: 'ssh', identity: path.join(dir, 'keys/id'), declared: [{ address: '192.0.2.0', prefix: 24 }] });
    expect(lookupHost('gw.example.org', file)).toMatchObject({ door: 'ssh' });
    expect(lookupHost('other', file)).toMatchObject({ host: 'other', port: 9999, passphrase: true, identity: null });
    expect(lookupHost('nowhere', file)).toBeNull();
    expect(lookupHost('x', path.join(dir, 'missing.yaml'))).toBeNull();
    fs.writeFileSync(file, `bad:\n  door: ssh\n`);
    expect(() => lookupHost('bad', file)).toThrow(`${file}: bad: key must be a string`);
    fs.writeFileSync(file, `bad:\n  key: ${KEY}\n  door: ssh\n  port: 70000\n`);
    expect(() => lookupHost('bad', file)).toThrow(/port must be 1 to 65535/);
    fs.writeFileSync(file, `bad: [unclosed\n`);
    expect(() => lookupHost('bad', file)).toThrow(new RegExp(`^${file}: `));
  });

  it('writes identities 0600 and never over another; refuses to read one others may read', () => {
    const id = path.join(dir, 'sub', 'id');
    const seed = Buffer.alloc(32, 7);
    writeIdentity(id, seed);
    expect(fs.statSync(id).mode & 0o777).toBe(0o600);
    expect(readIdentity(id).equals(seed)).toBe(true);
    expect(() => writeIdentity(id, seed)).toThrow(/EEXIST/);
    fs.chmodSync(id, 0o644);
    expect(() => readIdentity(id)).toThrow(/can be read by others \(mode 644\): chmod 600 it/);
    expect(() => readIdentity(path.join(dir, 'none'))).toThrow(/cannot read the identity .*ENOENT.*tumbler keygen/);
    fs.writeFileSync(path.join(dir, 'short'), 'AAAA\n', { mode: 0o600 });
    expect(() => readIdentity(path.join(dir, 'short'))).toThrow(/does not hold a 32-byte key/);
  });
});
