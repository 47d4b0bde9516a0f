/** Text rendered by Skia (@napi-rs/canvas) with real fonts: single lines for rec/cls, pages with known boxes for det. */
import { createCanvas, type SKRSContext2D } from '@napi-rs/canvas';
import { EdgerunError } from '../errors.ts';
import { registerFonts } from './fonts.ts';
import type { RgbaImage } from './image.ts';

export interface LineStyle {
  family: string;
  fontSize: number;
  /** Grey levels 0–255. */
  ink: number;
  paper: number;
  /** Margins around the text, in pixels, as a detector's crop leaves them. */
  padX: number;
  padY: number;
}

/** Axis-aligned box in pixels: [x0, x1) × [y0, y1). */
export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

function grey(level: number): string {
  const v = Math.max(0, Math.min(255, Math.round(level)));
  return `rgb(${v},${v},${v})`;
}

function setFont(context: SKRSContext2D, family: string, fontSize: number): void {
  context.font = `${fontSize}px ${family}`;
  context.textBaseline = 'alphabetic';
  context.textAlign = 'left';
}

function measureLine(text: string, family: string, fontSize: number): { width: number; ascent: number; descent: number } {
  const probe = createCanvas(8, 8).getContext('2d');
  setFont(probe, family, fontSize);
  const metrics = probe.measureText(text);
  return { width: metrics.width, ascent: metrics.fontBoundingBoxAscent, descent: metrics.fontBoundingBoxDescent };
}

/** One text line cropped with the style's margins: the image a recogniser or classifier gets from a detector. */
export function renderLine(text: string, style: LineStyle): RgbaImage {
  registerFonts();
  const { width, ascent, descent } = measureLine(text, style.family, style.fontSize);
  if (!(width > 0)) throw new EdgerunError('EDGERUN_ERR_EVALSET', `line '${text}' renders empty in ${style.family}`, { label: text, font: style.family });
  const canvasWidth = Math.ceil(width + 2 * style.padX);
  const canvasHeight = Math.ceil(ascent + descent + 2 * style.padY);
  const canvas = createCanvas(canvasWidth, canvasHeight);
  const context = canvas.getContext('2d');
  context.fillStyle = grey(style.paper);
  context.fillRect(0, 0, canvasWidth, canvasHeight);
  setFont(context, style.family, style.fontSize);
  context.fillStyle = grey(style.ink);
  context.fillText(text, style.padX, style.padY + ascent);
  return { width: canvasWidth, height: canvasHeight, data: context.getImageData(0, 0, canvasWidth, canvasHeight).data };
}

export interface PageLine {
  text: string;
  family: string;
  fontSize: number;
  x: number;
  /** Top of the line's font box. */
  y: number;
}

/** Width and height of a line's font box at a size: what a page layout must reserve. */
export function lineExtent(text: string, family: string, fontSize: number): { width: number; height: number } {
  registerFonts();
  const { width, ascent, descent } = measureLine(text, family, fontSize);
  return { width, height: ascent + descent };
}

/**
 * A page with the lines drawn where given; each line's ground-truth box is its ink extent (what a human labeller
 * draws), from the rasteriser's glyph bounds.
 */
export function renderPage(width: number, height: number, lines: readonly PageLine[], ink: number, paper: number): { image: RgbaImage; boxes: Box[] } {
  registerFonts();
  const canvas = createCanvas(width, height);
  const context = canvas.getContext('2d');
  context.fillStyle = grey(paper);
  context.fillRect(0, 0, width, height);
  context.fillStyle = grey(ink);
  const boxes = lines.map((line) => {
    setFont(context, line.family, line.fontSize);
    const metrics = context.measureText(line.text);
    const baseline = line.y + metrics.fontBoundingBoxAscent;
    context.fillText(line.text, line.x, baseline);
    return {
      x0: Math.max(0, Math.floor(line.x - metrics.actualBoundingBoxLeft)),
      y0: Math.max(0, Math.floor(baseline - metrics.actualBoundingBoxAscent)),
      x1: Math.min(width, Math.ceil(line.x + metrics.actualBoundingBoxRight)),
      y1: Math.min(height, Math.ceil(baseline + metrics.actualBoundingBoxDescent)),
    };
  });
  return { image: { width, height, data: context.getImageData(0, 0, width, height).data }, boxes };
}
