// Prints the default WebGPU adapter's description, or exits 1 if there is none.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const adapter = await create([]).requestAdapter().catch(() => null);
if (!adapter) process.exit(1);
const info = adapter.info ?? {};
console.log([info.vendor, info.architecture, info.description].filter(Boolean).join(' / ') || 'WebGPU adapter');
process.exit(0);
