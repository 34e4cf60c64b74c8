/**
 * What the house refactor promises about the built commands: the client starts without the
 * daemon's config machinery, and `tumblerd --check` warns about exactly what the daemon warns
 * about at start. Needs no root.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Daemon, TUMBLER, TUMBLERD } from '../support/lab';

describe('the built commands', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-house-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('tumbler --help loads none of ajv, yaml or the config schema', () => {
    const probe = path.join(dir, 'probe.js');
    fs.writeFileSync(probe, "process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(Object.keys(require.cache))));\n");
    const r = spawnSync(process.execPath, ['-r', probe, TUMBLER, '--help'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const loaded: string[] = JSON.parse(r.stderr.slice(r.stderr.indexOf('LOADED ') + 7));
    expect(loaded).toContain(TUMBLER);
    expect(loaded.filter((m) => /[/\\](ajv|yaml)[/\\]|schema|config[/\\]load/.test(m))).toEqual([]);
  });

  it('--check reports the security warnings the daemon logs at start', async () => {
    const file = path.join(dir, 'tumblerd.yaml');
    const port = 20000 + ((process.pid + 23) % 20000);
    fs.writeFileSync(
      file,
      `state_dir: ${dir}/state\ntumbler:\n  listen: ["127.0.0.1:${port}"]\ndoors:\n  ssh:\n    secret: a-long-enough-test-secret\n    open: /bin/true %IP%\n`,
    );
    fs.chmodSync(file, 0o644);
    const check = spawnSync(process.execPath, [TUMBLERD, '--check', '--config', file], { encoding: 'utf8' });
    expect(check.status).toBe(0);
    const warnings = check.stdout.split('\n').filter((l) => l.startsWith('WARN '));
    expect(warnings).toEqual([`WARN config-secrets: ${file} holds door secrets and any user can read it (fix: chmod 600 ${file}, or use secret_file)`]);

    const daemon = await new Daemon(null, file).started();
    await daemon.stop();
    for (const w of warnings) expect(daemon.output).toContain(`warn: ${w}`);
  });
});
