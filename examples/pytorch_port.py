"""Porting a PyTorch script to gpugrad: the PyTorch quickstart's training program (Dataset and
DataLoader, an nn.Module, a loss, an optimizer with an lr schedule and gradient clipping, train /
test loops, save and load) on scikit-learn's bundled digits. Only the three import lines marked
below differ from the PyTorch original; with `import torch` there it runs on PyTorch.
"""

import os  # noqa: I001  (the three porting lines stay together, in the original's order)
import tempfile

from sklearn.datasets import load_digits

import gpugrad as torch  # was: import torch
from gpugrad import nn  # was: from torch import nn
from gpugrad.utils.data import DataLoader, TensorDataset, random_split  # was: from torch.utils.data

torch.manual_seed(0)
device = "cuda" if torch.cuda.is_available() else "cpu"
print(f"Using {device} device")

# ---- data: 8x8 images of digits, pixels in [0, 1] ----
digits = load_digits()
X = torch.tensor(digits.data / 16.0, dtype=torch.float32)
y = torch.tensor(digits.target)
dataset = TensorDataset(X.view(-1, 8, 8), y)
training_data, test_data = random_split(
    dataset, [0.8, 0.2], generator=torch.Generator().manual_seed(0)
)

batch_size = 64
train_dataloader = DataLoader(training_data, batch_size=batch_size, shuffle=True)
test_dataloader = DataLoader(test_data, batch_size=256)
for X, y in test_dataloader:
    print(f"Shape of X [N, H, W]: {X.shape}")
    print(f"Shape of y: {y.shape} {y.dtype}")
    break


# ---- model ----
class NeuralNetwork(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(8 * 8, 128),
            nn.LayerNorm(128),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(128, 128),
            nn.SiLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        x = self.flatten(x)
        logits = self.linear_relu_stack(x)
        return logits


model = NeuralNetwork().to(device)
print(model)

epochs = 12
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-2)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)


def train(dataloader, model, loss_fn, optimizer):
    size = len(dataloader.dataset)
    model.train()
    for batch, (X, y) in enumerate(dataloader):
        X, y = X.to(device), y.to(device)

        # Compute prediction error
        pred = model(X)
        loss = loss_fn(pred, y)

        # Backpropagation
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), max_norm=5.0)
        optimizer.step()
        optimizer.zero_grad()

        if batch % 10 == 0:
            loss, current = loss.item(), (batch + 1) * len(X)
            print(f"loss: {loss:>7f}  [{current:>5d}/{size:>5d}]")


def test(dataloader, model, loss_fn):
    size = len(dataloader.dataset)
    num_batches = len(dataloader)
    model.eval()
    test_loss, correct = 0, 0
    with torch.no_grad():
        for X, y in dataloader:
            X, y = X.to(device), y.to(device)
            pred = model(X)
            test_loss += loss_fn(pred, y).item()
            correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    test_loss /= num_batches
    correct /= size
    print(f"Test Error: \n Accuracy: {(100 * correct):>0.1f}%, Avg loss: {test_loss:>8f} \n")
    return correct


for t in range(epochs):
    print(f"Epoch {t + 1} (lr {scheduler.get_last_lr()[0]:.5f})\n-------------------------------")
    train(train_dataloader, model, loss_fn, optimizer)
    test(test_dataloader, model, loss_fn)
    scheduler.step()
print("Done!")

# ---- save, load, predict ----
path = os.path.join(tempfile.mkdtemp(), "model.pth")
torch.save(model.state_dict(), path)
print(f"Saved PyTorch Model State to {path}")
model = NeuralNetwork().to(device)
model.load_state_dict(torch.load(path, weights_only=True))
accuracy = test(test_dataloader, model, loss_fn)
print(f"final test accuracy {100 * accuracy:.1f}%")

model.eval()
x, y = test_data[0][0], test_data[0][1]
with torch.no_grad():
    x = x.to(device)
    pred = model(x.unsqueeze(0))
    predicted, actual = pred[0].argmax(0).item(), y.item()
    print(f'Predicted: "{predicted}", Actual: "{actual}"')
