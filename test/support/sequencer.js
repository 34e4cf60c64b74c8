/**
 * Jest's order (slowest or biggest first), except that the suites which boot the Debian rootfs
 * run last: on a fresh machine .ci/run builds that rootfs in the background (minutes) while the
 * other suites run, and a suite that needs it earlier would hold a worker waiting for it.
 */
const Sequencer = require('@jest/test-sequencer').default;

const NEEDS_ROOTFS = ['container.test.ts', 'systemd.test.ts'];

class RootfsLastSequencer extends Sequencer {
  async sort(tests) {
    const sorted = await super.sort(tests);
    const last = (t) => NEEDS_ROOTFS.some((name) => t.path.endsWith(`/${name}`));
    return [...sorted.filter((t) => !last(t)), ...sorted.filter(last)];
  }
}

module.exports = RootfsLastSequencer;
