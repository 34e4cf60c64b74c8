/*
 * Kernel settings the real-system tests share. nf_log_all_netns is one switch for the whole host:
 * labs that each set it and put back what they found would switch it off under one another when
 * test files run side by side, so it is set once here and put back once in teardown.js.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const NF_LOG = '/proc/sys/net/netfilter/nf_log_all_netns';
const SAVED = path.join(os.tmpdir(), `tumbler-test-nf-log-${process.pid}`);

module.exports = async () => {
  if (process.getuid?.() !== 0 || !fs.existsSync(NF_LOG)) return;
  fs.writeFileSync(SAVED, fs.readFileSync(NF_LOG, 'utf8').trim());
  fs.writeFileSync(NF_LOG, '1');
};
module.exports.SAVED = SAVED;
module.exports.NF_LOG = NF_LOG;
