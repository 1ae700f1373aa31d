"""A small text encoder with two dynamic dims (batch, sequence): token ids and an attention mask.

Used to measure memory under random-shape traffic (oneDNN caches kernels per input shape).
"""

import paddle
from paddle import nn


class TinyText(nn.Layer):
    def __init__(self, vocab: int = 1000, width: int = 64):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.encoder = nn.TransformerEncoderLayer(width, nhead=4, dim_feedforward=128, dropout=0.0)
        self.head = nn.Linear(width, 2)

    def forward(self, ids, mask):
        h = self.embed(ids)  # [batch, seq, width]
        attn = ((1.0 - mask) * -1e4).unsqueeze(1).unsqueeze(1)  # [batch, 1, 1, seq]
        h = self.encoder(h, attn)
        pooled = (h * mask.unsqueeze(-1)).sum(axis=1) / (mask.sum(axis=1, keepdim=True) + 1e-6)
        return self.head(pooled)


def make():
    paddle.seed(0)
    return TinyText()
