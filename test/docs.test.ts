// The documentation (issue 22): every exported symbol has a doc comment (scripts/check-doc-comments.mjs; the API
// reference `npm run docs` is made from them), and every JavaScript and TypeScript code block of README.md and
// docs/*.md runs. Each block runs as an ES module in a child process, in a temporary folder whose
// node_modules/tensornormal is this package (its dist/, as an installed copy), so that what it writes (checkpoints,
// TorchScript files) stays there. A block that uses names it does not define runs after a named context below,
// chosen in the Markdown by `<!-- doc-test: context NAME -->` just before the block; a context may also check,
// after the block, what the text around it claims. A block that cannot run alone is marked
// `<!-- not-run: reason -->` (the test counts them and checks each gives a reason). TypeScript blocks are
// compiled by TypeScript's transpileModule first (target ES2022, which lowers `using`).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { packageRoot } from '../lib/native.js';
import { addonPath } from './support/transpile-lib.js';
import { freePort } from './support/helpers.js';

interface Block {
  file: string;
  line: number;
  lang: 'js' | 'ts';
  code: string;
  context: string | null;
  notRun: string | null;
}

/** The js/ts fenced blocks of a Markdown file, with the HTML comments just before each. */
function blocksOf(file: string): Block[] {
  const text = readFileSync(join(packageRoot, file), 'utf8');
  const lines = text.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!;
    let j = i + 1;
    while (j < lines.length && lines[j] !== `${indent}\`\`\``) j++;
    const lang = open[2]!;
    if (['js', 'javascript', 'mjs', 'ts', 'typescript'].includes(lang)) {
      const code = lines
        .slice(i + 1, j)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n');
      let context: string | null = null,
        notRun: string | null = null;
      for (let k = i - 1; k >= 0; k--) {
        const l = lines[k]!.trim();
        if (l === '') continue;
        const c = /^<!--\s*doc-test:\s*context\s+([\w-]+)\s*-->$/.exec(l);
        const n = /^<!--\s*not-run:(.*)-->$/.exec(l);
        if (c) context = c[1]!;
        else if (n) notRun = n[1]!.trim();
        else break;
      }
      out.push({ file, line: i + 1, lang: lang.startsWith('t') ? 'ts' : 'js', code, context, notRun });
    }
    i = j;
  }
  return out;
}

const FILES = [
  'README.md',
  ...readdirSync(join(packageRoot, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const BLOCKS = FILES.flatMap(blocksOf);

/** What every block without imports of its own starts with. */
const BASE = `import * as torch from 'tensornormal';
import { nn, optim, data, models, fit, evaluate, tidy, noGrad, keep, dispose, save, load, restore, jit, distributed,
  tensorboard, train, Categorical, Bernoulli, Gaussian } from 'tensornormal';
`;

/** Names a block uses without defining them; `after` runs in the block's scope, after it. */
const CONTEXTS: Record<string, { before: string; after?: string }> = {
  'tensors-memory': { before: `const x = torch.randn([4]); const w = torch.ones([2]);` },
  'tensors-using': {
    before: ``,
    after: `const live = torch.liveTensors();
      if (!(norm() > 0)) throw new Error('norm() did not run');
      if (torch.liveTensors() !== live) throw new Error('using did not free t');`,
  },
  mlp: {
    before: `const model = models.mlp([784, 32, 10]); const params = model.parameters(); const lr = 1e-3;
      const x = torch.rand([8, 784]);`,
  },
  autoencoder: {
    before: `torch.manualSeed(0);
      const model = models.mlp([16, 8, 16]); const x = torch.rand([8, 16]); const lik = new Bernoulli();`,
  },
  hooks: {
    before: `const model = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2));
      let acts, grads; const x = torch.randn([5, 4]);
      const hidden = torch.randn([3], { requiresGrad: true }).mul(2);`,
    after: `model.call(x).sum().backward();
      if (acts?.shape.join() !== '5,4' || grads?.shape.join() !== '5,3') throw new Error('the hooks did not run');
      h.remove();`,
  },
  schedulers: {
    before: `const model = models.mlp([4, 2]); const trainOneEpoch = () => {};`,
    // the text's claim: 0.1 0.1 0.1 0.05 0.05 0.005 0.0025 ..., so after 10 epochs 0.1 * 0.5^3 * 0.1
    after: `if (Math.abs(opt.paramGroups[0].lr - 0.00125) > 1e-12) throw new Error('lr ' + opt.paramGroups[0].lr);`,
  },
  fit: {
    before: `torch.manualSeed(0);
      const model = models.mlp([8, 16, 3]);
      const set = () => new data.TensorDataset(torch.randn([64, 8]), torch.randint(0, 3, [64]));
      const trainSet = set(), testSet = set();
      const optimizer = new optim.Adam(model.parameters(), { lr: 1e-2 });
      const scheduler = new optim.lrScheduler.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });`,
    after: `if (history.length !== 2 || !(history[1].valAccuracy >= 0)) throw new Error(JSON.stringify(history));
      if (load('ckpt.safetensors').meta.epoch !== 2) throw new Error('no checkpoint');`,
  },
  'fit-tnt': {
    before: `torch.manualSeed(0);
      const model = models.mlp([8, 16, 3]);
      const loader = new data.DataLoader(new data.TensorDataset(torch.randn([64, 8]), torch.randint(0, 3, [64])), { batchSize: 16 });`,
  },
  weights: {
    before: `const model = new nn.Sequential(new nn.Linear(3, 4), new nn.BatchNorm1d(4));
      torch.saveWeights('from-python.safetensors', model);`,
  },
  'torchscript-load': {
    before: `models.mlp([4, 8, 2]).eval();
      jit.trace(models.mlp([4, 8, 2]).eval(), torch.randn([3, 4])).save('resnet.pt');
      const loader = [[torch.randn([5, 4]), torch.randn([5, 2])], [torch.randn([5, 4]), torch.randn([5, 2])]];`,
    after: `if (!jit.load('resnet-tuned.pt')) throw new Error('not saved');`,
  },
  // one rank of a gloo process group (the test gives MASTER_ADDR, MASTER_PORT, RANK=0, WORLD_SIZE=1)
  // (a block with imports of its own: `before` comes right after them, and names the library through `torch`)
  ddp: {
    before: `const model = torch.models.mlp([4, 8, 2]);
      const train = new torch.data.TensorDataset(torch.randn([32, 4]), torch.randn([32, 2]));
      const lossFn = (o, t) => torch.nn.functional.mseLoss(o, t);`,
    after: `if (torch.load('ckpt.safetensors').meta.epoch !== 9) throw new Error('no checkpoint');`,
  },
  'ddp-curvature': {
    before: `await distributed.initProcessGroup({ backend: 'gloo' });
      const model = models.mlp([4, 8, 4]);
      const loader = [[torch.rand([8, 4]), torch.rand([8, 4]).round()], [torch.rand([8, 4]), torch.rand([8, 4]).round()]];
      const epochs = 1;`,
    after: `await distributed.destroyProcessGroup();`,
  },
};

function programOf(b: Block): string {
  const ownImports = /^import\s/m.test(b.code);
  const ctx = b.context === null ? null : CONTEXTS[b.context];
  if (b.context !== null && ctx === undefined) throw new Error(`${b.file}:${b.line}: no context named ${b.context}`);
  const lines = b.code.split('\n');
  let k = 0;
  while (k < lines.length && /^import\s/.test(lines[k]!)) k++;
  const src = ownImports
    ? `${lines.slice(0, k).join('\n')}\n${ctx?.before ?? ''}\n${lines.slice(k).join('\n')}\n${ctx?.after ?? ''}\n`
    : `${BASE}{\n${ctx?.before ?? ''}\n{\n${b.code}\n${ctx?.after ?? ''}\n}\n}\n`;
  if (b.lang === 'js') return src;
  return ts.transpileModule(src, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      lib: ['lib.es2022.d.ts', 'lib.esnext.disposable.d.ts'],
    },
  }).outputText;
}

let work = '';
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'tn-docs-'));
  mkdirSync(join(work, 'node_modules'));
  symlinkSync(packageRoot, join(work, 'node_modules', 'tensornormal'));
  // the optional peer dependency the watching guide's blocks use
  symlinkSync(join(packageRoot, 'node_modules', 'prom-client'), join(work, 'node_modules', 'prom-client'));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('doc comments', () => {
  it('every exported symbol has one (the API reference is made from them)', () => {
    const r = spawnSync(process.execPath, [join(packageRoot, 'scripts', 'check-doc-comments.mjs')], {
      encoding: 'utf8',
    });
    expect(r.stdout + r.stderr, 'scripts/check-doc-comments.mjs').toContain('every exported symbol has a doc comment');
    expect(r.status).toBe(0);
  });
});

describe('code blocks of README.md and docs/*.md', () => {
  it('are found, and the few that cannot run alone say why', () => {
    expect(BLOCKS.length).toBeGreaterThan(10);
    const skipped = BLOCKS.filter((b) => b.notRun !== null);
    for (const b of skipped) expect(b.notRun!.length, `${b.file}:${b.line}`).toBeGreaterThan(10);
    // the service example twice (test/service-example.test.ts runs it), a whole transformer epoch, a multi-rank fragment
    expect(skipped.length).toBeLessThanOrEqual(4);
    for (const b of BLOCKS) if (b.context !== null) expect(CONTEXTS, `${b.file}:${b.line}`).toHaveProperty(b.context);
  });

  const runnable = BLOCKS.filter((b) => b.notRun === null);
  it.each(runnable.map((b) => [`${b.file}:${b.line}`, b] as const))('%s runs', async (_name, b) => {
    if (!existsSync(join(packageRoot, 'dist', 'index.js')))
      throw new Error('dist/ is not built: run `npm run build:ts`');
    const dir = mkdtempSync(join(work, 'block-'));
    const file = join(dir, 'block.mjs');
    writeFileSync(file, programOf(b));
    const port = await freePort();
    const r = spawnSync(process.execPath, [file], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 110_000,
      env: {
        ...process.env,
        TENSORNORMAL_ADDON: addonPath,
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        RANK: '0',
        WORLD_SIZE: '1',
      },
    });
    expect(r.status, `${b.file}:${b.line}\n${r.stderr}\n--- program ---\n${programOf(b)}`).toBe(0);
  });
});
