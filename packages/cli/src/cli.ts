#!/usr/bin/env node
/**
 * The `alignjs` command line: one module per command (`commands/`). User mistakes (bad
 * config, bad data) print one clear message and exit 1; ALIGNJS_DEBUG=1 adds stack traces.
 */
import { readFile } from 'node:fs/promises';
import { suggest } from '@alignjs/core-logprob';
import { parseArgs } from './args.js';
import { HANDLERS } from './commands/index.js';
import { COMMANDS, checkFlags, commandHelp, mainHelp } from './flags.js';

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...args] = argv;
  const version = await packageVersion();
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(mainHelp(version));
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const handler = HANDLERS[cmd];
  if (!COMMANDS[cmd] || !handler)
    throw new Error(
      `unknown command '${cmd}'${suggest(cmd, Object.keys(COMMANDS))} (commands: ${Object.keys(COMMANDS).join(', ')}; alignjs --help)`,
    );
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(commandHelp(cmd));
    return 0;
  }
  checkFlags(cmd, args);
  return handler(parseArgs(args));
}

async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

const isMain = process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '');
if (isMain) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`alignjs: ${process.env.ALIGNJS_DEBUG ? err.stack : err.message}\n`);
      process.exit(1);
    },
  );
}
