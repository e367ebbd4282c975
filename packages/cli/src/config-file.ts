/** Run configs from YAML or JSON files, with every objective spelling resolved by the registry. */
import { readFile } from 'node:fs/promises';
import { parseTrainConfig, type TrainConfig } from '@alignjs/trainer/node';
import { parse as parseYaml } from 'yaml';
import { parseObjectiveSpec } from './objectives.js';

/**
 * A training config from code or a file's contents: the trainer's `parseTrainConfig` with
 * objectives by name, as weighted lists or in TRL's `loss_type` spelling.
 */
export function parseRunConfig(raw: unknown, source = 'config'): TrainConfig {
  return parseTrainConfig(raw, source, { parseObjective: parseObjectiveSpec });
}

export async function readConfigFile(path: string): Promise<TrainConfig> {
  return parseRunConfig(await readRawConfig(path), path);
}

/** Reads a YAML or JSON config file into a plain object, with errors naming the file. */
export async function readRawConfig(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read the config (${(err as Error).message})`);
  }
  try {
    return path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new Error(
      `${path}: not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'} (${(err as Error).message.split('\n')[0]})`,
    );
  }
}
