// The command-line pieces the scripts share (cuda-bench, ptxas-report, webgpu-bench): `--name value` options and
// one-line errors with exit status 2.

/** The value after `--name` on the command line, or `dflt` where the option is not given. */
export function argValue(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : dflt;
}

/** A `fail(message)` that prints `tool: message` as one line and exits 2 (bad arguments, or no device here). */
export function failWith(tool: string): (msg: string) => never {
  return (msg: string): never => {
    console.error(`${tool}: ${msg}`);
    process.exit(2);
  };
}
