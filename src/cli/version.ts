import fs from 'node:fs';
import path from 'node:path';

/**
 * The package's version, read from its package.json at run time: dist/ sits beside it in every
 * install (npm, the .deb, the image), and importing it would put package.json inside the build.
 */
export function packageVersion(): string {
  return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}
