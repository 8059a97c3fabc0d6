/** nn.Sequential and nn.ModuleList (torch/nn/modules/container.py). */
import { Tensor } from '../tensor.js';
import { is, typeError } from '../errors.js';
import { Module, type AnyModule } from './module.js';

function checkIndex(i: number, n: number, cls: string): number {
  is.integer(i, 'index');
  if (i < -n || i >= n) throw new RangeError(`index ${i} is out of range for ${cls} of length ${n}`);
  return i < 0 ? i + n : i;
}

/**
 * Runs its modules one after the other, each on the previous one's output. Children are named '0', '1', ... (or by
 * the keys of a Map / record), which gives parameter names such as `0.weight`; `seq[0]` or `seq.at(-1)` reaches one.
 * Intermediate outputs are freed as soon as the next module has run (autograd keeps what backward needs).
 *
 *   const net = new nn.Sequential(new nn.Linear(784, 100), new nn.ReLU(), new nn.Linear(100, 10));
 *   const named = new nn.Sequential(new Map([['fc', new nn.Linear(4, 2)], ['act', new nn.Tanh()]]));
 */
export class Sequential extends Module {
  constructor(...modules: AnyModule[]);
  constructor(modules: Map<string, AnyModule> | Record<string, AnyModule>);
  constructor(...args: unknown[]) {
    super();
    const first = args[0];
    if (args.length === 1 && !(first instanceof Module) && first !== null && typeof first === 'object') {
      const entries = first instanceof Map ? [...first.entries()] : Object.entries(first);
      for (const [name, m] of entries) this.add(String(name), m);
    } else args.forEach((m, i) => this.add(String(i), m));
  }
  private add(name: string, m: unknown): void {
    if (!(m instanceof Module)) throw typeError('a Module', `Sequential entry ${name}`, m);
    this.registerModule(name, m);
  }
  get length(): number {
    return this._modules.size;
  }
  /** The module at position i (negative counts from the end). */
  at(i: number): AnyModule {
    const k = checkIndex(i, this.length, 'Sequential');
    return [...this._modules.values()][k]!;
  }
  /** Adds a module at the end (named by its position). */
  append(module: AnyModule): this {
    this.add(String(this.length), module);
    return this;
  }
  [Symbol.iterator](): Iterator<AnyModule> {
    return ([...this._modules.values()].filter((m) => m !== null) as AnyModule[])[Symbol.iterator]();
  }
  forward(input: Tensor): Tensor {
    let cur = input;
    for (const m of this._modules.values()) {
      if (m === null) continue;
      const next = m.call(cur) as Tensor;
      if (cur !== input && next !== cur && !cur._kept) cur.dispose();
      cur = next;
    }
    return cur === input ? input.alias() : cur;
  }
}

/**
 * Holds submodules in a list so that they are registered (a plain array is not): `this.blocks = new nn.ModuleList([...])`.
 * It has no forward of its own; iterate over it in the parent's forward.
 */
export class ModuleList extends Module<unknown[], never> {
  constructor(modules: Iterable<AnyModule> = []) {
    super();
    for (const m of modules) this.append(m);
  }
  get length(): number {
    return this._modules.size;
  }
  at(i: number): AnyModule {
    const k = checkIndex(i, this.length, 'ModuleList');
    return [...this._modules.values()][k]!;
  }
  append(module: AnyModule): this {
    if (!(module instanceof Module)) throw typeError('a Module', `ModuleList entry ${this.length}`, module);
    this.registerModule(String(this.length), module);
    return this;
  }
  extend(modules: Iterable<AnyModule>): this {
    for (const m of modules) this.append(m);
    return this;
  }
  [Symbol.iterator](): Iterator<AnyModule> {
    return ([...this._modules.values()].filter((m) => m !== null) as AnyModule[])[Symbol.iterator]();
  }
  forward(): never {
    throw new TypeError('ModuleList has no forward(): iterate over it in the parent module');
  }
}
