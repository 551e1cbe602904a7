"""A character (or word) LSTM written to be read: it reads text one token at a time and
predicts the next.

Each token id picks a learned vector (the embedding); a stack of LSTM layers reads the
vectors in order, each keeping two vectors of memory from one token to the next (the
hidden state h and the cell state c); a linear layer turns the top layer's h into logits
for the next token. Unlike a Transformer, nothing limits how far back it can look: all it
knows of the past is in (h, c), which it carries forward step by step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class LSTMArgs:
    vocab_size: int
    embed: int = 64  # size of a token's vector
    hidden: int = 128  # size of h and c in every layer: the model's memory
    layers: int = 2
    dropout: float = 0.0  # between layers and before the output layer


State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (layers, B, hidden), as nn.LSTM takes them


def lstm_cell(x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, lstm: nn.LSTM) -> tuple[torch.Tensor, ...]:
    """One step of one LSTM layer, written out: the equations nn.LSTM computes (fused) in
    training. x: (B, in), h and c: (B, hidden). Returns the new h and c and the gates.

        i = sigmoid(W_i [x, h] + b_i)   input gate: how much of the candidate to write
        f = sigmoid(W_f [x, h] + b_f)   forget gate: how much of the old cell to keep
        g = tanh(W_g [x, h] + b_g)      candidate: what could be written
        o = sigmoid(W_o [x, h] + b_o)   output gate: how much of the cell to show
        c' = f * c + i * g              the cell: kept memory plus new writing
        h' = o * tanh(c')               the hidden state, in (-1, 1), is what layers above see

    The cell is updated by addition, not by a matrix product, which is why gradients can
    flow back through many steps without vanishing (while f stays near 1)."""
    gates = x @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + h @ lstm.weight_hh_l0.T + lstm.bias_hh_l0  # (B, 4 hidden)
    i, f, g, o = gates.chunk(4, dim=-1)  # PyTorch stacks the gates in this order
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c + i * g
    h = o * c.tanh()
    return h, c, (i, f, g, o)


class LSTMLanguageModel(nn.Module):
    def __init__(self, a: LSTMArgs):
        super().__init__()
        self.args = a
        self.embed = nn.Embedding(a.vocab_size, a.embed)
        # One nn.LSTM per layer (rather than one with num_layers) so that every layer's
        # hidden states can be read out, for the Hidden state view.
        self.layers = nn.ModuleList(nn.LSTM(a.embed if i == 0 else a.hidden, a.hidden, batch_first=True)
                                    for i in range(a.layers))
        self.drop = nn.Dropout(a.dropout)
        self.head = nn.Linear(a.hidden, a.vocab_size)
        for lstm in self.layers:
            # Forget gates start mostly open (bias 1, so f = sigmoid(1) = 0.73): the cell
            # keeps its memory from the start instead of having to learn to.
            n = a.hidden
            with torch.no_grad():
                lstm.bias_ih_l0[n:2 * n].fill_(1.0)
                lstm.bias_hh_l0[n:2 * n].zero_()

    def zero_state(self, batch: int, device: torch.device | None = None) -> State:
        """Empty memory: what the model starts a text with."""
        a = self.args
        z = torch.zeros(a.layers, batch, a.hidden, device=device or self.head.weight.device)
        return z, z.clone()

    def layer_outputs(self, idx: torch.Tensor, state: State | None = None) -> tuple[list[torch.Tensor], State]:
        """idx: (B, T) token ids; state: the (h, c) left by the previous chunk of the same
        texts, or None to start from zeros. Returns every layer's hidden states h after every
        token, a list of (B, T, hidden), and the state after the last token (pass it to the
        next call to keep reading)."""
        if state is None:
            state = self.zero_state(idx.shape[0], idx.device)
        h0, c0 = state
        x = self.drop(self.embed(idx))  # (B, T, embed)
        outs, hs, cs = [], [], []
        for i, lstm in enumerate(self.layers):
            y, (h, c) = lstm(x, (h0[i:i + 1].contiguous(), c0[i:i + 1].contiguous()))  # y: (B, T, hidden)
            outs.append(y)
            hs.append(h)
            cs.append(c)
            x = self.drop(y)
        return outs, (torch.cat(hs), torch.cat(cs))

    def forward(self, idx: torch.Tensor, state: State | None = None, targets: torch.Tensor | None = None):
        """Returns the logits (B, T, vocab) for the token after each of ``idx`` (B, T), the
        mean cross-entropy against ``targets`` if given, and the state to carry on with."""
        outs, state = self.layer_outputs(idx, state)
        logits = self.head(self.drop(outs[-1]))  # (B, T, vocab): read from the top layer's h
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        return logits, loss, state

    @torch.no_grad()
    def read(self, idx: torch.Tensor) -> dict[str, list[torch.Tensor]]:
        """Read one text (T,) from empty memory, one token at a time with :func:`lstm_cell`,
        and keep what training never looks at: every layer's h and c after every token,
        each a list over layers of (T, hidden). The logits are ``head(h[-1])``."""
        a = self.args
        x = self.embed(idx)  # (T, embed)
        out = {"h": [], "c": []}
        for lstm in self.layers:
            h = c = x.new_zeros(1, a.hidden)
            hs, cs = [], []
            for t in range(len(idx)):
                h, c, _ = lstm_cell(x[t:t + 1], h, c, lstm)  # (1, hidden)
                hs.append(h)
                cs.append(c)
            x = torch.cat(hs)  # (T, hidden): this layer's outputs feed the next layer
            out["h"].append(x)
            out["c"].append(torch.cat(cs))
        return out
