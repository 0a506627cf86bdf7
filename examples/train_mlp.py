"""Train an MLP on scikit-learn's digits with gpugrad, PyTorch-style (a few seconds on a CPU)."""

import time

import gpugrad as gg
import gpugrad.nn.functional as F
from gpugrad.data import DataLoader, load_digits

gg.manual_seed(0)
device = "cuda" if gg.cuda.is_available() else "cpu"
X_train, y_train, X_test, y_test = load_digits(test_size=0.2, seed=0, device=device)

model = gg.nn.MLP([64, 128, 128, 10], activation="relu", device=device)
optimizer = gg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
loader = DataLoader(X_train, y_train, batch_size=64, shuffle=True, seed=0)

start = time.perf_counter()
for epoch in range(1, 21):
    model.train()
    total = 0.0
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
    model.eval()
    with gg.no_grad():
        accuracy = (model(X_test).argmax(1) == y_test).float().mean().item()
    if epoch % 5 == 0:
        print(f"epoch {epoch:2d}  loss {total / len(y_train):.4f}  test accuracy {accuracy:.2%}")

print(f"final test accuracy {accuracy:.2%} in {time.perf_counter() - start:.1f} s on {device}")
