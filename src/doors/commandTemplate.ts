/**
 * Door commands: a line of text split into words the way a shell would split it (quotes
 * respected), then run with execFile, never by a shell. Macros are replaced inside words after
 * splitting, so whatever an address or a name contains can never become a second word.
 */
import { isCanonicalSource } from '../model/address';
import type { CommandTemplate } from '../model/door';

/* Characters a shell would act on: here they would be passed on literally, which is never what
 * the writer of `iptables ... | logger` meant, so they must be quoted to be used. Globs too: a
 * shell would expand `*.conf`, `[ab]` or `?`. */
const SHELL_SPECIAL = new Set(['|', '&', ';', '<', '>', '(', ')', '$', '`', '*', '?', '[']);
/* Meaningful to a shell only at the start of a word: a `# comment` (knockd configs end commands
 * with one, and its words would become arguments) and `~` for a home folder. */
const SHELL_WORD_START: Record<string, string> = {
  '#': 'starts a comment to a shell',
  '~': 'is a home folder to a shell',
};

/** Splits a command line into argv; throws with a message fit for a config error. */
export function splitCommand(line: string): CommandTemplate {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    if (!inWord && SHELL_WORD_START[c]) {
      throw new Error(`"${c}" at the start of a word ${SHELL_WORD_START[c]}, but commands run without one: quote it, or put the command in a script`);
    }
    if (c === '=' && words.length === 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(line.slice(0, i).trimStart())) {
      throw new Error(`"${line.slice(0, i).trimStart()}=" sets a variable for a shell, but commands run without one: use env ${line.slice(0, i).trimStart()}=..., or a script`);
    }
    inWord = true;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      word += line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && j + 1 < line.length && '"\\$`'.includes(line[j + 1])) j++;
        word += line[j];
      }
      if (j >= line.length) throw new Error('unterminated double quote');
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('trailing backslash');
      word += line[++i];
    } else if (SHELL_SPECIAL.has(c)) {
      throw new Error(
        `"${c}" would mean something to a shell, but commands run without one: quote it, or put the pipeline in a script`,
      );
    } else {
      word += c;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) throw new Error('empty command');
  if (words[0].includes('%')) throw new Error('the program to run cannot come from a macro');
  return words;
}

export interface MacroValues {
  ip: string;
  name: string;
}

/** argv with %IP% and %NAME% replaced. The address must already be canonical. */
export function expandCommand(template: CommandTemplate, values: MacroValues): string[] {
  if (!isCanonicalSource(values.ip)) throw new Error(`refusing to run a command for "${values.ip}": not an address`);
  return template.map((w) => w.split('%IP%').join(values.ip).split('%NAME%').join(values.name));
}

