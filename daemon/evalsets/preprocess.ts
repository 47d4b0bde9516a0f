/**
 * Model inputs exactly as PaddleOCR's inference scripts make them. PaddleOCR reads images with OpenCV, so the
 * channel order is BGR, and det normalises those BGR channels with ImageNet's RGB mean/std in that order (a quirk
 * the model was trained with, so we keep it).
 */
import type { Tensor } from '../graph/ir.ts';
import { resizeBilinear, type RgbaImage } from './image.ts';

export const REC_HEIGHT = 48;
export const REC_MIN_WIDTH = 320;
export const REC_MAX_WIDTH = 640;
/** Widths are rounded up to a multiple of this, so a set needs only a few compiled shapes. */
export const REC_WIDTH_STEP = 160;
export const CLS_SHAPE = { height: 48, width: 192 };
export const DET_LIMIT_SIDE = 960;
const DET_MEAN = [0.485, 0.456, 0.406];
const DET_STD = [0.229, 0.224, 0.225];
/** BGR: input channel c takes RGBA channel BGR_FROM_RGBA[c]. */
const BGR_FROM_RGBA = [2, 1, 0];

/** PaddleOCR's input width for one line: max(320, 48 × aspect), here rounded up to the width step and capped. */
export function recInputWidth(image: RgbaImage): number {
  const natural = Math.ceil((REC_HEIGHT * image.width) / image.height);
  return Math.min(REC_MAX_WIDTH, Math.max(REC_MIN_WIDTH, Math.ceil(natural / REC_WIDTH_STEP) * REC_WIDTH_STEP));
}

/** resize_norm_img: keep the aspect ratio at height H, (x/255 − 0.5)/0.5, zeros to the right up to width W. */
function resizeNormalisePad(image: RgbaImage, height: number, width: number): Tensor {
  const resizedWidth = Math.min(width, Math.ceil((height * image.width) / image.height));
  const resized = resizeBilinear(image, resizedWidth, height);
  const data = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < resizedWidth; x++) {
        data[(c * height + y) * width + x] = (resized.data[(y * resizedWidth + x) * 4 + BGR_FROM_RGBA[c]] / 255 - 0.5) / 0.5;
      }
    }
  }
  return { dtype: 'float32', dims: [1, 3, height, width], data };
}

export function recInput(image: RgbaImage, width = recInputWidth(image)): Tensor {
  return resizeNormalisePad(image, REC_HEIGHT, width);
}

export function clsInput(image: RgbaImage): Tensor {
  return resizeNormalisePad(image, CLS_SHAPE.height, CLS_SHAPE.width);
}

/** DetResizeForTest (limit_type max, side 960, sides rounded to multiples of 32) then NormalizeImage and CHW. */
export function detInput(image: RgbaImage): { input: Tensor; scaleX: number; scaleY: number } {
  const ratio = Math.max(image.width, image.height) > DET_LIMIT_SIDE ? DET_LIMIT_SIDE / Math.max(image.width, image.height) : 1;
  const height = Math.max(32, Math.round((image.height * ratio) / 32) * 32);
  const width = Math.max(32, Math.round((image.width * ratio) / 32) * 32);
  const resized = width === image.width && height === image.height ? image : resizeBilinear(image, width, height);
  const data = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    for (let p = 0; p < height * width; p++) {
      data[c * height * width + p] = (resized.data[p * 4 + BGR_FROM_RGBA[c]] / 255 - DET_MEAN[c]) / DET_STD[c];
    }
  }
  return { input: { dtype: 'float32', dims: [1, 3, height, width], data }, scaleX: image.width / width, scaleY: image.height / height };
}
