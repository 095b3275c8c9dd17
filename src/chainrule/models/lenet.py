"""LeNet-5 (LeCun et al., 1998) with today's usual choices, and a plain MLP.

LeNet-5 keeps the original topology — 5x5 convolutions with 6 and 16 maps, two 2x2 subsamplings,
fully connected 120-84-10 — and takes 32x32 inputs as the original did (28x28 MNIST images are
zero-padded by 2 on the first convolution). ReLU and max pooling replace the scaled tanh and
trainable average pooling: they train faster and reach the paper's ~99% on MNIST.
"""

from .. import nn


class LeNet5(nn.Module):
    def __init__(self, num_classes=10, in_channels=1, input_size=32):
        super().__init__()
        padding = (32 - input_size) // 2  # 28x28 inputs are padded to the 32x32 LeNet expects
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=padding),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """Flatten, then Linear-ReLU layers of the given widths, then a linear classifier."""

    def __init__(self, in_features=784, hidden=(512, 512), num_classes=10):
        super().__init__()
        layers = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
