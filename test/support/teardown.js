/* Removes what env.js pointed the client at (tests run in band, in this process). */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
module.exports = async () => fs.rmSync(path.join(os.tmpdir(), `tumbler-test-state-${process.pid}`), { recursive: true, force: true });
