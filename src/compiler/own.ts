// Records keyed by a spec's own names (params, tables), for the compiler and
// the runtime. A spec may call a param `constructor` or `__proto__`: an
// ordinary object answers such names from Object.prototype, and
// `record['__proto__'] = 3` sets nothing. Reads go through own(), and records
// filled with such names are made by nameRecord().
export function own<T>(record: Readonly<Record<string, T>>, name: string): T | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}

/** An empty record without a prototype: every name, `__proto__` included, is an ordinary key. */
export function nameRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}
