/* The client remembers its last knocks under XDG_STATE_HOME: keep the tests' out of the real home. */
const os = require('node:os');
const path = require('node:path');
process.env.XDG_STATE_HOME = path.join(os.tmpdir(), `tumbler-test-state-${process.pid}`);
