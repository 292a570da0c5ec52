// Readable forms of the IR, for `--dump`, `explain` and test failures:
// `printNodes`: one line per node in topological order, `%12 = mul f32 %3, %11`
// (ids are the factory's, stable within a compile), with the node's dependency
// class appended when classes are given; `printProgram` adds the roots;
// `exprString`: an infix expression (shared nodes are repeated), for short
// values like the affine a and c.
import type { Node } from './nodes.ts';
import { topoOrder } from './nodes.ts';
import type { AttentionProgram, DepClass } from './program.ts';

function constText(n: Node): string {
  const v = n.value!;
  if (typeof v === 'boolean') return String(v);
  if (n.type === 'f32' && Number.isInteger(v) && !Object.is(v, -0) && !/e/.test(String(v))) return `${v}.0`;  // not 1e+38.0
  return Object.is(v, -0) ? '-0.0' : String(v);
}

export function printNode(n: Node): string {
  const rhs = (() => {
    switch (n.op) {
      case 'const': return constText(n);
      case 'dot': return '';
      case 'builtin': case 'param': return n.name!;
      case 'load': return `${n.name}[%${n.args[0].id}]`;
      case 'load_min': case 'load_max': return `${n.name}[%${n.args[0].id}..%${n.args[1].id}]`;
      default: return n.args.map((a) => `%${a.id}`).join(', ');
    }
  })();
  return `%${n.id} = ${n.op} ${n.type}${rhs ? ' ' + rhs : ''}`;
}

export function printNodes(roots: readonly Node[], classes?: ReadonlyMap<Node, DepClass>): string[] {
  return topoOrder(roots).map((n) => {
    const line = printNode(n);
    const c = classes?.get(n);
    return c ? `${line.padEnd(40)} ; ${c}` : line;
  });
}

export function printProgram(p: AttentionProgram, classes?: ReadonlyMap<Node, DepClass>): string {
  return [...printNodes([p.logit, p.mask], classes), `logit = %${p.logit.id}`, `mask = %${p.mask.id}`].join('\n');
}

const INFIX: Partial<Record<string, [string, number]>> = {
  or: ['||', 1], and: ['&&', 2], eq: ['==', 3], ne: ['!=', 3], lt: ['<', 3], le: ['<=', 3], gt: ['>', 3], ge: ['>=', 3],
  add: ['+', 4], sub: ['-', 4], mul: ['*', 5], div: ['/', 5], mod: ['%', 5],
};

/** Infix text of `root`, e.g. `(1.0 / sqrt(f32(head_dim))) * sqrt(...)`. Iterative. */
export function exprString(root: Node): string {
  const text = new Map<Node, [string, number]>(); // text, precedence (9 = atom)
  for (const n of topoOrder([root])) {
    const arg = (i: number, prec: number) => {
      const [t, p] = text.get(n.args[i])!;
      return p < prec ? `(${t})` : t;
    };
    const infix = INFIX[n.op];
    let out: [string, number];
    if (n.op === 'const') out = [constText(n), (n.value as number) < 0 ? 6 : 9];
    else if (n.op === 'dot') out = ['dot', 9];
    else if (n.op === 'builtin' || n.op === 'param') out = [n.name!, 9];
    else if (n.op === 'load') out = [`${n.name}[${arg(0, 0)}]`, 9];
    else if (n.op === 'load_min' || n.op === 'load_max') out = [`${n.op === 'load_min' ? 'min' : 'max'}(${n.name}[${arg(0, 0)}..${arg(1, 0)}])`, 9];
    else if (infix) out = [`${arg(0, infix[1])} ${infix[0]} ${arg(1, infix[1] + 1)}`, infix[1]];
    else if (n.op === 'neg') out = [`-${arg(0, 7)}`, 6];
    else if (n.op === 'not') out = [`!${arg(0, 7)}`, 6];
    else if (n.op === 'cast') out = [`${n.type}(${arg(0, 0)})`, 9];
    else if (n.op === 'select') out = [`if ${arg(0, 0)} then ${arg(1, 0)} else ${arg(2, 0)}`, 0];
    else out = [`${n.op}(${n.args.map((_, i) => arg(i, 0)).join(', ')})`, 9];
    text.set(n, out);
  }
  return text.get(root)![0];
}
