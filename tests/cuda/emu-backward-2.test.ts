// Every other example's backward kernels (defaults and the variant sets) on the CPU emulator against float64; the
// examples are dealt over emu-backward-1 and -2 so that two workers share the suite's longest tests (emu-cases.ts).
import { defineBackwardTests } from './emu-cases.ts';

defineBackwardTests(1, 2);
