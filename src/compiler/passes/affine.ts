// Affine form of the logit (KERNELS.md "Performance" 2).
//
// What: `affineForm(logit, f)` finds a, c free of `dot` with
// logit == a * dot + c (symbolically, over the reals), or null.
// Why: an affine logit folds a, c, the softmax scale and log2(e) into the one
// FMA that feeds exp2, so the inner loop costs what plain attention costs.
//
// Rules (x free = does not contain `dot`, i.e. x = 0*dot + x):
//   dot -> (1, 0); add/sub/neg component-wise; mul when one side is free;
//   div when the divisor is free; select whose condition is free, with affine
//   branches -> (select(c, a1, a2), select(c, c1, c2)); anything else that
//   contains dot -> not affine. A zero `c` is tracked symbolically (null), so
//   `dot * s` gives c = 0 without building the f32 product `0 * s` (which is
//   not foldable: 0 * inf is NaN). Results are built through the Folder.
// Note the form is exact in real arithmetic, not bit-exact in f32: (a*d + c)/y
// becomes (a/y)*d + c/y.
import type { IrFactory, Node } from '../ir/nodes.ts';
import { topoOrder } from '../ir/nodes.ts';
import { Folder } from './fold.ts';

interface Form { a: Node; c: Node | null }

export function affineForm(logit: Node, factory: IrFactory): { a: Node; c: Node } | null {
  const b = new Folder(factory);
  const forms = new Map<Node, Form | null>(); // only nodes that contain dot
  const hasDot = (n: Node) => forms.has(n);
  const formOf = (n: Node): Form | null => (hasDot(n) ? forms.get(n)! : { a: b.num(0, 'f32'), c: n });
  const addC = (x: Node | null, y: Node | null) => (x === null ? y : y === null ? x : b.add(x, y));
  const mulC = (x: Node | null, s: Node) => (x === null ? null : b.mul(x, s));

  for (const n of topoOrder([logit])) {
    if (n.op === 'dot') { forms.set(n, { a: b.num(1, 'f32'), c: null }); continue; }
    if (!n.args.some(hasDot)) continue;
    let form: Form | null = null;
    const [x, y, z] = n.args;
    const fx = formOf(x), fy = y ? formOf(y) : null;
    if (n.type !== 'f32' || (fx === null && n.op !== 'select')) { forms.set(n, null); continue; }
    switch (n.op) {
      case 'add': if (fx && fy) form = { a: b.add(fx.a, fy.a), c: addC(fx.c, fy.c) }; break;
      case 'sub': if (fx && fy) form = { a: b.sub(fx.a, fy.a), c: addC(fx.c, fy.c === null ? null : b.neg(fy.c)) }; break;
      case 'neg': if (fx) form = { a: b.neg(fx.a), c: fx.c === null ? null : b.neg(fx.c) }; break;
      case 'mul':
        if (!hasDot(x) && fy) form = { a: b.mul(x, fy.a), c: mulC(fy.c, x) };
        else if (!hasDot(y) && fx) form = { a: b.mul(fx.a, y), c: mulC(fx.c, y) };
        break;
      case 'div': if (!hasDot(y) && fx) form = { a: b.div(fx.a, y), c: fx.c === null ? null : b.div(fx.c, y) }; break;
      case 'select': {
        const ft = formOf(y), fe = formOf(z);
        if (!hasDot(x) && ft && fe) {
          const zero = b.num(0, 'f32');
          form = {
            a: b.select(x, ft.a, fe.a),
            c: ft.c === null && fe.c === null ? null : b.select(x, ft.c ?? zero, fe.c ?? zero),
          };
        }
        break;
      }
      default: break; // cast cannot produce f32 from dot's f32; every other op is not affine
    }
    forms.set(n, form);
  }
  const top = formOf(logit);
  return top && { a: top.a, c: top.c ?? b.num(0, 'f32') };
}
