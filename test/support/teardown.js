/* Removes what env.js pointed the client at, and puts back the kernel setting setup.js changed. */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { SAVED, NF_LOG } = require('./setup');

module.exports = async () => {
  fs.rmSync(path.join(os.tmpdir(), `tumbler-test-state-${process.pid}`), { recursive: true, force: true });
  if (fs.existsSync(SAVED)) {
    fs.writeFileSync(NF_LOG, fs.readFileSync(SAVED, 'utf8'));
    fs.rmSync(SAVED);
  }
};
