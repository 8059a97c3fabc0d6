/**
 * TorchScript interop: `jit.load(path)` opens a module Python wrote with `torch.jit.script(m).save(path)` (or
 * `torch.jit.trace(m, x).save(path)`), and the returned ScriptModule trains like an nn.Module: its parameters are
 * tensors aliasing the module's own (any optimizer, TNT included, updates them in place), `call(...inputs)` runs the
 * TorchScript forward with autograd, `train()`/`eval()` switch its mode, `stateDict()`/`loadStateDict()` use the
 * module's dotted names, and `save(path)` writes a TorchScript archive Python, C++ or any TorchScript runtime loads.
 *
 *   const m = jit.load('resnet.pt');                        // from Python: torch.jit.script(model).save('resnet.pt')
 *   const opt = new optim.TNT(m.parameters(), { lr: 1e-3 });
 *   // ... train with m.call(x), as any model (fit() too) ...
 *   m.save('resnet-finetuned.pt');                          // Python: torch.jit.load('resnet-finetuned.pt')
 *
 * Security: jit.load RUNS CODE FROM THE ARCHIVE AT LOAD TIME. A TorchScript archive holds TorchScript code, which
 * libtorch compiles and runs in its own interpreter (no Python, no imports), and constants read by TorchScript's
 * restricted unpickler (tensors and TorchScript types only, no arbitrary globals). It is still code, and not only
 * forward's: loading calls the `__setstate__` of every object in the archive that defines one, and TorchScript ops
 * read and write files (torch.save, torch.load inside the module) — a crafted archive wrote a file of its choosing
 * during jit.load, with no call of forward. Load TorchScript only from sources you would run. For a file from a
 * stranger: `jit.loadWeights(path)` reads its parameters and buffers without running anything (and
 * `loadWeights(path, model)` loads them into a model of this library); `jit.load(path, { isolate: true })` first
 * loads it in a child process, so that a crash of libtorch's loader ends the child, not this process (the code
 * still runs, in the child and then here). Before libtorch sees a file, lib/torchscript.ts checks what libtorch's
 * loader does not (tensors inside their storages, nesting in the pickles and the code, declared sizes); a file that
 * fails is a TorchError 'BAD_FILE' naming it, as is every error of libtorch's loader.
 */
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';
import { dispose, tidy } from './scope.js';
import { noGrad } from './autograd.js';
import { TorchError, is, typeError } from './errors.js';
import { spawnSync } from 'node:child_process';
import { saveTarget } from './fsutil.js';
import { addonFile } from './native.js';
import { checkTorchScript, loadScriptWeights, type TorchScriptReadOptions } from './torchscript.js';

export type { TorchScriptReadOptions } from './torchscript.js';
import { DTYPES, dtypeCode, isFloating, type DType } from './dtype.js';

/** What a TorchScript forward returns here: tensors, numbers and booleans, and (nested) arrays of them; null for None. */
export type ScriptValue = Tensor | number | boolean | null | ScriptValue[];

function fromNative(v: unknown): ScriptValue {
  if (typeof v === 'number') return wrap(v);
  if (v === null) return null;
  if (Array.isArray(v)) return v.map(fromNative);
  return (v as { value: number | boolean }).value;
}

/** A TorchScript module, loaded with jit.load. Free it with dispose() (its parameters and buffers go with it). */
export class ScriptModule {
  private handle: number | null;
  /** Each parameter once, under its first name (tied weights: one entry, as Python's named_parameters()). */
  private readonly params: [string, Tensor][];
  private readonly bufs: [string, Tensor][];
  /** Every name, a tied tensor under each of its names (as Python's state_dict()). */
  private readonly entries: [string, Tensor][];

  /** @internal */
  constructor(handle: number) {
    this.handle = handle;
    // The addon marks a tensor held under a second name with the index of its first: the second handle is freed
    // and the name maps to the first's Tensor, so an optimizer gets it once and moves it once per step.
    const take = (triples: [string, number, number][]): { all: [string, Tensor][]; unique: [string, Tensor][] } => {
      const all: [string, Tensor][] = [];
      const unique: [string, Tensor][] = [];
      triples.forEach(([n, h, first], k) => {
        const t = wrap(h);
        if (first === k) {
          t.keep();
          all.push([n, t]);
          unique.push([n, t]);
        } else {
          t.dispose();
          all.push([n, all[first]![1]]);
        }
      });
      return { all, unique };
    };
    const p = take(native.jitNamedParameters(handle));
    const b = take(native.jitNamedBuffers(handle));
    this.params = p.unique;
    this.bufs = b.unique;
    this.entries = [...p.all, ...b.all];
  }

  private get h(): number {
    if (this.handle === null)
      throw new TorchError('the TorchScript module was disposed: it cannot be used any more', 'DISPOSED');
    return this.handle;
  }

  /** Runs the TorchScript forward on tensor inputs (autograd records unless under noGrad). */
  call(...inputs: Tensor[]): ScriptValue {
    inputs.forEach((x, i) => {
      if (!(x instanceof Tensor)) throw typeError('a Tensor', `inputs[${i}]`, x);
    });
    return fromNative(
      native.jitForward(
        this.h,
        inputs.map((x) => x._h),
      ),
    );
  }

  /** The same as call() (nn.Module's name for it). */
  forward(...inputs: Tensor[]): ScriptValue {
    return this.call(...inputs);
  }

  /** Parameters by dotted name ('layer1.0.conv1.weight'), the module's own tensors: do not dispose them. */
  namedParameters(): [string, Tensor][] {
    void this.h;
    return this.params.map(([n, t]) => [n, t]);
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(): [string, Tensor][] {
    void this.h;
    return this.bufs.map(([n, t]) => [n, t]);
  }
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  get training(): boolean {
    return native.jitIsTraining(this.h);
  }
  train(mode = true): this {
    native.jitTrain(this.h, is.boolean(mode, 'mode'));
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /**
   * Converts floating-point parameters and buffers to a dtype (the module's tensors keep their identity, so an
   * optimizer built before still holds them). Devices other than the CPU are not supported for TorchScript modules yet.
   */
  to(target: DType | { dtype?: DType; device?: string }): this {
    const t = typeof target === 'string' ? { dtype: target } : target;
    if (t === null || typeof t !== 'object') throw typeError('a dtype or {dtype}', 'target', target);
    if (t.device !== undefined && t.device !== 'cpu')
      throw new TorchError(
        `ScriptModule.to: device '${t.device}' is not supported for TorchScript modules here (CPU only)`,
        'DEVICE_UNAVAILABLE',
      );
    if (t.dtype === undefined) return this;
    const dtype = DTYPES[dtypeCode(t.dtype, 'dtype')]!;
    if (!isFloating(dtype))
      throw new TypeError(`ScriptModule.to only accepts floating point dtypes, but got desired dtype=${t.dtype}`);
    for (const [, p] of [...this.params, ...this.bufs]) {
      if (!isFloating(p.dtype) || p.dtype === dtype) continue;
      const values = p.detach();
      const data = values.to(dtype);
      native.setData(p._h, data._h);
      values.dispose();
      data.dispose();
    }
    return this;
  }
  double(): this {
    return this.to('float64');
  }
  float(): this {
    return this.to('float32');
  }

  /** Parameters and buffers by name: new detached tensors sharing the module's storage, the caller's to dispose. */
  stateDict(): Map<string, Tensor> {
    return new Map(this.entries.map(([n, t]) => [n, t.detach()]));
  }

  /** Copies a state dict in (names and shapes must match; nothing is copied when anything is wrong). */
  loadStateDict(sd: Map<string, Tensor> | Record<string, Tensor>, { strict = true }: { strict?: boolean } = {}): void {
    const given = sd instanceof Map ? sd : sd !== null && typeof sd === 'object' ? new Map(Object.entries(sd)) : null;
    if (given === null) throw typeError('a Map or a record of name -> Tensor', 'stateDict', sd);
    const own = new Map(this.entries);
    const errors: string[] = [];
    const missing = [...own.keys()].filter((k) => !given.has(k));
    const unexpected = [...given.keys()].filter((k) => !own.has(k));
    if (strict && missing.length)
      errors.push(`Missing key(s) in state_dict: ${missing.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpected.length)
      errors.push(`Unexpected key(s) in state_dict: ${unexpected.map((k) => `"${k}"`).join(', ')}.`);
    for (const [k, src] of given) {
      if (!(src instanceof Tensor)) throw typeError('a Tensor', `stateDict["${k}"]`, src);
      const t = own.get(k);
      if (t && (src.ndim !== t.ndim || src.shape.some((d, i) => d !== t.shape[i])))
        errors.push(
          `size mismatch for ${k}: copying a param with shape [${src.shape.join(', ')}] from checkpoint, the shape in current model is [${t.shape.join(', ')}].`,
        );
    }
    if (errors.length)
      throw new TorchError(`Error(s) in loading state_dict for ScriptModule:\n\t${errors.join('\n\t')}`, 'TORCH_ERROR');
    noGrad(() => {
      for (const [k, src] of given) own.get(k)?.copy_(src);
    });
  }

  /** Writes the module (code, parameters and buffers as they are now) as a TorchScript archive; through a symlink to its target. */
  save(path: string): void {
    is.string(path, 'path');
    native.jitSave(this.h, saveTarget(path, 'ScriptModule.save'));
  }

  get isDisposed(): boolean {
    return this.handle === null;
  }

  /** Frees the module and its parameter and buffer tensors. */
  dispose(): void {
    if (this.handle === null) return;
    for (const [, t] of [...this.params, ...this.bufs]) t.dispose();
    native.jitDispose(this.handle);
    this.handle = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Options of `jit.load()`: the read bounds of TorchScriptReadOptions and the options below. */
export interface JitLoadOptions extends TorchScriptReadOptions {
  /**
   * Load the archive in a child process first (default false): a crash of libtorch's loader (SIGSEGV, abort) or a
   * load that takes longer than `timeout` then ends the child, and this call throws a BAD_FILE TorchError. The
   * archive's load-time code runs twice, in the child and here.
   */
  isolate?: boolean;
  /** With isolate: how long the child may take, in milliseconds (default 60,000). */
  timeout?: number;
}

/** What the isolating child runs: the addon alone loads the archive and lists its tensors (no library needed). */
const ISOLATE_CHILD = `
const [file, path] = process.argv.slice(1);
const a = require(file);
a.setNumThreads(1);
let r;
try {
  const h = a.jitLoad(path);
  a.jitNamedParameters(h);
  a.jitNamedBuffers(h);
  a.jitDispose(h);
  r = { ok: true };
} catch (e) {
  r = { ok: false, message: String(e && e.message), code: e && e.code };
}
process.stdout.write(JSON.stringify(r));
`;

/** @internal Loads the archive with libtorch in a child process (no checks here); throws what it hit. */
export function loadInChild(path: string, timeout = 60_000): void {
  const r = spawnSync(process.execPath, ['-e', ISOLATE_CHILD, addonFile, path], {
    encoding: 'utf8',
    timeout,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 20,
    env: { ...process.env, TENSORNORMAL_NUM_THREADS: '1' },
  });
  const bad = (what: string): TorchError =>
    new TorchError(`${path} is not a TorchScript file libtorch can load: ${what}`, 'BAD_FILE');
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT')
    throw bad(`loading it took longer than ${timeout} ms in a child process (killed)`);
  if (r.error) throw new TorchError(`jit.load: could not start a child process to load ${path}: ${r.error.message}`);
  if (r.signal !== null) throw bad(`libtorch's loader crashed on it in a child process (${r.signal})`);
  let out: { ok: boolean; message?: string; code?: string };
  try {
    out = JSON.parse(r.stdout) as typeof out;
  } catch {
    throw bad(`the child process that loaded it exited with status ${r.status} (${r.stderr.trim().slice(-300)})`);
  }
  if (!out.ok) throw new TorchError(out.message ?? 'jit.load failed in a child process', out.code ?? 'BAD_FILE');
}

/**
 * Loads a TorchScript archive (torch.jit.script(m).save / torch.jit.trace(m, x).save in Python) onto the CPU. The
 * file is checked first (lib/torchscript.ts); a file that is not one, or that libtorch's loader refuses, is a
 * TorchError (code 'BAD_FILE') naming it. LOADING RUNS THE ARCHIVE'S CODE (see the file comment): for files from
 * strangers use jit.loadWeights, or at least { isolate: true }.
 */
export function load(path: string, options: JitLoadOptions = {}): ScriptModule {
  is.string(path, 'path');
  const { isolate = false, timeout = 60_000, ...read } = is.options(options);
  is.boolean(isolate, 'isolate');
  is.positive(timeout, 'timeout');
  // a regular file only (a FIFO would hang libtorch's reader), and nothing libtorch's loader must not see
  checkTorchScript(path, read);
  if (isolate) loadInChild(path, timeout);
  return new ScriptModule(native.jitLoad(path));
}

/**
 * The parameters and buffers of a TorchScript archive by dotted name (Python: `torch.jit.load(path).state_dict()`),
 * read WITHOUT RUNNING ANY OF ITS CODE, for files one does not trust (see lib/torchscript.ts). The tensors are the
 * caller's to dispose. A file that is not a TorchScript archive, or fails the checks, is a BAD_FILE TorchError.
 *
 *   const sd = jit.loadWeights('model-from-a-stranger.pt');   // Map { 'fc.weight' => Tensor, ... }
 */
export function loadWeights(path: string, options: TorchScriptReadOptions = {}): Map<string, Tensor> {
  return loadScriptWeights(path, options);
}

/** What jit.trace needs of a model (every nn.Module has it). */
export interface TraceableModel {
  call?(...inputs: Tensor[]): unknown;
  forward?(...inputs: Tensor[]): unknown;
  namedParameters(): [string, Tensor][];
  namedBuffers?(): [string, Tensor][];
}

/**
 * Turns a model of this library into a TorchScript module with libtorch's tracer (as torch.jit.trace): the model's
 * forward runs once on `exampleInputs` while every op it dispatches is recorded; its parameters and buffers become
 * the module's attributes (names with '_' for '.', e.g. '0_weight'). The result runs here (`call`) and, saved with
 * `save(path)`, in Python (`torch.jit.load`) or any TorchScript runtime. As with any trace, control flow that depends
 * on the data is frozen to the path the example took; put the model in eval() first unless training behaviour
 * (dropout, batch statistics) is what you want recorded.
 */
export function trace(model: TraceableModel, exampleInputs: Tensor | Tensor[]): ScriptModule {
  if (model === null || typeof model !== 'object' || typeof model.namedParameters !== 'function')
    throw typeError('a model (an nn.Module)', 'model', model);
  const inputs = Array.isArray(exampleInputs) ? exampleInputs : [exampleInputs];
  inputs.forEach((x, i) => {
    if (!(x instanceof Tensor)) throw typeError('a Tensor', `exampleInputs[${i}]`, x);
  });
  const forward =
    typeof model.call === 'function'
      ? model.call.bind(model)
      : typeof model.forward === 'function'
        ? model.forward.bind(model)
        : null;
  if (forward === null) throw typeError('a model with call() or forward()', 'model', model);
  const params = model.namedParameters();
  const buffers = typeof model.namedBuffers === 'function' ? model.namedBuffers() : [];
  const entries = [
    ...params.map(([n, t]) => [n, t, true] as const),
    ...buffers.map(([n, t]) => [n, t, false] as const),
  ];
  const outs: Tensor[] = [];
  const h = native.jitTrace(
    entries.map(([n]) => n.replace(/\./g, '_')),
    entries.map(([, t]) => t._h),
    inputs.map((x) => x._h),
    (...hs: number[]) => {
      const r = tidy(() => forward(...hs.map((x) => wrap(x))));
      const list = Array.isArray(r) ? r : [r];
      if (!list.every((t) => t instanceof Tensor)) {
        dispose(list.filter((t): t is Tensor => t instanceof Tensor));
        throw new TypeError('jit.trace: the forward must return a Tensor or an array of Tensors');
      }
      outs.push(...(list as Tensor[]));
      return Array.isArray(r) ? (list as Tensor[]).map((t) => t._h) : (r as Tensor)._h;
    },
    entries.map(([, , p]) => p),
  );
  dispose(outs);
  return new ScriptModule(h);
}
