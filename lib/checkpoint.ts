/**
 * Checkpoints: a model's weights, an optimizer's state, libtorch's CPU RNG state and user values in one
 * safetensors file (see serialize.ts), written atomically.
 *
 * Layout. The model's tensors are stored under their stateDict names, so Python reads them with
 * `safetensors.torch.load_file(path)` (that dict also holds the optimizer's and RNG tensors described next; keep
 * the keys listed in `json.loads(metadata["tensornormal"])["model"]`, or use `load_state_dict(..., strict=False)`).
 * Optimizer state tensors are named by their path in the optimizer's stateDict, `optimizer.state.0.expAvg`; the
 * RNG state is the uint8 tensor `rng_state`; tensors inside user values are `meta.<path>`. The `__metadata__`
 * map holds "format": "pt" (what Hugging Face loaders expect) and "tensornormal": a JSON document with the format
 * version, the model's tensor names, and the optimizer state and user values with each tensor replaced by
 * {"$tn": "tensor", "name": ...}. Loading parses JSON only; nothing in a checkpoint is executed.
 */
import { closeSync, readSync } from 'node:fs';
import { native } from './native.js';
import { openRegular } from './fsutil.js';
import { loadPickledStateDict } from './pickle.js';
import { isTorchScriptArchive, loadScriptWeights } from './torchscript.js';
import { Tensor, wrap } from './tensor.js';
import { TorchError, is, typeError } from './errors.js';
import { tidy } from './scope.js';
import { brief, readSafetensors, writeSafetensors } from './serialize.js';

/** What a checkpoint needs of a model (nn.Module has it): the weights by name, and a way to load them. */
export interface CheckpointModel {
  stateDict(): Map<string, Tensor> | Record<string, Tensor>;
  loadStateDict(stateDict: Map<string, Tensor> | Record<string, Tensor>): unknown;
}

/** What a checkpoint needs of an optimizer: PyTorch's {state, paramGroups} state dict, of tensors and JSON values. */
export interface CheckpointOptimizer {
  stateDict(): { state: unknown; paramGroups: unknown };
  loadStateDict(stateDict: never): unknown;
}

/** What `save()` writes: a model, an optimizer, and (beside them) any JSON-serialisable values. */
export interface SaveContents {
  model?: CheckpointModel;
  optimizer?: CheckpointOptimizer;
  /** Anything else is stored as user values: numbers, strings, booleans, null, arrays, plain objects, Maps, bigints and tensors. */
  [key: string]: unknown;
}

/** What `load()` returns: the tensors and user values of a checkpoint. */
export interface Checkpoint {
  /** Every tensor in the file, by name. These are the caller's: free them all with `dispose()`. */
  tensors: Map<string, Tensor>;
  /** The model's weights (all the tensors of a plain safetensors file that tensornormal did not write). */
  modelStateDict: Map<string, Tensor>;
  /** The optimizer's {state, paramGroups}, its tensors from `tensors`; null when none was saved. */
  optimizerStateDict: { state: Record<string, Record<string, unknown>>; paramGroups: Record<string, unknown>[] } | null;
  /** The user values given to save() (everything but model and optimizer). */
  meta: Record<string, unknown>;
  /** libtorch's CPU generator state at save time (uint8), or null. */
  rngState: Tensor | null;
  /** The raw `__metadata__` strings. */
  metadata: Record<string, string>;
  /** Frees every tensor of the checkpoint. */
  dispose(): void;
}

/** Bumped when the layout changes incompatibly; load() refuses newer versions. */
const VERSION = 1;
const RNG = 'rng_state';
const MARK = '$tn';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Turns a value into JSON, moving its tensors into `out` under path-derived names. */
function encode(value: unknown, path: string, out: Map<string, Tensor>, depth = 0): Json | undefined {
  if (depth > 64) throw new TypeError(`save(): ${path} is nested more than 64 levels deep (a cycle?)`);
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (value === undefined) return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? value : { [MARK]: 'number', value: String(value) };
  if (typeof value === 'bigint') return { [MARK]: 'bigint', value: value.toString() };
  if (value instanceof Tensor) {
    if (value.isDisposed) throw new TypeError(`save(): ${path} is a disposed tensor`);
    if (out.has(path))
      throw new RangeError(
        `save(): two values would be stored as the tensor '${path}' (keys with dots collide with nesting)`,
      );
    out.set(path, value);
    return { [MARK]: 'tensor', name: path };
  }
  if (Array.isArray(value)) return value.map((v, i) => encode(v, `${path}.${i}`, out, depth + 1) ?? null);
  if (value instanceof Map) {
    const entries: Json[] = [];
    for (const [k, v] of value) {
      if (typeof k !== 'string' && typeof k !== 'number')
        throw typeError('string or number keys', `${path} (a Map)`, k);
      const e = encode(v, `${path}.${k}`, out, depth + 1);
      if (e !== undefined) entries.push([k, e]);
    }
    return { [MARK]: 'map', entries };
  }
  if (
    typeof value === 'object' &&
    (Object.getPrototypeOf(value) === Object.prototype || Object.getPrototypeOf(value) === null)
  ) {
    const obj: { [k: string]: Json } = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === MARK) throw new TypeError(`save(): ${path} has the key '${MARK}', which checkpoints reserve`);
      const e = encode(v, `${path}.${k}`, out, depth + 1);
      if (e !== undefined) setOwn(obj, k, e);
    }
    return obj;
  }
  const kind = typeof value === 'object' ? (value.constructor?.name ?? 'object') : typeof value;
  throw new TypeError(
    `save(): cannot store ${path} (a ${kind}): checkpoints hold tensors, numbers, bigints, strings, booleans, null, arrays, Maps and plain objects`,
  );
}

/** The inverse of encode; tensor references resolve to the loaded tensors. */
function decode(value: unknown, tensors: Map<string, Tensor>, bad: (what: string) => Error, depth = 0): unknown {
  if (value === null || typeof value !== 'object') return value;
  // save() nests at most 64 values deep, each taking up to three JSON levels (a Map's entries)
  if (depth > 200) throw bad('its metadata nests more than 200 levels deep');
  if (Array.isArray(value)) return value.map((v) => decode(v, tensors, bad, depth + 1));
  const obj = value as Record<string, unknown>;
  if (MARK in obj) {
    switch (obj[MARK]) {
      case 'tensor': {
        const t = typeof obj.name === 'string' ? tensors.get(obj.name) : undefined;
        if (t === undefined)
          throw bad(`the metadata refers to a tensor ${brief(obj.name)} that the file does not hold`);
        return t;
      }
      case 'number':
        if (obj.value !== 'NaN' && obj.value !== 'Infinity' && obj.value !== '-Infinity')
          throw bad(`bad number ${brief(obj.value)} in the metadata`);
        return Number(obj.value);
      case 'bigint':
        if (typeof obj.value !== 'string' || !/^-?\d+$/.test(obj.value))
          throw bad(`bad bigint ${brief(obj.value)} in the metadata`);
        return BigInt(obj.value);
      case 'map': {
        if (!Array.isArray(obj.entries)) throw bad('a Map in the metadata has no entries');
        const m = new Map<unknown, unknown>();
        for (const e of obj.entries) {
          if (!Array.isArray(e) || e.length !== 2 || (typeof e[0] !== 'string' && typeof e[0] !== 'number'))
            throw bad('a Map entry in the metadata is not [key, value]');
          m.set(e[0], decode(e[1], tensors, bad, depth + 1));
        }
        return m;
      }
      default:
        throw bad(`unknown marker ${brief(obj[MARK])} in the metadata`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) setOwn(out, k, decode(v, tensors, bad, depth + 1));
  return out;
}

/** obj[k] = v that makes "__proto__" an ordinary key instead of changing the prototype. */
function setOwn(obj: object, k: string, v: unknown): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/**
 * Saves a checkpoint to `path` (a safetensors file; see the top of this file for the layout). `model` and
 * `optimizer` are optional; every other key is a user value returned by load() as `meta`. libtorch's CPU RNG
 * state is always included. The file is replaced atomically: a crash or kill during save() leaves the previous
 * checkpoint at `path` intact; the temporary file it leaves beside it (`.<name>.<pid>.<random>.tmp`) is removed by
 * the next save to the same path (once its process is gone).
 *
 *   save('ckpt.safetensors', { model, optimizer, epoch, bestAccuracy });
 */
export function save(path: string, contents: SaveContents): void {
  is.string(path, 'path');
  if (contents === null || typeof contents !== 'object')
    throw typeError('an object {model, optimizer, ...meta}', 'contents', contents);
  const { model, optimizer, ...meta } = contents;
  if (model !== undefined && (model === null || typeof model.stateDict !== 'function'))
    throw typeError('a model with stateDict()', 'model', model);
  if (optimizer !== undefined && (optimizer === null || typeof optimizer.stateDict !== 'function'))
    throw typeError('an optimizer with stateDict()', 'optimizer', optimizer);
  // A tidy scope frees whatever stateDict() creates (aliases, say) while leaving the model's own tensors alone.
  tidy(() => {
    const tensors = new Map<string, Tensor>();
    let modelNames: string[] | null = null;
    if (model !== undefined) {
      const sd = model.stateDict();
      const entries = sd instanceof Map ? [...sd.entries()] : Object.entries(sd ?? {});
      modelNames = [];
      for (const [name, t] of entries) {
        if (!(t instanceof Tensor)) throw typeError('a Tensor', `model.stateDict()['${name}']`, t);
        tensors.set(name, t);
        modelNames.push(name);
      }
    }
    const others = new Map<string, Tensor>();
    const optimizerJson = optimizer === undefined ? null : encode(optimizer.stateDict(), 'optimizer', others);
    const metaJson = encode(meta, 'meta', others);
    others.set(RNG, wrap(native.getRngState()));
    for (const [name, t] of others) {
      if (tensors.has(name))
        throw new RangeError(
          `save(): the model has a tensor named '${name}', which the checkpoint needs for its own state`,
        );
      tensors.set(name, t);
    }
    const doc = {
      version: VERSION,
      model: modelNames,
      optimizer: optimizerJson ?? null,
      meta: metaJson ?? {},
      rng: RNG,
    };
    writeSafetensors(path, tensors, { format: 'pt', tensornormal: JSON.stringify(doc) });
  });
}

/**
 * Reads a checkpoint written by save(), or any safetensors file (then every tensor is a model weight). A missing,
 * truncated or corrupt file is an Error naming it. The returned tensors are the caller's: call `dispose()`.
 *
 *   const ckpt = load('ckpt.safetensors');
 *   model.loadStateDict(ckpt.modelStateDict);
 *   ckpt.dispose();
 */
export function load(path: string): Checkpoint {
  const { tensors, metadata } = readSafetensors(path);
  const dispose = (): void => {
    for (const t of tensors.values()) t.dispose();
  };
  try {
    const bad = (what: string): Error =>
      new TorchError(`${path} is not a valid tensornormal checkpoint: ${what}`, 'BAD_FILE');
    const raw = metadata.tensornormal;
    if (raw === undefined)
      return {
        tensors,
        modelStateDict: new Map(tensors),
        optimizerStateDict: null,
        meta: {},
        rngState: null,
        metadata,
        dispose,
      };
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(raw) as Record<string, unknown>;
    } catch (err) {
      throw bad(`its "tensornormal" metadata is not valid JSON (${(err as Error).message})`);
    }
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
      throw bad('its "tensornormal" metadata is not an object');
    if (typeof doc.version !== 'number' || doc.version > VERSION)
      throw bad(
        `it has format version ${brief(doc.version)}; this tensornormal reads version ${VERSION} (update tensornormal)`,
      );
    const modelStateDict = new Map<string, Tensor>();
    if (doc.model !== null && doc.model !== undefined) {
      if (!Array.isArray(doc.model)) throw bad('the list of model tensors is not an array');
      for (const name of doc.model) {
        const t = typeof name === 'string' ? tensors.get(name) : undefined;
        if (t === undefined) throw bad(`the model tensor ${brief(name)} is missing from the file`);
        modelStateDict.set(name as string, t);
      }
    }
    const optimizerStateDict = (
      doc.optimizer === null || doc.optimizer === undefined ? null : decode(doc.optimizer, tensors, bad)
    ) as Checkpoint['optimizerStateDict'];
    if (
      optimizerStateDict !== null &&
      (typeof optimizerStateDict !== 'object' ||
        !('state' in optimizerStateDict) ||
        !Array.isArray(optimizerStateDict.paramGroups))
    )
      throw bad('the optimizer state is not {state, paramGroups}');
    const meta = decode(doc.meta ?? {}, tensors, bad) as Record<string, unknown>;
    const rngState = typeof doc.rng === 'string' ? (tensors.get(doc.rng) ?? null) : null;
    if (rngState !== null && (rngState.dtype !== 'uint8' || rngState.ndim !== 1))
      throw bad(`the RNG state is ${rngState.dtype} [${rngState.shape.join(', ')}], not a uint8 vector`);
    return { tensors, modelStateDict, optimizerStateDict, meta, rngState, metadata, dispose };
  } catch (err) {
    dispose();
    throw err;
  }
}

/** What `restore()` loads a checkpoint into: a model, an optimizer, and whether to restore the RNG state. */
export interface RestoreOptions {
  model?: CheckpointModel;
  optimizer?: CheckpointOptimizer;
  /** Put libtorch's CPU generator back in its saved state (default true; skipped when the file has none). */
  restoreRng?: boolean;
}

/**
 * Loads a checkpoint into a model and an optimizer (each optional) and restores the RNG state, then frees the
 * loaded tensors (loadStateDict copies, as in PyTorch). Returns the user values saved with it; tensors among them
 * are the caller's to dispose.
 *
 *   const { epoch } = restore('ckpt.safetensors', { model, optimizer });
 */
export function restore(path: string, options: RestoreOptions = {}): Record<string, unknown> {
  const { model, optimizer, restoreRng = true } = is.options(options);
  if (model !== undefined && (model === null || typeof model.loadStateDict !== 'function'))
    throw typeError('a model with loadStateDict()', 'model', model);
  if (optimizer !== undefined && (optimizer === null || typeof optimizer.loadStateDict !== 'function'))
    throw typeError('an optimizer with loadStateDict()', 'optimizer', optimizer);
  is.boolean(restoreRng, 'restoreRng');
  const ckpt = load(path);
  // All or nothing: what can be checked without changing anything is checked first (the RNG state, the optimizer
  // section's presence); then the model, the optimizer and the RNG are loaded in turn, and a failure of any of
  // them (a wrong shape, another optimizer's state) puts back what was already loaded, from snapshots taken first.
  const undo: (() => void)[] = [];
  try {
    if (optimizer !== undefined && ckpt.optimizerStateDict === null)
      throw new Error(`${path} holds no optimizer state`);
    const rng = restoreRng ? ckpt.rngState : null;
    if (rng !== null) {
      const why = native.checkRngState(rng._h);
      if (why !== '') throw new RangeError(`${path} is not a valid tensornormal checkpoint: ${why}`);
    }
    if (model !== undefined) {
      // Hand the weights over in the container the model's own stateDict() uses.
      const wantsMap = tidy(() => model.stateDict() instanceof Map);
      const before = tidy(() => cloneTensors(model.stateDict()));
      undo.push(
        () => model.loadStateDict(before as never),
        () => disposeTensors(before),
      );
      model.loadStateDict(wantsMap ? ckpt.modelStateDict : Object.fromEntries(ckpt.modelStateDict));
    }
    if (optimizer !== undefined) {
      const before = tidy(() => cloneTensors(optimizer.stateDict()));
      undo.push(
        () => optimizer.loadStateDict(before as never),
        () => disposeTensors(before),
      );
      optimizer.loadStateDict(ckpt.optimizerStateDict as never);
    }
    if (rng !== null) {
      const before = wrap(native.getRngState());
      undo.push(
        () => native.setRngState(before._h),
        () => before.dispose(),
      );
      native.setRngState(rng._h);
    }
  } catch (err) {
    // put back in reverse order, then free the snapshots (each undo pair: restore, free)
    for (let i = undo.length - 2; i >= 0; i -= 2) {
      try {
        undo[i]!();
      } catch {
        // a snapshot of the object's own state loads back; nothing sensible is left to do if it does not
      }
    }
    for (let i = 1; i < undo.length; i += 2) undo[i]!();
    ckpt.dispose();
    throw namingFile(err, path);
  }
  for (let i = 1; i < undo.length; i += 2) undo[i]!();
  const returned = new Set<Tensor>();
  collectTensors(ckpt.meta, returned);
  for (const t of ckpt.tensors.values()) if (!returned.has(t)) t.dispose();
  return ckpt.meta;
}

/** The error, its message prefixed with the checkpoint's path when it does not name it already (class and code kept). */
function namingFile(err: unknown, path: string, who = 'restore'): unknown {
  if (err instanceof Error && !err.message.includes(path)) {
    try {
      err.message = `${who}(${path}): ${err.message}`;
    } catch {
      // a frozen error keeps its message
    }
  }
  return err;
}

/** A copy of a state dict (Map, object, arrays) whose tensors are clones; other values as they are. */
function cloneTensors(value: unknown): unknown {
  if (value instanceof Tensor) return value.detach().clone();
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, cloneTensors(v)]));
  if (Array.isArray(value)) return value.map(cloneTensors);
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, cloneTensors(v)]));
  return value;
}

function disposeTensors(value: unknown): void {
  const ts = new Set<Tensor>();
  collectTensors(value, ts);
  for (const t of ts) t.dispose();
}

function collectTensors(value: unknown, into: Set<Tensor>): void {
  if (value instanceof Tensor) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collectTensors(v, into);
  else if (value instanceof Map) for (const v of value.values()) collectTensors(v, into);
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) collectTensors(v, into);
}

// ------------------------------------------------------------------ weights only, with PyTorch's names

/**
 * A state-dict name as PyTorch spells it: each camelCase segment in snake_case (`1.runningMean` ->
 * `1.running_mean`, `numBatchesTracked` -> `num_batches_tracked`); names already in snake_case are unchanged.
 */
export function pytorchName(name: string): string {
  is.string(name, 'name');
  return name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1_$2')
    .toLowerCase();
}

/** Options of `saveWeights()`: the names the weights are saved under (PyTorch's by default). */
export interface SaveWeightsOptions {
  /** 'pytorch' (default): names as PyTorch spells them (see pytorchName); 'tensornormal': the stateDict names. */
  names?: 'pytorch' | 'tensornormal';
}

/**
 * Saves only a model's weights (parameters and persistent buffers) as a plain safetensors file, by default under
 * PyTorch's names, so that Python loads them into the same architecture with nothing in between:
 *
 *   saveWeights('model.safetensors', model);
 *   # Python: model.load_state_dict(safetensors.torch.load_file('model.safetensors'))
 *
 * Written atomically, as save(). For training state (optimizer, RNG, user values) use save().
 */
export function saveWeights(path: string, model: CheckpointModel, options: SaveWeightsOptions = {}): void {
  const { names = 'pytorch' } = is.options(options);
  is.string(path, 'path');
  if (model === null || typeof model !== 'object' || typeof model.stateDict !== 'function')
    throw typeError('a model with stateDict()', 'model', model);
  is.oneOf(names, 'names', ['pytorch', 'tensornormal'] as const);
  tidy(() => {
    const sd = model.stateDict();
    const tensors = new Map<string, Tensor>();
    const from = new Map<string, string>();
    for (const [name, t] of sd instanceof Map ? [...sd.entries()] : Object.entries(sd ?? {})) {
      if (!(t instanceof Tensor)) throw typeError('a Tensor', `model.stateDict()['${name}']`, t);
      const key = names === 'pytorch' ? pytorchName(name) : name;
      const clash = from.get(key);
      if (clash !== undefined)
        throw new RangeError(`saveWeights(): '${clash}' and '${name}' both have the PyTorch name '${key}'`);
      from.set(key, name);
      tensors.set(key, t);
    }
    writeSafetensors(path, tensors, { format: 'pt' });
  });
}

/** Options of `loadWeights()`: `strict` (every weight must be in the file, and nothing else). */
export interface LoadWeightsOptions {
  /** As Module.loadStateDict: every weight of the model must be in the file and nothing else (default true). */
  strict?: boolean;
  /**
   * For .pt/.pth files: the most bytes the file's tensors may take (default a quarter of the machine's memory); a
   * file that needs more is refused before any tensor is read (see loadPickledStateDict).
   */
  maxBytes?: number;
}

function isZip(path: string): boolean {
  const { fd, size } = openRegular(path, 'loadWeights');
  try {
    const b = Buffer.alloc(Math.min(4, size));
    readSync(fd, b, 0, b.length, 0);
    return b.length === 4 && b.readUInt32LE(0) === 0x04034b50;
  } finally {
    closeSync(fd);
  }
}

function pickled(path: string, maxBytes?: number): { modelStateDict: Map<string, Tensor>; dispose(): void } {
  const options = maxBytes === undefined ? {} : { maxBytes };
  // a TorchScript archive's weights are read the same way, without running its code (lib/torchscript.ts)
  const modelStateDict = isTorchScriptArchive(path)
    ? loadScriptWeights(path, options)
    : loadPickledStateDict(path, options);
  return { modelStateDict, dispose: () => modelStateDict.forEach((t) => t.dispose()) };
}

/**
 * Loads weights into a model from a safetensors file, from a `torch.save(model.state_dict())` file (.pt/.pth,
 * read by lib/pickle.ts without executing anything), or from a TorchScript archive (its parameters and buffers, read
 * by lib/torchscript.ts without running its code): one written by saveWeights(), by save() (its model
 * weights), or by Python (`safetensors.torch.save_file(model.state_dict(), path)`). A file name that is not the
 * model's own stateDict name is matched to the weight whose PyTorch name (pytorchName) it is, so `running_mean`
 * fills `runningMean`. Mismatches are reported by the model's loadStateDict (missing, unexpected and mis-shaped
 * keys, in the model's names). The loaded tensors are freed afterwards (loadStateDict copies).
 *
 *   loadWeights('resnet32.safetensors', model);
 */
export function loadWeights(path: string, model: CheckpointModel, options: LoadWeightsOptions = {}): void {
  const { strict = true, maxBytes } = is.options(options);
  is.string(path, 'path');
  if (
    model === null ||
    typeof model !== 'object' ||
    typeof model.loadStateDict !== 'function' ||
    typeof model.stateDict !== 'function'
  )
    throw typeError('a model with stateDict() and loadStateDict()', 'model', model);
  is.boolean(strict, 'strict');
  // a torch.save(model.state_dict()) file (a zip: 'PK') is read by the restricted reader of lib/pickle.ts
  const ckpt = isZip(path) ? pickled(path, maxBytes) : load(path);
  try {
    const [own, wantsMap] = tidy(() => {
      const sd = model.stateDict();
      return [sd instanceof Map ? [...sd.keys()] : Object.keys(sd ?? {}), sd instanceof Map] as const;
    });
    const byPytorchName = new Map(own.map((n) => [pytorchName(n), n]));
    const ownSet = new Set(own);
    const mapped = new Map<string, Tensor>();
    for (const [name, t] of ckpt.modelStateDict) {
      const target = ownSet.has(name) ? name : (byPytorchName.get(name) ?? name);
      if (mapped.has(target)) throw new RangeError(`${path}: both '${target}' and its PyTorch name are in the file`);
      mapped.set(target, t);
    }
    const loader = model.loadStateDict as (sd: unknown, options?: { strict?: boolean }) => unknown;
    try {
      loader.call(model, wantsMap ? mapped : Object.fromEntries(mapped), { strict });
    } catch (err) {
      // missing, unexpected and mis-shaped keys, in the model's words, about this file
      throw namingFile(err, path, 'loadWeights');
    }
  } finally {
    ckpt.dispose();
  }
}
