/** Registry model information in the protocol's shapes: model metadata, readiness, repository index entries. */
import { EdgerunError } from '../errors.ts';
import type { TensorInfo } from '../engine/types.ts';
import type { ModelInfo, ModelRegistry, ModelVersionInfo } from '../swap/registry.ts';
import { datatypeOf, protocolShape } from './datatypes.ts';

export interface MetadataTensor {
  name: string;
  datatype: string;
  shape: number[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: 'onnx';
  inputs: MetadataTensor[];
  outputs: MetadataTensor[];
}

export interface RepositoryIndexEntry {
  name: string;
  version?: string;
  state: string;
  reason?: string;
}

function tensors(infos: TensorInfo[]): MetadataTensor[] {
  return infos.map((info) => ({ name: info.name, datatype: datatypeOf(info.dtype), shape: protocolShape(info.dims) }));
}

export function findModel(registry: ModelRegistry, name: string): ModelInfo {
  const info = registry.get(name);
  if (!info) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `no model '${name}'`, { model: name });
  return info;
}

/**
 * The version a request names, or for an unversioned one the active version (else the newest ready one,
 * else the newest known: metadata of a model that is still loading is still useful).
 */
export function findVersion(info: ModelInfo, version: string | undefined): ModelVersionInfo | undefined {
  if (version !== undefined) {
    const found = info.versions.find((v) => v.version === version);
    if (!found) throw new EdgerunError('EDGERUN_ERR_MODEL_NOT_FOUND', `model '${info.name}' has no version '${version}' (it has: ${info.versions.map((v) => v.version).join(', ') || 'none'})`, { model: info.name, version });
    return found;
  }
  const active = info.versions.find((v) => v.version === info.activeVersion);
  return active ?? [...info.versions].reverse().find((v) => v.state === 'READY') ?? info.versions.at(-1);
}

export function modelMetadata(info: ModelInfo, version: string | undefined): ModelMetadata {
  const described = findVersion(info, version);
  return {
    name: info.name,
    versions: version !== undefined ? [version] : info.versions.map((v) => v.version),
    platform: 'onnx',
    inputs: tensors(described?.inputs ?? []),
    outputs: tensors(described?.outputs ?? []),
  };
}

/** Why a model (version) is not ready, or null when it is. */
export function notReadyReason(info: ModelInfo, version: string | undefined): string | null {
  const described = version !== undefined ? findVersion(info, version) : info.versions.find((v) => v.version === info.activeVersion);
  if (!described) return `model '${info.name}' has no active version`;
  if (described.state === 'READY') return null;
  return `model '${info.name}' version ${described.version} is ${described.state}${described.reason ? `: ${described.reason}` : ''}`;
}

export function repositoryIndex(models: ModelInfo[], readyOnly: boolean): RepositoryIndexEntry[] {
  const entries: RepositoryIndexEntry[] = [];
  for (const model of models) {
    if (model.versions.length === 0 && !readyOnly) entries.push({ name: model.name, state: 'UNAVAILABLE', reason: 'no version' });
    for (const v of model.versions) {
      if (readyOnly && v.state !== 'READY') continue;
      entries.push({ name: model.name, version: v.version, state: v.state, ...(v.reason ? { reason: v.reason } : {}) });
    }
  }
  return entries;
}
