/** Flag values of a command line (flags are checked against their specs first: `flags.ts`). */
export interface Args {
  /** the value after `name`, if the flag is given */
  get(name: string): string | undefined;
  /** a number flag, if given */
  number(name: string): number | undefined;
  /** whether a boolean flag is present */
  has(name: string): boolean;
  /** the value of a required flag, else an error naming it */
  need(name: string, command: string, what?: string): string;
}

export function parseArgs(args: readonly string[]): Args {
  const get = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const v = args[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Error(`${name} needs a value`);
    return v;
  };
  return {
    get,
    number: (name) => {
      const v = get(name);
      return v === undefined ? undefined : Number(v);
    },
    has: (name) => args.includes(name),
    need: (name, command, what = name) => {
      const v = get(name);
      if (!v) throw new Error(`${command} needs ${what}`);
      return v;
    },
  };
}

/** A model flag's directory (`builtin:tiny` is the bundled tiny model) and its display name. */
export function modelName(dir: string): string {
  return dir === 'builtin:tiny' ? 'tiny' : (dir.split('/').filter(Boolean).pop() ?? 'model');
}
