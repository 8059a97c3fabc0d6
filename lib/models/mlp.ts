/** Fully connected networks: models.mlp and models.autoencoder (the paper's MNIST and FACES autoencoders). */
import { typeError, is } from '../errors.js';
import { Module, type AnyModule } from '../nn/module.js';
import { Linear } from '../nn/linear.js';
import { Sequential } from '../nn/container.js';
import { ReLU, Sigmoid, Tanh, GELU } from '../nn/activation.js';

/** An activation of `models.mlp()` by name. */
export type ActivationName = 'relu' | 'tanh' | 'sigmoid' | 'gelu';
/** An activation by name, or a factory returning a fresh module for each place it goes. */
export type ActivationSpec = ActivationName | (() => AnyModule);

function activationFactory(a: ActivationSpec): () => AnyModule {
  if (typeof a === 'function') {
    return () => {
      const m = a();
      if (!(m instanceof Module)) throw typeError('a function returning a Module', 'activation', m);
      return m;
    };
  }
  switch (is.oneOf(a, 'activation', ['relu', 'tanh', 'sigmoid', 'gelu'] as const)) {
    case 'relu':
      return () => new ReLU();
    case 'tanh':
      return () => new Tanh();
    case 'sigmoid':
      return () => new Sigmoid();
    case 'gelu':
      return () => new GELU();
  }
}

function checkWidths(widths: unknown): number[] {
  if (
    !Array.isArray(widths) ||
    widths.length < 2 ||
    widths.some((w) => typeof w !== 'number' || !Number.isInteger(w) || w < 1)
  )
    throw typeError('an array of at least two positive integers', 'widths', widths);
  return widths;
}

/** Options of `models.mlp()`: the activation between layers and whether the layers have a bias. */
export interface MlpOptions {
  /** Between consecutive Linear layers (none after the last). Default 'relu'. */
  activation?: ActivationSpec;
  /** Biases in every Linear layer. Default true. */
  bias?: boolean;
}

/**
 * Linear(w0, w1), act, Linear(w1, w2), act, ..., Linear(w_{k-1}, w_k): the output is unactivated (logits).
 * Parameter names: `0.weight`, `0.bias`, `2.weight`, ... (activations take the odd positions). PyTorch's default init.
 *
 *   const net = models.mlp([256, 20, 20, 20, 20, 20, 10], { activation: 'tanh' }); // the paper's Figure 1 network
 */
export function mlp(widths: number[], options: MlpOptions = {}): Sequential {
  const { activation = 'relu', bias = true } = is.options(options);
  const w = checkWidths(widths);
  const act = activationFactory(activation);
  is.boolean(bias, 'bias');
  const layers: AnyModule[] = [];
  for (let i = 0; i + 1 < w.length; i++) {
    layers.push(new Linear(w[i]!, w[i + 1]!, { bias }));
    if (i + 2 < w.length) layers.push(act());
  }
  return new Sequential(...layers);
}

/** The paper's autoencoder widths (Hinton and Salakhutdinov 2006; Martens 2010). */
export const AUTOENCODER_WIDTHS = {
  mnist: [784, 1000, 500, 250, 30, 250, 500, 1000, 784],
  faces: [625, 2000, 1000, 500, 30, 500, 1000, 2000, 625],
} as const;

/**
 * A deep autoencoder: Linear layers with an activation (ReLU by default) after each, except after the code layer
 * (the one producing the narrowest width) and the output layer, which give linear codes and logits.
 * `autoencoder('mnist')` is 784-1000-500-250-30-250-500-1000-784 (train with Bernoulli, BCE on logits);
 * `autoencoder('faces')` is 625-2000-1000-500-30-500-1000-2000-625 (train with Gaussian, squared error).
 * PyTorch's default Linear initialisation, as the paper's reference code.
 */
export function autoencoder(
  widths: number[] | readonly number[] | 'mnist' | 'faces',
  options: { activation?: ActivationSpec } = {},
): Sequential {
  const { activation = 'relu' } = is.options(options);
  const w = checkWidths(
    typeof widths === 'string'
      ? [...AUTOENCODER_WIDTHS[is.oneOf(widths, 'widths', ['mnist', 'faces'] as const)]]
      : widths,
  );
  const act = activationFactory(activation);
  const code = w.indexOf(Math.min(...w.slice(1, -1))); // position of the code width (the first narrowest hidden width)
  const layers: AnyModule[] = [];
  for (let i = 0; i + 1 < w.length; i++) {
    layers.push(new Linear(w[i]!, w[i + 1]!));
    const out = i + 1;
    if (out !== code && out !== w.length - 1) layers.push(act());
  }
  return new Sequential(...layers);
}
