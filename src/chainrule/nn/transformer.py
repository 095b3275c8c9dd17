"""Attention and transformer layers with PyTorch's parameter names, so state_dicts load both ways:
``MultiheadAttention`` (``in_proj_weight``, ``in_proj_bias``, ``out_proj``), ``TransformerEncoderLayer``
and ``TransformerEncoder``. Everything is a composition of chainrule ops (see ``F.scaled_dot_product_attention``)."""

import copy

import numpy as np

from .. import _dtype
from .. import ops as _ops
from ..errors import ShapeError
from . import functional as F
from . import init
from .container import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module
from .normalization import LayerNorm
from .parameter import Parameter


def _additive(mask, dtype):
    """A mask as scores to add: bool True (masked out, PyTorch's MultiheadAttention convention) -> -inf."""
    mask = _ops.as_tensor(mask)
    if mask.dtype == _dtype.bool_:
        return _ops.where(mask, -np.inf, 0.0).to(dtype)
    return mask.to(dtype)


class MultiheadAttention(Module):
    """Attention with ``num_heads`` heads over projected queries, keys and values.

    ``forward`` takes (L, N, E) inputs ((N, L, E) with ``batch_first``, (L, E) unbatched) and returns
    ``(output, weights)``: weights (N, L, S) averaged over heads, per head with
    ``average_attn_weights=False``, or None with ``need_weights=False``. In ``attn_mask`` and
    ``key_padding_mask`` a bool True means "do not attend"; float masks are added to the scores.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False, add_zero_attn=False,
                 kdim=None, vdim=None, batch_first=False, device=None, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if add_bias_kv or add_zero_attn or kdim not in (None, embed_dim) or vdim not in (None, embed_dim):
            raise NotImplementedError("MultiheadAttention: add_bias_kv, add_zero_attn and kdim/vdim other than "
                                      "embed_dim are not supported")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.batch_first = batch_first
        self.kdim = self.vdim = embed_dim
        self._qkv_same_embed_dim = True
        kw = {} if dtype is None else {"dtype": dtype}
        self.in_proj_weight = Parameter(_ops.empty((3 * embed_dim, embed_dim), **kw))
        self.register_parameter("in_proj_bias", Parameter(_ops.empty(3 * embed_dim, **kw)) if bias else None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        if is_causal and attn_mask is None:
            raise RuntimeError("MultiheadAttention: Need attn_mask if specifying the is_causal hint (a causal "
                               "attn_mask is True above the diagonal: cr.triu(cr.ones(L, L, dtype=cr.bool), 1))")
        batched = query.ndim == 3
        if not batched:
            query, key, value = (_ops.unsqueeze(t, 0) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = _ops.unsqueeze(_ops.as_tensor(key_padding_mask), 0)
        elif not self.batch_first:
            query, key, value = (_ops.transpose(t, 0, 1) for t in (query, key, value))
        n, length, e = query.shape
        if e != self.embed_dim:
            raise ShapeError(f"MultiheadAttention: was expecting embedding dimension of {self.embed_dim}, but got {e}")
        source = key.shape[1]
        weights_q, weights_k, weights_v = _ops.chunk(self.in_proj_weight, 3)
        biases = (None,) * 3 if self.in_proj_bias is None else _ops.chunk(self.in_proj_bias, 3)
        q, k, v = (self._heads(F.linear(x, w, b), n) for x, w, b in
                   zip((query, key, value), (weights_q, weights_k, weights_v), biases))
        scores = _ops.matmul(q * (1 / self.head_dim ** 0.5), _ops.transpose(k, -2, -1))  # (N, H, L, S)
        mask = self._mask(attn_mask, key_padding_mask, n, length, source, scores.dtype)
        if mask is not None:
            scores = scores + mask
        weights = F._safe_softmax(scores)
        if self.training and self.dropout > 0.0:
            weights = F.dropout(weights, self.dropout)
        out = _ops.transpose(_ops.matmul(weights, v), 1, 2).reshape(n, length, self.embed_dim)
        out = self.out_proj(out)
        if not batched:
            out = _ops.squeeze(out, 0)
        elif not self.batch_first:
            out = _ops.transpose(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = _ops.mean(weights, 1)
        return out, (weights if batched else _ops.squeeze(weights, 0))

    def _heads(self, x, n):
        """(N, L, E) -> (N, H, L, head_dim)."""
        return _ops.transpose(x.reshape(n, -1, self.num_heads, self.head_dim), 1, 2)

    def _mask(self, attn_mask, key_padding_mask, n, length, source, dtype):
        """attn_mask ((L, S) or (N * H, L, S)) and key_padding_mask ((N, S)) as one additive (N|1, H|1, L, S) mask."""
        mask = None
        if attn_mask is not None:
            mask = _additive(attn_mask, dtype)
            if mask.ndim == 3:
                mask = mask.reshape(n, self.num_heads, length, source)
            elif tuple(mask.shape) != (length, source):
                raise RuntimeError(f"MultiheadAttention: The shape of the 2D attn_mask is {list(mask.shape)}, but "
                                   f"should be {[length, source]}.")
        if key_padding_mask is not None:
            padding = _additive(key_padding_mask, dtype).reshape(n, 1, 1, source)
            mask = padding if mask is None else mask + padding
        return mask

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with dropout, a residual and LayerNorm (after the
    residual by default; before each block with ``norm_first=True``, as GPT does)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu", layer_norm_eps=1e-5,
                 batch_first=False, norm_first=False, bias=True, device=None, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise RuntimeError(f"activation should be relu/gelu, not {activation}")
            activation = _ACTIVATIONS[activation]
        self.activation = activation

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask, need_weights=False,
                           is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (deep copies: separate weights), then an optional norm."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True, mask_check=True):
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=bool(is_causal))
        return out if self.norm is None else self.norm(out)

