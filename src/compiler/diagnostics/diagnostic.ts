// Diagnostics are values: collected, never thrown. A user mistake is a
// Diagnostic; a broken invariant inside the compiler is a thrown Error.
import type { Span } from '../syntax/ast.ts';

export interface Diagnostic {
  /** Code from the catalog (catalog.ts), e.g. `E012`. */
  code: string;
  severity: 'error' | 'warning';
  span: Span;
  message: string;
  /** Extra lines, e.g. `did you mean 'tau'?` or where a name was first defined. */
  notes?: string[];
}
