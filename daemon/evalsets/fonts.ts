/** The font faces eval sets render with, registered with Skia under names of our own so no system font stands in. */
import fs from 'node:fs';
import { GlobalFonts } from '@napi-rs/canvas';
import { EdgerunError } from '../errors.ts';

export type Script = 'latin' | 'chinese';

export interface FontFace {
  /** The family name the canvas is given. */
  family: string;
  file: string;
  scripts: readonly Script[];
}

const ROOT = '/usr/share/fonts/truetype';

export const FONT_FACES: readonly FontFace[] = [
  { family: 'EvalDejaVuSans', file: `${ROOT}/dejavu/DejaVuSans.ttf`, scripts: ['latin'] },
  { family: 'EvalDejaVuSerif', file: `${ROOT}/dejavu/DejaVuSerif.ttf`, scripts: ['latin'] },
  { family: 'EvalDejaVuSansMono', file: `${ROOT}/dejavu/DejaVuSansMono.ttf`, scripts: ['latin'] },
  { family: 'EvalLiberationSans', file: `${ROOT}/liberation2/LiberationSans-Regular.ttf`, scripts: ['latin'] },
  { family: 'EvalLiberationSerif', file: `${ROOT}/liberation2/LiberationSerif-Regular.ttf`, scripts: ['latin'] },
  { family: 'EvalWqyMicroHei', file: `${ROOT}/wqy/wqy-microhei.ttc`, scripts: ['latin', 'chinese'] },
];

const registered = new Set<string>();

/** Registers the faces (once per process); a missing or unreadable file is an error naming it. */
export function registerFonts(faces: readonly FontFace[] = FONT_FACES): void {
  for (const face of faces) {
    if (registered.has(face.family)) continue;
    if (!fs.existsSync(face.file)) {
      throw new EdgerunError('EDGERUN_ERR_EVALSET', `font file ${face.file} (${face.family}) is missing: install the dejavu, liberation2 and wqy font packages`,
        { font: face.family, file: face.file });
    }
    if (!GlobalFonts.registerFromPath(face.file, face.family)) {
      throw new EdgerunError('EDGERUN_ERR_EVALSET', `font file ${face.file} (${face.family}) could not be loaded by the rasteriser`,
        { font: face.family, file: face.file });
    }
    registered.add(face.family);
  }
}

export function facesFor(script: Script, faces: readonly FontFace[] = FONT_FACES): FontFace[] {
  return faces.filter((f) => f.scripts.includes(script));
}
