// A short demo: fit y = 3x - 2 with autograd, one tidy() scope per step, then print a tensor like PyTorch does.
import * as torch from 'tensornormal';

torch.manualSeed(0);
const x = torch.linspace(-1, 1, 64).reshape(-1, 1);
const noise = torch.randn([64, 1]).mul(0.05);
const y = torch.tidy(() => x.mul(3).sub(2).add(noise));
const w = torch.zeros([1, 1], { requiresGrad: true });
const b = torch.zeros([1], { requiresGrad: true });

for (let step = 0; step <= 200; step++) {
  const loss = torch.tidy(() => {
    const pred = torch.nn.functional.linear(x, w, b);
    const l = torch.nn.functional.mseLoss(pred, y);
    l.backward();
    torch.noGrad(() => {
      w.sub_(w.grad.mul(0.1));
      b.sub_(b.grad.mul(0.1));
    });
    w.grad.zero_();
    b.grad.zero_();
    return l.item();
  });
  if (step % 50 === 0) console.log(`step ${String(step).padStart(3)}  loss ${loss.toFixed(5)}`);
}
console.log('w =', w.item().toFixed(3), ' b =', b.item().toFixed(3), ' (true: 3, -2)');
console.log(String(torch.randn([2, 3])));
console.log(
  `libtorch ${torch.versions().torch}, ${torch.getNumThreads()} threads, CUDA ${torch.cuda.isAvailable() ? 'available' : 'not available'}, live tensors ${torch.liveTensors()}`,
);
