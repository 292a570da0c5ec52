// How user names reach generated code: never raw. A param `tau` becomes
// `p_tau`, a table `doc` becomes `t_doc`; a name that could clash with a
// reserved spelling after prefixing (double underscores, which C++ and WGSL
// reserve) is hex-encoded instead. The prefix keeps every target's keywords
// (`fn`, `float`, `lambda`...) out of the way.
const PLAIN = /^[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*$/;

export function mangle(kind: 'param' | 'table', name: string): string {
  const prefix = kind === 'param' ? 'p_' : 't_';
  if (PLAIN.test(name)) return prefix + name;
  return `${prefix}x${Buffer.from(name, 'utf8').toString('hex')}`;
}
