// Every example's forward kernels on the CPU emulator against float64, and both passes under the adversarial
// schedules (tests/cuda/emu-cases.ts says what each test covers).
import { defineForwardTests } from './emu-cases.ts';

defineForwardTests();
