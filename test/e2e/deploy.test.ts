/** What ships for deployment: the systemd unit checks out with systemd's own verifier; the Dockerfile follows the README. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, TUMBLERD } from '../support/lab';

const unitText = fs.readFileSync(path.join(ROOT, 'contrib', 'tumblerd.service'), 'utf8');
const hasVerifier = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('deployment files', () => {
  (hasVerifier ? it : it.skip)(`the systemd unit passes systemd-analyze verify${hasVerifier ? '' : ' (skipped: no systemd-analyze)'}`, () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tumbler-unit-'));
    try {
      /* the unit names the installed binary; point it at this build so the verifier can check it */
      const unit = path.join(dir, 'tumblerd.service');
      fs.writeFileSync(unit, unitText.replace(/=tumblerd /g, `=${process.execPath} ${TUMBLERD} `));
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
      expect(r.stderr.trim()).toBe('');
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  (hasVerifier ? it : it.skip)(`systemd-analyze security rates the unit's exposure at 3.0 or less${hasVerifier ? '' : ' (skipped: no systemd-analyze)'}`, () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', path.join(ROOT, 'contrib', 'tumblerd.service')], { encoding: 'utf8' });
    const level = /Overall exposure level for tumblerd\.service: ([\d.]+)/.exec(r.stdout);
    expect(level).not.toBeNull();
    expect(Number(level![1])).toBeLessThanOrEqual(3.0);
  });

  it('the unit has the hardening and capabilities the README promises', () => {
    for (const line of [
      'After=network-online.target',
      'ProtectSystem=strict',
      'StateDirectory=tumblerd',
      'LogsDirectory=tumblerd',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_DAC_READ_SEARCH CAP_SYSLOG',
      'NoNewPrivileges=yes',
      'Restart=on-failure',
      'KillMode=mixed',
      'ExecReload=tumblerd --check --config /etc/tumblerd/tumblerd.yaml',
    ]) {
      expect(unitText).toContain(line);
    }
  });

  it("the Dockerfile builds with the README's install steps and runs tumblerd on the mounted config folder", () => {
    const docker = fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    expect(docker).toMatch(/RUN npm ci/);
    expect(docker).toMatch(/RUN npm run build/);
    expect(docker).toMatch(/apt-get install .*iptables ipset nftables tini/);
    expect(docker).toContain('CMD ["--config", "/etc/tumblerd/tumblerd.yaml"]');
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    /* the README shows the compose file as it is in the repository */
    expect(readme).toContain(fs.readFileSync(path.join(ROOT, 'compose.yaml'), 'utf8'));
  });
});
