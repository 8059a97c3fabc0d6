/**
 * The two TNT workloads bench/tnt-profile.mjs and bench/tnt-async.mjs time, built the same way for both: the paper's
 * MNIST autoencoder 784-1000-500-250-30-250-500-1000-784 on a batch of 1000 (Bernoulli), or a 784-512-512-10
 * classifier on a batch of 128 (Categorical); random data from manualSeed(0), and one set of initial weights
 * (`init`) that every run loads. `hyper` is the script's TNT settings for that workload; `--set key=value` options
 * (parseSets) are applied over them.
 */
import { execSync } from 'node:child_process';

/** The load average as uptime prints it ("load average: 0.52, 0.61, 0.70"). */
export const loadAverage = () =>
  execSync('uptime')
    .toString()
    .trim()
    .replace(/.*load/, 'load');

/** Process time of this process in ms (every thread's CPU). */
export const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e3;
};

/** A `--set` value: true, false, a number, or the string. */
export const parseSetValue = (v) =>
  v === 'true' ? true : v === 'false' ? false : Number.isNaN(Number(v)) ? v : Number(v);

/** The workload `which` ('ae' or 'mlp') with `hyper` (per workload) and `sets` applied over it. */
export function tntWorkload(torch, which, hyperOf, sets) {
  const { models, Bernoulli, Categorical } = torch;
  torch.manualSeed(0);
  let build, x, target, lik, hyper;
  if (which === 'ae') {
    build = () => models.autoencoder('mnist');
    x = torch.rand([1000, 784]).keep();
    target = x;
    lik = new Bernoulli();
    hyper = { ...hyperOf.ae };
  } else {
    build = () => models.mlp([784, 512, 512, 10]);
    x = torch.rand([128, 784]).keep();
    target = torch.randint(0, 10, [128]).keep();
    lik = new Categorical();
    hyper = { ...hyperOf.mlp };
  }
  Object.assign(hyper, sets);
  return { build, x, target, lik, hyper, init: build() };
}
