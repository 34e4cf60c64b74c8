/**
 * The validator `npm run build` compiles ahead of time (dist/config/schemaValidator.js) must say
 * what the schema compiled at load says, error for error: the daemon uses the first, tests from
 * sources the second.
 */
import fs from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { AJV_OPTIONS } from '../../src/config/schemaOptions';

const ROOT = path.join(__dirname, '..', '..');
const BUILT = path.join(ROOT, 'dist', 'config', 'schemaValidator.js');

const configs: unknown[] = [
  {},
  { doors: {} },
  { doors: { ssh: { sequence: [42, 196, 69], open: '/bin/true' } } },
  { doors: { ssh: { sequence: 'x', open: 3 } }, bogus: 1 },
  { sources: [{ file: 1 }], doors: { a: { secret: '' } }, tumbler: { skew_minutes: 11 } },
  { max_sources: -1, firewall: 'pf', doors: { a: { sequence: [0], sequence_timeout: '5 weeks' } } },
  { state_dir: '/var/lib/tumblerd', log: { level: 'loud' }, interfaces: [1], doors: { b: { secret: 'x'.repeat(40), open: ['a', 'b'] } } },
];

(fs.existsSync(BUILT) ? describe : describe.skip)('the schema validator compiled at build time', () => {
  it('accepts and refuses as the schema compiled at load does, with the same errors', () => {
    const built = require(BUILT) as (d: unknown) => boolean & { errors?: unknown };
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'tumblerd.schema.json'), 'utf8'));
    const live = new Ajv(AJV_OPTIONS).compile(schema);
    for (const c of configs) {
      expect([c, built(c)]).toEqual([c, live(c)]);
      expect((built as unknown as { errors: unknown }).errors).toEqual(live.errors);
    }
  });
});
