// How user names reach generated code: never raw. Every target prefixes them
// (a param `tau` becomes `p_tau`, a table `doc` becomes `t_doc`), which keeps
// every target's keywords (`fn`, `float`, `lambda`...) out of the way. A name
// that could still clash after prefixing (double or trailing underscores,
// which C++ and WGSL reserve in places) is hex-encoded instead: `px_5f5f78`.
const PLAIN_NAME = /^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$/;

export function mangle(prefix: string, name: string): string {
  if (PLAIN_NAME.test(name)) return `${prefix}_${name}`;
  return `${prefix}x_${Buffer.from(name, 'utf8').toString('hex')}`;
}
