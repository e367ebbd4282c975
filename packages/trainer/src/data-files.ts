/** Dataset and prompt files (Node): read, then parsed by `data.ts`. */
import { readFile } from 'node:fs/promises';
import { type Dataset, parseDataset, parsePrompts, type Text } from './data.js';

export async function loadDataset(path: string, range?: [number, number]): Promise<Dataset> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read the dataset (${(err as Error).message})`);
  }
  return parseDataset(text, path, range);
}

/** Prompts for online training from a file (see `parsePrompts`). */
export async function loadPrompts(path: string): Promise<{ line: number; prompt: Text }[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`${path}: cannot read the prompts (${(err as Error).message})`);
  }
  return parsePrompts(text, path);
}
