// The names visible at one point of an attention block, in definition order.
import type { Span, ValueType } from '../syntax/ast.ts';
import { BUILTIN_TYPES } from '../syntax/ast.ts';

/** `error` is the type of anything already reported: it silences every rule that reads it. */
export type CheckedType = ValueType | 'error';

export interface NameInfo {
  kind: 'builtin' | 'param' | 'input' | 'let';
  type: CheckedType;
  /** Where the user defined it (absent for built-ins). */
  span?: Span;
  /** For inputs: the axis the table runs along (used in hints). */
  axis?: string;
  /** True for `score` and for anything computed from it (DSL: scale must not depend on score). */
  scoreDependent: boolean;
}

/** Names the user may not define: the built-ins, and `scale`, which is assignable but not readable. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([...Object.keys(BUILTIN_TYPES), 'scale']);

export class Scope {
  private readonly names = new Map<string, NameInfo>();

  constructor() {
    for (const [name, type] of Object.entries(BUILTIN_TYPES)) {
      this.names.set(name, { kind: 'builtin', type, scoreDependent: name === 'score' });
    }
  }

  lookup(name: string): NameInfo | undefined {
    return this.names.get(name);
  }

  define(name: string, info: NameInfo): void {
    this.names.set(name, info);
  }

  /** Candidates for "did you mean": everything visible now. */
  visible(): string[] {
    return [...this.names.keys()];
  }
}
