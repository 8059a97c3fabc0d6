#!/usr/bin/env node
// The `tensornormal` command (package.json "bin"). `tensornormal run` is the library's launcher
// (distributed/launch.ts, loaded without the addon), `tensornormal board` the live page of training curves
// (board/server.ts, also without the addon); everything else is the experiments application
// (experiments/cli.ts in the repository, the package's `tensornormal/experiments`), which uses the public API only.
// The application is built after the library, so it is loaded by name rather than typed from here.
const argv = process.argv.slice(2);
if (argv[0] === 'run') {
  process.exitCode = await (await import('./distributed/launch.js')).runCommand(argv.slice(1));
} else if (argv[0] === 'board') {
  // the live page of training curves (board/server.ts); it reads event files and needs no addon
  process.exitCode = await (await import('./board/server.js')).runBoardCommand(argv.slice(1));
} else {
  // OpenBLAS reads OPENBLAS_NUM_THREADS once, when the addon loads it, and importing the application loads the
  // addon: `--threads N` reaches OpenBLAS's pool only if it is set here, before the import (runtime-env.ts)
  const { openblasThreads, readCpuinfo, threadsArgument } = await import('./runtime-env.js');
  const openblas = openblasThreads(threadsArgument(argv, process.env), process.env, readCpuinfo());
  if (openblas !== undefined) process.env.OPENBLAS_NUM_THREADS = openblas;
  const app: string = 'tensornormal/experiments';
  const { main } = (await import(app)) as {
    main(argv: string[], io: undefined, launch: { openblasThreadsSet: boolean }): Promise<number>;
  };
  process.exitCode = await main(argv, undefined, { openblasThreadsSet: openblas !== undefined });
}
