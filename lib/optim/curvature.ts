// The family's base moved to lib/optim/kronecker/optimizer.ts; this path stays for the modules that import it.
export * from './kronecker/optimizer.js';
