"""The manual forward: a Hugging Face decoder run layer by layer, with masks, knockouts, captures.

The checkpoint's own modules do what is not under study (embeddings, RMSNorms, MLP, rotary
embedding, lm_head). What the experiments look inside is written out here: q/k/v projection,
RoPE application, GQA expansion, scores, fp32 softmax, per-head outputs, o_proj.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Literal, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn
from torch.utils.checkpoint import checkpoint

from interp.engine.arch import ArchSpec
from interp.engine.caches import (
    ALL_ACTIVATIONS,
    EXPLICIT_ONLY,
    LAYER_ACTIVATIONS,
    ActivationCache,
    KVCache,
)
from interp.engine.masks import Knockout, knockout_mask, layer_prefix_lengths, validate_knockouts, visibility
from interp.errors import InterpError

AttnImpl = Literal["auto", "sdpa", "explicit"]
LogitsWanted = Literal["all", "last", "none"]


def last_real(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x [B,T,...] at each row's last real token → [B,1,...], whichever side the padding is on."""
    t = mask.shape[1]
    last = t - 1 - mask.flip(-1).long().argmax(-1)  # [B]: index of the last True in each row
    return x[torch.arange(x.shape[0], device=x.device), last][:, None]
def module_device(module: nn.Module, default: torch.device | None = None) -> torch.device:
    """Where a module's weights (or buffers) live: where it runs under a device_map."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return default if default is not None else torch.device("cpu")


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B,heads,T,dh]; cos/sin [B,T,dh] from the checkpoint's rotary module."""
    return x * cos[:, None] + rotate_half(x) * sin[:, None]


@dataclass
class RunResult:
    """What `Engine.run` returns: logits, captured activations, and the KV cache if asked."""

    logits: torch.Tensor | None  # [B,T,V] ([B,1,V] with logits="last": each row's last real token)
    cache: ActivationCache
    past: KVCache | None
    input_ids: torch.Tensor  # [B,T]
    attention_mask: torch.Tensor  # [B,T] bool
    positions: torch.Tensor  # [B,T] real-token positions


@dataclass
class LayerOutput:
    """What `Engine.layer_forward` returns."""

    resid_post: torch.Tensor  # [B,T,D]
    attn_out: torch.Tensor  # [B,T,D]
    z: torch.Tensor  # [B,T,H,dh]


@dataclass
class _Step:
    """Everything one forward shares across layers."""

    cos: torch.Tensor
    sin: torch.Tensor
    query_scale: torch.Tensor | None  # [B,T]
    masks: list  # per layer [B,1,Tq,Tk] bool (shared by layers with the same rule), or None:
    # plain causal over one unpadded sequence, SDPA's is_causal with no mask tensor
    knockouts: list[Knockout]
    capture: dict  # name → set of layers
    past: KVCache | None
    new_past: KVCache | None
    impl: str
    cache: ActivationCache = field(default_factory=ActivationCache)


class Engine:
    """A loaded checkpoint plus the forward that can be looked inside.

    `engine.model` is the user's Hugging Face model (never copied); `engine.tokenizer` and
    `engine.config` (the text config) come with it.
    """

    def __init__(self, model: nn.Module, tokenizer, spec: ArchSpec, name: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.name = name
        self.config = spec.text_config(model.config)
        self.decoder = spec.decoder(model)
        self.lm_head = model.get_output_embeddings()
        c = self.config
        self.n_layers: int = c.num_hidden_layers
        self.n_heads: int = c.num_attention_heads
        self.n_kv_heads: int = c.num_key_value_heads
        self.d_model: int = c.hidden_size
        self.d_head: int = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        self.max_positions: int | None = getattr(c, "max_position_embeddings", None)
        self.windows: list[int | None] = [spec.sliding_window(c, i) for i in range(self.n_layers)]
        # Placement (device_map): each layer runs where its weights are; activations follow.
        self.layer_devices: list[torch.device] = [module_device(layer) for layer in self.decoder.layers]
        self.gradient_checkpointing = False

    # ----------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def layers(self) -> nn.ModuleList:
        return self.decoder.layers

    def __repr__(self) -> str:
        return (
            f"Engine({self.name or self.spec.model_type}: {self.n_layers} layers, {self.n_heads} heads "
            f"({self.n_kv_heads} kv), d_model {self.d_model}, {self.dtype}, {self.device})"
        )

    # ----------------------------------------------------------------- inputs
    def tokenize(
        self, inputs, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Text, list of texts, token ids or a [B,T] tensor → (input_ids [B,T], mask [B,T] bool)."""
        if isinstance(inputs, str) or (isinstance(inputs, (list, tuple)) and inputs and isinstance(inputs[0], str)):
            texts = [inputs] if isinstance(inputs, str) else list(inputs)
            if any(not t.strip() for t in texts):
                raise InterpError("empty prompt: give some text to run")
            tok = self.tokenizer
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            enc = tok(texts, return_tensors="pt", padding=True)
            ids, mask = enc["input_ids"], enc["attention_mask"]
        else:
            ids = torch.as_tensor(inputs, dtype=torch.long)
            if ids.ndim == 1:
                ids = ids[None]
            mask = attention_mask
        if ids.ndim != 2 or ids.shape[1] == 0:
            raise InterpError("empty prompt: no tokens to run")
        mask = torch.ones_like(ids, dtype=torch.bool) if mask is None else torch.as_tensor(mask).bool()
        if mask.shape != ids.shape:
            raise InterpError(f"attention_mask shape {tuple(mask.shape)} does not match tokens {tuple(ids.shape)}")
        return ids.to(self.device), mask.to(self.device)

    def check_length(self, n_tokens: int) -> None:
        if self.max_positions is not None and n_tokens > self.max_positions:
            raise InterpError(
                f"prompt is {n_tokens} tokens; the model allows at most {self.max_positions}"
            )

    # ----------------------------------------------------------------- the forward
    def run(
        self,
        inputs,
        *,
        attention: str = "causal",
        prefix_len: int | Sequence[int] | torch.Tensor | None = None,
        knockout: Knockout | Iterable[Knockout] | None = None,
        capture: Iterable[str | tuple[str, int]] | str = (),
        attention_mask: torch.Tensor | None = None,
        past: KVCache | None = None,
        use_cache: bool = False,
        logits: LogitsWanted = "all",
        attn_impl: AttnImpl = "auto",
        bidirectional_layers: Iterable[int] | None = None,
    ) -> RunResult:
        """Run the model; docs/semantics.md states exactly what every argument means.

        attention: causal, prefix (queries inside the first `prefix_len` real tokens see the whole
        prefix) or bidirectional. logits="last" keeps each row's last real token, so left and
        right padding give the same answer. With `past`, the new tokens continue the cached
        sequence (decode); they attend causally among themselves and see every cached real key.
        bidirectional_layers: the layers where `attention` applies (None: all); the others are
        causal. A prefix prefill with a layer subset then causal decoding equals one such pass.
        """
        ids, mask = self.tokenize(inputs, attention_mask)
        batch, t_new = ids.shape
        if past is not None:
            if attention != "causal":
                raise InterpError("decoding with a KV cache is causal; prefill in any mode, then decode")
            if past.key_pos.shape[0] != batch:
                raise InterpError(f"KV cache has {past.key_pos.shape[0]} rows, input has {batch}")
            start = past.real_lengths[:, None]
        else:
            start = 0
        positions = start + (mask.long().cumsum(-1) - 1).clamp(min=0)  # [B,T]
        self.check_length(int(positions.max()) + 1)

        knockouts = validate_knockouts(
            [knockout] if isinstance(knockout, Knockout) else (knockout or []), self.n_layers
        )
        wanted = self._parse_capture(capture)
        impl = self._choose_impl(attn_impl, knockouts, wanted)

        prefixes = layer_prefix_lengths(attention, prefix_len, batch, ids.device, self.n_layers, bidirectional_layers)
        key_pos = positions if past is None else torch.cat([past.key_pos, positions], 1)
        key_valid = mask if past is None else torch.cat([past.key_valid, mask], 1)
        plain = impl == "sdpa" and past is None and bool(mask.all())
        causal = {id(p): not bool(p.any()) for p in {id(p): p for p in prefixes}.values()}  # one check per tensor
        built: dict = {}  # (window, prefix tensor id) → mask, one per distinct rule
        masks: list[torch.Tensor | None] = []
        for w, prefix in zip(self.windows, prefixes):
            if plain and causal[id(prefix)] and (w is None or w >= t_new):
                masks.append(None)  # causal layer, nothing the window removes: SDPA is_causal
                continue
            key = (w, id(prefix))
            if key not in built:
                built[key] = visibility(positions, mask, key_pos, key_valid, prefix, w)[:, None]  # [B,1,Tq,Tk]
            masks.append(built[key])

        x = self.decoder.embed_tokens(ids.to(module_device(self.decoder.embed_tokens)))  # [B,T,D]
        cos, sin, query_scale = self.position_embeddings(x, positions)
        step = _Step(
            cos=cos, sin=sin, query_scale=query_scale, masks=masks, knockouts=knockouts,
            capture=wanted, past=past,
            new_past=KVCache(key_pos=key_pos, key_valid=key_valid) if use_cache else None, impl=impl,
        )
        for layer in range(self.n_layers):
            if self.gradient_checkpointing and torch.is_grad_enabled() and not wanted:
                x = checkpoint(self._layer, layer, x, step, use_reentrant=False)
            else:
                x = self._layer(layer, x, step)

        out_logits = None
        if logits != "none" or "ln_final" in wanted or "logits" in wanted:
            h = self.decoder.norm(x.to(module_device(self.decoder.norm)))
            self._keep(step, "ln_final", None, h)
            if logits != "none" or "logits" in wanted:
                h = last_real(h, mask.to(h.device)) if logits == "last" else h
                out_logits = self.lm_head(h.to(module_device(self.lm_head, h.device)))
                self._keep(step, "logits", None, out_logits)
        return RunResult(out_logits, step.cache, step.new_past, ids, mask, positions)

    __call__ = run

    def _layer(self, layer: int, x: torch.Tensor, step: _Step) -> torch.Tensor:
        """One decoder layer of `run`: the mode's mask at this layer, minus its knockouts."""
        allowed = step.masks[layer]  # [B,1,Tq,Tk], or None for plain causal (SDPA's is_causal)
        x = x.to(self.layer_devices[layer])
        if allowed is not None:
            allowed = allowed.to(x.device)
            t_q = x.shape[1]
            t_k = t_q + (step.past.length if step.past is not None else 0)
            removed = knockout_mask(step.knockouts, layer, self.n_heads, t_q, t_k, x.device)
            if removed is not None:
                allowed = allowed & ~removed[None]  # [B,H,Tq,Tk]
        out = self.layer_forward(
            layer, x, step.cos, step.sin, step.query_scale, allowed, impl=step.impl, step=step
        )
        return out.resid_post

    def layer_forward(
        self,
        layer: int,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        query_scale: torch.Tensor | None,
        allowed: torch.Tensor | None,
        *,
        impl: str = "explicit",
        step: _Step | None = None,
        past_kv: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> "LayerOutput":
        """One decoder layer under a given visibility mask: x [B,T,D] (resid_pre) → LayerOutput.

        `run` and analyses that recompute a layer (mask-impact) share this, so a recomputed layer
        is the engine's layer. allowed: [B|1, 1|H, Tq, Tk] bool, or None for plain causal.
        impl "explicit" gives an emptied query row zero output; "sdpa" is faster for masks that
        leave every row a key. `step` (from `run`) adds captures and the KV cache. `past_kv`: keys
        and values [B|1,KH,Tp,dh] of earlier positions that x attends to without recomputing them
        (e.g. a baseline's, for a recompute of only the positions a knockout can change).
        """
        block = self.layers[layer]
        attn = block.self_attn
        dev = self.layer_devices[layer]
        if x.device != dev or cos.device != dev:  # placed over several devices (device_map)
            x, cos, sin = x.to(dev), cos.to(dev), sin.to(dev)
            query_scale = query_scale.to(dev) if query_scale is not None else None
            allowed = allowed.to(dev) if allowed is not None else None
        self._keep(step, "resid_pre", layer, x)
        q, k, v = self.qkv(layer, block.input_layernorm(x), cos, sin, query_scale)  # [B,H|KH,T,dh]
        self._keep(step, "q", layer, lambda: rearrange(q, "b h t d -> b t h d"))
        self._keep(step, "k", layer, lambda: rearrange(k, "b h t d -> b t h d"))
        self._keep(step, "v", layer, lambda: rearrange(v, "b h t d -> b t h d"))
        if step is not None and step.past is not None:
            k = torch.cat([step.past.keys[layer], k], dim=2)
            v = torch.cat([step.past.values[layer], v], dim=2)
        if past_kv is not None:
            k = torch.cat([past_kv[0].expand(k.shape[0], -1, -1, -1), k], dim=2)
            v = torch.cat([past_kv[1].expand(v.shape[0], -1, -1, -1), v], dim=2)
        if step is not None and step.new_past is not None:
            step.new_past.keys.append(k)
            step.new_past.values.append(v)

        if allowed is None:
            z = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=attn.scaling, enable_gqa=True)
        elif impl == "sdpa":
            z = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=attn.scaling, enable_gqa=True)
        else:
            z = self.explicit_attention(layer, q, k, v, allowed, step)
        z = rearrange(z, "b h t d -> b t h d")  # [B,T,H,dh]
        self._keep(step, "z", layer, z)
        attn_out = attn.o_proj(rearrange(z, "b t h d -> b t (h d)"))
        self._keep(step, "head_out", layer, lambda: self.head_contributions(layer, z))

        resid_mid = x + attn_out
        mlp_out = block.mlp(block.post_attention_layernorm(resid_mid))
        resid_post = resid_mid + mlp_out
        self._keep(step, "attn_out", layer, attn_out)
        self._keep(step, "resid_mid", layer, resid_mid)
        self._keep(step, "mlp_out", layer, mlp_out)
        self._keep(step, "resid_post", layer, resid_post)
        return LayerOutput(resid_post, attn_out, z)

    def position_embeddings(
        self, x: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """cos, sin [B,T,dh] from the checkpoint's rotary module, and any query scale [B,T]."""
        rotary = module_device(self.decoder.rotary_emb, x.device)
        cos, sin = self.decoder.rotary_emb(x.to(rotary), positions.to(rotary))
        query_scale = self.spec.query_scaling(self.config, positions) if self.spec.query_scaling else None
        return cos, sin, query_scale

    def qkv(
        self, layer: int, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, query_scale: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normed input [B,T,D] → q [B,H,T,dh], k and v [B,KH,T,dh], ready to attend."""
        attn = self.layers[layer].self_attn
        q = rearrange(attn.q_proj(h), "b t (h d) -> b t h d", d=self.d_head)
        k = rearrange(attn.k_proj(h), "b t (h d) -> b t h d", d=self.d_head)
        v = rearrange(attn.v_proj(h), "b t (h d) -> b h t d", d=self.d_head)
        if self.spec.qk_norm:
            q, k = attn.q_norm(q), attn.k_norm(k)
        q = apply_rope(rearrange(q, "b t h d -> b h t d"), cos, sin)
        k = apply_rope(rearrange(k, "b t h d -> b h t d"), cos, sin)
        if query_scale is not None:
            q = q * query_scale[:, None, :, None].to(q.dtype)
        return q, k, v

    def explicit_attention(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, allowed: torch.Tensor, step: _Step | None = None
    ) -> torch.Tensor:
        """Scores, fp32 softmax over allowed keys, weighted values → z [B,H,Tq,dh].

        Masked logits are filled with the fp32 minimum rather than -inf and the probabilities
        multiplied by the mask: identical to -inf where any key is left (exp underflows to 0),
        and an emptied row gives exactly zero output with finite gradients instead of NaN.
        """
        attn = self.layers[layer].self_attn
        group = self.n_heads // self.n_kv_heads
        k = repeat(k, "b kh t d -> b (kh g) t d", g=group)  # GQA: each kv head serves `group` query heads
        v = repeat(v, "b kh t d -> b (kh g) t d", g=group)
        scores = torch.matmul(q, k.transpose(-1, -2)) * attn.scaling  # [B,H,Tq,Tk]
        if step is not None:
            self._keep(step, "scores", layer, lambda: scores.masked_fill(~allowed, float("-inf")))
        logits32 = scores.float().masked_fill(~allowed, torch.finfo(torch.float32).min)
        pattern = (logits32.softmax(-1) * allowed).to(q.dtype)
        if step is not None:
            self._keep(step, "pattern", layer, pattern)
        return torch.matmul(pattern, v)

    def head_contributions(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """z [B,T,H,dh] → each head's contribution after o_proj [B,T,H,D] (bias excluded)."""
        w = rearrange(self.layers[layer].self_attn.o_proj.weight, "dm (h d) -> h d dm", d=self.d_head)
        return torch.einsum("bthd,hdm->bthm", z, w)

    # ----------------------------------------------------------------- captures
    def _parse_capture(self, capture) -> dict[str, set[int | None]]:
        if isinstance(capture, str):
            capture = list(ALL_ACTIVATIONS) if capture == "all" else [capture]
        wanted: dict[str, set] = {}
        for item in capture:
            name, layer = (item, None) if isinstance(item, str) else item
            if name not in ALL_ACTIVATIONS:
                raise InterpError(f"unknown activation {name!r}; known: {', '.join(ALL_ACTIVATIONS)}")
            if layer is not None and not 0 <= layer < self.n_layers:
                raise InterpError(f"layer {layer} out of range (model has {self.n_layers} layers)")
            layers = set(range(self.n_layers)) if (layer is None and name in LAYER_ACTIVATIONS) else {layer}
            wanted.setdefault(name, set()).update(layers)
        return wanted

    @staticmethod
    def _choose_impl(attn_impl: str, knockouts: list, wanted: dict) -> str:
        if attn_impl not in ("auto", "sdpa", "explicit"):
            raise InterpError(f"attn_impl must be auto, sdpa or explicit, not {attn_impl!r}")
        needs_explicit = bool(knockouts) or bool(EXPLICIT_ONLY & wanted.keys())
        if attn_impl == "sdpa" and needs_explicit:
            # Knockouts work through a boolean mask in SDPA too, but emptied rows and the
            # scores/pattern captures need the explicit path.
            return "explicit"
        if attn_impl == "auto":
            return "explicit" if needs_explicit else "sdpa"
        return attn_impl

    @staticmethod
    def _keep(step: _Step | None, name: str, layer: int | None, value) -> None:
        """Store an activation if it was asked for; `value` may be a thunk to skip unneeded work."""
        if step is not None and layer in step.capture.get(name, ()):
            step.cache[name, layer] = value() if callable(value) else value

    # ----------------------------------------------------------------- generation
    @torch.no_grad()
    def generate(
        self,
        inputs,
        *,
        max_new_tokens: int = 20,
        attention: str = "causal",
        prefix_len: int | Sequence[int] | None = None,
        eos_token_id: int | None = None,
        attention_mask: torch.Tensor | None = None,
        bidirectional_layers: Iterable[int] | None = None,
    ) -> "Generation":
        """Greedy decoding: prefill the prompt in `attention` mode, then decode causally.

        With attention="prefix" and no prefix_len the whole prompt is the prefix: the prefill is
        bidirectional over the prompt, as in the prefill-mask ablation (in `bidirectional_layers`
        only, when given; the other layers prefill causally).
        """
        ids, mask = self.tokenize(inputs, attention_mask)
        if attention == "prefix" and prefix_len is None:
            prefix_len = mask.sum(-1)
        eos = self.tokenizer.eos_token_id if eos_token_id is None else eos_token_id
        out = self.run(ids, attention_mask=mask, attention=attention, prefix_len=prefix_len, use_cache=True, logits="last",
                       bidirectional_layers=bidirectional_layers)
        done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
        new: list[torch.Tensor] = []
        for _ in range(max_new_tokens):
            token = out.logits[:, -1].argmax(-1)  # [B]
            token = torch.where(done, torch.full_like(token, eos if eos is not None else 0), token)
            new.append(token)
            if eos is not None:
                done |= token == eos
            if bool(done.all()) or len(new) == max_new_tokens:
                break
            out = self.run(token[:, None], past=out.past, use_cache=True, logits="last")
        new_ids = torch.stack(new, 1) if new else ids.new_zeros(ids.shape[0], 0)
        return Generation(ids, mask, new_ids, self.tokenizer, eos)

    # ----------------------------------------------------------------- nnsight
    def nnsight(self):
        """The same loaded model (same weights, no copy) wrapped as an nnsight LanguageModel."""
        from nnsight import LanguageModel

        return LanguageModel(self.model, tokenizer=self.tokenizer)


@dataclass
class Generation:
    """Greedy output: prompt ids and mask, new ids [B,N] (EOS kept, then padded with EOS)."""

    prompt_ids: torch.Tensor
    prompt_mask: torch.Tensor
    new_ids: torch.Tensor
    tokenizer: object
    eos_token_id: int | None

    @property
    def texts(self) -> list[str]:
        out = []
        for row in self.new_ids.tolist():
            if self.eos_token_id is not None and self.eos_token_id in row:
                row = row[: row.index(self.eos_token_id)]
            out.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return out
