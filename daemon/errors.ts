/**
 * The coded error registry. Every error edgerun raises on purpose is an EdgerunError with a code from
 * ERROR_CODES; docs/ERRORS.md documents each code (a test checks that).
 */
export const ERROR_CODES = {
  EDGERUN_ERR_ONNX_READ: { status: 400, summary: 'the ONNX file cannot be read or decoded' },
  EDGERUN_ERR_ONNX_LIMIT: { status: 413, summary: 'the ONNX file exceeds a safety cap (size, tensor bytes, rank, dims, node count, nesting)' },
  EDGERUN_ERR_ONNX_INVALID: { status: 400, summary: 'the ONNX graph is malformed (dangling or duplicate names, cycles, bad tensors, bad attributes)' },
  EDGERUN_ERR_ONNX_EXTERNAL_DATA: { status: 400, summary: 'external tensor data is missing, out of bounds or outside the model folder' },
  EDGERUN_ERR_UNSUPPORTED_OP: { status: 422, summary: 'the model uses an operator (or opset, or attribute value) the runtime does not implement' },
  EDGERUN_ERR_SHAPE: { status: 400, summary: 'shapes or dtypes are inconsistent for an operator' },
  EDGERUN_ERR_INPUT: { status: 400, summary: 'an inference input is missing, unknown, or of the wrong dtype or shape' },
  EDGERUN_ERR_NPY: { status: 400, summary: 'a .npy file is malformed or holds an unsupported dtype' },
  EDGERUN_ERR_GPU_UNAVAILABLE: { status: 503, summary: 'no WebGPU adapter or device could be obtained' },
  EDGERUN_ERR_GPU_VALIDATION: { status: 500, summary: 'WebGPU rejected a shader, pipeline, buffer or dispatch (names the program)' },
  EDGERUN_ERR_GPU_OOM: { status: 507, summary: 'the GPU ran out of memory' },
  EDGERUN_ERR_GPU_LOST: { status: 503, summary: 'the GPU device was lost or the GPU thread died' },
  EDGERUN_ERR_GPU_LIMIT: { status: 422, summary: 'a tensor or dispatch exceeds the adapter limits' },
  EDGERUN_ERR_SESSION_CLOSED: { status: 409, summary: 'the session was closed' },
  EDGERUN_ERR_CLI_USAGE: { status: 400, summary: 'the command line is invalid' },
  EDGERUN_ERR_IO: { status: 500, summary: 'a file could not be read or written' },
  EDGERUN_ERR_CONFIG: { status: 400, summary: 'the daemon configuration is invalid (names the key)' },
  EDGERUN_ERR_PACKAGE_INVALID: { status: 400, summary: 'a model package is malformed: manifest, file hashes or sizes, eval set' },
  EDGERUN_ERR_STORE: { status: 500, summary: 'the model store could not install, activate or read a package' },
  EDGERUN_ERR_MODEL_NOT_FOUND: { status: 404, summary: 'no such model or model version' },
  EDGERUN_ERR_MODEL_NOT_READY: { status: 503, summary: 'the model (version) exists but is not ready to serve' },
  EDGERUN_ERR_GATE_FAILED: { status: 422, summary: 'a new model version failed its accuracy gate and was not swapped in' },
  EDGERUN_ERR_REQUEST: { status: 400, summary: 'an HTTP request body or parameter is invalid (names the field)' },
  EDGERUN_ERR_OVERLOADED: { status: 503, summary: 'the inference queue is full; retry later' },
  EDGERUN_ERR_TIMEOUT: { status: 504, summary: 'the request did not complete within its timeout' },
  EDGERUN_ERR_DRAINING: { status: 503, summary: 'the daemon is shutting down and takes no new requests' },
  EDGERUN_ERR_TELEMETRY: { status: 500, summary: 'the telemetry database could not be opened or written' },
  EDGERUN_ERR_STARTUP: { status: 500, summary: 'a daemon component failed to start (names the component)' },
  EDGERUN_ERR_ENGINE: { status: 500, summary: 'the inference engine (onnxruntime) failed to load or run a model, or its thread died (names the model)' },
  EDGERUN_ERR_RECIPE: { status: 400, summary: 'a compression recipe is unknown or invalid (names the recipe, step or field)' },
  EDGERUN_ERR_CALIBRATION: { status: 400, summary: 'calibration data is missing, empty, mis-shaped or holds NaN/Inf (names the file)' },
  EDGERUN_ERR_TARGET: { status: 400, summary: 'a device target profile is unknown or invalid (names the profile and field)' },
  EDGERUN_ERR_COMPRESS: { status: 500, summary: 'a compression step failed on a model (names the step and node)' },
  EDGERUN_ERR_EVALSET: { status: 400, summary: 'an accuracy evaluation set could not be built, read or scored (names the set)' },
  EDGERUN_ERR_FLEET_PAYLOAD: { status: 400, summary: 'an MQTT fleet message is malformed (names the topic and field)' },
  EDGERUN_ERR_FLEET_SIGNATURE: { status: 403, summary: 'a deployment manifest or command is unsigned, signed by an untrusted key, or its signature does not verify' },
  EDGERUN_ERR_FLEET_REJECTED: { status: 409, summary: 'a deployment was refused: expired, stale, replayed or downgraded version, incompatible target, over a size or disk cap' },
  EDGERUN_ERR_FLEET_TRANSFER: { status: 500, summary: 'a chunked model transfer failed: bad chunk, hash mismatch, timeout, disk full (names the transfer and chunk)' },
  EDGERUN_ERR_FLEET_BROKER: { status: 503, summary: 'the MQTT broker cannot be reached or refused the connection (names the URL)' },
  EDGERUN_ERR_KEY: { status: 400, summary: 'a signing or trust key file is missing, unreadable or not an ed25519 key (names the file)' },
  EDGERUN_ERR_MONITOR: { status: 500, summary: 'the fleet monitor could not store or serve fleet data (names the store)' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class EdgerunError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, context: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EdgerunError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.context = context;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...this.context };
  }
}

export function isEdgerunError(value: unknown, code?: ErrorCode): value is EdgerunError {
  return value instanceof EdgerunError && (code === undefined || value.code === code);
}
