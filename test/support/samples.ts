import fs from 'node:fs';
import path from 'node:path';

/** Real kernel lines captured here (fixtures/capture.sh) and by the team (fixtures/shared-samples/). */
export const FIXTURES = path.join(__dirname, '..', '..', 'fixtures');

export function fixtureLines(name: string): string[] {
  return fs.readFileSync(path.join(FIXTURES, name), 'utf8').split('\n').filter((l) => l.length > 0);
}
