/**
 * The binary chunk frame of daemon/fleet/protocol.ts: 'ERC1' | u32 index | u32 chunkCount | sha256(data) | data,
 * little-endian. decodeChunkFrame checks everything a frame can check about itself (magic, header, the data's
 * hash, the index against the topic); whether the chunk belongs to a transfer is the receiver's question.
 */
import { createHash } from 'node:crypto';
import { EdgerunError } from '../errors.ts';
import { CHUNK_HEADER_BYTES, CHUNK_MAGIC } from './protocol.ts';

export interface ChunkFrame {
  index: number;
  chunkCount: number;
  sha256: Buffer;
  data: Buffer;
}

export function encodeChunkFrame(index: number, chunkCount: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(CHUNK_HEADER_BYTES + data.byteLength);
  frame.write(CHUNK_MAGIC, 0, 'latin1');
  frame.writeUInt32LE(index, 4);
  frame.writeUInt32LE(chunkCount, 8);
  createHash('sha256').update(data).digest().copy(frame, 12);
  frame.set(data, CHUNK_HEADER_BYTES);
  return frame;
}

function frameError(topic: string, reason: string, index?: number): EdgerunError {
  return new EdgerunError('EDGERUN_ERR_FLEET_TRANSFER', `${topic}: ${reason}`, { topic, ...(index === undefined ? {} : { chunk: index }) });
}

/** The chunk index a chunk topic names (…/chunk/{i}), or undefined when the last level is not a decimal index. */
export function chunkIndexOfTopic(topic: string): number | undefined {
  const last = topic.slice(topic.lastIndexOf('/') + 1);
  return /^(0|[1-9]\d{0,9})$/.test(last) ? Number(last) : undefined;
}

/** Decodes and checks one frame; `data` is a view into `payload` (copy it before the payload is reused). */
export function decodeChunkFrame(payload: Uint8Array, topic: string): ChunkFrame {
  const bytes = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (bytes.length < CHUNK_HEADER_BYTES) throw frameError(topic, `the frame is ${bytes.length} bytes, shorter than its ${CHUNK_HEADER_BYTES}-byte header`);
  if (bytes.toString('latin1', 0, 4) !== CHUNK_MAGIC) throw frameError(topic, `the frame does not start with ${CHUNK_MAGIC}`);
  const index = bytes.readUInt32LE(4);
  const chunkCount = bytes.readUInt32LE(8);
  if (index >= chunkCount) throw frameError(topic, `chunk index ${index} is not below the chunk count ${chunkCount}`, index);
  const topicIndex = chunkIndexOfTopic(topic);
  if (topicIndex !== index) throw frameError(topic, `the frame carries chunk ${index} but its topic names ${topicIndex ?? 'no index'}`, index);
  const sha256 = bytes.subarray(12, CHUNK_HEADER_BYTES);
  const data = bytes.subarray(CHUNK_HEADER_BYTES);
  if (!createHash('sha256').update(data).digest().equals(sha256)) {
    throw frameError(topic, `chunk ${index} does not match its sha256 (truncated or corrupted, ${data.length} data bytes)`, index);
  }
  return { index, chunkCount, sha256, data };
}
