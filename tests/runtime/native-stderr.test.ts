// Dawn's limit-clamp warnings are dropped from fd 2, and nothing else is:
// the filter runs in a child process (it points the process's own fd 2 at a
// file), which writes straight to fd 2 as a native library would.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const tsx = join(ROOT, 'node_modules/.bin/tsx');

function runChild(script: string, env: Record<string, string> = {}) {
  return spawnSync(tsx, ['-e', script], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env } });
}

const WRITE_THROUGH_FILTER = `
import { writeSync } from 'node:fs';
import { withNativeStderrFiltered } from './src/runtime/native-stderr.ts';
(async () => {
const value = await withNativeStderrFiltered(/^drop me \\d$/, async () => {
  writeSync(2, 'drop me 1\\nkeep me\\ndrop me 2\\n');
  return 42;
});
writeSync(2, 'after ' + value + '\\n');
await withNativeStderrFiltered(/^never$/, async () => { writeSync(2, 'before a throw\\n'); throw new Error('boom'); }).catch((e) => writeSync(2, 'caught ' + e.message + '\\n'));
writeSync(2, 'restored\\n');
})();
`;

describe('native stderr filter', () => {
  it('drops the matching lines, keeps the rest in order, returns the value, restores fd 2 after a throw', () => {
    const r = runChild(WRITE_THROUGH_FILTER);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('keep me\nafter 42\nbefore a throw\ncaught boom\nrestored\n');
  });

  it('filters nothing under ATTNC_DEBUG=1', () => {
    const r = runChild(WRITE_THROUGH_FILTER, { ATTNC_DEBUG: '1' });
    expect(r.stderr).toBe('drop me 1\nkeep me\ndrop me 2\nafter 42\nbefore a throw\ncaught boom\nrestored\n');
  });
});
