/**
 * RGBA images and the operations eval sets need, written out here (not canvas filters) so that their exact
 * arithmetic is ours: resize like OpenCV's INTER_LINEAR, Gaussian blur, additive noise, contrast, rotation.
 */
import type { Rng } from './random.ts';

export interface RgbaImage {
  width: number;
  height: number;
  /** Row-major RGBA, 4 bytes per pixel. */
  data: Uint8ClampedArray;
}

export function cropImage(image: RgbaImage, x: number, y: number, width: number, height: number): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  for (let row = 0; row < height; row++) {
    const from = ((y + row) * image.width + x) * 4;
    data.set(image.data.subarray(from, from + width * 4), row * width * 4);
  }
  return { width, height, data };
}

/** Bilinear resize with half-pixel centres (cv2.resize INTER_LINEAR). */
export function resizeBilinear(image: RgbaImage, width: number, height: number): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  const sx = image.width / width;
  const sy = image.height / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), image.height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, image.height - 1);
    const wy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), image.width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, image.width - 1);
      const wx = fx - x0;
      for (let c = 0; c < 4; c++) {
        const a = image.data[(y0 * image.width + x0) * 4 + c];
        const b = image.data[(y0 * image.width + x1) * 4 + c];
        const d = image.data[(y1 * image.width + x0) * 4 + c];
        const e = image.data[(y1 * image.width + x1) * 4 + c];
        data[(y * width + x) * 4 + c] = Math.round((a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy);
      }
    }
  }
  return { width, height, data };
}

/** Separable Gaussian blur of the colour channels, radius ⌈3σ⌉, edges clamped. */
export function gaussianBlur(image: RgbaImage, sigma: number): RgbaImage {
  const radius = Math.ceil(3 * sigma);
  const kernel = Array.from({ length: 2 * radius + 1 }, (_, i) => Math.exp(-((i - radius) ** 2) / (2 * sigma * sigma)));
  const total = kernel.reduce((s, k) => s + k, 0);
  const weights = kernel.map((k) => k / total);
  const { width, height } = image;
  const pass = (source: Float32Array, horizontal: boolean): Float32Array => {
    const out = new Float32Array(source.length);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        for (let c = 0; c < 3; c++) {
          let sum = 0;
          for (let k = -radius; k <= radius; k++) {
            const xx = horizontal ? Math.min(Math.max(x + k, 0), width - 1) : x;
            const yy = horizontal ? y : Math.min(Math.max(y + k, 0), height - 1);
            sum += weights[k + radius] * source[(yy * width + xx) * 4 + c];
          }
          out[(y * width + x) * 4 + c] = sum;
        }
        out[(y * width + x) * 4 + 3] = source[(y * width + x) * 4 + 3];
      }
    }
    return out;
  };
  const blurred = pass(pass(Float32Array.from(image.data), true), false);
  return { width, height, data: Uint8ClampedArray.from(blurred, (v) => Math.round(v)) };
}

/** Adds N(0, σ²) noise (σ in 0–255 units) to each colour channel. */
export function addGaussianNoise(image: RgbaImage, sigma: number, rng: Rng): RgbaImage {
  const data = Uint8ClampedArray.from(image.data);
  for (let i = 0; i < data.length; i++) {
    if (i % 4 !== 3) data[i] = Math.round(data[i] + sigma * rng.normal());
  }
  return { width: image.width, height: image.height, data };
}

/** Maps [0, 255] onto [low, high]: text and paper move towards each other. */
export function compressContrast(image: RgbaImage, low: number, high: number): RgbaImage {
  const data = Uint8ClampedArray.from(image.data);
  for (let i = 0; i < data.length; i++) {
    if (i % 4 !== 3) data[i] = Math.round(low + (data[i] / 255) * (high - low));
  }
  return { width: image.width, height: image.height, data };
}

export function rotate180(image: RgbaImage): RgbaImage {
  const data = new Uint8ClampedArray(image.data.length);
  const pixels = image.width * image.height;
  for (let p = 0; p < pixels; p++) data.set(image.data.subarray(p * 4, p * 4 + 4), (pixels - 1 - p) * 4);
  return { width: image.width, height: image.height, data };
}
