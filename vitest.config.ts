import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

// The emulator's files and the nvcc check take most of the suite's time, each on one worker (the emulator runs one
// thread). Vitest runs files side by side, in its cache's order of past durations, and with no cache (a fresh CI
// machine) in the order found: started last, they would leave the other worker idle for minutes at the end.
const LONGEST_FIRST = [/emu-backward-/, /nvcc\.test/, /emu-forward/];
class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST_FIRST.findIndex((re) => re.test(f.moduleId));
      return i < 0 ? LONGEST_FIRST.length : i;
    };
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // GPU tests on lavapipe are slow on 2 cores; each file sets its own budget where needed.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One Dawn instance per worker process is plenty on a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    sequence: { sequencer: LongestFirst },
  },
});
